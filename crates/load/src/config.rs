//! What one run does, already validated; built by `args` or directly by tests.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use crate::target::{Endpoint, Protocol, Target};
use crate::tls::TlsOptions;

/// The most requests one connection may have in flight; bounds the
/// pre-encoded batch (pipeline + 1 copies of the request).
pub const MAX_PIPELINE: usize = 1024;

/// How a closed-loop connection refills its pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PipelineMode {
    /// Keep `pipeline` requests in flight: one new request per response.
    #[default]
    Window,
    /// Write `pipeline` requests at once and the next batch only when all of
    /// them are answered, as wrk's pipeline script does. Closed loop only.
    Batch,
}

/// A validated run description.
#[derive(Debug, Clone)]
pub struct Config {
    pub target: Target,
    pub protocol: Protocol,
    pub connections: usize,
    pub threads: usize,
    /// Measured time, after `warmup`.
    pub duration: Duration,
    pub warmup: Duration,
    /// New connections per second over all threads; `None` = all at once.
    pub connect_rate: Option<f64>,
    /// Requests per second over all connections (open loop); `None` = closed loop.
    pub rate: Option<f64>,
    pub pipeline: usize,
    pub pipeline_mode: PipelineMode,
    pub method: String,
    /// Extra header lines, each `Name: value`.
    pub headers: Vec<String>,
    pub body: Vec<u8>,
    /// Echo payload bytes per request.
    pub size: usize,
    pub source_addrs: Vec<IpAddr>,
    pub timeout: Duration,
    /// Stop after exactly this many measured requests over all threads.
    pub requests: Option<u64>,
    pub progress: bool,
    /// Worker processes (`--processes`); each runs its share of the load.
    pub processes: usize,
    /// Connections of the worker processes before this one (`--processes`):
    /// offsets this process's per-connection source ports.
    pub first_global: usize,
    /// Wall-clock start (`--start-at`), so runs on several machines overlap.
    pub start_at: Option<std::time::SystemTime>,
    /// `https://` targets: verification and resumption.
    pub tls: TlsOptions,
}

/// A configuration the run cannot honour, with the phrase to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Defaults as the command line has them, for `target`.
    pub fn new(target: Target) -> Self {
        let protocol = target.scheme_protocol.unwrap_or(Protocol::Http);
        Self {
            target,
            protocol,
            connections: 100,
            threads: num_cpus::get(),
            duration: Duration::from_secs(10),
            warmup: Duration::from_secs(2),
            connect_rate: None,
            rate: None,
            pipeline: 1,
            pipeline_mode: PipelineMode::Window,
            method: "GET".to_string(),
            headers: Vec::new(),
            body: Vec::new(),
            size: 64,
            source_addrs: Vec::new(),
            timeout: Duration::from_secs(5),
            requests: None,
            progress: false,
            processes: 1,
            first_global: 0,
            start_at: None,
            tls: TlsOptions::default(),
        }
    }

    /// Checks the combinations a flag parser cannot see one flag at a time.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let fail = |m: &str| Err(ConfigError(m.to_string()));
        if self.connections == 0 || self.threads == 0 {
            return fail("--connections and --threads must be at least 1");
        }
        if self.processes == 0 || self.processes > self.connections {
            return fail("--processes must be from 1 to the number of connections");
        }
        let day = std::time::SystemTime::now() + Duration::from_secs(86_400);
        if self.start_at.is_some_and(|t| t > day) {
            return fail("--start-at must be within the next 24 hours");
        }
        if self.requests.is_some_and(|n| n < self.processes as u64) {
            return fail("--requests must be at least --processes");
        }
        if self.pipeline == 0 || self.pipeline > MAX_PIPELINE {
            return fail("--pipeline must be from 1 to 1024");
        }
        if self.rate.is_some() && self.pipeline_mode == PipelineMode::Batch {
            return fail("--pipeline-mode batch is for closed loop only (--rate sends each request when it is due)");
        }
        if self.protocol == Protocol::Echo && self.size == 0 {
            return fail("--size must be at least 1 byte");
        }
        if self.rate.is_some_and(|r| !(r > 0.0 && r.is_finite())) {
            return fail("--rate must be a positive number of requests per second");
        }
        if self
            .connect_rate
            .is_some_and(|r| !(r > 0.0 && r.is_finite()))
        {
            return fail("--connect-rate must be a positive number per second");
        }
        if self.timeout.is_zero() || self.duration.is_zero() {
            return fail("--timeout and --duration must be above zero");
        }
        if !self.source_addrs.is_empty() && matches!(self.target.endpoint, Endpoint::Unix(_)) {
            return fail("--source-addrs applies to TCP targets only");
        }
        if self.requests == Some(0) {
            return fail("--requests must be at least 1");
        }
        if self.target.tls_host.is_none() && self.tls != TlsOptions::default() {
            return fail("--insecure, --cacert and --tls-resume apply to https:// targets only");
        }
        self.validate_source_family()
    }

    fn validate_source_family(&self) -> Result<(), ConfigError> {
        let Endpoint::Tcp(dest) = self.target.endpoint else {
            return Ok(());
        };
        if self
            .source_addrs
            .iter()
            .any(|a| a.is_ipv4() != dest.is_ipv4())
        {
            return Err(ConfigError(
                "--source-addrs must be the same address family as the target".to_string(),
            ));
        }
        Ok(())
    }

    /// Worker process `i`'s part of the run: its share of the connections,
    /// threads, request budget, source addresses and (at the same
    /// per-connection interval) of the rate and connect rate.
    pub fn share(&self, i: usize) -> Config {
        let n = self.processes;
        let mut c = self.clone();
        c.processes = 1;
        c.connections = split(self.connections as u64, i, n) as usize;
        c.first_global = (0..i)
            .map(|j| split(self.connections as u64, j, n) as usize)
            .sum();
        let part = c.connections as f64 / self.connections as f64;
        c.threads = (self.threads / n).max(1);
        c.rate = self.rate.map(|r| r * part);
        c.connect_rate = self.connect_rate.map(|r| r * part);
        c.requests = self.requests.map(|q| split(q, i, n));
        if self.source_addrs.len() >= n {
            c.source_addrs = self
                .source_addrs
                .iter()
                .skip(i)
                .step_by(n)
                .copied()
                .collect();
        }
        c.progress = false;
        c
    }

    /// Threads actually started: never more than connections.
    pub fn worker_count(&self) -> usize {
        self.threads.min(self.connections).max(1)
    }
}

