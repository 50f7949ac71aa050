//! The summary for people. Each line shows one family of figures in one
//! unit, picked from the line's largest value, so they compare at a glance.

use std::fmt::Write as _;

use crate::histogram::Percentiles;

use super::{Report, Requests};
use crate::stats::Errors;

pub fn render(r: &Report, full: bool) -> String {
    let mut s = String::new();
    // Writing into a String cannot fail.
    let _ = write(&mut s, r, full);
    s
}

fn write(s: &mut String, r: &Report, full: bool) -> std::fmt::Result {
    header(s, r)?;
    let q = &r.requests;
    writeln!(
        s,
        "  Requests     {} completed ({} 2xx) of {} sent",
        q.completed, q.ok, q.sent
    )?;
    writeln!(s, "  Requests/s   {:.1}", r.requests_per_s)?;
    let unit = ByteUnit::for_value(r.read_bytes_per_s.max(r.written_bytes_per_s));
    writeln!(
        s,
        "  Transfer/s   {} read, {} written ({})",
        unit.show(r.read_bytes_per_s),
        unit.show(r.written_bytes_per_s),
        unit.per_s()
    )?;
    latency(s, r, full)?;
    connections(s, r, full)?;
    tls(s, r, full)?;
    statuses(s, r)?;
    writeln!(s, "  Errors       {}", errors(&r.errors, q))?;
    warmup(s, r)?;
    rate_and_cpu(s, r)?;
    let rate_note = r.rate_note();
    for n in r.notes.iter().filter(|n| Some(*n) != rate_note.as_ref()) {
        writeln!(s, "  Note: {n}")?;
    }
    Ok(())
}

fn header(s: &mut String, r: &Report) -> std::fmt::Result {
    let procs = if r.processes > 1 {
        format!("{} processes, ", r.processes)
    } else {
        String::new()
    };
    let mode = match (&r.rate, r.settings.rate_per_s) {
        (Some(_), Some(rate)) => format!("open loop at {rate}/s"),
        _ => r.mode.clone(),
    };
    writeln!(
        s,
        "{} {}: {procs}{} threads, {} connections, {mode}, pipeline {} ({}), {:.2}s measured after {:.2}s warm-up{}",
        r.protocol,
        r.target,
        r.threads,
        r.connections.requested,
        r.pipeline,
        r.pipeline_mode,
        r.elapsed_s,
        r.warmup_s,
        if r.interrupted { " (interrupted)" } else { "" }
    )
}

fn latency(s: &mut String, r: &Report, full: bool) -> std::fmt::Result {
    let l = &r.latency;
    let origin = if r.rate.is_some() {
        "intended send time"
    } else {
        "actual send time"
    };
    if full {
        writeln!(s, "  Latency (from {origin})")?;
        return table(s, l);
    }
    let u = TimeUnit::for_value(l.max_us);
    writeln!(
        s,
        "  Latency      p50 {}  p99 {}  p99.9 {}  max {}  {}  (from {origin})",
        u.show(l.p50_us),
        u.show(l.p99_us),
        u.show(l.p99_9_us),
        u.show(l.max_us),
        u.name()
    )
}

fn connections(s: &mut String, r: &Report, full: bool) -> std::fmt::Result {
    let c = &r.connections;
    let t = &c.connect_time;
    let u = TimeUnit::for_value(t.max_us);
    writeln!(
        s,
        "  Connect      p50 {}  p99 {}  max {}  {}  ({} opened, {} reconnects, peak {} open)",
        u.show(t.p50_us),
        u.show(t.p99_us),
        u.show(t.max_us),
        u.name(),
        c.opened,
        c.reconnects,
        c.peak_open
    )?;
    if full {
        table(s, t)?;
    }
    Ok(())
}

