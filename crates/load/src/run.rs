//! One run: start the workers, show progress, merge their figures into a report.

use std::fmt;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use crate::config::{Config, ConfigError};
use crate::cpu::CpuTime;
use crate::limits;
use crate::plan::Plan;
use crate::probe;
use crate::progress::Bar;
use crate::report::{rfc3339, Report, Settings, Tally};
use crate::stats::Stats;
use crate::worker::{Finished, Progress, Worker};

/// How often the progress bar and the CPU sample are refreshed.
const TICK: Duration = Duration::from_millis(100);

/// Why a run could not produce a report.
#[derive(Debug)]
pub enum RunError {
    Config(ConfigError),
    /// The target refused or did not answer the connection made before the
    /// run (as wrk does, the run does not start).
    Unreachable(String),
    /// The OS refused a poller or a thread.
    Setup(std::io::Error),
    /// A worker thread panicked or its poller failed.
    Worker(String),
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Config(e) => write!(f, "{e}"),
            Self::Unreachable(e) => write!(f, "{e}"),
            Self::Setup(e) => write!(f, "cannot start the client threads: {e}"),
            Self::Worker(e) => write!(f, "a client thread failed: {e}"),
        }
    }
}

impl std::error::Error for RunError {}

/// Runs the load described by `config` and reports what it measured.
pub fn run(config: &Config) -> Result<Report, RunError> {
    run_until(config, Arc::new(AtomicBool::new(false)))
}

/// As `run`, but setting `stop` ends the run early (SIGINT): no new request
/// starts, requests in flight get the usual drain, and the report covers the
/// measured time so far.
pub fn run_until(config: &Config, stop: Arc<AtomicBool>) -> Result<Report, RunError> {
    run_gated(config, stop, &mut || Ok(()))
}

/// As `run_until`; `gate` is called once the target answered and the limits
/// are set, right before the clock starts (worker processes wait there for
/// their parent's start signal).
pub fn run_gated(
    config: &Config,
    stop: Arc<AtomicBool>,
    gate: &mut dyn FnMut() -> Result<(), RunError>,
) -> Result<Report, RunError> {
    config.validate().map_err(RunError::Config)?;
    probe::reachable(config).map_err(RunError::Unreachable)?;
    let notes = limits::prepare(config);
    gate()?;
    if let Some(at) = config.start_at {
        // Waiting for the agreed start is the point here: runs on several
        // machines must overlap for their merged report to mean anything.
        if let Ok(wait) = at.duration_since(SystemTime::now()) {
            thread::sleep(wait);
        }
    }
    let started_at = rfc3339(SystemTime::now());
    let t0 = Instant::now();
    let plan = Arc::new(Plan::new(config, t0).map_err(RunError::Config)?);
    let progress = Arc::new(Progress::new(plan.workers, stop));
    let cpu_start = CpuTime::now();
    let (done_tx, done_rx) = crossbeam_channel::bounded(plan.workers);
    let mut handles = Vec::with_capacity(plan.workers);
    for id in 0..plan.workers {
        let worker = Worker::new(
            id,
            Arc::clone(&plan),
            share(config.requests, id, plan.workers),
            Arc::clone(&progress),
        )
        .map_err(RunError::Setup)?;
        let tx = done_tx.clone();
        let h = thread::Builder::new()
            .name(format!("load-{id}"))
            .spawn(move || {
                let out = worker.run();
                let _ = tx.send(());
                out
            })
            .map_err(RunError::Setup)?;
        handles.push(h);
    }
    drop(done_tx);
    let cpu_measured = watch(config, &plan, &progress, &done_rx).or(cpu_start);
    let mut finished = Vec::with_capacity(handles.len());
    for h in handles {
        match h.join() {
            Ok(Ok(f)) => finished.push(f),
            Ok(Err(e)) => return Err(RunError::Worker(e.to_string())),
            Err(_) => return Err(RunError::Worker("panicked".to_string())),
        }
    }
    let mut tally = tally(config, &plan, &finished, notes);
    tally.started_at = started_at;
    tally.interrupted = progress.stop_requested();
    if let (Some(start), Some(end)) = (cpu_measured, CpuTime::now()) {
        tally.cpu = Some(end.since(&start));
    }
    Ok(tally.report())
}

/// Worker `id`'s share of a request budget, spreading the remainder.
fn share(total: Option<u64>, id: usize, workers: usize) -> Option<u64> {
    let total = total?;
    let w = workers as u64;
    Some(total / w + u64::from((id as u64) < total % w))
}

/// Waits for every worker, refreshing the bar; returns the CPU time sampled
/// when the measured phase began.
fn watch(
    config: &Config,
    plan: &Plan,
    progress: &Progress,
    done: &crossbeam_channel::Receiver<()>,
) -> Option<CpuTime> {
    let bar = Bar::new(config, plan);
    let mut cpu_at_measure = None;
    let mut told = false;
    let mut left = plan.workers;
    while left > 0 {
        match done.recv_timeout(TICK) {
            Ok(()) => left -= 1,
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
        }
        if cpu_at_measure.is_none() && Instant::now() >= plan.measure_start {
            cpu_at_measure = CpuTime::now();
        }
        if !told && progress.stop_requested() {
            told = true;
            bar.suspend(|| {
                eprintln!("coreloop-load: interrupted; finishing the requests in flight (interrupt again to quit at once)");
            });
        }
        bar.update(progress.total());
    }
    bar.finish();
    cpu_at_measure
}

fn tally(config: &Config, plan: &Plan, finished: &[Finished], notes: Vec<String>) -> Tally {
    let mut stats = Stats::default();
    for f in finished {
        stats.merge(&f.stats);
    }
    let last = |pick: fn(&Finished) -> Instant| {
        finished
            .iter()
            .map(pick)
            .max()
            .unwrap_or(plan.measure_start)
    };
    let elapsed = last(|f| f.finished_at)
        .saturating_duration_since(plan.measure_start)
        .as_secs_f64();
    let sending = last(|f| f.stopped_at)
        .saturating_duration_since(plan.measure_start)
        .as_secs_f64();
    let mut t = Tally::from_stats(&stats, Settings::of(config), sending);
    t.elapsed_s = elapsed;
    t.notes = notes;
    t.notes.extend(limits::explain(&stats.connect_causes));
    t.notes.extend(crate::tls::explain(&stats.tls.failures));
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_shares_add_up() {
        for total in [1u64, 7, 1000, 1001] {
            for w in 1..5 {
                let sum: u64 = (0..w).map(|i| share(Some(total), i, w).unwrap()).sum();
                assert_eq!(sum, total);
            }
        }
        assert_eq!(share(None, 0, 2), None);
    }
}
