//! The exact figures of one run or of several merged: counts and full
//! histograms. Every derived figure of a `Report` comes from here.

use std::collections::BTreeMap;

use crate::cpu::CpuTime;
use crate::histogram::{round, Hist};
use crate::series::{Second, Series, MAX_SECONDS};
use crate::stats::{ConnectCauses, Errors, Stats, TlsStats, Warmup};

use super::{
    ratio, Connections, CpuReport, Histograms, RateReport, Report, Requests, SecondReport,
    Settings, TlsReport, Tool,
};

/// What a report is built from; `add` is exact (sums and histogram merges).
#[derive(Debug, Clone, Default)]
pub struct Tally {
    pub started_at: String,
    pub settings: Settings,
    pub threads: usize,
    pub processes: usize,
    pub merged: usize,
    pub warmup_s: f64,
    pub elapsed_s: f64,
    pub interrupted: bool,
    pub requests: Requests,
    pub bytes_read: u64,
    pub bytes_written: u64,
    pub status: BTreeMap<String, u64>,
    pub errors: Errors,
    pub warmup: Warmup,
    pub requested_connections: usize,
    pub opened: u64,
    pub reconnects: u64,
    pub peak_open: u64,
    pub connect_failures: ConnectCauses,
    /// Open loop: `--rate` (summed over merged runs).
    pub rate_per_s: Option<f64>,
    /// Open loop: measured requests started per second while sending (summed:
    /// merged runs send at the same time).
    pub sent_per_s: f64,
    pub backlog: u64,
    pub cpu: Option<CpuTime>,
    pub notes: Vec<String>,
    pub latency: Hist,
    pub connect_time: Hist,
    pub series: Series,
    /// `https://` runs only.
    pub tls: Option<TlsStats>,
}

impl Tally {
    /// The figures of one process's workers, `sending_s` being how long it
    /// started measured requests.
    pub fn from_stats(s: &Stats, settings: Settings, sending_s: f64) -> Self {
        let requests = Requests {
            sent: s.sent,
            completed: s.responses,
            ok: s.ok,
            failed: s.errors.failed_requests(),
            retried: s.retried,
            unfinished: s.unfinished,
        };
        Self {
            threads: settings.threads,
            processes: 1,
            merged: 1,
            warmup_s: settings.warmup_s,
            requested_connections: settings.connections,
            rate_per_s: settings.rate_per_s,
            sent_per_s: ratio(s.sent as f64, sending_s),
            requests,
            bytes_read: s.bytes_read,
            bytes_written: s.bytes_written,
            status: s.statuses.to_map(),
            errors: s.errors,
            warmup: s.warmup,
            opened: s.connects,
            reconnects: s.reconnects,
            peak_open: s.peak_open,
            connect_failures: s.connect_causes,
            backlog: s.backlog,
            latency: s.latency.clone(),
            connect_time: s.connect_time.clone(),
            series: s.series.clone(),
            tls: settings.tls.is_some().then(|| s.tls.clone()),
            settings,
            ..Self::default()
        }
    }

