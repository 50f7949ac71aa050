//! The run's result: one struct, printed for people or written as JSON.
//! Every field is documented with its unit in docs/LOAD.md.

use std::fmt::Write as _;

use serde::Serialize;

use crate::cpu::CpuTime;
use crate::histogram::Percentiles;
use crate::stats::{ConnectCauses, Errors};

/// Request counts over the measured phase.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Requests {
    pub sent: u64,
    pub completed: u64,
    pub ok: u64,
    pub failed: u64,
    pub retried: u64,
    pub unfinished: u64,
}

/// Connection figures over the whole run, warm-up included.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Connections {
    pub requested: usize,
    pub opened: u64,
    pub reconnects: u64,
    pub peak_open: u64,
    pub connect_time: Percentiles,
    pub connect_failures: ConnectCauses,
}

/// Open loop only: requested versus achieved rates.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RateReport {
    pub requested_per_s: f64,
    pub sent_per_s: f64,
    pub completed_per_s: f64,
    pub backlog: u64,
}

/// The client's own CPU use over the measured phase.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CpuReport {
    pub user_s: f64,
    pub system_s: f64,
    pub total_s: f64,
    pub cores_used: f64,
    pub requests_per_cpu_s: f64,
}

/// Everything a run measured.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub target: String,
    pub protocol: String,
    pub mode: String,
    pub threads: usize,
    pub pipeline: usize,
    /// `"window"` or `"batch"` (`--pipeline-mode`).
    pub pipeline_mode: String,
    pub warmup_s: f64,
    pub elapsed_s: f64,
    pub requests: Requests,
    pub requests_per_s: f64,
    pub bytes_read: u64,
    pub bytes_written: u64,
    pub read_bytes_per_s: f64,
    pub written_bytes_per_s: f64,
    pub latency: Percentiles,
    pub connections: Connections,
    pub errors: Errors,
    pub rate: Option<RateReport>,
    pub cpu: Option<CpuReport>,
    pub notes: Vec<String>,
}

impl Report {
    /// Fills the CPU section from the measured phase's CPU time.
    pub fn set_cpu(&mut self, cpu: CpuTime) {
        let total = cpu.total_s();
        self.cpu = Some(CpuReport {
            user_s: cpu.user_s,
            system_s: cpu.system_s,
            total_s: total,
            cores_used: ratio(total, self.elapsed_s),
            requests_per_cpu_s: ratio(self.requests.completed as f64, total),
        });
    }

    /// The human-readable summary; `full` adds the percentile tables.
    pub fn text(&self, full: bool) -> String {
        let mut s = String::new();
        let _ = self.write_text(&mut s, full);
        s
    }

    fn write_text(&self, s: &mut String, full: bool) -> std::fmt::Result {
        writeln!(
            s,
            "{} {}: {} threads, {} connections, {}, pipeline {} ({}), {:.2}s measured after {:.2}s warm-up",
            self.protocol, self.target, self.threads, self.connections.requested, self.mode, self.pipeline,
            self.pipeline_mode, self.elapsed_s, self.warmup_s
        )?;
        let r = &self.requests;
        writeln!(
            s,
            "  Requests     {} completed ({} 2xx) of {} sent",
            r.completed, r.ok, r.sent
        )?;
        writeln!(s, "  Requests/s   {:.1}", self.requests_per_s)?;
        writeln!(
            s,
            "  Transfer/s   {} read, {} written",
            bytes(self.read_bytes_per_s),
            bytes(self.written_bytes_per_s)
        )?;
        self.write_latency(s, full)?;
        self.write_connections(s, full)?;
        writeln!(s, "  Errors       {}", errors(&self.errors, r))?;
        self.write_rate_and_cpu(s)?;
        for n in &self.notes {
            writeln!(s, "  Note: {n}")?;
        }
        Ok(())
    }

