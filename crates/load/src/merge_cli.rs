//! `coreloop-load merge A.json B.json ...`: one exact report of runs that
//! ran at the same time on several processes or machines, or (with
//! `--side-by-side`) several runs drawn on the same axes.

use std::path::PathBuf;

use clap::Parser;

use crate::args::Output;
use crate::exit;
use crate::report::{merge, Report};

/// Merge JSON reports of coreloop-load runs that ran at the same time
/// (counts summed, histograms merged exactly), or compare runs side by side.
#[derive(Debug, Parser)]
#[command(name = "coreloop-load merge", version)]
struct MergeArgs {
    /// Reports written with --json
    #[arg(required = true, value_name = "REPORT.json")]
    files: Vec<PathBuf>,
    /// Write the merged report as JSON to FILE ('-' for stdout)
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Write a self-contained HTML report
    #[arg(long, value_name = "FILE.html")]
    report: Option<PathBuf>,
    /// Do not merge: print each report and draw them all on the same axes of --report
    #[arg(long, requires = "report")]
    side_by_side: bool,
    /// Print the full percentile tables
    #[arg(long)]
    latency: bool,
}

/// Runs the `merge` subcommand on `args` (`args[0]` is "merge").
pub fn main(args: &[std::ffi::OsString]) -> i32 {
    let a = match MergeArgs::try_parse_from(args) {
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
    let mut reports = Vec::with_capacity(a.files.len());
    for f in &a.files {
        match read(f) {
            Ok(r) => reports.push((f.display().to_string(), r)),
            Err(e) => {
                eprintln!("coreloop-load merge: {}: {e}", f.display());
                return exit::USAGE;
            }
        }
    }
    if a.side_by_side {
        return side_by_side(&reports, &a);
    }
    let all: Vec<Report> = reports.into_iter().map(|(_, r)| r).collect();
    match merge(&all) {
        Ok(m) => crate::emit(
            &m,
            &Output {
                json: a.json,
                html: a.report,
                compare: Vec::new(),
                latency: a.latency,
                worker_index: None,
            },
        ),
        Err(e) => {
            eprintln!("coreloop-load merge: {e}");
            exit::USAGE
        }
    }
}

pub fn read(path: &std::path::Path) -> Result<Report, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    serde_json::from_str(&text).map_err(|e| format!("not a coreloop-load JSON report: {e}"))
}

fn side_by_side(reports: &[(String, Report)], a: &MergeArgs) -> i32 {
    for (name, r) in reports {
        println!("== {name}");
        print!("{}", r.text(a.latency));
    }
    let Some(path) = &a.report else {
        return exit::USAGE;
    };
    match crate::html::write(path, reports) {
        Ok(()) => exit::OK,
        Err(e) => {
            eprintln!("coreloop-load merge: cannot write {}: {e}", path.display());
            exit::FAILURE
        }
    }
}