/// Parses `10s`, `250ms`, `2m`, `1h`, `1.5s`, or bare seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like 10s or 250ms"))?;
    let secs = match unit {
        "" | "s" => n,
        "ms" => n / 1e3,
        "us" => n / 1e6,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => {
            return Err(format!(
                "unknown duration unit {unit:?} (use ms, s, m or h)"
            ))
        }
    };
    Duration::try_from_secs_f64(secs).map_err(|_| format!("{s:?} is not a valid duration"))
}

/// Parses `5000` or `5000/s`.
pub fn parse_rate(s: &str) -> Result<f64, String> {
    let n = s.trim().trim_end_matches("/s");
    match n.parse::<f64>() {
        Ok(r) if r > 0.0 && r.is_finite() => Ok(r),
        _ => Err(format!("{s:?} is not a positive rate like 1000 or 1000/s")),
    }
}

/// Parses `127.0.0.1-127.0.0.16` (an IPv4 range) or a comma list of addresses.
pub fn parse_source_addrs(s: &str) -> Result<Vec<IpAddr>, String> {
    let bad = |p: &str| format!("{p:?} is not an IP address");
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        if let Some((a, b)) = part.split_once('-') {
            let a: Ipv4Addr = a.trim().parse().map_err(|_| bad(a))?;
            let b: Ipv4Addr = b.trim().parse().map_err(|_| bad(b))?;
            let (lo, hi) = (u32::from(a), u32::from(b));
            if lo > hi || hi - lo >= 65_536 {
                return Err(format!(
                    "{part:?} is not an ascending range of at most 65536 addresses"
                ));
            }
            out.extend((lo..=hi).map(|n| IpAddr::V4(Ipv4Addr::from(n))));
        } else {
            out.push(part.parse().map_err(|_| bad(part))?);
        }
    }
    if out.is_empty() {
        return Err("--source-addrs needs at least one address".to_string());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("5d").is_err());
        assert!(parse_duration("-1s").is_err());
    }

    #[test]
    fn rates() {
        assert_eq!(parse_rate("1000/s"), Ok(1000.0));
        assert_eq!(parse_rate("2.5"), Ok(2.5));
        assert!(parse_rate("0").is_err());
        assert!(parse_rate("fast").is_err());
    }

    #[test]
    fn source_ranges() {
        let v = parse_source_addrs("127.0.0.1-127.0.0.16").unwrap();
        assert_eq!(v.len(), 16);
        assert_eq!(v[15], IpAddr::V4(Ipv4Addr::new(127, 0, 0, 16)));
        let v = parse_source_addrs("127.0.0.2, ::1").unwrap();
        assert_eq!(v.len(), 2);
        assert!(parse_source_addrs("127.0.0.9-127.0.0.1").is_err());
        assert!(parse_source_addrs("").is_err());
        assert!(parse_source_addrs("10.0.0.300").is_err());
    }

    #[test]
    fn validation() {
        let t = crate::target::parse("http://127.0.0.1:1/").unwrap();
        let mut c = Config::new(t);
        assert!(c.validate().is_ok());
        c.pipeline = 0;
        assert!(c.validate().is_err());
        c.pipeline = 16;
        c.source_addrs = vec!["::1".parse().unwrap()];
        assert!(c.validate().is_err());
    }
}

/// Part `i` of `total` split `n` ways, the remainder spread over the first parts.
pub fn split(total: u64, i: usize, n: usize) -> u64 {
    let n = n as u64;
    total / n + u64::from((i as u64) < total % n)
}

#[cfg(test)]
mod share_tests {
    use super::*;

    #[test]
    fn shares_add_up_to_the_whole() {
        let mut c = Config::new(crate::target::parse("http://127.0.0.1:1/").unwrap());
        c.connections = 30_001;
        c.threads = 4;
        c.processes = 3;
        c.rate = Some(3000.0);
        c.requests = Some(1_000_000);
        c.source_addrs = crate::config::parse_source_addrs("127.0.0.1-127.0.0.7").unwrap();
        let parts: Vec<Config> = (0..3).map(|i| c.share(i)).collect();
        assert_eq!(parts.iter().map(|p| p.connections).sum::<usize>(), 30_001);
        assert_eq!(
            parts.iter().map(|p| p.requests.unwrap()).sum::<u64>(),
            1_000_000
        );
        let rate: f64 = parts.iter().map(|p| p.rate.unwrap()).sum();
        assert!((rate - 3000.0).abs() < 1e-6, "{rate}");
        let mut addrs: Vec<_> = parts.iter().flat_map(|p| p.source_addrs.clone()).collect();
        addrs.sort();
        assert_eq!(addrs, c.source_addrs, "each address in exactly one share");
        assert!(parts.iter().all(|p| p.processes == 1 && p.threads == 1));
    }
}
