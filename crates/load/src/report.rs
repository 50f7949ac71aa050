//! The run's result: one struct, printed for people or written as JSON, and
//! read back by `merge`. Every field is documented with its unit in
//! docs/LOAD.md. Figures are derived from a `Tally` (exact counts and
//! histograms), so a run, a merge of worker processes and a merge of JSON
//! files from several machines all go through the same arithmetic.

mod merge;
mod settings;
mod tally;
mod text;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::histogram::{round, Percentiles};
use crate::stats::{ConnectCauses, Errors, Warmup};
use crate::tls::Failures;

pub use merge::merge;
pub use settings::{rfc3339, Settings, TlsSettings};
pub use tally::Tally;

/// Which program wrote the report.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Tool {
    pub name: String,
    pub version: String,
}

impl Tool {
    pub fn this() -> Self {
        Self {
            name: "coreloop-load".to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
        }
    }
}

/// Request counts over the measured phase.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Requests {
    pub sent: u64,
    pub completed: u64,
    pub ok: u64,
    pub failed: u64,
    pub retried: u64,
    pub unfinished: u64,
}

/// Connection figures over the whole run, warm-up included.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Connections {
    pub requested: usize,
    pub opened: u64,
    pub reconnects: u64,
    pub peak_open: u64,
    pub connect_time: Percentiles,
    pub connect_failures: ConnectCauses,
}

/// `https://` runs: TLS handshakes over the whole run (like `connections`),
/// their rate over the measured phase, and failures by cause.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TlsReport {
    pub handshakes: u64,
    pub full: u64,
    pub resumed: u64,
    pub tls13: u64,
    pub tls12: u64,
    /// Handshakes where the server chose the `http/1.1` ALPN offered.
    pub alpn_http11: u64,
    /// Handshakes completed during the measured phase.
    pub measured_handshakes: u64,
    /// `measured_handshakes / elapsed_s`.
    pub handshakes_per_s: f64,
    /// From the TCP connect's end to the handshake's end.
    pub handshake_time: Percentiles,
    pub failures: Failures,
    /// `handshake_time`'s histogram, encoded as in `histograms`.
    pub histogram: String,
}

/// Open loop only: requested versus achieved rates.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RateReport {
    pub requested_per_s: f64,
    pub sent_per_s: f64,
    pub completed_per_s: f64,
    pub backlog: u64,
    /// At least 99% of the measured requests due were sent.
    pub reached: bool,
}

/// The client's own CPU use over the measured phase.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CpuReport {
    pub user_s: f64,
    pub system_s: f64,
    pub total_s: f64,
    pub cores_used: f64,
    pub requests_per_cpu_s: f64,
}

/// The exact data behind the percentiles, in HdrHistogram's interchange
/// encoding (base64 of the compressed V2 format).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Histograms {
    pub latency: String,
    pub connect_time: String,
}

/// One second of the measured phase, by when requests ended.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SecondReport {
    /// Seconds since the measured phase began (this second is `[t_s, t_s + 1)`).
    pub t_s: u64,
    pub completed: u64,
    pub failed: u64,
    pub p50_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
    pub histogram: String,
}

/// Everything a run measured.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub tool: Tool,
    /// When the run began (RFC 3339, UTC).
    pub started_at: String,
    pub target: String,
    pub protocol: String,
    pub mode: String,
    pub threads: usize,
    pub processes: usize,
    /// Reports merged into this one (1 for a plain run).
    pub merged: usize,
    pub pipeline: usize,
    /// `"window"` or `"batch"` (`--pipeline-mode`).
    pub pipeline_mode: String,
    pub warmup_s: f64,
    pub elapsed_s: f64,
    /// Ended early by SIGINT.
    pub interrupted: bool,
    pub requests: Requests,
    pub requests_per_s: f64,
    pub bytes_read: u64,
    pub bytes_written: u64,
    pub read_bytes_per_s: f64,
    pub written_bytes_per_s: f64,
    pub latency: Percentiles,
    /// Responses by status code (HTTP only).
    pub status: BTreeMap<String, u64>,
    pub connections: Connections,
    /// `https://` targets only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsReport>,
    pub errors: Errors,
    pub warmup: Warmup,
    pub rate: Option<RateReport>,
    pub cpu: Option<CpuReport>,
    pub notes: Vec<String>,
    /// Every effective setting of the run.
    pub settings: Settings,
    pub histograms: Histograms,
    pub series: Vec<SecondReport>,
}

impl Report {
    /// Responses whose status was outside 200-299.
    pub fn non_2xx(&self) -> u64 {
        self.errors.status
    }

    /// The "rate not reached" sentence, when it applies.
    pub fn rate_note(&self) -> Option<String> {
        let r = self.rate.as_ref()?;
        (!r.reached).then(|| {
            format!(
                "rate not reached: sent {}/s of {}/s; latencies include queueing",
                round(r.sent_per_s, 1),
                round(r.requested_per_s, 1)
            )
        })
    }

    /// The human-readable summary; `full` adds the percentile tables.
    pub fn text(&self, full: bool) -> String {
        text::render(self, full)
    }
}

/// `a / b`, or 0 when `b` is 0.
pub fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 {
        a / b
    } else {
        0.0
    }
}
