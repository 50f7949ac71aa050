//! Upstreams on a shard: which server a new proxied connection goes to, and which servers are
//! skipped for a while because they failed (passive health). One [`ShardUpstream`] per
//! upstream per tcp-proxy listener per shard, owned by that shard's thread: no lock, no
//! atomic read-modify-write, nothing shared but the counters a scrape reads
//! (`coreloop_metrics::upstream`).
//!
//! Envoy's model: a connection never leaves its shard, so neither does the state that picks
//! its upstream server. Shards so disagree a little (each ejects a failing server only after
//! its own `max_fails` failures), which costs `shards x max_fails` failed connects per
//! outage instead of `max_fails`, and buys a hot path with no shared writes.
//!
//! A connection holds its server's [`ServerSlot`] itself (an `Rc`), not an index: a reload
//! that changes the server list ([`ShardUpstream::update`]) leaves the connections it does not
//! concern untouched, and one to a removed server runs on and releases its own slot.
//!
//! Each slot also owns the server's pool of kept-alive HTTP connections on this shard
//! (`coreloop_http::ServerPool`, `keepalive` and `idle_timeout`; unused by tcp-proxy
//! listeners). A server that leaves the list, or a view that is dropped (an HTTP route's view
//! is rebuilt at each reload), retires its pools: their idle connections close, and the ones
//! carrying a request close after it instead of parking.

mod pick;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use coreloop_config::{Upstream, UpstreamBalance};
use coreloop_http::{PoolGauges, ServerPool};
use coreloop_metrics::upstream::{ServerCounters, ServerStats, UpstreamStats};
use coreloop_reactor::ListenAddr;

use crate::wiring::listen_addr;
use pick::Rng;

/// At most one failure line per upstream per shard per this long.
const LOG_EVERY: Duration = Duration::from_secs(1);

/// One server of an upstream, as this shard sees it.
#[derive(Debug)]
pub(crate) struct ServerSlot {
    pub addr: ListenAddr,
    /// Proxied connections to it open on this shard (connecting or spliced).
    in_flight: Cell<u32>,
    /// Failed connects since the last one that succeeded.
    fails: Cell<u32>,
    /// Skipped until then; `None`: in rotation.
    ejected_until: Cell<Option<Instant>>,
    stats: Arc<ServerStats>,
    shard: usize,
    /// Kept-alive HTTP connections to it on this shard.
    pub pool: Rc<ServerPool>,
}

/// A pool's idle count, as this shard's slot of the server's gauge.
struct IdleGauge {
    stats: Arc<ServerStats>,
    shard: usize,
}

impl PoolGauges for IdleGauge {
    fn idle(&self, delta: i64) {
        self.stats.shard(self.shard).idle_moved(delta);
    }
}

impl ServerSlot {
    fn available(&self, now: Instant) -> bool {
        self.ejected_until.get().is_none_or(|until| now >= until)
    }

    /// This shard's counters of the server.
    pub fn counters(&self) -> &ServerCounters {
        self.stats.shard(self.shard)
    }

    /// A connection counted by [`ShardUpstream::pick`] ended.
    pub fn release(&self) {
        self.in_flight.set(self.in_flight.get().saturating_sub(1));
        self.counters().closed();
    }
}

/// An upstream's servers and balancing state on one shard.
#[derive(Debug)]
pub(crate) struct ShardUpstream {
    pub name: String,
    servers: Vec<Rc<ServerSlot>>,
    balance: UpstreamBalance,
    pub connect_timeout: Duration,
    max_fails: u32,
    fail_timeout: Duration,
    /// Round-robin: the server after the last one picked.
    cursor: usize,
    rng: Rng,
    stats: Arc<UpstreamStats>,
    shard: usize,
    /// Rate limit of failure log lines: the last one, and how many were held back since.
    last_log: Option<Instant>,
    suppressed: u64,
}

/// A shard's upstream, shared by the connections of one listener's factory on that shard.
pub(crate) type Shared = Rc<RefCell<ShardUpstream>>;

/// The servers one connection already tried, so a retry goes elsewhere.
pub(crate) type Tried = Vec<Rc<ServerSlot>>;

impl ShardUpstream {
    /// This shard's view of `spec`; it writes shard `shard`'s slots of `stats`.
    pub fn new(spec: &Upstream, shard: usize, stats: Arc<UpstreamStats>) -> Self {
        let mut upstream = Self {
            name: spec.name.clone(),
            servers: Vec::new(),
            balance: spec.balance,
            connect_timeout: spec.connect_timeout,
            max_fails: spec.max_fails,
            fail_timeout: spec.fail_timeout,
            cursor: shard,
            rng: Rng::new(shard as u64),
            stats: stats.clone(),
            shard,
            last_log: None,
            suppressed: 0,
        };
        upstream.update(spec, stats);
        upstream
    }

