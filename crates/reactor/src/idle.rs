//! Keep-alive connections idle between requests, oldest first, for eviction near the
//! connection limit.
//!
//! An intrusive doubly-linked list over the slab's slots: each slot's links live in a side
//! table indexed by the slot, so adding, removing and finding the oldest are O(1) and no loop
//! turn ever scans the connections. A protocol marks its connection idle
//! ([`crate::Cx::mark_idle`]); any byte read, or the close, takes it off again.

use crate::moment::Moment;
use crate::token::ConnToken;

const NONE: u32 = u32::MAX;

/// 16 bytes per slot (issue 16, S4: every idle connection has one). The slot index names the
/// connection: a connection takes itself off before its slot is reused (`Conn::release`), so
/// no generation is kept, and the connection's token comes from the slab
/// ([`crate::table::ConnTable::token_at`]).
#[derive(Clone, Copy)]
struct Link {
    prev: u32,
    next: u32,
    /// Since when the connection in this slot is idle (a moment of the shard's timer-wheel
    /// epoch); `None`: the slot is not on the list.
    since: Option<Moment>,
}

const UNLINKED: Link = Link {
    prev: NONE,
    next: NONE,
    since: None,
};

/// Idle connections in the order they went idle.
pub(crate) struct IdleList {
    links: Vec<Link>,
    head: u32,
    tail: u32,
    len: usize,
}

impl Default for IdleList {
    fn default() -> Self {
        Self {
            links: Vec::new(),
            head: NONE,
            tail: NONE,
            len: 0,
        }
    }
}

impl IdleList {
    /// `token` went idle at `now`: it goes to the young end (moved there if it was on already).
    pub fn push(&mut self, token: ConnToken, now: Moment) {
        self.remove(token);
        let slot = token.index();
        if self.links.len() <= slot {
            self.links.resize(slot + 1, UNLINKED);
        }
        let index = slot as u32;
        self.links[slot] = Link {
            prev: self.tail,
            next: NONE,
            since: Some(now),
        };
        match self.tail {
            NONE => self.head = index,
            tail => self.links[tail as usize].next = index,
        }
        self.tail = index;
        self.len += 1;
    }

    /// Takes `token`'s connection off the list; nothing happens when it is not on.
    pub fn remove(&mut self, token: ConnToken) {
        self.remove_slot(token.index());
    }

    /// Takes the connection in `slot` off the list, if it is on.
    pub fn remove_slot(&mut self, slot: usize) {
        let Some(link) = self.links.get(slot).copied() else {
            return;
        };
        if link.since.is_none() {
            return;
        }
        match link.prev {
            NONE => self.head = link.next,
            prev => self.links[prev as usize].next = link.next,
        }
        match link.next {
            NONE => self.tail = link.prev,
            next => self.links[next as usize].prev = link.prev,
        }
        self.links[slot] = UNLINKED;
        self.len -= 1;
    }

    /// The slot of the connection idle longest, and since when.
    pub fn oldest(&self) -> Option<(usize, Moment)> {
        let head = self.head;
        let since = self.links.get(head as usize)?.since?;
        Some((head as usize, since))
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    #[cfg(test)]
    fn order(&self) -> Vec<usize> {
        let mut out = Vec::new();
        let mut at = self.head;
        while at != NONE {
            out.push(at as usize);
            at = self.links[at as usize].next;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;
    use std::time::{Duration, Instant};

    /// Random pushes and removes agree with a plain queue of slots.
    #[test]
    fn the_list_agrees_with_a_queue() {
        let epoch = Instant::now();
        let mut list = IdleList::default();
        let mut model: VecDeque<usize> = VecDeque::new();
        let mut seed = 0x9e37_79b9_u64;
        for step in 0..5000u32 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let slot = (seed % 40) as usize;
            let token = ConnToken::new(slot, 1);
            let now = Moment::new(epoch, epoch + Duration::from_millis(u64::from(step)));
            if seed % 3 == 0 {
                list.remove(token);
                model.retain(|s| *s != slot);
            } else {
                list.push(token, now);
                model.retain(|s| *s != slot);
                model.push_back(slot);
            }
            assert_eq!(list.order(), Vec::from(model.clone()), "step {step}");
            assert_eq!(list.len, model.len());
            assert_eq!(list.oldest().map(|(slot, _)| slot), model.front().copied());
        }
    }

    #[test]
    fn the_oldest_comes_back_with_its_time() {
        let epoch = Instant::now();
        let now = Moment::new(epoch, epoch + Duration::from_millis(5));
        let then = Moment::new(epoch, epoch + Duration::new(0, 5_000_001));
        let mut list = IdleList::default();
        list.push(ConnToken::new(3, 7), now);
        list.push(ConnToken::new(5, 1), then);
        assert_eq!(list.oldest(), Some((3, now)), "to the nanosecond");
        list.remove(ConnToken::new(3, 7));
        list.remove(ConnToken::new(3, 7));
        assert_eq!(list.oldest(), Some((5, then)));
        list.remove(ConnToken::new(5, 1));
        assert!(list.is_empty());
        assert_eq!(list.oldest(), None);
    }

    /// Every idle connection has one link: docs/ARCHITECTURE.md counts 16 bytes.
    #[test]
    fn a_link_is_16_bytes() {
        assert_eq!(std::mem::size_of::<Link>(), 16);
    }
}
