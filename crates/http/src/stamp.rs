//! The request latency clock: `CLOCK_MONOTONIC` in nanoseconds
//! ([`coreloop_reactor::monotonic_nanos`]), the clock `Instant` reads without std's wrapping
//! around it, which cost about 110 instructions for the one read and one subtraction every
//! request pays (callgrind, S1; two reads when the request is the first of its turn). A stamp
//! is one u64, and a duration one subtraction.
//!
//! The responses one `on_input` call answers for a connection (a pipelined batch) leave in
//! one write when the call returns, so they are timed together then ([`Untimed`]): one clock
//! read per batch instead of one per response, and each response's time is the time its
//! client waited on the server for it, the batch's earlier requests included.

use std::time::Duration;

use coreloop_reactor::token::ConnToken;

use crate::stats::ShardHttpStats;

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

/// Kinds of response (histogram series: route and method) one batch holds untimed; a batch
/// of more kinds times its held ones at the clock read the next kind forces.
const UNTIMED_SERIES: usize = 4;

/// Responses of one connection's batch, counted but not yet timed: all began at `since` (the
/// first byte of the batch read), and all end when the batch is written.
pub(crate) struct Untimed {
    token: Option<ConnToken>,
    since: Stamp,
    /// `(series, responses)`, the first `len` in use.
    series: [(usize, u64); UNTIMED_SERIES],
    len: usize,
}

impl Untimed {
    pub fn new() -> Self {
        Self {
            token: None,
            since: Stamp(0),
            series: [(0, 0); UNTIMED_SERIES],
            len: 0,
        }
    }

    /// Holds one response of `series` from `token`'s batch begun at `since`, to be timed by
    /// [`Untimed::time`]. What was held for another batch, or past the kinds this holds, is
    /// timed now first.
    pub fn hold(&mut self, token: ConnToken, since: Stamp, series: usize, stats: &ShardHttpStats) {
        if self.len > 0 && (self.token != Some(token) || self.since != since) {
            self.time(Stamp::now(), stats);
        }
        if let Some(held) = self.series[..self.len].iter_mut().find(|h| h.0 == series) {
            held.1 += 1;
            return;
        }
        if self.len == UNTIMED_SERIES {
            self.time(Stamp::now(), stats);
        }
        self.token = Some(token);
        self.since = since;
        self.series[self.len] = (series, 1);
        self.len += 1;
    }

    /// Times every held response as ending at `now`.
    pub fn time(&mut self, now: Stamp, stats: &ShardHttpStats) {
        let took = now.since(self.since);
        for &(series, responses) in &self.series[..self.len] {
            stats.time(series, took, responses);
        }
        self.len = 0;
        self.token = None;
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
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
