//! The read-only facts every worker shares: what to send, where, and when.

use std::net::{IpAddr, SocketAddr};
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
    /// With `--source-addrs`: the ephemeral port range, from which each
    /// connection is given its own port (see `source_for`).
    pub ports: Option<(u16, u16)>,
    /// Connections of the worker processes before this one (`--processes`).
    pub first_global: usize,
    /// `https://` targets.
    pub tls: Option<TlsPlan>,
}

/// The TLS side of the plan; each worker copies the configuration (see
/// `tls::for_worker`).
#[derive(Debug)]
pub struct TlsPlan {
    pub config: rustls::ClientConfig,
    pub name: rustls::pki_types::ServerName<'static>,
    pub resume: bool,
}

impl TlsPlan {
    fn new(config: &Config) -> Result<Option<Self>, ConfigError> {
        let Some(host) = &config.target.tls_host else {
            return Ok(None);
        };
        Ok(Some(Self {
            config: crate::tls::client_config(&config.tls).map_err(ConfigError)?,
            name: crate::tls::server_name(host).map_err(ConfigError)?,
            resume: config.tls.resume,
        }))
    }

    /// Worker `id`'s client, with a session cache for its `connections`.
    pub fn client(&self, connections: usize) -> crate::conn::TlsClient {
        crate::conn::TlsClient {
            config: crate::tls::for_worker(&self.config, self.resume, connections),
            name: self.name.clone(),
        }
    }
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
            ports: (!config.source_addrs.is_empty())
                .then(crate::limits::ephemeral_range)
                .flatten(),
            first_global: config.first_global,
            tls: TlsPlan::new(config)?,
        })
    }

    /// The source address for the connection with global index `global`.
    pub fn source_for(&self, global: usize) -> Option<SocketAddr> {
        if self.source_addrs.is_empty() {
            return None;
        }
        let n = self.source_addrs.len();
        let ip = self.source_addrs[global % n];
        let port = self.ports.map_or(0, |(lo, hi)| {
            let range = usize::from(hi - lo) + 1;
            lo + ((self.first_global + global) / n % range) as u16
        });
        Some(SocketAddr::new(ip, port))
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Each slot gets its own source port, so no bind searches the range.
    #[test]
    fn source_ports_are_distinct_per_address() {
        let mut c = Config::new(crate::target::parse("http://127.0.0.1:1/").unwrap());
        c.connections = 5000;
        c.source_addrs = crate::config::parse_source_addrs("127.0.0.1-127.0.0.2").unwrap();
        let plan = Plan::new(&c, Instant::now()).unwrap();
        let Some((lo, hi)) = plan.ports else {
            return; // no /proc here: every bind uses port 0
        };
        let mut seen = std::collections::HashSet::new();
        for g in 0..c.connections {
            let a = plan.source_for(g).unwrap();
            assert!((lo..=hi).contains(&a.port()), "{a}");
            assert!(seen.insert(a), "{a} given twice");
        }
        let mut second = c.clone();
        second.processes = 2;
        let other = Plan::new(&second.share(1), Instant::now()).unwrap();
        assert_eq!(other.first_global, 2500);
        c.source_addrs.clear();
        assert_eq!(Plan::new(&c, Instant::now()).unwrap().source_for(0), None);
    }
}
