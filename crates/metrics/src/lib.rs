//! coreloop's metrics: the reactor's and the HTTP protocol's per-shard counters, summed and
//! labelled at scrape time, plus process figures from `/proc/self`.
//!
//! Nothing here runs on a shard. A scrape reads `Relaxed` atomics that each shard publishes
//! (see `coreloop_reactor::stats`), so it never takes a lock a shard could wait on and never
//! stalls one. The exposition is written with the `prometheus-client` crate's encoder (which
//! speaks OpenMetrics 1.0) and served as the Prometheus text format 0.0.4, which
//! `promtool check metrics` accepts; docs/METRICS.md lists every family.

#![forbid(unsafe_code)]

mod exposition;
pub mod process;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use coreloop_http::HttpStats;
use coreloop_reactor::StatsReader;

pub use exposition::{render, CONTENT_TYPE};

/// Counters kept by the server itself (not by a shard). Bumped off the hot path, so plain
/// `fetch_add` is fine here.
#[derive(Debug, Default)]
pub struct ServerStats {
    reloads_ok: AtomicU64,
    reloads_failed: AtomicU64,
    access_log_dropped: AtomicU64,
}

impl ServerStats {
    /// Counts one SIGHUP reload, applied or refused.
    pub fn reload(&self, ok: bool) {
        let counter = if ok {
            &self.reloads_ok
        } else {
            &self.reloads_failed
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts access-log lines dropped because the writer's queue was full.
    pub fn access_log_dropped(&self, n: u64) {
        self.access_log_dropped.fetch_add(n, Ordering::Relaxed);
    }

    /// Reloads so far: (applied, refused).
    pub fn reloads(&self) -> (u64, u64) {
        (
            self.reloads_ok.load(Ordering::Relaxed),
            self.reloads_failed.load(Ordering::Relaxed),
        )
    }

    /// Access-log lines dropped so far.
    pub fn dropped(&self) -> u64 {
        self.access_log_dropped.load(Ordering::Relaxed)
    }
}

/// Everything a scrape reads.
#[derive(Clone)]
pub struct Sources {
    /// The reactor's counters.
    pub reactor: StatsReader,
    /// Listener names, in listener order (the `listener` label).
    pub listeners: Vec<String>,
    /// The HTTP counters of each HTTP listener, by listener index.
    pub http: Vec<(usize, Arc<HttpStats>)>,
    /// Reloads and access-log drops.
    pub server: Arc<ServerStats>,
    /// `coreloop_build_info{version}`.
    pub version: &'static str,
}

impl std::fmt::Debug for Sources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sources")
            .field("listeners", &self.listeners)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}
