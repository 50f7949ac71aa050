//! Latency histograms in microseconds: one per thread, merged at the end.

use hdrhistogram::Histogram;
use serde::Serialize;
use std::time::Duration;

/// One hour: anything slower is recorded as one hour.
const MAX_US: u64 = 3_600_000_000;

/// An HDR histogram of durations, 3 significant digits, 1 µs to 1 h.
#[derive(Debug, Clone)]
pub struct Hist(Histogram<u64>);

impl Default for Hist {
    fn default() -> Self {
        // Bounds are constants that hdrhistogram accepts; `new_with_max` only
        // fails for a max below 2 * low or sigfig above 5.
        Self(Histogram::new_with_bounds(1, MAX_US, 3).expect("constant histogram bounds are valid"))
    }
}

impl Hist {
    pub fn record(&mut self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(MAX_US);
        self.0.saturating_record(us.min(MAX_US));
    }

    pub fn reset(&mut self) {
        self.0.reset();
    }

    pub fn len(&self) -> u64 {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Adds `other` in; both share bounds, so this cannot fail in practice.
    pub fn merge(&mut self, other: &Hist) {
        if self.0.add(&other.0).is_err() {
            // Unreachable with equal bounds; keep the run's other figures anyway.
            debug_assert!(false, "histograms with equal bounds must merge");
        }
    }

    /// The percentile summary the report shows.
    pub fn summary(&self) -> Percentiles {
        let h = &self.0;
        let q = |p: f64| {
            if h.is_empty() {
                0
            } else {
                h.value_at_quantile(p)
            }
        };
        Percentiles {
            count: h.len(),
            min_us: if h.is_empty() { 0 } else { h.min() },
            mean_us: if h.is_empty() { 0.0 } else { h.mean() },
            stdev_us: if h.is_empty() { 0.0 } else { h.stdev() },
            p50_us: q(0.5),
            p75_us: q(0.75),
            p90_us: q(0.9),
            p99_us: q(0.99),
            p99_9_us: q(0.999),
            p99_99_us: q(0.9999),
            max_us: if h.is_empty() { 0 } else { h.max() },
        }
    }
}

/// Percentiles of a histogram, all in microseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Percentiles {
    pub count: u64,
    pub min_us: u64,
    pub mean_us: f64,
    pub stdev_us: f64,
    pub p50_us: u64,
    pub p75_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub p99_9_us: u64,
    pub p99_99_us: u64,
    pub max_us: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_and_percentiles() {
        let mut a = Hist::default();
        let mut b = Hist::default();
        for i in 1..=99 {
            a.record(Duration::from_micros(i));
        }
        b.record(Duration::from_secs(1));
        a.merge(&b);
        let s = a.summary();
        assert_eq!(s.count, 100);
        assert_eq!(s.p50_us, 50);
        assert!(s.max_us >= 999_000, "max {}", s.max_us);
        assert!(s.p99_us <= 99, "p99 {}", s.p99_us);
    }

    #[test]
    fn huge_values_saturate() {
        let mut a = Hist::default();
        a.record(Duration::from_secs(100_000));
        assert!(a.summary().max_us >= MAX_US - MAX_US / 1000);
    }
}