    /// Reads the exact figures back out of a report (its histograms).
    pub fn from_report(r: &Report) -> Result<Self, String> {
        let mut series = Series::default();
        for sec in &r.series {
            // A report's own runs never pass MAX_SECONDS; a bigger index
            // would only make `merge` allocate for it.
            if sec.t_s >= MAX_SECONDS as u64 {
                return Err(format!("series second {} is beyond {MAX_SECONDS}", sec.t_s));
            }
            let i = sec.t_s as usize;
            if series.seconds.len() <= i {
                series.seconds.resize_with(i + 1, Second::default);
            }
            let slot = &mut series.seconds[i];
            slot.completed += sec.completed;
            slot.failed += sec.failed;
            slot.latency.merge(&Hist::decode_coarse(&sec.histogram)?);
        }
        let latency = Hist::decode(&r.histograms.latency)?;
        if latency.len() != r.requests.completed {
            return Err(format!(
                "latency histogram holds {} values but {} requests completed",
                latency.len(),
                r.requests.completed
            ));
        }
        let c = &r.connections;
        Ok(Self {
            started_at: r.started_at.clone(),
            settings: r.settings.clone(),
            threads: r.threads,
            processes: r.processes,
            merged: r.merged,
            warmup_s: r.warmup_s,
            elapsed_s: r.elapsed_s,
            interrupted: r.interrupted,
            requests: r.requests.clone(),
            bytes_read: r.bytes_read,
            bytes_written: r.bytes_written,
            status: r.status.clone(),
            errors: r.errors,
            warmup: r.warmup,
            requested_connections: c.requested,
            opened: c.opened,
            reconnects: c.reconnects,
            peak_open: c.peak_open,
            connect_failures: c.connect_failures,
            rate_per_s: r.rate.as_ref().map(|x| x.requested_per_s),
            sent_per_s: r.rate.as_ref().map_or(0.0, |x| x.sent_per_s),
            backlog: r.rate.as_ref().map_or(0, |x| x.backlog),
            cpu: r.cpu.as_ref().map(|x| CpuTime {
                user_s: x.user_s,
                system_s: x.system_s,
            }),
            // Recomputed for the merged figures by `report`.
            notes: r
                .notes
                .iter()
                .filter(|n| !n.starts_with("rate not reached"))
                .cloned()
                .collect(),
            latency,
            connect_time: Hist::decode(&r.histograms.connect_time)?,
            series,
            tls: r.tls.as_ref().map(tls_from_report).transpose()?,
        })
    }

    /// Adds another run that ran at the same time (another process or machine).
    pub fn add(&mut self, o: &Tally) {
        if self.started_at.is_empty()
            || (!o.started_at.is_empty() && o.started_at < self.started_at)
        {
            self.started_at = o.started_at.clone();
        }
        self.threads += o.threads;
        self.processes += o.processes;
        self.merged += o.merged;
        self.warmup_s = self.warmup_s.max(o.warmup_s);
        self.elapsed_s = self.elapsed_s.max(o.elapsed_s);
        self.interrupted |= o.interrupted;
        add_requests(&mut self.requests, &o.requests);
        self.bytes_read += o.bytes_read;
        self.bytes_written += o.bytes_written;
        for (code, n) in &o.status {
            *self.status.entry(code.clone()).or_default() += n;
        }
        self.errors.merge(&o.errors);
        self.warmup.merge(&o.warmup);
        self.requested_connections += o.requested_connections;
        self.opened += o.opened;
        self.reconnects += o.reconnects;
        self.peak_open += o.peak_open;
        self.connect_failures.merge(&o.connect_failures);
        self.rate_per_s = match (self.rate_per_s, o.rate_per_s) {
            (None, None) => None,
            (a, b) => Some(a.unwrap_or(0.0) + b.unwrap_or(0.0)),
        };
        self.sent_per_s += o.sent_per_s;
        self.backlog += o.backlog;
        self.cpu = match (self.cpu, o.cpu) {
            (Some(a), Some(b)) => Some(CpuTime {
                user_s: a.user_s + b.user_s,
                system_s: a.system_s + b.system_s,
            }),
            (a, b) => a.or(b),
        };
        for n in &o.notes {
            if !self.notes.contains(n) {
                self.notes.push(n.clone());
            }
        }
        self.latency.merge(&o.latency);
        self.connect_time.merge(&o.connect_time);
        self.series.merge(&o.series);
        self.tls = match (self.tls.take(), &o.tls) {
            (Some(mut a), Some(b)) => {
                a.merge(b);
                Some(a)
            }
            (a, b) => a.or_else(|| b.clone()),
        };
    }

