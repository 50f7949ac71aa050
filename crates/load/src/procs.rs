//! `--processes N`: the parent re-executes this binary N times in a hidden
//! worker mode, each child with its own share of the load (and its own fd
//! limit), starts them together, stops them together, and merges their
//! JSON reports exactly.
//!
//! The protocol, over each child's stdin and stdout, one line each:
//! child -> `ready` (target reached, limits set), parent -> `go` to every
//! child once all are ready, then the child runs; parent -> `stop` on SIGINT
//! (EOF on stdin means the same); child -> its JSON report, then it exits.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use crate::config::Config;
use crate::report::{merge, Report, Settings};
use crate::run::{run_gated, RunError};

const READY: &str = "ready";
const GO: &str = "go";
const STOP: &str = "stop";
/// How often the parent looks at the SIGINT flag while children run.
const TICK: Duration = Duration::from_millis(50);

/// The parent: runs `config.processes` children on `argv` (this command's
/// own arguments) and returns their merged report.
pub fn parent(
    config: &Config,
    argv: &[std::ffi::OsString],
    stop: &AtomicBool,
) -> Result<Report, RunError> {
    crate::probe::reachable(config).map_err(RunError::Unreachable)?;
    let exe = std::env::current_exe().map_err(RunError::Setup)?;
    let mut children = Vec::with_capacity(config.processes);
    for i in 0..config.processes {
        children.push(spawn(&exe, argv, i)?);
    }
    let mut outputs = Vec::with_capacity(children.len());
    for (i, c) in children.iter_mut().enumerate() {
        outputs.push(await_ready(c, i)?);
    }
    // Everyone is ready: the starts differ by a pipe write each.
    for c in &mut children {
        send(c.stdin.as_mut(), GO);
    }
    let (tx, rx) = crossbeam_channel::bounded(outputs.len());
    for (i, mut out) in outputs.into_iter().enumerate() {
        let tx = tx.clone();
        thread::spawn(move || {
            let mut json = String::new();
            let read = out.read_to_string(&mut json).map(|_| json);
            let _ = tx.send((i, read));
        });
    }
    drop(tx);
    let reports = collect(&mut children, &rx, stop)?;
    let mut merged = merge(&reports).map_err(RunError::Worker)?;
    merged.settings = Settings::of(config);
    merged.merged = 1;
    merged.interrupted |= stop.load(Ordering::Relaxed);
    Ok(merged)
}

fn spawn(exe: &std::path::Path, argv: &[std::ffi::OsString], i: usize) -> Result<Child, RunError> {
    Command::new(exe)
        .args(argv)
        .arg("--worker-index")
        .arg(i.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(RunError::Setup)
}

/// Reads the child's `ready` line; hands back the rest of its stdout.
fn await_ready(c: &mut Child, i: usize) -> Result<BufReader<std::process::ChildStdout>, RunError> {
    let out = c
        .stdout
        .take()
        .ok_or_else(|| RunError::Worker("no stdout".into()))?;
    let mut reader = BufReader::new(out);
    let mut line = String::new();
    let _ = reader.read_line(&mut line);
    if line.trim() == READY {
        return Ok(reader);
    }
    let code = c.wait().ok().and_then(|s| s.code());
    Err(RunError::Worker(format!(
        "worker process {i} did not start (exit status {code:?})"
    )))
}

fn send(stdin: Option<&mut ChildStdin>, line: &str) {
    if let Some(s) = stdin {
        // A child that already exited cannot be told anything; its report says the rest.
        let _ = writeln!(s, "{line}").and_then(|()| s.flush());
    }
}

/// Waits for every child's report, passing SIGINT on as `stop`.
fn collect(
    children: &mut [Child],
    rx: &crossbeam_channel::Receiver<(usize, std::io::Result<String>)>,
    stop: &AtomicBool,
) -> Result<Vec<Report>, RunError> {
    let mut reports: Vec<Option<Report>> = vec![None; children.len()];
    let mut told = false;
    let mut left = children.len();
    while left > 0 {
        if !told && stop.load(Ordering::Relaxed) {
            told = true;
            eprintln!("coreloop-load: interrupted; stopping the worker processes (interrupt again to quit at once)");
            for c in children.iter_mut() {
                send(c.stdin.as_mut(), STOP);
            }
        }
        let (i, read) = match rx.recv_timeout(TICK) {
            Ok(x) => x,
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => continue,
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
        };
        left -= 1;
        let status = children[i].wait().ok().and_then(|s| s.code());
        let json = read.map_err(|e| RunError::Worker(format!("worker process {i}: {e}")))?;
        let report = serde_json::from_str(&json).map_err(|e| {
            RunError::Worker(format!(
                "worker process {i} (exit status {status:?}) gave no report: {e}"
            ))
        })?;
        reports[i] = Some(report);
    }
    reports
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            r.ok_or_else(|| RunError::Worker(format!("worker process {i} gave no report")))
        })
        .collect()
}

/// A child: runs its share once the parent says `go`, stops on `stop` or
/// when the parent goes away, and prints its report as one JSON line.
pub fn child(config: &Config, i: usize, stop: Arc<AtomicBool>) -> Result<Report, RunError> {
    let share = config.share(i);
    let (go_tx, go_rx) = crossbeam_channel::bounded(1);
    let flag = Arc::clone(&stop);
    thread::spawn(move || listen(go_tx, &flag));
    let mut gate = || {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{READY}")
            .and_then(|()| out.flush())
            .map_err(RunError::Setup)?;
        match go_rx.recv() {
            Ok(()) => Ok(()),
            Err(_) => Err(RunError::Worker(
                "the parent process went away before the start".into(),
            )),
        }
    };
    run_gated(&share, stop, &mut gate)
}

/// Reads the parent's lines: `go` opens the gate, `stop` or EOF stops the run.
fn listen(go: crossbeam_channel::Sender<()>, stop: &AtomicBool) {
    let stdin = std::io::stdin();
    for line in stdin.lock().lines() {
        match line.as_deref().map(str::trim) {
            Ok(GO) => {
                let _ = go.try_send(());
            }
            Ok(STOP) | Err(_) => break,
            Ok(_) => {}
        }
    }
    stop.store(true, Ordering::Relaxed);
}