    /// Takes a reloaded `spec`: a server kept keeps its slot (its connections, failures and
    /// ejection), a new one joins the rotation, a removed one leaves it (its connections run
    /// on and release their own slot). The other keys apply to the next pick.
    pub fn update(&mut self, spec: &Upstream, stats: Arc<UpstreamStats>) {
        let shard = self.shard;
        let servers: Vec<Rc<ServerSlot>> = (spec.servers.iter())
            .map(|address| {
                let addr = listen_addr(address);
                let kept = self.servers.iter().find(|s| s.addr == addr);
                kept.cloned().unwrap_or_else(|| {
                    let label = address.to_string();
                    let stats = stats.server(&label).cloned();
                    let stats = stats.unwrap_or_else(|| Arc::new(ServerStats::new(&label, 1)));
                    let gauge = IdleGauge {
                        stats: stats.clone(),
                        shard,
                    };
                    let keep = spec.keepalive as usize;
                    let pool = ServerPool::new(keep, spec.idle_timeout, Box::new(gauge));
                    Rc::new(ServerSlot {
                        addr,
                        in_flight: Cell::new(0),
                        fails: Cell::new(0),
                        ejected_until: Cell::new(None),
                        stats,
                        shard,
                        pool: Rc::new(pool),
                    })
                })
            })
            .collect();
        for gone in (self.servers.iter()).filter(|s| !servers.iter().any(|k| Rc::ptr_eq(k, s))) {
            gone.pool.retire();
        }
        self.servers = servers;
        self.balance = spec.balance;
        self.connect_timeout = spec.connect_timeout;
        self.max_fails = spec.max_fails;
        self.fail_timeout = spec.fail_timeout;
        self.stats = stats;
    }

    /// The servers in rotation, in config order.
    #[cfg(test)]
    pub fn servers(&self) -> &[Rc<ServerSlot>] {
        &self.servers
    }

    /// The server for a new connection, by the balance rule, among those not ejected and
    /// not in `tried` (servers this connection already failed on), with its connect counted;
    /// `None`: none is left.
    pub fn pick(&mut self, now: Instant, tried: &Tried) -> Option<Rc<ServerSlot>> {
        let server = self.choose(now, tried)?;
        server.counters().connect_started();
        Some(server)
    }

    /// [`pick`](Self::pick) without counting a connect: an HTTP request may go on a pooled
    /// connection (its caller counts the connect when it dials).
    pub fn choose(&mut self, now: Instant, tried: &Tried) -> Option<Rc<ServerSlot>> {
        let ok = |s: &Rc<ServerSlot>| s.available(now) && !tried.iter().any(|t| Rc::ptr_eq(t, s));
        let picked = match self.balance {
            UpstreamBalance::RoundRobin => pick::round_robin(&self.servers, self.cursor, ok),
            UpstreamBalance::LeastRequests => {
                pick::two_choices(&self.servers, &mut self.rng, |s| s.in_flight.get(), ok)
            }
        }?;
        self.cursor = picked + 1;
        let server = self.servers[picked].clone();
        server.in_flight.set(server.in_flight.get() + 1);
        server.counters().began();
        Some(server)
    }

    /// Whether a server is available that is not in `tried` (what [`choose`](Self::choose)
    /// would find, without choosing).
    pub fn has_other(&self, now: Instant, tried: &Tried) -> bool {
        (self.servers.iter()).any(|s| s.available(now) && !tried.iter().any(|t| Rc::ptr_eq(t, s)))
    }

    /// The connect to `server` succeeded: its failure count starts again.
    pub fn connected(&mut self, server: &ServerSlot) {
        server.fails.set(0);
        if server.ejected_until.take().is_some() {
            server.counters().set_ejected(false);
        }
    }

    /// The connect to `server` failed. The `max_fails`th failure in a row ejects it for
    /// `fail_timeout`; once back, one more failure ejects it again (it is on probation until
    /// a connect succeeds). Whether it was ejected now is returned, for the log.
    pub fn failed(&mut self, server: &ServerSlot, now: Instant) -> bool {
        let fails = server.fails.get().saturating_add(1);
        server.fails.set(fails);
        if self.max_fails == 0 || fails < self.max_fails {
            return false;
        }
        if server
            .ejected_until
            .replace(Some(now + self.fail_timeout))
            .is_none()
        {
            server.counters().set_ejected(true);
        }
        server.counters().ejection();
        true
    }

    /// A connection on this shard found no server to try.
    pub fn no_server(&self) {
        self.stats.no_server(self.shard);
    }

    /// Whether a failure may be logged now; `Some(n)`: yes, and `n` were held back since the
    /// last line.
    pub fn log_gate(&mut self, now: Instant) -> Option<u64> {
        if self.last_log.is_some_and(|at| now < at + LOG_EVERY) {
            self.suppressed += 1;
            return None;
        }
        self.last_log = Some(now);
        Some(std::mem::take(&mut self.suppressed))
    }
}

impl Drop for ShardUpstream {
    /// The view is gone (a reload rebuilt it): nothing may park in its pools any more.
    fn drop(&mut self) {
        for server in &self.servers {
            server.pool.retire();
        }
    }
}

#[cfg(test)]
mod tests;
