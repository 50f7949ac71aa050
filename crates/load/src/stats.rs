//! Per-thread counters and histograms, merged once the threads finish.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io;

use crate::histogram::Hist;
use crate::series::Series;

/// How a request (or, for `Connect`, a connection attempt) failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    Connect,
    Read,
    Write,
    Timeout,
    Malformed,
}

/// Errors by kind. `status` counts responses that arrived but were not 2xx.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Errors {
    pub connect: u64,
    pub read: u64,
    pub write: u64,
    pub timeout: u64,
    pub status: u64,
    pub malformed: u64,
    /// `https://`: failed TLS handshakes (sum of `tls.failures`), whole run.
    #[serde(default)]
    pub tls: u64,
}

impl Errors {
    pub fn add(&mut self, kind: ErrorKind, n: u64) {
        let slot = match kind {
            ErrorKind::Connect => &mut self.connect,
            ErrorKind::Read => &mut self.read,
            ErrorKind::Write => &mut self.write,
            ErrorKind::Timeout => &mut self.timeout,
            ErrorKind::Malformed => &mut self.malformed,
        };
        *slot += n;
    }

    pub fn total(&self) -> u64 {
        self.connect
            + self.read
            + self.write
            + self.timeout
            + self.status
            + self.malformed
            + self.tls
    }

    /// Errors that end a request without a response (not `connect`, not `status`).
    pub fn failed_requests(&self) -> u64 {
        self.read + self.write + self.timeout + self.malformed
    }

    pub fn merge(&mut self, o: &Errors) {
        self.connect += o.connect;
        self.read += o.read;
        self.write += o.write;
        self.timeout += o.timeout;
        self.status += o.status;
        self.malformed += o.malformed;
        self.tls += o.tls;
    }
}

/// Why connection attempts failed: the causes a user can act on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectCauses {
    pub refused: u64,
    /// EADDRNOTAVAIL: out of local ports for this source address.
    pub addr_not_available: u64,
    /// EMFILE/ENFILE: out of file descriptors.
    pub fd_limit: u64,
    pub timeout: u64,
    pub other: u64,
}

impl ConnectCauses {
    pub fn count(&mut self, e: &io::Error) {
        match e.raw_os_error() {
            Some(111) => self.refused += 1,
            Some(99) => self.addr_not_available += 1,
            Some(23) | Some(24) => self.fd_limit += 1,
            Some(110) => self.timeout += 1,
            _ => self.other += 1,
        }
    }

    pub fn merge(&mut self, o: &ConnectCauses) {
        self.refused += o.refused;
        self.addr_not_available += o.addr_not_available;
        self.fd_limit += o.fd_limit;
        self.timeout += o.timeout;
        self.other += o.other;
    }
}

/// Response counts by status code (100-999), one fixed table per worker so
/// counting never allocates.
#[derive(Debug, Clone)]
pub struct Statuses(Box<[u64]>);

impl Default for Statuses {
    fn default() -> Self {
        Self(vec![0; 1000].into_boxed_slice())
    }
}

impl Statuses {
    pub fn count(&mut self, status: u16) {
        // The framer only returns three-digit codes; anything else lands on 0.
        let i = if (100..1000).contains(&status) {
            usize::from(status)
        } else {
            0
        };
        self.0[i] += 1;
    }

    pub fn merge(&mut self, o: &Statuses) {
        for (a, b) in self.0.iter_mut().zip(o.0.iter()) {
            *a += b;
        }
    }

    /// The codes seen, as the report's `"200": n` map.
    pub fn to_map(&self) -> BTreeMap<String, u64> {
        self.0
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .map(|(code, n)| (code.to_string(), *n))
            .collect()
    }
}

/// Requests that were due during the warm-up: never in the measured figures,
/// but accounted for so none of them vanishes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Warmup {
    /// Warm-up requests started.
    pub sent: u64,
    /// Of those, answered (during or after the warm-up).
    pub completed: u64,
    /// Open loop: due during the warm-up but still unsent when measuring
    /// began; dropped from the schedule, so the measured phase starts on time.
    pub skipped: u64,
}

