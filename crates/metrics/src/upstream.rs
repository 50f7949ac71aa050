//! Counters of each `[[upstream]]`, per shard and server: what a proxy listener did with its
//! servers. Each shard writes only its own slots (plain load + store, `Relaxed`: one writer,
//! no read-modify-write on the hot path); a scrape on any thread sums them over shards.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use coreloop_http::LATENCY_BUCKETS;

use crate::exposition::{Kind, Out, LE};

/// Buckets of the response histogram: [`LATENCY_BUCKETS`], then `+Inf`.
const BUCKETS: usize = LATENCY_BUCKETS.len() + 1;

/// One upstream's counters, for every shard and server. A reload that changes the server
/// list makes a new one with [`UpstreamStats::reshaped`]: servers kept keep their counters.
#[derive(Debug)]
pub struct UpstreamStats {
    /// The `upstream` label.
    pub name: String,
    /// In config order; each one's `server` label is its address.
    pub servers: Vec<Arc<ServerStats>>,
    /// Per shard: connections that found no server to try (all ejected, or all failed).
    /// Shared with the reshaped copies, so it survives a reload.
    no_server: Arc<[AtomicU64]>,
}

/// One server's counters on every shard.
#[derive(Debug)]
pub struct ServerStats {
    /// The `server` label.
    pub addr: String,
    shards: Box<[ServerCounters]>,
}

/// One server's counters on one shard.
#[derive(Debug, Default)]
pub struct ServerCounters {
    connects: AtomicU64,
    refused: AtomicU64,
    timed_out: AtomicU64,
    failed: AtomicU64,
    retries: AtomicU64,
    active: AtomicU64,
    ejected: AtomicU64,
    ejections: AtomicU64,
    /// HTTP proxy routes: response heads by status class (1xx..5xx).
    responses: [AtomicU64; 5],
    /// HTTP proxy routes: exchanges that failed, by [`RESPONSE_FAILURES`].
    response_errors: [AtomicU64; 3],
    /// HTTP proxy routes: exchanges timed, per bucket (not cumulative; the scrape sums).
    latency: [AtomicU64; BUCKETS],
    latency_sum_micros: AtomicU64,
    /// HTTP proxy routes: kept-alive connections parked in this shard's pools (gauge).
    idle: AtomicU64,
    /// HTTP proxy routes: requests sent on a pooled connection instead of a new one.
    reused: AtomicU64,
    /// HTTP proxy routes: requests begun with this server, one per attempt.
    requests: AtomicU64,
}

/// Why a connect to a server failed, as the `cause` label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectFailure {
    Refused,
    TimedOut,
    /// Any other error (reset, unreachable, no room under `max_connections`, a drain).
    Other,
}

/// The `cause` label values, in [`ConnectFailure`] order.
pub const CONNECT_FAILURES: [&str; 3] = ["refused", "timed_out", "other"];

/// Why a proxied HTTP exchange failed after its connect, as the `cause` label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResponseFailure {
    /// An invalid or ambiguous response head, or a bad body framing (502 or a cut response).
    Invalid,
    /// No response head within `response_timeout` (504).
    TimedOut,
    /// The server closed or reset the connection before the response was complete.
    Closed,
}

/// The `cause` label values, in [`ResponseFailure`] order.
pub const RESPONSE_FAILURES: [&str; 3] = ["invalid", "timed_out", "closed"];

/// The `class` label values of responses.
pub const STATUS_CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

fn bump(counter: &AtomicU64) {
    counter.store(counter.load(Relaxed).wrapping_add(1), Relaxed);
}

impl ServerStats {
    /// Zeroed counters for `shards` shards.
    pub fn new(addr: &str, shards: usize) -> Self {
        Self {
            addr: addr.to_string(),
            shards: (0..shards.max(1))
                .map(|_| ServerCounters::default())
                .collect(),
        }
    }

    /// The counters shard `shard` writes.
    pub fn shard(&self, shard: usize) -> &ServerCounters {
        &self.shards[shard.min(self.shards.len() - 1)]
    }

    fn snapshot(&self) -> ServerSnapshot {
        let mut sum = ServerSnapshot::default();
        for c in self.shards.iter() {
            sum.connects += c.connects.load(Relaxed);
            sum.connect_errors[0] += c.refused.load(Relaxed);
            sum.connect_errors[1] += c.timed_out.load(Relaxed);
            sum.connect_errors[2] += c.failed.load(Relaxed);
            sum.retries += c.retries.load(Relaxed);
            sum.active += c.active.load(Relaxed);
            sum.ejected += c.ejected.load(Relaxed);
            sum.ejections += c.ejections.load(Relaxed);
            for (n, c) in sum.responses.iter_mut().zip(&c.responses) {
                *n += c.load(Relaxed);
            }
            for (n, c) in sum.response_errors.iter_mut().zip(&c.response_errors) {
                *n += c.load(Relaxed);
            }
            for (n, c) in sum.latency.iter_mut().zip(&c.latency) {
                *n += c.load(Relaxed);
            }
            sum.latency_sum_micros += c.latency_sum_micros.load(Relaxed);
            sum.idle += c.idle.load(Relaxed);
            sum.reused += c.reused.load(Relaxed);
            sum.requests += c.requests.load(Relaxed);
        }
        sum
    }
}

