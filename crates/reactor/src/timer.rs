//! A hashed timer wheel: O(1) insert and cancel, expiry driven by the loop's `now`.
//!
//! Deadlines are rounded *up* to the wheel's tick, so an entry never fires before its deadline;
//! it fires at the first [`TimerWheel::expire`] whose `now` reaches the tick, at most one tick
//! late. Each slot holds an intrusive doubly-linked list threaded through one slab of entries,
//! which is what makes cancel O(1). Entries further away than one rotation stay in their slot
//! and are skipped until their own tick comes round.

use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use crate::moment::Moment;

const NIL: u32 = u32::MAX;

/// Names one inserted timer, for [`TimerWheel::cancel`]. A key whose timer already fired or was
/// cancelled is recognised and ignored, even if its slot was reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimerKey {
    index: u32,
    seq: NonZeroU32,
}

/// Never 0 in `seq`: the slab then keeps its vacant-or-occupied tag in that niche, so an
/// entry for a `ConnToken` is 32 bytes, not 40 (every idle connection has one; issue 16, S4).
#[derive(Debug)]
struct Entry<T> {
    tick: u64,
    seq: NonZeroU32,
    prev: u32,
    next: u32,
    value: T,
}

/// The wheel. `T` is what a timer carries back when it fires (usually a connection token).
#[derive(Debug)]
pub struct TimerWheel<T> {
    start: Instant,
    tick: Duration,
    /// `tick` in nanoseconds, as every conversion divides by it.
    tick_nanos: u64,
    heads: Vec<u32>,
    occupied: Vec<u64>,
    entries: slab::Slab<Entry<T>>,
    /// Every entry with a tick below this one has fired.
    next_tick: u64,
    next_seq: NonZeroU32,
}

impl<T> TimerWheel<T> {
    /// A wheel starting at `start` with `slots` slots (rounded up to a power of two) of `tick`
    /// each.
    pub fn new(start: Instant, tick: Duration, slots: usize) -> Self {
        let slots = slots.max(64).next_power_of_two();
        let tick = tick.max(Duration::from_micros(100));
        Self {
            start,
            tick,
            tick_nanos: nanos(tick),
            heads: vec![NIL; slots],
            occupied: vec![0; slots / 64],
            entries: slab::Slab::new(),
            next_tick: 0,
            next_seq: NonZeroU32::MIN,
        }
    }

    /// Timers waiting to fire.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when no timer is waiting.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The instant the wheel counts from (the epoch of a shard's `Moment`s).
    pub fn epoch(&self) -> Instant {
        self.start
    }

    /// Schedules `value` to come back from [`expire`](Self::expire) once `now >= at`.
    pub fn insert(&mut self, at: Instant, value: T) -> TimerKey {
        self.insert_tick(self.tick_at_or_after(at), value)
    }

    /// [`insert`](Self::insert) for a moment of this wheel's epoch.
    pub(crate) fn insert_moment(&mut self, at: Moment, value: T) -> TimerKey {
        self.insert_tick(self.tick_of_nanos(at.nanos()), value)
    }

    fn insert_tick(&mut self, tick: u64, value: T) -> TimerKey {
        let tick = tick.max(self.next_tick);
        let seq = self.next_seq;
        self.next_seq = self.next_seq.checked_add(1).unwrap_or(NonZeroU32::MIN);
        let slot = self.slot(tick);
        let head = self.heads[slot];
        let index = self.entries.insert(Entry {
            tick,
            seq,
            prev: NIL,
            next: head,
            value,
        }) as u32;
        if head != NIL {
            self.entries[head as usize].prev = index;
        }
        self.heads[slot] = index;
        self.occupied[slot / 64] |= 1 << (slot % 64);
        TimerKey { index, seq }
    }

    /// Cancels a timer; returns its value if it had neither fired nor been cancelled.
    pub fn cancel(&mut self, key: TimerKey) -> Option<T> {
        match self.entries.get(key.index as usize) {
            Some(entry) if entry.seq == key.seq => Some(self.unlink(key.index)),
            _ => None,
        }
    }

    /// True when the timer `key` is pending and fires no later than a timer inserted for `at`
    /// would: the caller can keep it instead of re-arming.
    pub fn fires_by(&self, key: TimerKey, at: Instant) -> bool {
        self.fires_by_tick(key, self.tick_at_or_after(at))
    }

    /// [`fires_by`](Self::fires_by) for a moment of this wheel's epoch.
    #[inline]
    pub(crate) fn fires_by_moment(&self, key: TimerKey, at: Moment) -> bool {
        self.fires_by_tick(key, self.tick_of_nanos(at.nanos()))
    }

    #[inline]
    fn fires_by_tick(&self, key: TimerKey, tick: u64) -> bool {
        match self.entries.get(key.index as usize) {
            Some(entry) if entry.seq == key.seq => entry.tick <= tick.max(self.next_tick),
            _ => false,
        }
    }

    /// Fires every timer whose deadline is at or before `now`, in no particular order.
    pub fn expire(&mut self, now: Instant, mut fire: impl FnMut(T)) {
        let Some(now_tick) = self.tick_at_or_before(now) else {
            return;
        };
        if now_tick < self.next_tick {
            return;
        }
        let slots = self.heads.len() as u64;
        let last = now_tick.min(self.next_tick + slots - 1);
        for tick in self.next_tick..=last {
            let slot = self.slot(tick);
            if self.occupied[slot / 64] & (1 << (slot % 64)) != 0 {
                self.expire_slot(slot, now_tick, &mut fire);
            }
        }
        self.next_tick = now_tick + 1;
    }

