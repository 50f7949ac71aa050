//! The progress bar: on a terminal only, never in scripts or with --no-progress.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crossbeam_utils::CachePadded;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::config::Config;
use crate::plan::Plan;

/// What the workers share with the thread that watches them: responses
/// completed so far per worker (read by the progress bar), and the request
/// to stop early (SIGINT, or the parent of a worker process).
#[derive(Debug)]
pub struct Progress {
    pub responses: Vec<CachePadded<AtomicU64>>,
    pub stop: Arc<AtomicBool>,
}

impl Progress {
    pub fn new(workers: usize, stop: Arc<AtomicBool>) -> Self {
        Self {
            responses: (0..workers)
                .map(|_| CachePadded::new(AtomicU64::new(0)))
                .collect(),
            stop,
        }
    }

    pub fn stop_requested(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    pub fn total(&self) -> u64 {
        self.responses
            .iter()
            .map(|a| a.load(Ordering::Relaxed))
            .sum()
    }
}

/// A bar over the whole run (warm-up included), or nothing.
pub struct Bar {
    bar: Option<ProgressBar>,
    t0: Instant,
    measure_start: Instant,
}

impl Bar {
    pub fn new(config: &Config, plan: &Plan) -> Self {
        let on = config.progress && std::io::stderr().is_terminal();
        let total = plan.end.saturating_duration_since(plan.t0).as_millis() as u64;
        let bar = on.then(|| {
            let b = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            if let Ok(style) =
                ProgressStyle::with_template("{prefix:>9} {bar:40} {elapsed}/{duration} {msg}")
            {
                b.set_style(style);
            }
            b
        });
        Self {
            bar,
            t0: plan.t0,
            measure_start: plan.measure_start,
        }
    }

    pub fn update(&self, responses: u64) {
        let Some(b) = &self.bar else { return };
        let now = Instant::now();
        let elapsed = now.saturating_duration_since(self.t0);
        b.set_position(elapsed.as_millis() as u64);
        b.set_prefix(phase_label(now < self.measure_start));
        let rate = responses as f64 / elapsed.as_secs_f64().max(1e-3);
        b.set_message(format!("{responses} responses, {rate:.0}/s"));
    }

    /// Prints a line without tearing the bar.
    pub fn suspend(&self, f: impl FnOnce()) {
        match &self.bar {
            Some(b) => b.suspend(f),
            None => f(),
        }
    }

    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

/// What the bar's prefix says: the warm-up is not part of the measurement.
fn phase_label(warming_up: bool) -> &'static str {
    if warming_up {
        "warm-up"
    } else {
        "measuring"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warmup_is_labelled() {
        assert_eq!(phase_label(true), "warm-up");
        assert_eq!(phase_label(false), "measuring");
    }
}