    /// The report these figures make; rounds every derived figure.
    pub fn report(&self) -> Report {
        let elapsed = self.elapsed_s;
        let completed = self.requests.completed as f64;
        let mut r = Report {
            tool: Tool::this(),
            started_at: self.started_at.clone(),
            target: self.settings.target.clone(),
            protocol: self.settings.protocol.clone(),
            mode: if self.rate_per_s.is_some() {
                "open loop"
            } else {
                "closed loop"
            }
            .to_string(),
            threads: self.threads,
            processes: self.processes,
            merged: self.merged,
            pipeline: self.settings.pipeline,
            pipeline_mode: self.settings.pipeline_mode.clone(),
            warmup_s: round(self.warmup_s, 3),
            elapsed_s: round(elapsed, 3),
            interrupted: self.interrupted,
            requests: self.requests.clone(),
            requests_per_s: round(ratio(completed, elapsed), 1),
            bytes_read: self.bytes_read,
            bytes_written: self.bytes_written,
            read_bytes_per_s: round(ratio(self.bytes_read as f64, elapsed), 1),
            written_bytes_per_s: round(ratio(self.bytes_written as f64, elapsed), 1),
            latency: self.latency.summary(),
            status: self.status.clone(),
            connections: Connections {
                requested: self.requested_connections,
                opened: self.opened,
                reconnects: self.reconnects,
                peak_open: self.peak_open,
                connect_time: self.connect_time.summary(),
                connect_failures: self.connect_failures,
            },
            tls: self.tls.as_ref().map(|t| tls_report(t, elapsed)),
            errors: self.errors,
            warmup: self.warmup,
            rate: self.rate_per_s.map(|requested| self.rate(requested)),
            cpu: self.cpu.map(|c| cpu(c, elapsed, completed)),
            notes: self.notes.clone(),
            histograms: Histograms {
                latency: self.latency.encode(),
                connect_time: self.connect_time.encode(),
            },
            series: self.series_report(),
            settings: self.settings.clone(),
        };
        if let Some(n) = r.rate_note() {
            if !r.notes.contains(&n) {
                r.notes.insert(0, n);
            }
        }
        r
    }

    fn rate(&self, requested: f64) -> RateReport {
        let due = self.requests.sent + self.backlog;
        RateReport {
            requested_per_s: round(requested, 1),
            sent_per_s: round(self.sent_per_s, 1),
            completed_per_s: round(ratio(self.requests.completed as f64, self.elapsed_s), 1),
            backlog: self.backlog,
            // Within 1%: the schedule's phase offsets and the stop instant
            // leave a few requests per connection unsent in a run that kept up.
            reached: self.backlog * 100 <= due,
        }
    }

    fn series_report(&self) -> Vec<SecondReport> {
        self.series
            .seconds
            .iter()
            .enumerate()
            .map(|(i, s)| SecondReport {
                t_s: i as u64,
                completed: s.completed,
                failed: s.failed,
                p50_us: s.latency.quantile(0.5),
                p99_us: s.latency.quantile(0.99),
                max_us: s.latency.quantile(1.0),
                histogram: s.latency.encode(),
            })
            .collect()
    }
}

fn tls_report(t: &TlsStats, elapsed: f64) -> TlsReport {
    TlsReport {
        handshakes: t.handshakes,
        full: t.handshakes - t.resumed,
        resumed: t.resumed,
        tls13: t.tls13,
        tls12: t.handshakes - t.tls13,
        alpn_http11: t.alpn_http11,
        measured_handshakes: t.measured,
        handshakes_per_s: round(ratio(t.measured as f64, elapsed), 1),
        handshake_time: t.time.summary(),
        failures: t.failures,
        histogram: t.time.encode(),
    }
}

fn tls_from_report(r: &TlsReport) -> Result<TlsStats, String> {
    let time = Hist::decode(&r.histogram)?;
    if time.len() != r.handshakes {
        return Err(format!(
            "TLS histogram holds {} values but {} handshakes completed",
            time.len(),
            r.handshakes
        ));
    }
    Ok(TlsStats {
        handshakes: r.handshakes,
        resumed: r.resumed,
        tls13: r.tls13,
        alpn_http11: r.alpn_http11,
        measured: r.measured_handshakes,
        failures: r.failures,
        time,
    })
}

fn add_requests(a: &mut Requests, b: &Requests) {
    a.sent += b.sent;
    a.completed += b.completed;
    a.ok += b.ok;
    a.failed += b.failed;
    a.retried += b.retried;
    a.unfinished += b.unfinished;
}

fn cpu(c: CpuTime, elapsed: f64, completed: f64) -> CpuReport {
    let total = c.total_s();
    CpuReport {
        user_s: round(c.user_s, 2),
        system_s: round(c.system_s, 2),
        total_s: round(total, 2),
        cores_used: round(ratio(total, elapsed), 2),
        requests_per_cpu_s: round(ratio(completed, total), 0),
    }
}
