//! A connection's deadlines in 8 bytes each.
//!
//! An `Option<Instant>` takes 16 bytes; every connection carries two deadlines, so they are
//! kept as nanoseconds after the shard's epoch (its timer wheel's start,
//! [`crate::timer::TimerWheel::epoch`]) instead, with `None` in the niche of a non-zero count.
//! u64 nanoseconds last 584 years: no wrap-around to handle while a server runs.

use std::num::NonZeroU64;
use std::time::{Duration, Instant};

/// A moment after an epoch, to the nanosecond. Moments compare correctly only against moments
/// of the same epoch; a shard has one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Moment(NonZeroU64);

impl Moment {
    /// `at` counted from `epoch`. A moment before the epoch becomes the epoch: it has passed
    /// anyway, as every `now` a shard sees is at or after its epoch.
    pub fn new(epoch: Instant, at: Instant) -> Self {
        let nanos =
            u64::try_from(at.saturating_duration_since(epoch).as_nanos()).unwrap_or(u64::MAX - 1);
        Self(NonZeroU64::MIN.saturating_add(nanos))
    }

    /// `after` later: u64 arithmetic only, no `Instant` to subtract (what a deadline set
    /// relative to the loop's `now` costs per request).
    pub fn after(self, after: Duration) -> Self {
        let nanos = after
            .as_secs()
            .saturating_mul(1_000_000_000)
            .saturating_add(u64::from(after.subsec_nanos()));
        Self(self.0.saturating_add(nanos))
    }

    /// Nanoseconds after the epoch.
    pub fn nanos(self) -> u64 {
        self.0.get() - 1
    }

    /// This moment as an `Instant`, given the epoch it was made with.
    pub fn instant(self, epoch: Instant) -> Instant {
        epoch + Duration::from_nanos(self.nanos())
    }
}

/// A shard's `now` as a [`Moment`], converted once per loop turn: every drive of a turn gets
/// the same `now`, and the conversion (an `Instant` subtraction and a u128 `as_nanos`) cost
/// about 55 instructions per readiness event when each drive made it (callgrind, S1).
#[derive(Clone, Copy, Debug)]
pub(crate) struct MomentCache {
    at: Instant,
    moment: Moment,
}

impl MomentCache {
    /// A cache holding the epoch itself.
    pub fn new(epoch: Instant) -> Self {
        Self {
            at: epoch,
            moment: Moment::new(epoch, epoch),
        }
    }

    /// `now` counted from `epoch`; `epoch` must be the same on every call.
    pub fn moment(&mut self, epoch: Instant, now: Instant) -> Moment {
        if self.at != now {
            self.at = now;
            self.moment = Moment::new(epoch, now);
        }
        self.moment
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_moment_is_exact_ordered_and_small() {
        let epoch = Instant::now();
        let at = epoch + Duration::new(86_400 * 400, 123_456_789);
        let moment = Moment::new(epoch, at);
        assert_eq!(moment.instant(epoch), at, "to the nanosecond, 400 days on");
        assert!(Moment::new(epoch, at + Duration::from_nanos(1)) > moment);
        assert_eq!(Moment::new(epoch, epoch).nanos(), 0);
        // Before the epoch: the epoch (such a deadline has passed: it fires at the first look).
        let early = epoch.checked_sub(Duration::from_secs(1)).unwrap_or(epoch);
        assert_eq!(Moment::new(epoch, early).instant(epoch), epoch);
        assert_eq!(std::mem::size_of::<Option<Moment>>(), 8);
        let later = Duration::new(3, 5);
        assert_eq!(moment.after(later), Moment::new(epoch, at + later));
        assert_eq!(
            moment.after(Duration::MAX).nanos(),
            u64::MAX - 1,
            "saturates"
        );
    }

    #[test]
    fn the_cache_converts_each_new_now_and_only_then() {
        let epoch = Instant::now();
        let mut cache = MomentCache::new(epoch);
        assert_eq!(cache.moment(epoch, epoch), Moment::new(epoch, epoch));
        for step in [5_u64, 5, 7, 3, 1_000_000_007] {
            let now = epoch + Duration::from_nanos(step);
            assert_eq!(cache.moment(epoch, now), Moment::new(epoch, now), "{step}");
        }
    }
}
