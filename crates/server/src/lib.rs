//! The `coreloop` binary: command line, logging, wiring the config onto the reactor and the
//! protocols, signals (drain, reload), systemd notification and the access-log writer.
//!
//! Exit codes (docs/ARCHITECTURE.md, "Drain"): 0 clean stop, a drain that cut nothing; 1 runtime
//! failure (a listener that cannot bind, a refused inherited socket, a drain cut short by a
//! second signal); 2 usage or configuration error; 3 a drain that cut connections at its deadline.

#![forbid(unsafe_code)]

mod access_format;
mod access_log;
mod cli;
mod http_proxy;
mod logging;
mod notify;
mod reload;
mod serve;
mod signals;
mod tcp_proxy;
mod time;
mod tls;
mod upstream;
mod wiring;

/// Exit code: stopped cleanly.
pub const EXIT_OK: i32 = 0;
/// Exit code: failed while running (bind, drain cut short).
pub const EXIT_RUNTIME: i32 = 1;
/// Exit code: bad command line or configuration.
pub const EXIT_USAGE: i32 = 2;
/// Exit code: the drain deadline cut connections off (work was lost).
pub const EXIT_DRAIN_CUT: i32 = 3;

/// Entry point of the `coreloop` binary; returns the process exit code.
pub fn main() -> i32 {
    cli::run()
}