fn tls(s: &mut String, r: &Report, full: bool) -> std::fmt::Result {
    let Some(t) = &r.tls else { return Ok(()) };
    let h = &t.handshake_time;
    let u = TimeUnit::for_value(h.max_us);
    writeln!(
        s,
        "  TLS          p50 {}  p99 {}  max {}  {}  ({} handshakes: {} full, {} resumed; {:.1}/s measured)",
        u.show(h.p50_us),
        u.show(h.p99_us),
        u.show(h.max_us),
        u.name(),
        t.handshakes,
        t.full,
        t.resumed,
        t.handshakes_per_s
    )?;
    if full {
        table(s, h)?;
    }
    writeln!(
        s,
        "  TLS agreed   {} TLS 1.3, {} TLS 1.2; ALPN http/1.1 on {}",
        t.tls13, t.tls12, t.alpn_http11
    )?;
    let f = &t.failures;
    if f.total() > 0 {
        writeln!(
            s,
            "  TLS failed   {}: certificate {}, alert {}, protocol {}, closed {}, timeout {}",
            f.total(),
            f.certificate,
            f.alert,
            f.protocol,
            f.closed,
            f.timeout
        )?;
    }
    Ok(())
}

/// `[200] 1234` per code, as oha prints them, then wrk's non-2xx line.
fn statuses(s: &mut String, r: &Report) -> std::fmt::Result {
    for (i, (code, n)) in r.status.iter().enumerate() {
        let label = if i == 0 { "Status" } else { "" };
        writeln!(s, "  {label:<12} [{code}] {n}")?;
    }
    if r.non_2xx() > 0 {
        writeln!(s, "  Non-2xx responses: {}", r.non_2xx())?;
    }
    Ok(())
}

fn warmup(s: &mut String, r: &Report) -> std::fmt::Result {
    let w = &r.warmup;
    if w.sent == 0 && w.skipped == 0 {
        return Ok(());
    }
    write!(
        s,
        "  Warm-up      {} sent, {} answered (not counted above)",
        w.sent, w.completed
    )?;
    if w.skipped > 0 {
        write!(s, ", {} due but skipped when measuring began", w.skipped)?;
    }
    writeln!(s)
}

fn rate_and_cpu(s: &mut String, r: &Report) -> std::fmt::Result {
    if let Some(x) = &r.rate {
        writeln!(
            s,
            "  Rate         requested {:.1}/s, sent {:.1}/s, completed {:.1}/s, {} due but never sent",
            x.requested_per_s, x.sent_per_s, x.completed_per_s, x.backlog
        )?;
    }
    if let Some(n) = r.rate_note() {
        writeln!(s, "  {n}")?;
    }
    if let Some(c) = &r.cpu {
        writeln!(
            s,
            "  Client CPU   {:.2}s user + {:.2}s system = {:.2} cores; {:.0} requests per CPU-second",
            c.user_s, c.system_s, c.cores_used, c.requests_per_cpu_s
        )?;
    }
    Ok(())
}

fn table(s: &mut String, p: &Percentiles) -> std::fmt::Result {
    let u = TimeUnit::for_value(p.max_us);
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
        writeln!(s, "    {name:>7}  {} {}", u.show(v), u.name())?;
    }
    writeln!(
        s,
        "    {:>7}  {} {} (stdev {})",
        "mean",
        u.show(p.mean_us as u64),
        u.name(),
        u.show(p.stdev_us as u64)
    )
}

fn errors(e: &Errors, r: &Requests) -> String {
    if e.total() == 0 && r.unfinished == 0 {
        return "none".to_string();
    }
    let tls = if e.tls > 0 {
        format!(", tls {}", e.tls)
    } else {
        String::new()
    };
    format!(
        "connect {}, read {}, write {}, timeout {}, status {}, malformed {}, unfinished {}{tls}",
        e.connect, e.read, e.write, e.timeout, e.status, e.malformed, r.unfinished
    )
}

/// The unit of one line of durations (values in microseconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeUnit {
    Us,
    Ms,
    S,
}

impl TimeUnit {
    pub fn for_value(max_us: u64) -> Self {
        match max_us {
            0..=9_999 => Self::Us,
            10_000..=9_999_999 => Self::Ms,
            _ => Self::S,
        }
    }

    pub fn show(self, us: u64) -> String {
        match self {
            Self::Us => format!("{us}"),
            Self::Ms => format!("{:.2}", us as f64 / 1e3),
            Self::S => format!("{:.2}", us as f64 / 1e6),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Us => "us",
            Self::Ms => "ms",
            Self::S => "s",
        }
    }
}

/// The unit of one line of byte rates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ByteUnit(usize);

const BYTE_UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];

