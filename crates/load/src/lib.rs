//! coreloop-load: a C10K HTTP/1.1 and echo load generator.
//!
//! Its own multi-reactor client on mio: one `Poll` per thread, connections
//! sharded over threads, requests encoded once, responses framed exactly,
//! and in open loop (`--rate`) latency measured from each request's intended
//! send time, so a stalled server shows in the percentiles (no coordinated
//! omission). See docs/LOAD.md.

mod args;
pub mod config;
mod conn;
mod cpu;
mod exchange;
pub mod framer;
pub mod histogram;
mod limits;
mod plan;
mod progress;
pub mod report;
mod request;
mod run;
pub mod stats;
pub mod target;
mod worker;

use std::io::Write;

use clap::Parser;

pub use config::Config;
pub use report::Report;
pub use run::{run, RunError};
pub use target::{Endpoint, Protocol, Target};

/// Exit code for a bad command line or config.
const EXIT_USAGE: i32 = 2;
/// Exit code when the run could not happen or its report not be written.
const EXIT_FAILURE: i32 = 1;

/// Entry point of the `coreloop-load` binary; returns the process exit code.
pub fn main() -> i32 {
    main_with_args(std::env::args_os())
}

/// The binary's behaviour for the given argv (first item is the program name).
pub fn main_with_args<I, T>(args: I) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let parsed = match args::Args::try_parse_from(args) {
        Ok(a) => a,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { EXIT_USAGE } else { 0 };
        }
    };
    let (config, output) = match parsed.into_config() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("coreloop-load: {e}");
            return EXIT_USAGE;
        }
    };
    match run(&config) {
        Ok(report) => emit(&report, &output),
        Err(e) => {
            eprintln!("coreloop-load: {e}");
            EXIT_FAILURE
        }
    }
}

/// Prints the summary (to stderr when JSON goes to stdout) and writes JSON.
fn emit(report: &Report, output: &args::Output) -> i32 {
    let text = report.text(output.latency);
    let json_to_stdout = output.json.as_deref() == Some("-".as_ref());
    if json_to_stdout {
        eprint!("{text}");
    } else {
        print!("{text}");
    }
    let Some(path) = &output.json else { return 0 };
    let json = match serde_json::to_string_pretty(report) {
        Ok(j) => j,
        Err(e) => {
            eprintln!("coreloop-load: cannot encode the report: {e}");
            return EXIT_FAILURE;
        }
    };
    let written = if json_to_stdout {
        writeln!(std::io::stdout(), "{json}")
    } else {
        std::fs::write(path, json + "\n")
    };
    match written {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("coreloop-load: cannot write {}: {e}", path.display());
            EXIT_FAILURE
        }
    }
}