impl UpstreamStats {
    /// Zeroed counters for `shards` shards of an upstream with these server addresses.
    pub fn new(name: &str, servers: &[String], shards: usize) -> Self {
        Self {
            name: name.to_string(),
            servers: (servers.iter())
                .map(|a| Arc::new(ServerStats::new(a, shards)))
                .collect(),
            no_server: (0..shards.max(1)).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// The same upstream with the server list `servers`: a server kept keeps its counters,
    /// a new one starts at zero, a removed one is no longer exposed.
    pub fn reshaped(&self, servers: &[String]) -> Self {
        let shards = self.no_server.len();
        let server = |addr: &String| {
            (self.servers.iter())
                .find(|s| &s.addr == addr)
                .cloned()
                .unwrap_or_else(|| Arc::new(ServerStats::new(addr, shards)))
        };
        Self {
            name: self.name.clone(),
            servers: servers.iter().map(server).collect(),
            no_server: self.no_server.clone(),
        }
    }

    /// The server with this address, if listed.
    pub fn server(&self, addr: &str) -> Option<&Arc<ServerStats>> {
        self.servers.iter().find(|s| s.addr == addr)
    }

    /// A connection on `shard` found no server to try.
    pub fn no_server(&self, shard: usize) {
        bump(&self.no_server[shard.min(self.no_server.len() - 1)]);
    }

    /// Sums over shards, per server.
    pub fn snapshot(&self) -> UpstreamSnapshot {
        UpstreamSnapshot {
            servers: self.servers.iter().map(|s| s.snapshot()).collect(),
            no_server: self.no_server.iter().map(|n| n.load(Relaxed)).sum(),
        }
    }
}

impl ServerCounters {
    /// A connect to this server started (the connection is active until [`Self::closed`]).
    pub fn opened(&self) {
        self.connect_started();
        self.began();
    }

    /// A proxied request or connection to this server began (active until
    /// [`Self::closed`]), on a new connection or a pooled one.
    pub fn began(&self) {
        bump(&self.active);
    }

    /// A connect to this server started.
    pub fn connect_started(&self) {
        bump(&self.connects);
    }

    /// HTTP proxy routes: a request is begun with this server, one per attempt (a new or a
    /// pooled connection, a retry, an attempt whose connect fails).
    pub fn request_sent(&self) {
        bump(&self.requests);
    }

    /// A request went on a pooled connection: no connect.
    pub fn reused(&self) {
        bump(&self.reused);
    }

    /// Connections parked in this shard's pools moved by `delta`.
    pub fn idle_moved(&self, delta: i64) {
        let n = self.idle.load(Relaxed) as i64;
        self.idle
            .store(n.saturating_add(delta).max(0) as u64, Relaxed);
    }

    /// A connection counted by [`Self::opened`] ended.
    pub fn closed(&self) {
        let n = self.active.load(Relaxed);
        self.active.store(n.saturating_sub(1), Relaxed);
    }

    /// A connect to this server failed.
    pub fn connect_failed(&self, why: ConnectFailure) {
        bump(match why {
            ConnectFailure::Refused => &self.refused,
            ConnectFailure::TimedOut => &self.timed_out,
            ConnectFailure::Other => &self.failed,
        });
    }

    /// A connection that failed on another server was tried again on this one.
    pub fn retried(&self) {
        bump(&self.retries);
    }

    /// An HTTP response head with this status came from the server.
    pub fn responded(&self, status: u16) {
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        bump(&self.responses[class]);
    }

    /// A proxied HTTP exchange with this server failed after its connect.
    pub fn response_failed(&self, why: ResponseFailure) {
        bump(&self.response_errors[why as usize]);
    }

    /// An HTTP exchange with this server ended, `latency` after its connect (a complete
    /// response or a failed one: a timeout is timed as the `response_timeout` it waited).
    pub fn response_took(&self, latency: std::time::Duration) {
        let seconds = latency.as_secs_f64();
        let bucket = LATENCY_BUCKETS.partition_point(|&bound| bound < seconds);
        bump(&self.latency[bucket]);
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        let sum = &self.latency_sum_micros;
        sum.store(sum.load(Relaxed).saturating_add(micros), Relaxed);
    }

    /// Passive health ejected this server (again).
    pub fn ejection(&self) {
        bump(&self.ejections);
    }

    /// Whether this shard skips the server now (the gauge).
    pub fn set_ejected(&self, ejected: bool) {
        self.ejected.store(u64::from(ejected), Relaxed);
    }
}

/// An upstream's counters summed over shards.
#[derive(Debug, Clone, Default)]
pub struct UpstreamSnapshot {
    /// Per server, in config order.
    pub servers: Vec<ServerSnapshot>,
    pub no_server: u64,
}

/// One server's counters summed over shards.
#[derive(Debug, Clone, Copy, Default)]
pub struct ServerSnapshot {
    pub connects: u64,
    /// By [`CONNECT_FAILURES`].
    pub connect_errors: [u64; 3],
    pub retries: u64,
    pub active: u64,
    /// Shards that skip the server now (0..=shards).
    pub ejected: u64,
    pub ejections: u64,
    /// By [`STATUS_CLASSES`].
    pub responses: [u64; 5],
    /// By [`RESPONSE_FAILURES`].
    pub response_errors: [u64; 3],
    /// Exchanges timed per bucket of [`LATENCY_BUCKETS`] then `+Inf`, not cumulative.
    pub latency: [u64; BUCKETS],
    pub latency_sum_micros: u64,
    /// Pooled idle connections.
    pub idle: u64,
    pub reused: u64,
    /// Requests sent, retries included.
    pub requests: u64,
}

/// The `coreloop_upstream_*` families (none when no upstream is configured).
pub(crate) fn write(out: &mut Out, upstreams: &[Arc<UpstreamStats>]) {
    if upstreams.is_empty() {
        return;
    }
    let snaps: Vec<UpstreamSnapshot> = upstreams.iter().map(|u| u.snapshot()).collect();
    type Get = fn(&ServerSnapshot) -> u64;
    let per_server: [(&str, Kind, &str, Get); 8] = [
        (
            "coreloop_upstream_requests",
            Kind::Counter,
            "HTTP proxy routes: requests begun with this server, one per attempt (new or pooled \
             connection; retries and failed connects count).",
            |s| s.requests,
        ),
        (
            "coreloop_upstream_connects",
            Kind::Counter,
            "Connects started to an upstream server (one per proxied connection, request not \
             served by a pooled connection, and retry).",
            |s| s.connects,
        ),
        (
            "coreloop_upstream_retries",
            Kind::Counter,
            "Connects to this server that retry a connection another server failed.",
            |s| s.retries,
        ),
        (
            "coreloop_upstream_ejections",
            Kind::Counter,
            "Times passive health ejected this server on a shard (max_fails failures in a row).",
            |s| s.ejections,
        ),
        (
            "coreloop_upstream_reused",
            Kind::Counter,
            "HTTP proxy routes: requests sent on a pooled kept-alive connection, no connect.",
            |s| s.reused,
        ),
        (
            "coreloop_upstream_connections_active",
            Kind::Gauge,
            "Proxied connections or requests in progress with this server (connecting, \
             spliced, or carrying a request).",
            |s| s.active,
        ),
        (
            "coreloop_upstream_connections_idle",
            Kind::Gauge,
            "HTTP proxy routes: kept-alive connections to this server idle in a pool.",
            |s| s.idle,
        ),
        (
            "coreloop_upstream_ejected",
            Kind::Gauge,
            "Shards that skip this server now (passive health), 0 when it is in rotation.",
            |s| s.ejected,
        ),
    ];
    for (name, kind, help, get) in per_server {
        out.family(name, kind, help);
        let suffix = if kind == Kind::Counter { "_total" } else { "" };
        for (u, snap) in upstreams.iter().zip(&snaps) {
            for (server, s) in u.servers.iter().zip(&snap.servers) {
                out.sample(
                    name,
                    suffix,
                    &[("upstream", &u.name), ("server", &server.addr)],
                    get(s),
                );
            }
        }
    }
    let name = "coreloop_upstream_connect_errors";
    let help = "Failed connects to an upstream server, by cause: refused, timed_out \
                (connect_timeout), other.";
    out.family(name, Kind::Counter, help);
    for (u, snap) in upstreams.iter().zip(&snaps) {
        for (server, s) in u.servers.iter().zip(&snap.servers) {
            for (cause, value) in CONNECT_FAILURES.iter().zip(s.connect_errors) {
                let labels: [(&str, &dyn std::fmt::Display); 3] = [
                    ("upstream", &u.name),
                    ("server", &server.addr),
                    ("cause", cause),
                ];
                out.sample(name, "_total", &labels, value);
            }
        }
    }
    let name = "coreloop_upstream_responses";
    let help = "HTTP proxy routes: response heads from an upstream server, by status class.";
    out.family(name, Kind::Counter, help);
    for (u, snap) in upstreams.iter().zip(&snaps) {
        for (server, s) in u.servers.iter().zip(&snap.servers) {
            for (class, value) in STATUS_CLASSES.iter().zip(s.responses) {
                let labels: [(&str, &dyn std::fmt::Display); 3] = [
                    ("upstream", &u.name),
                    ("server", &server.addr),
                    ("class", class),
                ];
                out.sample(name, "_total", &labels, value);
            }
        }
    }
    let name = "coreloop_upstream_response_errors";
    let help = "HTTP proxy routes: exchanges that failed after the connect, by cause: invalid \
                (bad response head or framing), timed_out (response_timeout), closed (closed or \
                reset before the response was complete).";
    out.family(name, Kind::Counter, help);
    for (u, snap) in upstreams.iter().zip(&snaps) {
        for (server, s) in u.servers.iter().zip(&snap.servers) {
            for (cause, value) in RESPONSE_FAILURES.iter().zip(s.response_errors) {
                let labels: [(&str, &dyn std::fmt::Display); 3] = [
                    ("upstream", &u.name),
                    ("server", &server.addr),
                    ("cause", cause),
                ];
                out.sample(name, "_total", &labels, value);
            }
        }
    }
    let name = "coreloop_upstream_response_duration_seconds";
    let help = "HTTP proxy routes: from the connect to an upstream server to the end of the \
                exchange (the whole response in the client's output, or its failure).";
    out.family(name, Kind::Histogram, help);
    for (u, snap) in upstreams.iter().zip(&snaps) {
        for (server, s) in u.servers.iter().zip(&snap.servers) {
            let mut cumulative = 0;
            for (le, n) in LE.iter().zip(s.latency) {
                cumulative += n;
                let labels: [(&str, &dyn std::fmt::Display); 3] =
                    [("upstream", &u.name), ("server", &server.addr), ("le", le)];
                out.sample(name, "_bucket", &labels, cumulative);
            }
            let labels: [(&str, &dyn std::fmt::Display); 2] =
                [("upstream", &u.name), ("server", &server.addr)];
            out.sample(name, "_sum", &labels, s.latency_sum_micros as f64 / 1e6);
            out.sample(name, "_count", &labels, cumulative);
        }
    }
    let name = "coreloop_upstream_no_server";
    let help = "Proxied connections closed because no server was left to try (all ejected \
                or all failed).";
    out.family(name, Kind::Counter, help);
    for (u, snap) in upstreams.iter().zip(&snaps) {
        out.sample(name, "_total", &[("upstream", &u.name)], snap.no_server);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn servers(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    #[test]
    fn shards_are_summed_per_server() {
        let stats = UpstreamStats::new("app", &servers(&["a", "b"]), 2);
        let (a, b) = (&stats.servers[0], &stats.servers[1]);
        b.shard(0).opened();
        b.shard(1).opened();
        b.shard(1).closed();
        a.shard(0).connect_failed(ConnectFailure::TimedOut);
        a.shard(1).set_ejected(true);
        a.shard(1).ejection();
        stats.no_server(0);
        let snap = stats.snapshot();
        assert_eq!((snap.servers[1].connects, snap.servers[1].active), (2, 1));
        assert_eq!(snap.servers[0].connect_errors, [0, 1, 0]);
        assert_eq!((snap.servers[0].ejected, snap.servers[0].ejections), (1, 1));
        assert_eq!(snap.no_server, 1);
    }

    #[test]
    fn response_latencies_fall_in_their_buckets() {
        use std::time::Duration;
        let stats = UpstreamStats::new("app", &servers(&["a"]), 2);
        let a = &stats.servers[0];
        a.shard(0).response_took(Duration::from_micros(25)); // on a bound: that bucket
        a.shard(1).response_took(Duration::from_micros(26));
        a.shard(1).response_took(Duration::from_secs(30)); // past the last bound: +Inf
        let snap = &stats.snapshot().servers[0];
        assert_eq!(&snap.latency[..3], &[1, 1, 0]);
        assert_eq!(snap.latency[BUCKETS - 1], 1);
        assert_eq!(snap.latency.iter().sum::<u64>(), 3);
        assert_eq!(snap.latency_sum_micros, 30_000_051);
    }

    #[test]
    fn a_reshape_keeps_the_counters_of_servers_kept() {
        let stats = UpstreamStats::new("app", &servers(&["a", "b"]), 1);
        stats.servers[1].shard(0).opened();
        stats.no_server(0);
        let next = stats.reshaped(&servers(&["b", "c"]));
        let snap = next.snapshot();
        assert_eq!(next.servers[0].addr, "b");
        assert_eq!((snap.servers[0].connects, snap.servers[1].connects), (1, 0));
        assert_eq!(snap.no_server, 1);
        assert!(next.server("a").is_none());
    }
}
