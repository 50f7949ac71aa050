//! One run: start the workers, show progress, merge their figures into a report.

use std::fmt;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crate::config::{Config, ConfigError};
use crate::cpu::CpuTime;
use crate::limits;
use crate::plan::Plan;
use crate::progress::Bar;
use crate::report::{ratio, Connections, RateReport, Report, Requests};
use crate::stats::Stats;
use crate::target::{Endpoint, Protocol};
use crate::worker::{Finished, Progress, Worker};

/// How often the progress bar and the CPU sample are refreshed.
const TICK: Duration = Duration::from_millis(100);

/// Why a run could not produce a report.
#[derive(Debug)]
pub enum RunError {
    Config(ConfigError),
    /// The OS refused a poller or a thread.
    Setup(std::io::Error),
    /// A worker thread panicked or its poller failed.
    Worker(String),
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Config(e) => write!(f, "{e}"),
            Self::Setup(e) => write!(f, "cannot start the client threads: {e}"),
            Self::Worker(e) => write!(f, "a client thread failed: {e}"),
        }
    }
}

impl std::error::Error for RunError {}

/// Runs the load described by `config` and reports what it measured.
pub fn run(config: &Config) -> Result<Report, RunError> {
    config.validate().map_err(RunError::Config)?;
    let notes = limits::prepare(config);
    let t0 = Instant::now();
    let plan = Arc::new(Plan::new(config, t0).map_err(RunError::Config)?);
    let progress = Arc::new(Progress::new(plan.workers));
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
    let mut report = build(config, &plan, &finished, notes);
    if let (Some(start), Some(end)) = (cpu_measured, CpuTime::now()) {
        report.set_cpu(end.since(&start));
    }
    Ok(report)
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
        bar.update(progress.total());
    }
    bar.finish();
    cpu_at_measure
}

fn build(config: &Config, plan: &Plan, finished: &[Finished], notes: Vec<String>) -> Report {
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
    let mut all_notes = notes;
    all_notes.extend(limits::explain(&stats.connect_causes));
    Report {
        target: describe(config),
        protocol: protocol_name(config.protocol).to_string(),
        mode: if config.rate.is_some() {
            "open loop"
        } else {
            "closed loop"
        }
        .to_string(),
        threads: plan.workers,
        pipeline: plan.pipeline,
        pipeline_mode: if plan.refill_when_empty {
            "batch"
        } else {
            "window"
        }
        .to_string(),
        warmup_s: config.warmup.as_secs_f64(),
        elapsed_s: elapsed,
        requests: requests(&stats),
        requests_per_s: ratio(stats.responses as f64, elapsed),
        bytes_read: stats.bytes_read,
        bytes_written: stats.bytes_written,
        read_bytes_per_s: ratio(stats.bytes_read as f64, elapsed),
        written_bytes_per_s: ratio(stats.bytes_written as f64, elapsed),
        latency: stats.latency.summary(),
        connections: connections(config, &stats),
        errors: stats.errors,
        rate: config.rate.map(|r| RateReport {
            requested_per_s: r,
            sent_per_s: ratio(stats.sent as f64, sending),
            completed_per_s: ratio(stats.responses as f64, elapsed),
            backlog: stats.backlog,
        }),
        cpu: None,
        notes: all_notes,
    }
}

fn requests(s: &Stats) -> Requests {
    Requests {
        sent: s.sent,
        completed: s.responses,
        ok: s.ok,
        failed: s.errors.failed_requests(),
        retried: s.retried,
        unfinished: s.unfinished,
    }
}

fn connections(config: &Config, s: &Stats) -> Connections {
    Connections {
        requested: config.connections,
        opened: s.connects,
        reconnects: s.reconnects,
        peak_open: s.peak_open,
        connect_time: s.connect_time.summary(),
        connect_failures: s.connect_causes,
    }
}

fn protocol_name(p: Protocol) -> &'static str {
    match p {
        Protocol::Http => "http",
        Protocol::Echo => "echo",
    }
}

fn describe(config: &Config) -> String {
    match (&config.target.endpoint, config.protocol) {
        (Endpoint::Unix(p), _) => format!("unix:{}", p.display()),
        (Endpoint::Tcp(a), Protocol::Echo) => format!("echo://{a}"),
        (Endpoint::Tcp(_), Protocol::Http) => {
            format!("http://{}{}", config.target.host, config.target.path)
        }
    }
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
