//! The request latency clock: `CLOCK_MONOTONIC` in nanoseconds
//! ([`coreloop_reactor::monotonic_nanos`]), the clock `Instant` reads without std's wrapping
//! around it, which cost about 110 instructions for the one read and one subtraction every
//! request pays (callgrind, S1; two reads when the request is the first of its turn). A stamp
//! is one u64, and a duration one subtraction.

use std::time::Duration;

/// A reading of the monotonic clock, in nanoseconds from an arbitrary start (boot).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Stamp(u64);

impl Stamp {
    /// The clock now.
    #[inline]
    pub fn now() -> Self {
        Self(coreloop_reactor::monotonic_nanos())
    }

    /// The time from `earlier` to this stamp (zero if `earlier` is later).
    #[inline]
    pub fn since(self, earlier: Stamp) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    /// The same clock as `Instant`: an interval measured with stamps lies between the
    /// intervals measured with instants inside and around it, and stamps never go backwards.
    #[test]
    fn stamps_measure_what_instants_measure() {
        let outer = Instant::now();
        let first = Stamp::now();
        let inner = Instant::now();
        let mut last = first;
        for _ in 0..10_000 {
            let next = Stamp::now();
            assert!(next >= last, "the clock went backwards");
            last = next;
        }
        // Let 2 ms pass (bounded: a spin on the clock being compared).
        while inner.elapsed() < Duration::from_millis(2) {
            std::hint::spin_loop();
        }
        let within = inner.elapsed();
        let second = Stamp::now();
        let around = outer.elapsed();
        let by_stamps = second.since(first);
        assert!(
            within <= by_stamps && by_stamps <= around,
            "{within:?} <= {by_stamps:?} <= {around:?}"
        );
        assert_eq!(first.since(second), Duration::ZERO, "saturates");
    }
}
