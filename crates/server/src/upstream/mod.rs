//! Upstreams on a shard: which server a new proxied connection goes to, and which servers are
//! skipped for a while because they failed (passive health). One [`ShardUpstream`] per
//! upstream per shard, owned by that shard's thread: no lock, no atomic read-modify-write,
//! nothing shared but the counters a scrape reads (`coreloop_metrics::upstream`).
//!
//! Envoy's model: a connection never leaves its shard, so neither does the state that picks
//! its upstream server. Shards so disagree a little (each ejects a failing server only after
//! its own `max_fails` failures), which costs `shards x max_fails` failed connects per
//! outage instead of `max_fails`, and buys a hot path with no shared writes.

mod pick;

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use coreloop_config::{Upstream, UpstreamBalance};
use coreloop_metrics::upstream::{ServerCounters, ShardUpstreamStats, UpstreamStats};
use coreloop_reactor::ListenAddr;

use crate::wiring::listen_addr;
use pick::Rng;

/// One server of an upstream, as this shard sees it.
#[derive(Debug)]
pub(crate) struct ServerState {
    pub addr: ListenAddr,
    /// Proxied connections to it open on this shard (connecting or spliced).
    pub in_flight: u32,
    /// Failed connects since the last one that succeeded.
    pub fails: u32,
    /// Skipped until then; `None`: in rotation.
    pub ejected_until: Option<Instant>,
}

impl ServerState {
    fn available(&self, now: Instant) -> bool {
        self.ejected_until.is_none_or(|until| now >= until)
    }
}

/// An upstream's servers and balancing state on one shard.
#[derive(Debug)]
pub(crate) struct ShardUpstream {
    pub name: String,
    pub servers: Vec<ServerState>,
    pub balance: UpstreamBalance,
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

/// At most one failure line per upstream per shard per this long.
const LOG_EVERY: Duration = Duration::from_secs(1);

/// A shard's upstream, shared by the connections of that shard's proxy listeners.
pub(crate) type Shared = Rc<RefCell<ShardUpstream>>;

impl ShardUpstream {
    /// This shard's view of `spec`; it writes shard `shard`'s slots of `stats`.
    pub fn new(spec: &Upstream, shard: usize, stats: Arc<UpstreamStats>) -> Self {
        Self {
            name: spec.name.clone(),
            servers: spec
                .servers
                .iter()
                .map(|addr| ServerState {
                    addr: listen_addr(addr),
                    in_flight: 0,
                    fails: 0,
                    ejected_until: None,
                })
                .collect(),
            balance: spec.balance,
            connect_timeout: spec.connect_timeout,
            max_fails: spec.max_fails,
            fail_timeout: spec.fail_timeout,
            cursor: shard,
            rng: Rng::new(shard as u64),
            stats,
            shard,
            last_log: None,
            suppressed: 0,
        }
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

    /// This shard's counters of the upstream.
    pub fn stats(&self) -> &ShardUpstreamStats {
        self.stats.shard(self.shard)
    }

    fn counters(&self, server: usize) -> &ServerCounters {
        self.stats().server(server)
    }

    /// The server for a new connection, by the balance rule, among those not ejected and
    /// not in `tried` (servers this connection already failed on); `None`: none is left.
    pub fn pick(&mut self, now: Instant, tried: &Tried) -> Option<usize> {
        let ok = |i: usize, s: &ServerState| s.available(now) && !tried.has(i);
        let picked = match self.balance {
            UpstreamBalance::RoundRobin => pick::round_robin(&self.servers, self.cursor, ok),
            UpstreamBalance::LeastRequests => {
                pick::two_choices(&self.servers, &mut self.rng, |s| s.in_flight, ok)
            }
        }?;
        self.cursor = picked + 1;
        self.servers[picked].in_flight += 1;
        self.counters(picked).opened();
        Some(picked)
    }

    /// The connect to `server` succeeded: its failure count starts again.
    pub fn connected(&mut self, server: usize) {
        let s = &mut self.servers[server];
        s.fails = 0;
        if s.ejected_until.take().is_some() {
            self.counters(server).set_ejected(false);
        }
    }

    /// The connect to `server` failed. The `max_fails`th failure in a row ejects it for
    /// `fail_timeout`; once back, one more failure ejects it again (it is on probation until
    /// a connect succeeds). Whether it was ejected now is returned, for the log.
    pub fn failed(&mut self, server: usize, now: Instant) -> bool {
        let s = &mut self.servers[server];
        s.fails = s.fails.saturating_add(1);
        if self.max_fails == 0 || s.fails < self.max_fails {
            return false;
        }
        let was_ejected = s.ejected_until.is_some();
        s.ejected_until = Some(now + self.fail_timeout);
        if !was_ejected {
            self.counters(server).set_ejected(true);
        }
        self.counters(server).ejection();
        true
    }

    /// A connection counted by [`pick`](Self::pick) ended.
    pub fn released(&mut self, server: usize) {
        let s = &mut self.servers[server];
        s.in_flight = s.in_flight.saturating_sub(1);
        self.counters(server).closed();
    }
}

/// The servers one connection already tried, so a retry goes elsewhere. Upstreams are
/// small (a config lists them by hand): past 128 servers, retries may revisit one.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Tried(u128);

impl Tried {
    pub fn add(&mut self, server: usize) {
        if server < 128 {
            self.0 |= 1 << server;
        }
    }

    pub fn has(&self, server: usize) -> bool {
        server < 128 && self.0 & (1 << server) != 0
    }
}

#[cfg(test)]
mod tests;
