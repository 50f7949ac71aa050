//! Per-second figures over the measured phase: responses, failures and a
//! latency histogram per second, by the second in which each request ended.

use std::time::{Duration, Instant};

use crate::histogram::Hist;

/// A series never grows past this many seconds (a 24 h run); later results
/// go into the last second so the memory stays bounded.
pub const MAX_SECONDS: usize = 86_400;

/// One second of the measured phase.
#[derive(Debug, Clone, PartialEq)]
pub struct Second {
    /// Measured requests answered in this second (any status).
    pub completed: u64,
    /// Measured requests that failed in this second (read, write, timeout, malformed).
    pub failed: u64,
    /// `Hist::coarse`: 2 significant digits.
    pub latency: Hist,
}

impl Default for Second {
    fn default() -> Self {
        Self {
            completed: 0,
            failed: 0,
            latency: Hist::coarse(),
        }
    }
}

/// Seconds since the start of the measured phase. A slot is created the
/// first time something ends in it (one allocation per second, not per request).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Series {
    pub seconds: Vec<Second>,
}

impl Series {
    fn slot(&mut self, start: Instant, now: Instant) -> &mut Second {
        let i = (now.saturating_duration_since(start).as_secs() as usize).min(MAX_SECONDS - 1);
        if self.seconds.len() <= i {
            self.seconds.resize_with(i + 1, Second::default);
        }
        &mut self.seconds[i]
    }

    /// The histogram grows (an allocation) only when a latency beyond its
    /// range so far arrives: a handful of times per second at most.
    pub fn completed(&mut self, start: Instant, now: Instant, latency: Duration) {
        let s = self.slot(start, now);
        s.completed += 1;
        s.latency.record(latency);
    }

    pub fn failed(&mut self, start: Instant, now: Instant, n: u64) {
        self.slot(start, now).failed += n;
    }

    /// Adds `other` second by second (both count from their own measured start).
    pub fn merge(&mut self, other: &Series) {
        if self.seconds.len() < other.seconds.len() {
            self.seconds
                .resize_with(other.seconds.len(), Second::default);
        }
        for (a, b) in self.seconds.iter_mut().zip(&other.seconds) {
            a.completed += b.completed;
            a.failed += b.failed;
            a.latency.merge(&b.latency);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_land_in_their_second_and_merge() {
        let t0 = Instant::now();
        let mut a = Series::default();
        a.completed(t0, t0 + Duration::from_millis(10), Duration::from_micros(5));
        a.completed(
            t0,
            t0 + Duration::from_millis(2500),
            Duration::from_micros(7),
        );
        a.failed(t0, t0 + Duration::from_millis(2999), 2);
        assert_eq!(a.seconds.len(), 3);
        assert_eq!(a.seconds[1], Second::default());
        assert_eq!((a.seconds[2].completed, a.seconds[2].failed), (1, 2));
        let mut b = Series::default();
        b.completed(t0, t0, Duration::from_micros(9));
        b.merge(&a);
        assert_eq!(b.seconds[0].completed, 2);
        assert_eq!(b.seconds[0].latency.len(), 2);
    }
}
