//! Latency histograms in microseconds: one per thread, merged at the end,
//! and carried in the JSON in HdrHistogram's interchange encoding.

use base64::Engine as _;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// One hour: anything slower is recorded as one hour.
const MAX_US: u64 = 3_600_000_000;

/// An HDR histogram of durations, 3 significant digits, 1 µs to 1 h.
#[derive(Debug, Clone)]
pub struct Hist(Histogram<u64>);

impl Default for Hist {
    fn default() -> Self {
        // Bounds are constants that hdrhistogram accepts; `new_with_bounds`
        // only fails for a max below 2 * low or sigfig above 5.
        Self(Histogram::new_with_bounds(1, MAX_US, 3).expect("constant histogram bounds are valid"))
    }
}

impl PartialEq for Hist {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}

impl Hist {
    /// A histogram for one second of a series: 2 significant digits, grown
    /// only as far as the largest value recorded. A full-range 3-digit
    /// histogram is 184 KiB, which per second and thread would make an hour's
    /// run hold gigabytes; this one is a few KiB.
    pub fn coarse() -> Self {
        let mut h =
            Histogram::new_with_bounds(1, 2, 2).expect("constant histogram bounds are valid");
        h.auto(true);
        Self(h)
    }

    pub fn record(&mut self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(MAX_US);
        self.record_us(us);
    }

    pub fn record_us(&mut self, us: u64) {
        self.record_n(us, 1);
    }

    /// `record` grows a `coarse` histogram; `saturating_record` would not
    /// (it clamps to the current range), so it is only the fallback.
    fn record_n(&mut self, us: u64, n: u64) {
        let v = us.clamp(1, MAX_US);
        if self.0.record_n(v, n).is_err() {
            self.0.saturating_record_n(v, n);
        }
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

    /// The value at quantile `q` (0..=1), 0 when empty.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.0.is_empty() {
            0
        } else {
            self.0.value_at_quantile(q)
        }
    }

    /// Base64 (standard alphabet, padded) of the compressed V2 encoding, the
    /// form HdrHistogram's Java, C and Go libraries read (`HISTF...`).
    pub fn encode(&self) -> String {
        let mut bytes = Vec::new();
        // Serializing into a Vec only fails for histograms hdrhistogram
        // cannot represent, which ours are not; an empty string says so.
        if V2DeflateSerializer::new()
            .serialize(&self.0, &mut bytes)
            .is_err()
        {
            return String::new();
        }
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    /// Reads what `encode` (or another HdrHistogram tool) wrote; values are
    /// re-recorded into our bounds so any two decoded histograms merge.
    pub fn decode(text: &str) -> Result<Hist, String> {
        Self::decode_into(text, Hist::default())
    }

    /// As `decode`, into a `coarse` histogram (one second of a series).
    pub fn decode_coarse(text: &str) -> Result<Hist, String> {
        Self::decode_into(text, Hist::coarse())
    }

    fn decode_into(text: &str, mut h: Hist) -> Result<Hist, String> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|e| format!("histogram is not base64: {e}"))?;
        let read: Histogram<u64> = Deserializer::new()
            .deserialize(&mut bytes.as_slice())
            .map_err(|e| format!("histogram is not HdrHistogram V2: {e:?}"))?;
        for v in read.iter_recorded() {
            let value = read.highest_equivalent(v.value_iterated_to());
            h.record_n(value, v.count_at_value());
        }
        Ok(h)
    }

    /// The percentile summary the report shows.
    pub fn summary(&self) -> Percentiles {
        let h = &self.0;
        let empty = h.is_empty();
        Percentiles {
            count: h.len(),
            min_us: if empty { 0 } else { h.min() },
            mean_us: if empty { 0.0 } else { round(h.mean(), 1) },
            stdev_us: if empty { 0.0 } else { round(h.stdev(), 1) },
            p50_us: self.quantile(0.5),
            p75_us: self.quantile(0.75),
            p90_us: self.quantile(0.9),
            p99_us: self.quantile(0.99),
            p99_9_us: self.quantile(0.999),
            p99_99_us: self.quantile(0.9999),
            max_us: if empty { 0 } else { h.max() },
        }
    }

    /// `(percentile, value_us)` points for a percentile plot, HdrHistogram's
    /// "percentile distribution" with `ticks` steps per halving of 1 - p.
    pub fn distribution(&self, ticks: u32) -> Vec<(f64, u64)> {
        if self.0.is_empty() {
            return Vec::new();
        }
        self.0
            .iter_quantiles(ticks)
            .map(|v| {
                (
                    round(v.quantile_iterated_to() * 100.0, 6),
                    v.value_iterated_to(),
                )
            })
            .collect()
    }
}

/// `x` rounded to `places` decimals: no float noise in the JSON.
pub fn round(x: f64, places: i32) -> f64 {
    let k = 10f64.powi(places);
    (x * k).round() / k
}

/// Percentiles of a histogram, all in microseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
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

    #[test]
    fn encoding_round_trips_exactly() {
        for values in [
            vec![],
            vec![1u64],
            vec![5, 17, 1_000, 123_456, 3_000_000_000],
        ] {
            let mut h = Hist::default();
            for (i, v) in values.iter().enumerate() {
                for _ in 0..=i {
                    h.record_us(*v);
                }
            }
            let text = h.encode();
            assert!(text.starts_with("HISTF"), "{text}");
            let back = Hist::decode(&text).unwrap();
            assert_eq!(back, h, "values {values:?}");
            assert_eq!(back.summary(), h.summary());
        }
    }

    #[test]
    fn coarse_histograms_stay_small_and_round_trip() {
        let mut h = Hist::coarse();
        for us in [3, 250, 20_000, 1_500_000] {
            h.record_us(us);
        }
        assert!(
            h.0.distinct_values() < 4096,
            "{} counts",
            h.0.distinct_values()
        );
        let back = Hist::decode_coarse(&h.encode()).unwrap();
        assert_eq!(back, h);
        let mut full = Hist::default();
        full.merge(&h);
        assert_eq!(full.len(), 4);
        let max = h.quantile(1.0);
        assert!(max.abs_diff(1_500_000) < 15_000, "grew to the max: {max}");
        assert!(full.quantile(1.0).abs_diff(max) < 15_000);
        assert!(h.quantile(0.5) >= 250, "p50 {}", h.quantile(0.5));
    }

    #[test]
    fn decode_refuses_garbage() {
        assert!(Hist::decode("not base64!").is_err());
        assert!(Hist::decode("aGVsbG8=").is_err());
    }

    #[test]
    fn round_drops_noise() {
        assert_eq!(round(0.1 + 0.2, 3), 0.3);
        assert_eq!(round(266_666.666_67, 1), 266_666.7);
    }
}
