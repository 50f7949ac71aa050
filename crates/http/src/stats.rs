//! Per-shard HTTP counters: responses by status class and a latency histogram.
//!
//! Atomic ordering: each [`ShardHttpStats`] has one writer, its shard, which updates with a
//! `Relaxed` load and store (no read-modify-write needed); the scraper reads with `Relaxed`
//! loads and may see a figure one request old, never a torn one. Each shard's block is
//! cache-padded so two shards never write the same line.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crossbeam_utils::CachePadded;

/// Upper bounds of the latency buckets, in seconds (the last bucket, `+Inf`, is implicit):
/// from an in-memory answer (tens of microseconds) to a slow upstream, 16 with `+Inf`.
pub const LATENCY_BUCKETS: [f64; 15] = [
    0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.25, 1.0,
    2.5, 10.0,
];

const BUCKET_MICROS: [u64; 15] = [
    25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 100_000, 250_000, 1_000_000,
    2_500_000, 10_000_000,
];

/// One shard's counters; written only by that shard.
#[derive(Debug, Default)]
pub struct ShardHttpStats {
    classes: [AtomicU64; 5],
    buckets: [AtomicU64; LATENCY_BUCKETS.len() + 1],
    latency_micros: AtomicU64,
}

fn bump(counter: &AtomicU64, by: u64) {
    counter.store(counter.load(Relaxed).wrapping_add(by), Relaxed);
}

impl ShardHttpStats {
    /// Records one response and the time from the start of its request.
    pub fn record(&self, status: u16, latency: Duration) {
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        bump(&self.classes[class], 1);
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        let bucket = BUCKET_MICROS
            .iter()
            .position(|&b| micros <= b)
            .unwrap_or(BUCKET_MICROS.len());
        bump(&self.buckets[bucket], 1);
        bump(&self.latency_micros, micros);
    }
}

/// One shard's figures at one moment.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ShardHttpSnapshot {
    /// The shard.
    pub shard: usize,
    /// Responses by class: `[1xx, 2xx, 3xx, 4xx, 5xx]`.
    pub responses_by_class: [u64; 5],
    /// Cumulative counts per bucket of [`LATENCY_BUCKETS`], then `+Inf` (Prometheus `le`).
    pub latency_cumulative: [u64; LATENCY_BUCKETS.len() + 1],
    /// Sum of latencies, in seconds.
    pub latency_sum_seconds: f64,
    /// Responses timed (equals the `+Inf` bucket).
    pub latency_count: u64,
}

/// The counters of every shard of one listener; shared by the factory and the scraper.
#[derive(Debug, Default)]
pub struct HttpStats {
    shards: Mutex<Vec<Option<Arc<CachePadded<ShardHttpStats>>>>>,
}

impl HttpStats {
    /// The block of `shard`, made on first use (once per shard, off the hot path).
    pub fn for_shard(&self, shard: usize) -> Arc<CachePadded<ShardHttpStats>> {
        let mut shards = self
            .shards
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if shards.len() <= shard {
            shards.resize(shard + 1, None);
        }
        shards[shard].get_or_insert_with(Default::default).clone()
    }

    /// Every shard's figures, by shard number.
    pub fn snapshot(&self) -> Vec<ShardHttpSnapshot> {
        let shards = self
            .shards
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let live = shards
            .iter()
            .enumerate()
            .filter_map(|(i, s)| Some((i, s.as_ref()?)));
        live.map(|(shard, stats)| snapshot_one(shard, stats))
            .collect()
    }
}

fn snapshot_one(shard: usize, stats: &ShardHttpStats) -> ShardHttpSnapshot {
    let mut snapshot = ShardHttpSnapshot {
        shard,
        ..Default::default()
    };
    for (out, counter) in snapshot.responses_by_class.iter_mut().zip(&stats.classes) {
        *out = counter.load(Relaxed);
    }
    let mut running = 0;
    for (out, counter) in snapshot.latency_cumulative.iter_mut().zip(&stats.buckets) {
        running += counter.load(Relaxed);
        *out = running;
    }
    snapshot.latency_count = running;
    snapshot.latency_sum_seconds = stats.latency_micros.load(Relaxed) as f64 / 1e6;
    snapshot
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_bounds_agree() {
        for (micros, seconds) in BUCKET_MICROS.iter().zip(LATENCY_BUCKETS) {
            assert_eq!(*micros as f64 / 1e6, seconds);
        }
        assert!(LATENCY_BUCKETS.len() < 16);
    }

    #[test]
    fn records_land_in_their_class_and_bucket() {
        let stats = HttpStats::default();
        let shard = stats.for_shard(1);
        shard.record(200, Duration::from_micros(400));
        shard.record(404, Duration::from_millis(3));
        shard.record(503, Duration::from_secs(20));
        let snapshot = stats.snapshot();
        assert_eq!(snapshot.len(), 1);
        assert_eq!(snapshot[0].shard, 1);
        assert_eq!(snapshot[0].responses_by_class, [0, 1, 0, 1, 1]);
        assert_eq!(snapshot[0].latency_cumulative[4], 1); // 500 µs
        assert_eq!(snapshot[0].latency_cumulative[3], 0); // 250 µs
        assert_eq!(snapshot[0].latency_cumulative[6], 1); // 2.5 ms
        assert_eq!(snapshot[0].latency_cumulative[7], 2); // 5 ms
        assert_eq!(snapshot[0].latency_cumulative[14], 2); // 10 s
        assert_eq!(snapshot[0].latency_count, 3);
    }
}
