//! The progress bar: on a terminal only, never in scripts or with --no-progress.

use std::io::IsTerminal;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::config::Config;
use crate::plan::Plan;

/// A bar over the whole run (warm-up included), or nothing.
pub struct Bar {
    bar: Option<ProgressBar>,
    t0: Instant,
}

impl Bar {
    pub fn new(config: &Config, plan: &Plan) -> Self {
        let on = config.progress && std::io::stderr().is_terminal();
        let total = plan.end.saturating_duration_since(plan.t0).as_millis() as u64;
        let bar = on.then(|| {
            let b = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            if let Ok(style) = ProgressStyle::with_template("{bar:40} {elapsed}/{duration} {msg}") {
                b.set_style(style);
            }
            b
        });
        Self { bar, t0: plan.t0 }
    }

    pub fn update(&self, responses: u64) {
        let Some(b) = &self.bar else { return };
        let elapsed = self.t0.elapsed();
        b.set_position(elapsed.as_millis() as u64);
        let rate = responses as f64 / elapsed.as_secs_f64().max(1e-3);
        b.set_message(format!("{responses} responses, {rate:.0}/s"));
    }

    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}