impl Warmup {
    pub fn merge(&mut self, o: &Warmup) {
        self.sent += o.sent;
        self.completed += o.completed;
        self.skipped += o.skipped;
    }
}

/// Everything one worker counts. Request figures cover the requests due
/// (open loop) or started (closed loop) in the measured phase; connection
/// figures cover the whole run.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    pub sent: u64,
    pub responses: u64,
    pub ok: u64,
    pub bytes_read: u64,
    pub bytes_written: u64,
    pub errors: Errors,
    pub connect_causes: ConnectCauses,
    pub connects: u64,
    pub reconnects: u64,
    pub retried: u64,
    pub open: u64,
    pub peak_open: u64,
    /// Open loop: requests due before the end that were never sent.
    pub backlog: u64,
    /// Requests still unanswered when the drain deadline passed.
    pub unfinished: u64,
    pub latency: Hist,
    pub connect_time: Hist,
    pub statuses: Statuses,
    pub warmup: Warmup,
    pub series: Series,
    pub tls: TlsStats,
}

/// TLS handshakes of an `https://` run, over the whole run like the
/// connection figures, except `measured`.
#[derive(Debug, Clone, Default)]
pub struct TlsStats {
    /// Handshakes completed.
    pub handshakes: u64,
    /// Of those, resumed sessions (`--tls-resume`).
    pub resumed: u64,
    /// Of those, TLS 1.3 (the rest were 1.2).
    pub tls13: u64,
    /// Of those, where the server chose the `http/1.1` offered by ALPN.
    pub alpn_http11: u64,
    /// Handshakes completed in the measured phase (the rate's numerator).
    pub measured: u64,
    pub failures: crate::tls::Failures,
    /// From the TCP connect's end to the handshake's.
    pub time: Hist,
}

impl TlsStats {
    pub fn completed(
        &mut self,
        agreed: crate::tls::Agreed,
        time: std::time::Duration,
        measured: bool,
    ) {
        self.handshakes += 1;
        self.resumed += u64::from(agreed.resumed);
        self.tls13 += u64::from(agreed.tls13);
        self.alpn_http11 += u64::from(agreed.alpn_http11);
        self.measured += u64::from(measured);
        self.time.record(time);
    }

    pub fn merge(&mut self, o: &TlsStats) {
        self.handshakes += o.handshakes;
        self.resumed += o.resumed;
        self.tls13 += o.tls13;
        self.alpn_http11 += o.alpn_http11;
        self.measured += o.measured;
        self.failures.merge(&o.failures);
        self.time.merge(&o.time);
    }
}

impl Stats {
    pub fn opened(&mut self) {
        self.connects += 1;
        self.open += 1;
        self.peak_open = self.peak_open.max(self.open);
    }

    pub fn connect_failed(&mut self, e: &io::Error) {
        self.errors.connect += 1;
        self.connect_causes.count(e);
    }

    pub fn merge(&mut self, o: &Stats) {
        self.sent += o.sent;
        self.responses += o.responses;
        self.ok += o.ok;
        self.bytes_read += o.bytes_read;
        self.bytes_written += o.bytes_written;
        self.errors.merge(&o.errors);
        self.connect_causes.merge(&o.connect_causes);
        self.connects += o.connects;
        self.reconnects += o.reconnects;
        self.retried += o.retried;
        // Threads peak at different moments; the sum is an upper bound.
        self.peak_open += o.peak_open;
        self.backlog += o.backlog;
        self.unfinished += o.unfinished;
        self.latency.merge(&o.latency);
        self.connect_time.merge(&o.connect_time);
        self.statuses.merge(&o.statuses);
        self.warmup.merge(&o.warmup);
        self.series.merge(&o.series);
        self.tls.merge(&o.tls);
    }
}
