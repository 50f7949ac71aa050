//! Per-shard HTTP counters: responses by route, method and status code, and a latency
//! histogram by route and method.
//!
//! Every label is bounded without looking at the network: `route` is a slot of the
//! listener's configured path patterns (interned once per pattern, at most [`ROUTE_SLOTS`]),
//! `method` one of [`METHOD_LABELS`] (the methods the router tells apart, others `other`),
//! `code` one of [`CODE_LABELS`] (the codes coreloop and its handlers send; any other status
//! a custom handler or a static route picks is counted as its class, such as `2xx`).
//!
//! Atomic ordering: each [`ShardHttpStats`] has one writer, its shard, which updates with a
//! `Relaxed` load and store (no read-modify-write needed); the scraper reads with `Relaxed`
//! loads and may see a figure one request old, never a torn one. Each shard's block is its
//! own allocation, so two shards never write the same line.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crossbeam_utils::CachePadded;

use crate::head::Method;

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

const BUCKETS: usize = LATENCY_BUCKETS.len() + 1;

/// Route slots per listener: slot 0 is `none` (no route answered: 404, 405, `OPTIONS *`, or
/// a request refused before routing), the last is `other` (patterns past the first
/// `ROUTE_SLOTS - 2` a listener was ever configured with, across reloads).
pub const ROUTE_SLOTS: usize = 32;
/// `route` of a response no route answered.
pub const NO_ROUTE: usize = 0;
const OTHER_ROUTE: usize = ROUTE_SLOTS - 1;

/// `method` label values, by `method_index`.
pub const METHOD_LABELS: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "other"];

/// The `method` slot of a method.
pub fn method_index(method: Method) -> usize {
    match method {
        Method::Get => 0,
        Method::Head => 1,
        Method::Post => 2,
        Method::Put => 3,
        Method::Delete => 4,
        Method::Options => 5,
        Method::Other => 6,
    }
}

/// The `method` slot of a request whose method is unknown (refused before its line parsed).
pub const UNKNOWN_METHOD: usize = 6;

/// Status codes counted as themselves: those coreloop sends (RFC 9110 §15) and the common
/// ones a handler may choose. Then the five class slots for any other code.
const CODES: [u16; 39] = [
    100, 101, 200, 201, 202, 204, 206, 301, 302, 303, 304, 307, 308, 400, 401, 403, 404, 405, 406,
    408, 409, 410, 411, 412, 413, 414, 415, 416, 417, 421, 422, 429, 431, 500, 501, 502, 503, 504,
    505,
];

/// `code` label values, by slot: `CODES`, then `1xx` to `5xx`.
pub const CODE_LABELS: [&str; 44] = [
    "100", "101", "200", "201", "202", "204", "206", "301", "302", "303", "304", "307", "308",
    "400", "401", "403", "404", "405", "406", "408", "409", "410", "411", "412", "413", "414",
    "415", "416", "417", "421", "422", "429", "431", "500", "501", "502", "503", "504", "505",
    "1xx", "2xx", "3xx", "4xx", "5xx",
];

const CODE_SLOTS: usize = CODE_LABELS.len();

fn code_slot(status: u16) -> usize {
    match CODE_TABLE.get(usize::from(status).wrapping_sub(100)) {
        Some(&slot) => usize::from(slot),
        None => class_slot(status),
    }
}

/// The slot of a status outside `CODES`: its class, clamped to `1xx`-`5xx`.
const fn class_slot(status: u16) -> usize {
    let class = (status / 100) as usize;
    let class = if class < 1 {
        1
    } else if class > 5 {
        5
    } else {
        class
    };
    CODES.len() + class - 1
}

/// `code_slot` of every status from 100 to 599, made at compile time: one load per response
/// where a binary search over `CODES` took about 25 instructions.
const CODE_TABLE: [u8; 500] = {
    let mut table = [0u8; 500];
    let mut status = 100;
    while status < 600 {
        table[status - 100] = class_slot(status as u16) as u8;
        status += 1;
    }
    let mut slot = 0;
    while slot < CODES.len() {
        table[CODES[slot] as usize - 100] = slot as u8;
        slot += 1;
    }
    table
};

const SERIES: usize = ROUTE_SLOTS * METHOD_LABELS.len();

/// One shard's counters; written only by that shard. About 120 KiB, allocated once per shard
/// and listener.
#[derive(Debug)]
pub struct ShardHttpStats {
    /// `[series][code]`.
    requests: Box<[AtomicU64]>,
    /// `[series][bucket]`, per bucket (made cumulative at scrape time).
    buckets: Box<[AtomicU64]>,
    /// `[series]`, microseconds.
    latency_micros: Box<[AtomicU64]>,
}

fn zeroed(n: usize) -> Box<[AtomicU64]> {
    (0..n).map(|_| AtomicU64::new(0)).collect()
}