    fn write_latency(&self, s: &mut String, full: bool) -> std::fmt::Result {
        let l = &self.latency;
        if full {
            writeln!(s, "  Latency (from {})", self.latency_origin())?;
            return table(s, l);
        }
        writeln!(
            s,
            "  Latency      p50 {}  p99 {}  p99.9 {}  max {}  (from {})",
            us(l.p50_us),
            us(l.p99_us),
            us(l.p99_9_us),
            us(l.max_us),
            self.latency_origin()
        )
    }

    fn latency_origin(&self) -> &'static str {
        if self.rate.is_some() {
            "intended send time"
        } else {
            "actual send time"
        }
    }

    fn write_connections(&self, s: &mut String, full: bool) -> std::fmt::Result {
        let c = &self.connections;
        let t = &c.connect_time;
        writeln!(
            s,
            "  Connect      p50 {}  p99 {}  max {}  ({} opened, {} reconnects, peak {} open)",
            us(t.p50_us),
            us(t.p99_us),
            us(t.max_us),
            c.opened,
            c.reconnects,
            c.peak_open
        )?;
        if full {
            table(s, t)?;
        }
        Ok(())
    }

    fn write_rate_and_cpu(&self, s: &mut String) -> std::fmt::Result {
        if let Some(r) = &self.rate {
            writeln!(
                s,
                "  Rate         requested {:.1}/s, sent {:.1}/s, completed {:.1}/s, {} due but never sent",
                r.requested_per_s, r.sent_per_s, r.completed_per_s, r.backlog
            )?;
        }
        if let Some(c) = &self.cpu {
            writeln!(
                s,
                "  Client CPU   {:.2}s user + {:.2}s system = {:.2} cores; {:.0} requests per CPU-second",
                c.user_s, c.system_s, c.cores_used, c.requests_per_cpu_s
            )?;
        }
        Ok(())
    }
}

fn table(s: &mut String, p: &Percentiles) -> std::fmt::Result {
    let rows = [
        ("50%", p.p50_us),
        ("75%", p.p75_us),
        ("90%", p.p90_us),
        ("99%", p.p99_us),
        ("99.9%", p.p99_9_us),
        ("99.99%", p.p99_99_us),
        ("max", p.max_us),
    ];
    for (name, v) in rows {
        writeln!(s, "    {name:>7}  {}", us(v))?;
    }
    writeln!(
        s,
        "    {:>7}  {} (stdev {})",
        "mean",
        us(p.mean_us as u64),
        us(p.stdev_us as u64)
    )
}

fn errors(e: &Errors, r: &Requests) -> String {
    if e.total() == 0 && r.unfinished == 0 {
        return "none".to_string();
    }
    format!(
        "connect {}, read {}, write {}, timeout {}, status {}, malformed {}, unfinished {}",
        e.connect, e.read, e.write, e.timeout, e.status, e.malformed, r.unfinished
    )
}

/// `a / b`, or 0 when `b` is 0.
pub fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 {
        a / b
    } else {
        0.0
    }
}

fn us(v: u64) -> String {
    match v {
        0..=9_999 => format!("{v}us"),
        10_000..=9_999_999 => format!("{:.2}ms", v as f64 / 1e3),
        _ => format!("{:.2}s", v as f64 / 1e6),
    }
}

fn bytes(per_s: f64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut v = per_s;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < UNITS.len() {
        v /= 1024.0;
        i += 1;
    }
    format!("{v:.2} {}/s", UNITS[i])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(us(12), "12us");
        assert_eq!(us(12_345), "12.35ms");
        assert_eq!(us(1_500_000), "1500.00ms");
        assert_eq!(us(12_000_000), "12.00s");
        assert_eq!(bytes(2048.0), "2.00 KiB/s");
    }

    #[test]
    fn text_mentions_errors_and_notes() {
        let mut r = Report::default();
        r.errors.timeout = 3;
        r.notes.push("use --source-addrs".to_string());
        let t = r.text(true);
        assert!(t.contains("timeout 3"), "{t}");
        assert!(t.contains("Note: use --source-addrs"), "{t}");
        assert!(t.contains("99.99%"), "{t}");
    }
}
