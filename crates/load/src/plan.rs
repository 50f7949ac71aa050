//! The read-only facts every worker shares: what to send, where, and when.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::config::{Config, ConfigError, PipelineMode};
use crate::request::Batch;
use crate::target::{Endpoint, Protocol};

/// A run's plan, built once from the config and shared by the workers.
#[derive(Debug)]
pub struct Plan {
    pub endpoint: Endpoint,
    pub source_addrs: Vec<IpAddr>,
    pub protocol: Protocol,
    pub batch: Batch,
    pub pipeline: usize,
    /// Closed loop, `--pipeline-mode batch`: refill a connection only when
    /// nothing is in flight on it.
    pub refill_when_empty: bool,
    pub expect_body: bool,
    pub connections: usize,
    pub workers: usize,
    /// Open loop: time between two requests of one connection.
    pub interval: Option<Duration>,
    /// Per-worker gap between first connects; `None` = all at once.
    pub connect_gap: Option<Duration>,
    pub t0: Instant,
    pub measure_start: Instant,
    pub end: Instant,
    pub timeout: Duration,
}

impl Plan {
    pub fn new(config: &Config, t0: Instant) -> Result<Self, ConfigError> {
        let workers = config.worker_count();
        let measure_start = t0 + config.warmup;
        let connections = config.connections;
        Ok(Self {
            endpoint: config.target.endpoint.clone(),
            source_addrs: config.source_addrs.clone(),
            protocol: config.protocol,
            batch: Batch::new(config)?,
            pipeline: config.pipeline,
            refill_when_empty: config.pipeline_mode == PipelineMode::Batch && config.rate.is_none(),
            expect_body: !config.method.eq_ignore_ascii_case("HEAD"),
            connections,
            workers,
            interval: config
                .rate
                .map(|r| Duration::from_secs_f64(connections as f64 / r)),
            connect_gap: config
                .connect_rate
                .map(|r| Duration::from_secs_f64(workers as f64 / r)),
            t0,
            measure_start,
            end: measure_start + config.duration,
            timeout: config.timeout,
        })
    }

    /// The source address for the connection with global index `global`.
    pub fn source_for(&self, global: usize) -> Option<IpAddr> {
        if self.source_addrs.is_empty() {
            return None;
        }
        Some(self.source_addrs[global % self.source_addrs.len()])
    }

    /// When the `local`-th connection of a worker first tries to connect.
    pub fn first_connect(&self, local: usize) -> Instant {
        match self.connect_gap {
            Some(gap) => self.t0 + gap * local as u32,
            None => self.t0,
        }
    }

    /// Open loop: the first intended send time of a connection. Offsets
    /// spread the connections evenly over one interval so the total rate is smooth.
    pub fn first_due(&self, local: usize, global: usize) -> Option<Instant> {
        let interval = self.interval?;
        let offset = interval.mul_f64(global as f64 / self.connections as f64);
        Some(self.first_connect(local) + offset)
    }
}