impl Default for ShardHttpStats {
    fn default() -> Self {
        Self {
            requests: zeroed(SERIES * CODE_SLOTS),
            buckets: zeroed(SERIES * BUCKETS),
            latency_micros: zeroed(SERIES),
        }
    }
}

fn bump(counter: &AtomicU64, by: u64) {
    counter.store(counter.load(Relaxed).wrapping_add(by), Relaxed);
}

impl ShardHttpStats {
    /// Records one response: its route slot, method slot, status and the time from the first
    /// byte of its request.
    #[inline]
    pub fn record(&self, route: usize, method: usize, status: u16, latency: Duration) {
        let series = series(route, method);
        self.count(series, status);
        self.time(series, latency, 1);
    }

    /// Counts one response of `series` (from [`series`]) with `status`, its time to come
    /// ([`ShardHttpStats::time`]).
    #[inline]
    pub(crate) fn count(&self, series: usize, status: u16) {
        bump(&self.requests[series * CODE_SLOTS + code_slot(status)], 1);
    }

    /// Times `responses` responses of `series` that each took `latency`.
    #[inline]
    pub(crate) fn time(&self, series: usize, latency: Duration, responses: u64) {
        // Not `as_micros`: its u128 division is a libcall, on every response.
        let micros = (latency.as_secs().saturating_mul(1_000_000))
            .saturating_add(u64::from(latency.subsec_micros()));
        let bucket = BUCKET_MICROS
            .iter()
            .position(|&b| micros <= b)
            .unwrap_or(BUCKET_MICROS.len());
        bump(&self.buckets[series * BUCKETS + bucket], responses);
        bump(
            &self.latency_micros[series],
            micros.saturating_mul(responses),
        );
    }
}

/// The histogram series of a route slot and a method slot.
#[inline]
pub(crate) fn series(route: usize, method: usize) -> usize {
    route.min(OTHER_ROUTE) * METHOD_LABELS.len() + method.min(UNKNOWN_METHOD)
}

/// The figures of one (route, method) pair that has served at least one response.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SeriesSnapshot {
    /// Route slot: a name from [`HttpStats::route_names`].
    pub route: usize,
    /// Index into [`METHOD_LABELS`].
    pub method: usize,
    /// `(index into CODE_LABELS, responses)`, codes with at least one.
    pub codes: Vec<(usize, u64)>,
    /// Cumulative counts per bucket of [`LATENCY_BUCKETS`], then `+Inf` (Prometheus `le`).
    pub latency_cumulative: [u64; BUCKETS],
    /// Sum of latencies, in seconds.
    pub latency_sum_seconds: f64,
    /// Responses timed (equals the `+Inf` bucket).
    pub latency_count: u64,
}

/// One shard's figures at one moment.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ShardHttpSnapshot {
    /// The shard.
    pub shard: usize,
    /// Pairs that have served a response, by route slot then method.
    pub series: Vec<SeriesSnapshot>,
}

/// The counters of every shard of one listener, and the route patterns behind the slots;
/// shared by the factory and the scraper.
#[derive(Debug, Default)]
pub struct HttpStats {
    shards: Mutex<Vec<Option<Arc<CachePadded<ShardHttpStats>>>>>,
    /// Patterns by slot - 1 (slot 0 is `none`); only grows, so a slot keeps its meaning.
    routes: Mutex<Vec<String>>,
}

impl HttpStats {
    /// The block of `shard`, made on first use (once per shard, off the hot path).
    pub fn for_shard(&self, shard: usize) -> Arc<CachePadded<ShardHttpStats>> {
        let mut shards = self.shards.lock().unwrap_or_else(PoisonError::into_inner);
        if shards.len() <= shard {
            shards.resize(shard + 1, None);
        }
        shards[shard].get_or_insert_with(Default::default).clone()
    }

    /// The slot of a configured route pattern (at config compile time, not per request).
    pub fn route_slot(&self, pattern: &str) -> usize {
        let mut routes = self.routes.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(i) = routes.iter().position(|p| p == pattern) {
            return i + 1;
        }
        if routes.len() + 1 >= OTHER_ROUTE {
            return OTHER_ROUTE;
        }
        routes.push(pattern.to_owned());
        routes.len()
    }

    /// `route` label values by slot: `none`, the patterns, then `other` (always the last).
    pub fn route_names(&self) -> Vec<String> {
        let routes = self.routes.lock().unwrap_or_else(PoisonError::into_inner);
        let mut names = vec!["none".to_owned()];
        names.extend(routes.iter().cloned());
        names.resize(OTHER_ROUTE, String::new());
        names.push("other".to_owned());
        names
    }

    /// Every shard's figures, by shard number.
    pub fn snapshot(&self) -> Vec<ShardHttpSnapshot> {
        let shards = self.shards.lock().unwrap_or_else(PoisonError::into_inner);
        let live = shards
            .iter()
            .enumerate()
            .filter_map(|(i, s)| Some((i, s.as_ref()?)));
        live.map(|(shard, stats)| snapshot_one(shard, stats))
            .collect()
    }
}