impl ByteUnit {
    fn for_value(max: f64) -> Self {
        let mut i = 0;
        let mut v = max;
        while v >= 1024.0 && i + 1 < BYTE_UNITS.len() {
            v /= 1024.0;
            i += 1;
        }
        Self(i)
    }

    fn show(self, v: f64) -> String {
        format!("{:.2}", v / 1024f64.powi(self.0 as i32))
    }

    fn per_s(self) -> String {
        format!("{}/s", BYTE_UNITS[self.0])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::RateReport;

    #[test]
    fn one_unit_per_line() {
        assert_eq!(TimeUnit::for_value(543), TimeUnit::Us);
        assert_eq!(TimeUnit::for_value(12_620), TimeUnit::Ms);
        assert_eq!(TimeUnit::Ms.show(543), "0.54");
        assert_eq!(TimeUnit::for_value(12_000_000).show(1_500_000), "1.50");
        let u = ByteUnit::for_value(2048.0);
        assert_eq!(
            (u.show(2048.0), u.show(512.0), u.per_s()),
            ("2.00".into(), "0.50".into(), "KiB/s".into())
        );
    }

    #[test]
    fn latency_line_has_one_unit() {
        let mut r = Report::default();
        r.latency.p50_us = 543;
        r.latency.p99_us = 12_620;
        r.latency.max_us = 12_620;
        let t = r.text(false);
        let line = t.lines().find(|l| l.contains("Latency")).unwrap();
        assert!(line.contains("p50 0.54  p99 12.62"), "{line}");
        assert_eq!(line.matches("ms").count(), 1, "{line}");
        assert!(!line.contains("us "), "{line}");
    }

    #[test]
    fn tls_lines_only_for_https_and_failures_only_when_some() {
        let mut r = Report::default();
        assert!(!r.text(false).contains("TLS"));
        let mut tls = super::super::TlsReport {
            handshakes: 7,
            full: 5,
            resumed: 2,
            tls13: 7,
            alpn_http11: 7,
            handshakes_per_s: 3.5,
            ..Default::default()
        };
        r.tls = Some(tls.clone());
        let t = r.text(false);
        assert!(
            t.contains("(7 handshakes: 5 full, 2 resumed; 3.5/s measured)"),
            "{t}"
        );
        assert!(
            t.contains("7 TLS 1.3, 0 TLS 1.2; ALPN http/1.1 on 7"),
            "{t}"
        );
        assert!(!t.contains("TLS failed"), "{t}");
        tls.failures.certificate = 4;
        tls.failures.timeout = 1;
        r.tls = Some(tls);
        r.errors.tls = 5;
        let t = r.text(false);
        assert!(t.contains("unfinished 0, tls 5\n"), "{t}");
        assert!(
            t.contains("TLS failed   5: certificate 4, alert 0, protocol 0, closed 0, timeout 1"),
            "{t}"
        );
    }

    #[test]
    fn text_mentions_errors_statuses_and_notes() {
        let mut r = Report::default();
        r.errors.timeout = 3;
        r.errors.status = 2;
        r.status.insert("200".into(), 5);
        r.status.insert("404".into(), 2);
        r.notes.push("use --source-addrs".to_string());
        let t = r.text(true);
        assert!(t.contains("timeout 3"), "{t}");
        assert!(t.contains("[200] 5\n") && t.contains("[404] 2\n"), "{t}");
        assert!(t.contains("Non-2xx responses: 2\n"), "{t}");
        assert!(t.contains("Note: use --source-addrs"), "{t}");
        assert!(t.contains("99.99%"), "{t}");
    }

    #[test]
    fn rate_not_reached_has_its_own_line_once() {
        let mut r = Report {
            rate: Some(RateReport {
                requested_per_s: 2000.0,
                sent_per_s: 401.5,
                reached: false,
                ..RateReport::default()
            }),
            ..Report::default()
        };
        let n = r.rate_note().unwrap();
        assert_eq!(
            n,
            "rate not reached: sent 401.5/s of 2000/s; latencies include queueing"
        );
        r.notes.push(n.clone());
        let t = r.text(false);
        assert_eq!(t.matches(&n).count(), 1, "{t}");
        assert!(t.contains(&format!("\n  {n}\n")), "{t}");
    }
}
