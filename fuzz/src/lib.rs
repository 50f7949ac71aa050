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