fn snapshot_one(shard: usize, stats: &ShardHttpStats) -> ShardHttpSnapshot {
    let mut series = Vec::new();
    for index in 0..SERIES {
        let buckets = &stats.buckets[index * BUCKETS..(index + 1) * BUCKETS];
        let mut one = SeriesSnapshot {
            route: index / METHOD_LABELS.len(),
            method: index % METHOD_LABELS.len(),
            ..Default::default()
        };
        let mut running = 0;
        for (out, counter) in one.latency_cumulative.iter_mut().zip(buckets) {
            running += counter.load(Relaxed);
            *out = running;
        }
        if running == 0 {
            continue;
        }
        one.latency_count = running;
        one.latency_sum_seconds = stats.latency_micros[index].load(Relaxed) as f64 / 1e6;
        let codes = &stats.requests[index * CODE_SLOTS..(index + 1) * CODE_SLOTS];
        one.codes = (codes.iter().enumerate())
            .map(|(code, n)| (code, n.load(Relaxed)))
            .filter(|(_, n)| *n > 0)
            .collect();
        series.push(one);
    }
    ShardHttpSnapshot { shard, series }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_bounds_agree() {
        for (micros, seconds) in BUCKET_MICROS.iter().zip(LATENCY_BUCKETS) {
            assert_eq!(*micros as f64 / 1e6, seconds);
        }
        const { assert!(BUCKETS <= 16) };
    }

    #[test]
    fn codes_are_themselves_or_their_class() {
        assert!(
            CODES.windows(2).all(|w| w[0] < w[1]),
            "sorted for binary search"
        );
        for (slot, code) in CODES.iter().enumerate() {
            assert_eq!(CODE_LABELS[slot], code.to_string());
            assert_eq!(code_slot(*code), slot);
        }
        let label = |status| CODE_LABELS[code_slot(status)];
        assert_eq!(label(299), "2xx");
        assert_eq!(label(599), "5xx");
        assert_eq!(label(42), "1xx");
        assert_eq!(label(999), "5xx");
        assert_eq!(label(0), "1xx");
        assert_eq!(label(u16::MAX), "5xx");
        // The table agrees with the search it replaced, for every status.
        for status in 0..=u16::MAX {
            let searched = match CODES.binary_search(&status) {
                Ok(slot) => slot,
                Err(_) => CODES.len() + usize::from(status / 100).clamp(1, 5) - 1,
            };
            assert_eq!(code_slot(status), searched, "{status}");
        }
    }

    #[test]
    fn route_slots_are_bounded_and_stable() {
        let stats = HttpStats::default();
        assert_eq!(stats.route_slot("/a"), 1);
        assert_eq!(stats.route_slot("/b/*"), 2);
        assert_eq!(stats.route_slot("/a"), 1);
        for i in 0..100 {
            assert!(stats.route_slot(&format!("/r{i}")) <= OTHER_ROUTE);
        }
        let names = stats.route_names();
        assert_eq!(names.len(), ROUTE_SLOTS);
        assert_eq!((names[0].as_str(), names[1].as_str()), ("none", "/a"));
        assert_eq!(names[OTHER_ROUTE], "other");
        assert_eq!(stats.route_slot("/r99"), OTHER_ROUTE);
    }

    #[test]
    fn records_land_in_their_series_code_and_bucket() {
        let stats = HttpStats::default();
        let shard = stats.for_shard(1);
        shard.record(1, 0, 200, Duration::from_micros(400));
        shard.record(1, 0, 404, Duration::from_millis(3));
        shard.record(NO_ROUTE, UNKNOWN_METHOD, 503, Duration::from_secs(20));
        let snapshot = stats.snapshot();
        assert_eq!(snapshot.len(), 1);
        assert_eq!(snapshot[0].shard, 1);
        let series = &snapshot[0].series;
        assert_eq!(series.len(), 2);
        let (none, get) = (&series[0], &series[1]);
        assert_eq!((none.route, none.method), (NO_ROUTE, UNKNOWN_METHOD));
        assert_eq!(none.codes, vec![(code_slot(503), 1)]);
        assert_eq!(none.latency_cumulative[14], 0); // 10 s
        assert_eq!(none.latency_count, 1);
        assert_eq!((get.route, get.method), (1, 0));
        assert_eq!(get.codes, vec![(code_slot(200), 1), (code_slot(404), 1)]);
        assert_eq!(get.latency_cumulative[3], 0); // 250 µs
        assert_eq!(get.latency_cumulative[4], 1); // 500 µs
        assert_eq!(get.latency_cumulative[6], 1); // 2.5 ms
        assert_eq!(get.latency_cumulative[7], 2); // 5 ms
        assert_eq!(get.latency_count, 2);
    }
}
