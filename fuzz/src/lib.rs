//! The checks behind coreloop's fuzz targets. Each target in `fuzz_targets/` is five lines that
//! call one function here, so the checks read as ordinary code and can be run on a single input
//! from a test as well as from libFuzzer.
//!
//! Every function panics when a property fails (libFuzzer then saves the input as a crash) and
//! returns quietly otherwise. What each one checks is on the function.

#![forbid(unsafe_code)]

mod config;
mod frame;
mod http;
mod response;
mod split;

pub use config::config_toml;
pub use frame::frame_codec;
pub use http::{http_chunked, http_head, http_protocol};
pub use response::check_responses;
pub use split::{pieces, Rng};

/// `FUZZ_STRICT=1` also checks the properties that known open findings break (see
/// `regressions/*/README.md`); without it those cases are let through so the fuzzer keeps
/// looking for new ones. Drop the exemption once the finding is fixed.
pub fn strict() -> bool {
    std::env::var_os("FUZZ_STRICT").is_some_and(|v| v == "1")
}