    /// The earliest moment at which [`expire`](Self::expire) may have something to fire: the
    /// start of the next occupied slot's tick (possibly an entry a rotation later; then the
    /// caller just wakes once for nothing).
    pub fn next_expiry(&self) -> Option<Instant> {
        if self.entries.is_empty() {
            return None;
        }
        let offset = self.next_occupied(self.slot(self.next_tick))?;
        Some(self.instant_of(self.next_tick + offset))
    }

    /// How many slots after `start` (circularly, `start` itself being 0) the first occupied
    /// one is. Word by word through the bitmap: the loop asks on every turn, and walking the
    /// slots one at a time to a deadline seconds away cost about 350 instructions per
    /// keep-alive request in callgrind.
    fn next_occupied(&self, start: usize) -> Option<u64> {
        let slots = self.heads.len();
        let words = self.occupied.len();
        let mut word = start / 64;
        let mut bits = self.occupied[word] & (u64::MAX << (start % 64));
        // One more word than there are: the start word again, for the slots below `start`.
        for _ in 0..=words {
            if bits != 0 {
                let slot = word * 64 + bits.trailing_zeros() as usize;
                return Some(((slot + slots - start) % slots) as u64);
            }
            word = (word + 1) % words;
            bits = self.occupied[word];
        }
        None
    }

    fn expire_slot(&mut self, slot: usize, now_tick: u64, fire: &mut impl FnMut(T)) {
        let mut cursor = self.heads[slot];
        while cursor != NIL {
            let entry = &self.entries[cursor as usize];
            let next = entry.next;
            if entry.tick <= now_tick {
                fire(self.unlink(cursor));
            }
            cursor = next;
        }
    }

    fn unlink(&mut self, index: u32) -> T {
        let entry = self.entries.remove(index as usize);
        let slot = self.slot(entry.tick);
        if entry.prev == NIL {
            self.heads[slot] = entry.next;
            if entry.next == NIL {
                self.occupied[slot / 64] &= !(1 << (slot % 64));
            }
        } else {
            self.entries[entry.prev as usize].next = entry.next;
        }
        if entry.next != NIL {
            self.entries[entry.next as usize].prev = entry.prev;
        }
        entry.value
    }

    fn slot(&self, tick: u64) -> usize {
        (tick as usize) & (self.heads.len() - 1)
    }

    // In u64 nanoseconds (584 years), not `as_nanos`'s u128: a u128 division is a libcall,
    // and `sync_timer` asks for a tick after every event.
    fn tick_at_or_after(&self, at: Instant) -> u64 {
        self.tick_of_nanos(nanos(at.saturating_duration_since(self.start)))
    }

    /// The first tick at or after `nanos` past the start.
    fn tick_of_nanos(&self, nanos_after: u64) -> u64 {
        nanos_after.div_ceil(self.tick_nanos)
    }

    fn tick_at_or_before(&self, now: Instant) -> Option<u64> {
        Some(nanos(now.checked_duration_since(self.start)?) / self.tick_nanos)
    }

    fn instant_of(&self, tick: u64) -> Instant {
        let nanos = (self.tick.as_nanos() as u64).saturating_mul(tick);
        self.start + Duration::from_nanos(nanos)
    }
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// docs/ARCHITECTURE.md counts 32 bytes per armed connection, and an `Option<TimerKey>`
    /// of 8 in `Conn`. A guard, not a timing.
    #[test]
    fn an_entry_for_a_connection_is_32_bytes() {
        use std::mem::size_of;
        // The slab's own slot type (slab 0.4, private), mirrored.
        #[allow(dead_code)]
        enum SlabSlot<T> {
            Vacant(usize),
            Occupied(T),
        }
        assert_eq!(size_of::<SlabSlot<Entry<crate::token::ConnToken>>>(), 32);
        assert_eq!(size_of::<Option<TimerKey>>(), 8);
    }

    /// The first occupied slot, one slot at a time: what `next_occupied` must agree with.
    fn linear(wheel: &TimerWheel<u32>) -> Option<u64> {
        let slots = wheel.heads.len() as u64;
        (0..slots).find(|&offset| {
            let slot = wheel.slot(wheel.next_tick + offset);
            wheel.occupied[slot / 64] & (1 << (slot % 64)) != 0
        })
    }

    #[test]
    fn the_word_scan_finds_the_slot_the_linear_scan_finds() {
        let start = Instant::now();
        let tick = Duration::from_millis(10);
        let mut seed = 0x2545_f491_u64;
        let mut next = |bound: u64| {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            (seed >> 33) % bound
        };
        for round in 0..200 {
            let mut wheel = TimerWheel::new(start, tick, 256);
            let mut keys = Vec::new();
            // Deadlines up to two rotations out (so slots wrap), then some cancelled, then
            // the wheel advanced: every start word and bit position comes up.
            for _ in 0..next(6) + 1 {
                let at = start + tick * next(600) as u32;
                keys.push(wheel.insert(at, round));
            }
            for key in keys.iter().filter(|_| next(3) == 0) {
                wheel.cancel(*key);
            }
            wheel.expire(start + tick * next(300) as u32, |_| {});
            let slot = wheel.slot(wheel.next_tick);
            assert_eq!(wheel.next_occupied(slot), linear(&wheel), "round {round}");
            let expected = linear(&wheel).map(|offset| wheel.instant_of(wheel.next_tick + offset));
            assert_eq!(wheel.next_expiry(), expected.filter(|_| !wheel.is_empty()));
        }
    }
}
