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
pub mod exit;
pub mod framer;
pub mod histogram;
pub mod html;
mod limits;
mod lowat;
mod merge_cli;
mod plan;
mod probe;
mod procs;
mod progress;
pub mod report;
mod request;
mod run;
pub mod series;
pub mod stats;
pub mod target;
pub mod tls;
mod worker;

use std::io::Write;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use clap::Parser;

pub use config::Config;
pub use report::Report;
pub use run::{run, run_until, RunError};
pub use target::{Endpoint, Protocol, Target};

/// Entry point of the `coreloop-load` binary; returns the process exit code.
/// SIGINT ends the run early (full report of what was measured); a second
/// SIGINT exits at once with status 130.
pub fn main() -> i32 {
    let stop = Arc::new(AtomicBool::new(false));
    if let Err(e) = exit::on_interrupt(&stop) {
        eprintln!("coreloop-load: cannot handle SIGINT: {e}");
    }
    main_until(std::env::args_os(), stop)
}

/// The binary's behaviour for the given argv (first item is the program name).
pub fn main_with_args<I, T>(args: I) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    main_until(args, Arc::new(AtomicBool::new(false)))
}

fn main_until<I, T>(args: I, stop: Arc<AtomicBool>) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let argv: Vec<std::ffi::OsString> = args.into_iter().map(Into::into).collect();
    if argv.get(1).is_some_and(|a| a == "merge") {
        return merge_cli::main(&argv[1..]);
    }
    let parsed = match args::Args::try_parse_from(&argv) {
        Ok(a) => a,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            };
        }
    };
    let (config, output) = match parsed.into_config() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("coreloop-load: {e}");
            return exit::USAGE;
        }
    };
    let result = match output.worker_index {
        Some(i) => return worker_process(&config, i, stop),
        None if config.processes > 1 => procs::parent(&config, &argv[1..], &stop),
        None => run_until(&config, stop),
    };
    match result {
        Ok(report) => emit(&report, &output),
        Err(e) => {
            eprintln!("coreloop-load: {e}");
            exit::for_error(&e)
        }
    }
}

/// The HTML report of `report`, with the `--compare` reports on the same axes.
fn write_html(
    path: &std::path::Path,
    report: &Report,
    compare: &[std::path::PathBuf],
) -> Result<(), String> {
    let label = if compare.is_empty() {
        String::new()
    } else {
        "this run".to_string()
    };
    let mut all = vec![(label, report.clone())];
    for f in compare {
        let r = merge_cli::read(f).map_err(|e| format!("--compare {}: {e}", f.display()))?;
        all.push((f.display().to_string(), r));
    }
    html::write(path, &all).map_err(|e| e.to_string())
}

/// A worker process of `--processes`: its report goes to stdout as one JSON line.
fn worker_process(config: &Config, i: usize, stop: Arc<AtomicBool>) -> i32 {
    if i >= config.processes {
        eprintln!("coreloop-load: --worker-index {i} is not below --processes");
        return exit::USAGE;
    }
    let report = match procs::child(config, i, stop) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("coreloop-load: worker process {i}: {e}");
            return exit::for_error(&e);
        }
    };
    let written = serde_json::to_string(&report)
        .map_err(std::io::Error::other)
        .and_then(|j| writeln!(std::io::stdout(), "{j}"));
    match written {
        Ok(()) => exit::for_report(&report),
        Err(e) => {
            eprintln!("coreloop-load: worker process {i}: cannot write its report: {e}");
            exit::FAILURE
        }
    }
}

/// Prints the summary (to stderr when JSON goes to stdout), writes JSON, and
/// returns the exit status the report calls for.
pub(crate) fn emit(report: &Report, output: &args::Output) -> i32 {
    let text = report.text(output.latency);
    let json_to_stdout = output.json.as_deref() == Some("-".as_ref());
    if json_to_stdout {
        eprint!("{text}");
    } else {
        print!("{text}");
    }
    if let Some(path) = &output.html {
        if let Err(e) = write_html(path, report, &output.compare) {
            eprintln!("coreloop-load: cannot write {}: {e}", path.display());
            return exit::FAILURE;
        }
    }
    let Some(path) = &output.json else {
        return exit::for_report(report);
    };
    let json = match serde_json::to_string_pretty(report) {
        Ok(j) => j,
        Err(e) => {
            eprintln!("coreloop-load: cannot encode the report: {e}");
            return exit::FAILURE;
        }
    };
    let written = if json_to_stdout {
        writeln!(std::io::stdout(), "{json}")
    } else {
        std::fs::write(path, json + "\n")
    };
    match written {
        Ok(()) => exit::for_report(report),
        Err(e) => {
            eprintln!("coreloop-load: cannot write {}: {e}", path.display());
            exit::FAILURE
        }
    }
}
