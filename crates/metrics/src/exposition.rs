//! The scrape: read every snapshot once, then write the text straight from them.
//!
//! The two formats coreloop serves differ, for what it exposes, in two places: a counter's
//! `HELP`/`TYPE` lines name the family with `_total` in the 0.0.4 format and without it in
//! OpenMetrics (the samples carry `_total` in both), and OpenMetrics ends with `# EOF`.
//! Everything else is written once for both. Values are integers or `f64`s written with
//! Rust's shortest round-trip form, which both formats accept.

use std::fmt::{Display, Write};

use coreloop_http::{
    ExpositionFormat, ShardHttpSnapshot, CODE_LABELS, LATENCY_BUCKETS, METHOD_LABELS,
};
use coreloop_reactor::{CloseReason, PauseCause, Snapshot};

use crate::process::ProcessSnapshot;

mod tls;
use crate::Sources;

/// `le` label values of [`LATENCY_BUCKETS`], then `+Inf`, written once.
pub(crate) const LE: [&str; LATENCY_BUCKETS.len() + 1] = [
    "2.5e-05", "5e-05", "0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025",
    "0.1", "0.25", "1", "2.5", "10", "+Inf",
];

/// Reads every counter now and returns the exposition text; `process` is the figures the
/// refresher read last.
pub fn render(sources: &Sources, process: &ProcessSnapshot, format: ExpositionFormat) -> String {
    let scrape = Scrape {
        sources,
        reactor: sources.reactor.snapshot(),
        http: (sources.http.iter())
            .map(|(listener, stats)| (*listener, stats.route_names(), stats.snapshot()))
            .collect(),
        process,
    };
    let mut out = Out {
        text: String::with_capacity(24 * 1024),
        format,
    };
    scrape.write(&mut out);
    if format == ExpositionFormat::OpenMetrics {
        out.text.push_str("# EOF\n");
    }
    out.text
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// The text being written, and its format.
pub(crate) struct Out {
    text: String,
    format: ExpositionFormat,
}

/// A sample's labels: names are fixed, values come from the config or closed sets.
pub(crate) type Labels<'a> = [(&'static str, &'a dyn Display)];

impl Out {
    /// `HELP` and `TYPE` of a family; `name` is without `_total` for counters.
    pub(crate) fn family(&mut self, name: &str, kind: Kind, help: &str) {
        let total = match (kind, self.format) {
            (Kind::Counter, ExpositionFormat::Prometheus) => "_total",
            _ => "",
        };
        let kind = match kind {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        };
        // Writing to a String cannot fail.
        let _ = writeln!(self.text, "# HELP {name}{total} {help}");
        let _ = writeln!(self.text, "# TYPE {name}{total} {kind}");
    }

    /// One sample line: `name{labels} value`.
    pub(crate) fn sample(
        &mut self,
        name: &str,
        suffix: &str,
        labels: &Labels<'_>,
        value: impl Display,
    ) {
        self.text.push_str(name);
        self.text.push_str(suffix);
        if !labels.is_empty() {
            self.text.push('{');
            for (i, (key, value)) in labels.iter().enumerate() {
                if i > 0 {
                    self.text.push(',');
                }
                self.text.push_str(key);
                self.text.push_str("=\"");
                self.label_value(*value);
                self.text.push('"');
            }
            self.text.push('}');
        }
        let _ = writeln!(self.text, " {value}");
    }

    /// A label value, escaped as both formats require (`\`, `"` and newline).
    fn label_value(&mut self, value: &dyn Display) {
        let start = self.text.len();
        let _ = write!(self.text, "{value}");
        if self.text[start..].contains(['\\', '"', '\n']) {
            let raw = self.text.split_off(start);
            for c in raw.chars() {
                match c {
                    '\\' => self.text.push_str("\\\\"),
                    '"' => self.text.push_str("\\\""),
                    '\n' => self.text.push_str("\\n"),
                    c => self.text.push(c),
                }
            }
        }
    }

    fn counter(&mut self, name: &str, help: &str, samples: &[(&Labels<'_>, u64)]) {
        self.family(name, Kind::Counter, help);
        for (labels, value) in samples {
            self.sample(name, "_total", labels, value);
        }
    }

    fn gauge(&mut self, name: &str, help: &str, samples: &[(&Labels<'_>, u64)]) {
        self.family(name, Kind::Gauge, help);
        for (labels, value) in samples {
            self.sample(name, "", labels, value);
        }
    }
}

/// One scrape's worth of figures.
struct Scrape<'a> {
    sources: &'a Sources,
    reactor: Snapshot,
    /// `(listener, route names by slot, shards)`.
    http: Vec<(usize, Vec<String>, Vec<ShardHttpSnapshot>)>,
    process: &'a ProcessSnapshot,
}

impl Scrape<'_> {
    fn write(&self, out: &mut Out) {
        self.build(out);
        self.connections(out);
        self.http(out);
        self.bytes(out);
        self.accept(out);
        self.offload(out);
        self.loops(out);
        self.outbound(out);
        crate::upstream::write(out, &self.sources.upstreams);
        self.tls(out);
        self.process(out);
    }

    fn listener(&self, index: usize) -> &str {
        self.sources.listeners.get(index).map_or("", String::as_str)
    }

    fn per_shard(
        &self,
        out: &mut Out,
        name: &str,
        help: &str,
        value: impl Fn(&coreloop_reactor::stats::ShardSnapshot) -> u64,
    ) {
        out.family(name, Kind::Counter, help);
        for s in &self.reactor.shards {
            out.sample(name, "_total", &[("shard", &s.shard)], value(s));
        }
    }

    fn per_listener(
        &self,
        out: &mut Out,
        name: &str,
        help: &str,
        value: impl Fn(&coreloop_reactor::stats::ListenerSnapshot) -> u64,
    ) {
        out.family(name, Kind::Counter, help);
        for shard in &self.reactor.shards {
            for (index, listener) in shard.listeners.iter().enumerate() {
                let labels: &Labels<'_> =
                    &[("listener", &self.listener(index)), ("shard", &shard.shard)];
                out.sample(name, "_total", labels, value(listener));
            }
        }
    }

    fn build(&self, out: &mut Out) {
        let version = self.sources.version;
        let help = "The running version; always 1.";
        out.gauge(
            "coreloop_build_info",
            help,
            &[(&[("version", &version)], 1)],
        );
        let shards = self.reactor.shards.len() as u64;
        out.gauge(
            "coreloop_shards",
            "Shard threads (event loops).",
            &[(&[], shards)],
        );
        let (ok, failed) = self.sources.server.reloads();
        out.counter(
            "coreloop_config_reloads",
            "SIGHUP reloads by result.",
            &[
                (&[("result", &"success")], ok),
                (&[("result", &"failure")], failed),
            ],
        );
        let (last_ok, at) = self.sources.server.last_reload();
        let name = "coreloop_config_last_reload_successful";
        let help = "1 if the last reload was applied (or none was tried), 0 if it was refused.";
        out.gauge(name, help, &[(&[], u64::from(last_ok))]);
        let name = "coreloop_config_last_reload_success_timestamp_seconds";
        out.family(
            name,
            Kind::Gauge,
            "Unix time of the last applied reload; 0: none.",
        );
        out.sample(name, "", &[], at);
        let draining = u64::from(self.sources.server.draining());
        let help = "1 once SIGTERM or SIGINT started the drain (readiness answers 503).";
        out.gauge("coreloop_draining", help, &[(&[], draining)]);
        let dropped = self.sources.server.dropped();
        let help = "Access-log lines dropped because the writer fell behind.";
        out.counter("coreloop_access_log_dropped", help, &[(&[], dropped)]);
    }

    fn connections(&self, out: &mut Out) {
        let max = self.sources.max_connections;
        let help = "max_connections as running (auto resolved from the fd limit).";
        out.gauge("coreloop_max_connections", help, &[(&[], max)]);
        let free = max.saturating_sub(self.reactor.active());
        let help = "Connection slots free: max_connections less open connections.";
        out.gauge("coreloop_connection_slots_free", help, &[(&[], free)]);
        let name = "coreloop_connections_active";
        out.family(name, Kind::Gauge, "Open connections.");
        for shard in &self.reactor.shards {
            for (index, listener) in shard.listeners.iter().enumerate() {
                let labels: &Labels<'_> =
                    &[("listener", &self.listener(index)), ("shard", &shard.shard)];
                out.sample(name, "", labels, listener.active);
            }
        }
        let name = "coreloop_connections_accepted";
        out.family(name, Kind::Counter, "Connections accepted.");
        for shard in &self.reactor.shards {
            for (index, listener) in shard.listeners.iter().enumerate() {
                let labels: &Labels<'_> =
                    &[("listener", &self.listener(index)), ("shard", &shard.shard)];
                out.sample(name, "_total", labels, listener.accepted);
            }
        }
        let name = "coreloop_connections_closed";
        out.family(name, Kind::Counter, "Connections closed, by reason.");
        for shard in &self.reactor.shards {
            for (index, listener) in shard.listeners.iter().enumerate() {
                for reason in CloseReason::ALL {
                    let labels: &Labels<'_> = &[
                        ("listener", &self.listener(index)),
                        ("reason", &reason.as_str()),
                        ("shard", &shard.shard),
                    ];
                    out.sample(name, "_total", labels, listener.closed_for(reason));
                }
            }
        }
    }

    fn http(&self, out: &mut Out) {
        let name = "coreloop_http_requests";
        let help = "HTTP responses, by route pattern, method and status code.";
        out.family(name, Kind::Counter, help);
        for (listener, routes, shards) in &self.http {
            let listener = self.listener(*listener);
            for shard in shards {
                for series in &shard.series {
                    let route = routes.get(series.route).map_or("", String::as_str);
                    for (code, count) in &series.codes {
                        let labels: &Labels<'_> = &[
                            ("listener", &listener),
                            ("shard", &shard.shard),
                            ("route", &route),
                            ("method", &METHOD_LABELS[series.method]),
                            ("code", &CODE_LABELS[*code]),
                        ];
                        out.sample(name, "_total", labels, count);
                    }
                }
            }
        }
        let name = "coreloop_http_request_duration_seconds";
        let help = "From the first byte of a request read to its response handed to the socket.";
        out.family(name, Kind::Histogram, help);
        for (listener, routes, shards) in &self.http {
            let listener = self.listener(*listener);
            for shard in shards {
                for series in &shard.series {
                    let route = routes.get(series.route).map_or("", String::as_str);
                    let method = METHOD_LABELS[series.method];
                    for (le, cumulative) in LE.iter().zip(series.latency_cumulative) {
                        let labels: &Labels<'_> = &[
                            ("listener", &listener),
                            ("shard", &shard.shard),
                            ("route", &route),
                            ("method", &method),
                            ("le", le),
                        ];
                        out.sample(name, "_bucket", labels, cumulative);
                    }
                    let labels: &Labels<'_> = &[
                        ("listener", &listener),
                        ("shard", &shard.shard),
                        ("route", &route),
                        ("method", &method),
                    ];
                    out.sample(name, "_sum", labels, series.latency_sum_seconds);
                    out.sample(name, "_count", labels, series.latency_count);
                }
            }
        }
    }

    fn bytes(&self, out: &mut Out) {
        let help = "Bytes read from peers.";
        self.per_listener(out, "coreloop_received_bytes", help, |l| l.bytes_in);
        let help = "Bytes written to peers.";
        self.per_listener(out, "coreloop_sent_bytes", help, |l| l.bytes_out);
        let help = "Of the bytes written to peers, those sent from files by sendfile(2).";
        self.per_listener(out, "coreloop_sendfile_bytes", help, |l| l.bytes_sendfile);
    }

    fn accept(&self, out: &mut Out) {
        let accept = &self.reactor.accept;
        let fd_limit = PauseCause::ALL
            .iter()
            .position(|c| *c == PauseCause::FdLimit)
            .map_or(0, |i| accept.paused[i]);
        let help = "Failed accept calls (fd_limit: EMFILE/ENFILE, each also pauses accepting; \
                    listener: not about one connection, the listener backs off).";
        out.counter(
            "coreloop_accept_errors",
            help,
            &[
                (&[("kind", &"fd_limit")], fd_limit),
                (&[("kind", &"other")], accept.accept_errors),
                (&[("kind", &"listener")], accept.listener_errors),
            ],
        );
        let name = "coreloop_accept_paused";
        out.family(name, Kind::Counter, "Times accepting paused, by cause.");
        for (cause, n) in PauseCause::ALL.iter().zip(accept.paused) {
            out.sample(name, "_total", &[("cause", &cause.as_str())], n);
        }
        let name = "coreloop_accept_paused_seconds";
        let help = "Seconds accepting was paused, by cause.";
        out.family(name, Kind::Counter, help);
        for (cause, seconds) in PauseCause::ALL.iter().zip(accept.paused_seconds) {
            out.sample(name, "_total", &[("cause", &cause.as_str())], seconds);
        }
        let name = "coreloop_accepting_paused";
        let help = "Acceptors paused now, by cause (1 with the acceptor; up to one per shard \
                    with reuseport).";
        out.family(name, Kind::Gauge, help);
        for (cause, n) in PauseCause::ALL.iter().zip(accept.paused_now) {
            out.sample(name, "", &[("cause", &cause.as_str())], n);
        }
        let name = "coreloop_handoff_inbox_full";
        let help = "Handoffs that found the shard's inbox full (the next shard was tried).";
        out.family(name, Kind::Counter, help);
        for (shard, n) in self.reactor.inbox_full.iter().enumerate() {
            out.sample(name, "_total", &[("shard", &shard)], n);
        }
    }

    fn offload(&self, out: &mut Out) {
        let r = &self.reactor;
        let help = "Offload jobs waiting for a worker thread.";
        let depth = r.offload_queue_depth;
        out.gauge("coreloop_offload_queue_depth", help, &[(&[], depth)]);
        out.counter(
            "coreloop_offload_jobs",
            "Offload jobs, by outcome.",
            &[
                (&[("outcome", &"completed")], r.offload_completed),
                (&[("outcome", &"panicked")], r.offload_panicked),
                (&[("outcome", &"refused")], r.offload_refused),
            ],
        );
        let help = "Offload jobs dropped unrun when dequeued: past their deadline, or their \
                    connection closed.";
        out.counter(
            "coreloop_offload_jobs_dropped",
            help,
            &[
                (&[("reason", &"deadline")], r.offload_dropped_deadline),
                (&[("reason", &"closed")], r.offload_dropped_closed),
            ],
        );
    }

    fn loops(&self, out: &mut Out) {
        let help = "Turns of each shard's event loop.";
        self.per_shard(out, "coreloop_loop_iterations", help, |s| s.loop_iterations);
        let help = "Readiness events handled.";
        self.per_shard(out, "coreloop_events", help, |s| s.events);
        let help = "Events for a connection already gone (dropped by the token generation).";
        self.per_shard(out, "coreloop_stale_events", help, |s| s.stale_events);
        let help = "Offload completions for a connection already gone (dropped).";
        self.per_shard(out, "coreloop_stale_completions", help, |s| {
            s.stale_completions
        });
        let help = "Waker writes that woke the shard (one per batch of handoffs, completions \
                    and messages, however many).";
        self.per_shard(out, "coreloop_wakes", help, |s| s.wakes);
        let name = "coreloop_messages";
        let help = "Messages to connections of this shard: delivered, stale (the connection was \
                    gone or closing: dropped), refused (sent from this shard into a full queue).";
        out.family(name, Kind::Counter, help);
        for s in &self.reactor.shards {
            for (outcome, value) in [
                ("delivered", s.messages_delivered),
                ("stale", s.messages_stale),
                ("refused", s.messages_refused),
            ] {
                out.sample(
                    name,
                    "_total",
                    &[("outcome", &outcome), ("shard", &s.shard)],
                    value,
                );
            }
        }
    }

    fn outbound(&self, out: &mut Out) {
        let name = "coreloop_outbound_connects";
        let help = "Outbound connects a shard started, by outcome (started counts every one).";
        out.family(name, Kind::Counter, help);
        for s in &self.reactor.shards {
            let o = &s.outbound;
            for (outcome, value) in [
                ("started", o.connects),
                ("connected", o.connected),
                ("refused", o.refused),
                ("timed_out", o.timed_out),
                ("failed", o.failed),
            ] {
                out.sample(
                    name,
                    "_total",
                    &[("outcome", &outcome), ("shard", &s.shard)],
                    value,
                );
            }
        }
        let name = "coreloop_outbound_connections_active";
        let help = "Outbound connections open (connecting or connected); they count in \
                    max_connections too.";
        out.family(name, Kind::Gauge, help);
        for s in &self.reactor.shards {
            out.sample(name, "", &[("shard", &s.shard)], s.outbound.active);
        }
    }

    fn process(&self, out: &mut Out) {
        let p = self.process;
        let mut gauge = |name: &str, help: &str, value: Option<&dyn Display>| {
            out.family(name, Kind::Gauge, help);
            if let Some(value) = value {
                out.sample(name, "", &[], value);
            }
        };
        let help = "Resident memory size in bytes.";
        let rss = p.resident_bytes.as_ref().map(|v| v as &dyn Display);
        gauge("process_resident_memory_bytes", help, rss);
        let fds = p.open_fds.as_ref().map(|v| v as &dyn Display);
        gauge("process_open_fds", "Open file descriptors.", fds);
        let help = "The soft limit on open file descriptors.";
        let max = p.max_fds.as_ref().map(|v| v as &dyn Display);
        gauge("process_max_fds", help, max);
        let help = "Start time of the process since the Unix epoch, in seconds.";
        let start = p.start_time_seconds.as_ref().map(|v| v as &dyn Display);
        gauge("process_start_time_seconds", help, start);
        let name = "process_cpu_seconds";
        out.family(
            name,
            Kind::Counter,
            "User and system CPU time spent, in seconds.",
        );
        if let Some(cpu) = p.cpu_seconds {
            out.sample(name, "_total", &[], cpu);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn le_labels_are_the_buckets() {
        for (le, bound) in LE.iter().zip(LATENCY_BUCKETS) {
            assert_eq!(le.parse::<f64>().unwrap(), bound);
        }
        assert_eq!(LE[LE.len() - 1], "+Inf");
    }

    #[test]
    fn counters_are_named_per_format_and_labels_escaped() {
        for (format, head) in [
            (ExpositionFormat::Prometheus, "# TYPE x_total counter\n"),
            (ExpositionFormat::OpenMetrics, "# TYPE x counter\n"),
        ] {
            let mut out = Out {
                text: String::new(),
                format,
            };
            out.counter("x", "h", &[(&[("l", &"a\"b\\c\nd")], 3)]);
            assert!(out.text.contains(head), "{}", out.text);
            assert!(
                out.text.ends_with("x_total{l=\"a\\\"b\\\\c\\nd\"} 3\n"),
                "{}",
                out.text
            );
        }
    }
}
