//! The scrape: read every snapshot once, then write each family through `prometheus-client`'s
//! encoder (a [`Collector`] over owned snapshot data, so encoding holds no lock anywhere).

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use coreloop_http::{ShardHttpSnapshot, LATENCY_BUCKETS};
use coreloop_reactor::{CloseReason, PauseCause, Snapshot};

use crate::process::{self, ProcessSnapshot};
use crate::Sources;

/// The content type of [`render`]'s text: the Prometheus text format 0.0.4, which every
/// scraper and `promtool check metrics` read.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

type Labels = Vec<(&'static str, String)>;

/// Reads every counter now and returns the exposition text.
pub fn render(sources: &Sources) -> String {
    let scrape = Scrape {
        reactor: sources.reactor.snapshot(),
        http: sources
            .http
            .iter()
            .map(|(listener, stats)| (*listener, stats.snapshot()))
            .collect(),
        listeners: sources.listeners.clone(),
        reloads: sources.server.reloads(),
        access_log_dropped: sources.server.dropped(),
        version: sources.version,
        process: process::snapshot(),
    };
    let mut registry = Registry::default();
    registry.register_collector(Box::new(scrape));
    let mut text = String::with_capacity(16 * 1024);
    // Writing to a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut text, &registry);
    openmetrics_to_prometheus(&text)
}

/// prometheus-client writes OpenMetrics 1.0 text. The two formats differ, for what we expose,
/// in two ways: an OpenMetrics counter family is named without `_total` in its `HELP`/`TYPE`
/// lines (its samples carry it), and the text ends with `# EOF`. Rewriting those gives the
/// 0.0.4 text format that `promtool check metrics` accepts.
fn openmetrics_to_prometheus(openmetrics: &str) -> String {
    let counters: std::collections::HashSet<&str> = openmetrics
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len() + 16 * counters.len());
    for line in openmetrics.lines() {
        if line == "# EOF" {
            continue;
        }
        match descriptor(line) {
            Some((kind, name, rest)) if counters.contains(name) => {
                out.push_str(&format!("# {kind} {name}_total{rest}"));
            }
            _ => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

/// Splits `# HELP name rest` or `# TYPE name rest` into its parts (`rest` keeps its space).
fn descriptor(line: &str) -> Option<(&str, &str, &str)> {
    let rest = line.strip_prefix("# ")?;
    let (kind, rest) = rest.split_once(' ')?;
    if kind != "HELP" && kind != "TYPE" {
        return None;
    }
    let end = rest.find(' ').unwrap_or(rest.len());
    Some((kind, &rest[..end], &rest[end..]))
}

/// One scrape's worth of figures, owned.
#[derive(Debug)]
struct Scrape {
    reactor: Snapshot,
    http: Vec<(usize, Vec<ShardHttpSnapshot>)>,
    listeners: Vec<String>,
    reloads: (u64, u64),
    access_log_dropped: u64,
    version: &'static str,
    process: ProcessSnapshot,
}

impl Collector for Scrape {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let e = &mut encoder;
        self.build(e)?;
        self.connections(e)?;
        self.http(e)?;
        self.bytes(e)?;
        self.accept(e)?;
        self.offload(e)?;
        self.loops(e)?;
        self.process(e)
    }
}

impl Scrape {
    fn listener(&self, index: usize) -> String {
        self.listeners.get(index).cloned().unwrap_or_default()
    }

    fn per_shard(
        &self,
        value: impl Fn(&coreloop_reactor::stats::ShardSnapshot) -> u64,
    ) -> Vec<(Labels, u64)> {
        let shards = self.reactor.shards.iter();
        shards
            .map(|s| (vec![("shard", s.shard.to_string())], value(s)))
            .collect()
    }

    fn build(&self, e: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let info = vec![(vec![("version", self.version.to_owned())], 1u64)];
        gauge(
            e,
            "coreloop_build_info",
            "The running version; always 1.",
            &info,
        )?;
        let shards = vec![(Labels::new(), self.reactor.shards.len() as u64)];
        gauge(
            e,
            "coreloop_shards",
            "Shard threads (event loops).",
            &shards,
        )?;
        let (ok, failed) = self.reloads;
        let reloads = vec![
            (vec![("result", "success".to_owned())], ok),
            (vec![("result", "failure".to_owned())], failed),
        ];
        counter(
            e,
            "coreloop_config_reloads",
            "SIGHUP reloads by result.",
            &reloads,
        )?;
        let dropped = vec![(Labels::new(), self.access_log_dropped)];
        let help = "Access-log lines dropped because the writer fell behind.";
        counter(e, "coreloop_access_log_dropped", help, &dropped)
    }

    fn connections(&self, e: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let (mut active, mut accepted) = (Vec::new(), Vec::new());
        for shard in &self.reactor.shards {
            for (index, listener) in shard.listeners.iter().enumerate() {
                let labels = vec![
                    ("listener", self.listener(index)),
                    ("shard", shard.shard.to_string()),
                ];
                active.push((labels.clone(), listener.active));
                accepted.push((labels, listener.accepted));
            }
        }
        gauge(
            e,
            "coreloop_connections_active",
            "Open connections.",
            &active,
        )?;
        let help = "Connections accepted.";
        counter(e, "coreloop_connections_accepted", help, &accepted)?;
        let mut closed = Vec::new();
        for shard in &self.reactor.shards {
            for reason in CloseReason::ALL {
                let labels = vec![
                    ("shard", shard.shard.to_string()),
                    ("reason", reason.as_str().to_owned()),
                ];
                closed.push((labels, shard.closed_for(reason)));
            }
        }
        let help = "Connections closed, by reason.";
        counter(e, "coreloop_connections_closed", help, &closed)
    }

    fn http(&self, e: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut requests = Vec::new();
        for (listener, shards) in &self.http {
            for shard in shards {
                for (class, count) in CLASSES.iter().zip(shard.responses_by_class) {
                    let labels = vec![
                        ("listener", self.listener(*listener)),
                        ("shard", shard.shard.to_string()),
                        ("code", (*class).to_owned()),
                    ];
                    requests.push((labels, count));
                }
            }
        }
        let help = "HTTP responses, by status class.";
        counter(e, "coreloop_http_requests", help, &requests)?;
        let help = "From the first byte of a request to its response being queued.";
        let mut family = e.encode_descriptor(
            "coreloop_http_request_duration_seconds",
            help,
            None,
            MetricType::Histogram,
        )?;
        for (listener, shards) in &self.http {
            for shard in shards {
                let labels = vec![
                    ("listener", self.listener(*listener)),
                    ("shard", shard.shard.to_string()),
                ];
                let buckets = buckets(shard);
                family
                    .encode_family(&labels)?
                    .encode_histogram::<NoLabelSet>(
                        shard.latency_sum_seconds,
                        shard.latency_count,
                        &buckets,
                        None,
                    )?;
            }
        }
        Ok(())
    }

    fn bytes(&self, e: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let received = self.per_shard(|s| s.bytes_in);
        counter(
            e,
            "coreloop_received_bytes",
            "Bytes read from peers.",
            &received,
        )?;
        let sent = self.per_shard(|s| s.bytes_out);
        counter(e, "coreloop_sent_bytes", "Bytes written to peers.", &sent)
    }

    fn accept(&self, e: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let accept = &self.reactor.accept;
        let fd_limit = PauseCause::ALL
            .iter()
            .position(|c| *c == PauseCause::FdLimit)
            .map_or(0, |i| accept.paused[i]);
        let errors = vec![
            (vec![("kind", "fd_limit".to_owned())], fd_limit),
            (vec![("kind", "other".to_owned())], accept.accept_errors),
            (
                vec![("kind", "listener".to_owned())],
                accept.listener_errors,
            ),
        ];
        let help = "Failed accept calls (fd_limit: EMFILE/ENFILE, each also pauses accepting; \
                    listener: not about one connection, the listener backs off).";
        counter(e, "coreloop_accept_errors", help, &errors)?;
        let cause = |c: &PauseCause| vec![("cause", c.as_str().to_owned())];
        let paused: Vec<_> = PauseCause::ALL
            .iter()
            .zip(accept.paused)
            .map(|(c, n)| (cause(c), n))
            .collect();
        counter(
            e,
            "coreloop_accept_paused",
            "Times accepting paused, by cause.",
            &paused,
        )?;
        let seconds: Vec<_> = PauseCause::ALL
            .iter()
            .zip(accept.paused_seconds)
            .map(|(c, s)| (cause(c), s))
            .collect();
        let help = "Seconds accepting was paused, by cause.";
        counter(e, "coreloop_accept_paused_seconds", help, &seconds)?;
        let full: Vec<_> = (self.reactor.inbox_full.iter().enumerate())
            .map(|(shard, n)| (vec![("shard", shard.to_string())], *n))
            .collect();
        let help = "Handoffs that found the shard's inbox full (the next shard was tried).";
        counter(e, "coreloop_handoff_inbox_full", help, &full)
    }

    fn offload(&self, e: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let r = &self.reactor;
        let depth = vec![(Labels::new(), r.offload_queue_depth)];
        let help = "Offload jobs waiting for a worker thread.";
        gauge(e, "coreloop_offload_queue_depth", help, &depth)?;
        let outcome = |o: &str| vec![("outcome", o.to_owned())];
        let jobs = vec![
            (outcome("completed"), r.offload_completed),
            (outcome("panicked"), r.offload_panicked),
            (outcome("refused"), r.offload_refused),
        ];
        counter(
            e,
            "coreloop_offload_jobs",
            "Offload jobs, by outcome.",
            &jobs,
        )?;
        let reason = |o: &str| vec![("reason", o.to_owned())];
        let dropped = vec![
            (reason("deadline"), r.offload_dropped_deadline),
            (reason("closed"), r.offload_dropped_closed),
        ];
        let help = "Offload jobs dropped unrun when dequeued: past their deadline, or their \
                    connection closed.";
        counter(e, "coreloop_offload_jobs_dropped", help, &dropped)
    }

    fn loops(&self, e: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let iterations = self.per_shard(|s| s.loop_iterations);
        let help = "Turns of each shard's event loop.";
        counter(e, "coreloop_loop_iterations", help, &iterations)?;
        let events = self.per_shard(|s| s.events);
        counter(e, "coreloop_events", "Readiness events handled.", &events)?;
        let stale = self.per_shard(|s| s.stale_events);
        let help = "Events for a connection already gone (dropped by the token generation).";
        counter(e, "coreloop_stale_events", help, &stale)?;
        let stale = self.per_shard(|s| s.stale_completions);
        let help = "Offload completions for a connection already gone (dropped).";
        counter(e, "coreloop_stale_completions", help, &stale)
    }

    fn process(&self, e: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let p = &self.process;
        let one = |v: Option<u64>| v.map(|v| vec![(Labels::new(), v)]).unwrap_or_default();
        let help = "Resident memory size in bytes.";
        gauge(
            e,
            "process_resident_memory_bytes",
            help,
            &one(p.resident_bytes),
        )?;
        gauge(
            e,
            "process_open_fds",
            "Open file descriptors.",
            &one(p.open_fds),
        )?;
        let help = "The soft limit on open file descriptors.";
        gauge(e, "process_max_fds", help, &one(p.max_fds))?;
        let cpu: Vec<_> = p
            .cpu_seconds
            .map(|v| (Labels::new(), v))
            .into_iter()
            .collect();
        let help = "User and system CPU time spent, in seconds.";
        counter(e, "process_cpu_seconds", help, &cpu)?;
        let start: Vec<_> =
            (p.start_time_seconds.map(|v| (Labels::new(), v)).into_iter()).collect();
        let help = "Start time of the process since the Unix epoch, in seconds.";
        gauge(e, "process_start_time_seconds", help, &start)
    }
}

/// Per-bucket counts (the encoder accumulates) from the shard's cumulative ones; `+Inf` is
/// `f64::MAX` to the encoder.
fn buckets(shard: &ShardHttpSnapshot) -> Vec<(f64, u64)> {
    let bounds = LATENCY_BUCKETS.iter().copied().chain([f64::MAX]);
    let mut previous = 0;
    bounds
        .zip(shard.latency_cumulative)
        .map(|(bound, cumulative)| {
            let count = cumulative.saturating_sub(previous);
            previous = cumulative;
            (bound, count)
        })
        .collect()
}

/// A counter family; `name` without `_total` (the encoder appends it to each sample).
fn counter<V>(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    samples: &[(Labels, V)],
) -> Result<(), std::fmt::Error>
where
    V: prometheus_client::encoding::EncodeCounterValue,
{
    let mut family = e.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (labels, value) in samples {
        if labels.is_empty() {
            family.encode_counter::<NoLabelSet, V, f64>(value, None)?;
        } else {
            let mut metric = family.encode_family(labels)?;
            metric.encode_counter::<NoLabelSet, V, f64>(value, None)?;
        }
    }
    Ok(())
}

fn gauge<V>(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    samples: &[(Labels, V)],
) -> Result<(), std::fmt::Error>
where
    V: prometheus_client::encoding::EncodeGaugeValue,
{
    let mut family = e.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (labels, value) in samples {
        if labels.is_empty() {
            family.encode_gauge(value)?;
        } else {
            family.encode_family(labels)?.encode_gauge(value)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cumulative_buckets_become_per_bucket_counts() {
        let shard = ShardHttpSnapshot {
            latency_cumulative: [1, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 4],
            ..Default::default()
        };
        let b = buckets(&shard);
        assert_eq!(b.len(), LATENCY_BUCKETS.len() + 1);
        assert_eq!((b[0].1, b[1].1, b[2].1), (1, 2, 0));
        assert_eq!(b[14], (f64::MAX, 1));
    }
}
