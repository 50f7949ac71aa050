//! The run's effective settings as the JSON records them, and its start time.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::config::{Config, PipelineMode};
use crate::histogram::round;
use crate::target::{Endpoint, Protocol};
use crate::tls::Verify;

/// Every setting that shaped the run, defaults included.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    pub target: String,
    pub protocol: String,
    pub connections: usize,
    pub threads: usize,
    pub processes: usize,
    pub duration_s: f64,
    pub warmup_s: f64,
    pub connect_rate_per_s: Option<f64>,
    pub rate_per_s: Option<f64>,
    pub pipeline: usize,
    pub pipeline_mode: String,
    pub method: String,
    pub headers: Vec<String>,
    pub body_bytes: usize,
    pub echo_size_bytes: usize,
    pub source_addrs: Vec<String>,
    pub timeout_s: f64,
    pub requests: Option<u64>,
    /// `https://` targets only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsSettings>,
}

/// How an `https://` run checked certificates and whether it resumed sessions.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TlsSettings {
    /// `"webpki-roots"`, `"cacert"` or `"insecure"`.
    pub verify: String,
    /// The `--cacert` file.
    pub cacert: Option<String>,
    pub resume: bool,
}

impl TlsSettings {
    fn of(c: &Config) -> Option<Self> {
        c.target.tls_host.as_ref()?;
        let (verify, cacert) = match &c.tls.verify {
            Verify::WebPkiRoots => ("webpki-roots", None),
            Verify::CaFile(p) => ("cacert", Some(p.display().to_string())),
            Verify::Insecure => ("insecure", None),
        };
        Some(Self {
            verify: verify.to_string(),
            cacert,
            resume: c.tls.resume,
        })
    }
}

impl Settings {
    pub fn of(c: &Config) -> Self {
        Self {
            target: describe(c),
            protocol: protocol_name(c.protocol).to_string(),
            connections: c.connections,
            threads: c.worker_count(),
            processes: c.processes,
            duration_s: round(c.duration.as_secs_f64(), 3),
            warmup_s: round(c.warmup.as_secs_f64(), 3),
            connect_rate_per_s: c.connect_rate.map(|r| round(r, 3)),
            rate_per_s: c.rate.map(|r| round(r, 3)),
            pipeline: c.pipeline,
            pipeline_mode: pipeline_mode(c).to_string(),
            method: c.method.clone(),
            headers: c.headers.clone(),
            body_bytes: c.body.len(),
            echo_size_bytes: c.size,
            source_addrs: c.source_addrs.iter().map(|a| a.to_string()).collect(),
            timeout_s: round(c.timeout.as_secs_f64(), 3),
            requests: c.requests,
            tls: TlsSettings::of(c),
        }
    }
}

pub fn pipeline_mode(c: &Config) -> &'static str {
    if c.pipeline_mode == PipelineMode::Batch && c.rate.is_none() {
        "batch"
    } else {
        "window"
    }
}

pub fn protocol_name(p: Protocol) -> &'static str {
    match p {
        Protocol::Http => "http",
        Protocol::Echo => "echo",
    }
}

pub fn describe(config: &Config) -> String {
    match (&config.target.endpoint, config.protocol) {
        (Endpoint::Unix(p), _) => format!("unix:{}", p.display()),
        (Endpoint::Tcp(a), Protocol::Echo) => format!("echo://{a}"),
        (Endpoint::Tcp(_), Protocol::Http) => {
            let scheme = if config.target.tls_host.is_some() {
                "https"
            } else {
                "http"
            };
            format!("{scheme}://{}{}", config.target.host, config.target.path)
        }
    }
}

/// `t` as RFC 3339 in UTC to the second, e.g. `2026-12-01T09:37:26Z`.
pub fn rfc3339(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian
/// calendar (Howard Hinnant's `civil_from_days`, eras of 400 years).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn rfc3339_dates() {
        let check = |secs: u64, expected: &str| {
            assert_eq!(rfc3339(UNIX_EPOCH + Duration::from_secs(secs)), expected);
        };
        check(0, "1970-01-01T00:00:00Z");
        check(951_782_400, "2000-02-29T00:00:00Z");
        check(1_709_251_199, "2024-02-29T23:59:59Z");
        check(1_796_117_846, "2026-12-01T09:37:26Z");
    }
}
