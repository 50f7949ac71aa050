//! Per-thread counters and histograms, merged once the threads finish.

use serde::Serialize;
use std::io;

use crate::histogram::Hist;

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
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Errors {
    pub connect: u64,
    pub read: u64,
    pub write: u64,
    pub timeout: u64,
    pub status: u64,
    pub malformed: u64,
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
        self.connect + self.read + self.write + self.timeout + self.status + self.malformed
    }

    /// Errors that end a request without a response (not `connect`, not `status`).
    pub fn failed_requests(&self) -> u64 {
        self.read + self.write + self.timeout + self.malformed
    }

    fn merge(&mut self, o: &Errors) {
        self.connect += o.connect;
        self.read += o.read;
        self.write += o.write;
        self.timeout += o.timeout;
        self.status += o.status;
        self.malformed += o.malformed;
    }
}

/// Why connection attempts failed: the causes a user can act on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
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

    fn merge(&mut self, o: &ConnectCauses) {
        self.refused += o.refused;
        self.addr_not_available += o.addr_not_available;
        self.fd_limit += o.fd_limit;
        self.timeout += o.timeout;
        self.other += o.other;
    }
}

/// Everything one worker counts. Request figures cover the measured phase
/// only (by intended send time); connection figures cover the whole run.
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
}

impl Stats {
    /// Forgets the warm-up's byte counts. Request figures need no reset:
    /// they only ever count requests intended in the measured phase.
    pub fn start_measuring(&mut self) {
        self.bytes_read = 0;
        self.bytes_written = 0;
    }

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
    }
}
