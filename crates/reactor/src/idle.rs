//! Keep-alive connections idle between requests, oldest first, for eviction near the
//! connection limit.
//!
//! An intrusive doubly-linked list over the slab's slots: each slot's links live in a side
//! table indexed by the slot, so adding, removing and finding the oldest are O(1) and no loop
//! turn ever scans the connections. A protocol marks its connection idle
//! ([`crate::Cx::mark_idle`]); any byte read, or the close, takes it off again.

use std::time::Instant;

use crate::token::ConnToken;

const NONE: u32 = u32::MAX;

#[derive(Clone, Copy)]
struct Link {
    prev: u32,
    next: u32,
    /// The connection on the list in this slot, and since when it is idle.
    entry: Option<(ConnToken, Instant)>,
}

const UNLINKED: Link = Link {
    prev: NONE,
    next: NONE,
    entry: None,
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
    pub fn push(&mut self, token: ConnToken, now: Instant) {
        self.remove(token);
        let slot = token.index();
        if self.links.len() <= slot {
            self.links.resize(slot + 1, UNLINKED);
        }
        let index = slot as u32;
        self.links[slot] = Link {
            prev: self.tail,
            next: NONE,
            entry: Some((token, now)),
        };
        match self.tail {
            NONE => self.head = index,
            tail => self.links[tail as usize].next = index,
        }
        self.tail = index;
        self.len += 1;
    }

    /// Takes `token` off the list; nothing happens when it is not on it.
    pub fn remove(&mut self, token: ConnToken) {
        let slot = token.index();
        let Some(link) = self.links.get(slot).copied() else {
            return;
        };
        if !link.entry.is_some_and(|(t, _)| t == token) {
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

    /// The connection idle longest, and since when.
    pub fn oldest(&self) -> Option<(ConnToken, Instant)> {
        match self.head {
            NONE => None,
            head => self.links[head as usize].entry,
        }
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
    use std::time::Duration;

    /// Random pushes and removes agree with a plain queue of slots.
    #[test]
    fn the_list_agrees_with_a_queue() {
        let t0 = Instant::now();
        let mut list = IdleList::default();
        let mut model: VecDeque<usize> = VecDeque::new();
        let mut seed = 0x9e37_79b9_u64;
        for step in 0..5000u32 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let slot = (seed % 40) as usize;
            let token = ConnToken::new(slot, 1);
            let now = t0 + Duration::from_millis(u64::from(step));
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
            assert_eq!(
                list.oldest().map(|(t, _)| t.index()),
                model.front().copied()
            );
        }
    }

    #[test]
    fn a_stale_token_removes_nothing() {
        let now = Instant::now();
        let mut list = IdleList::default();
        list.push(ConnToken::new(3, 7), now);
        list.remove(ConnToken::new(3, 8));
        assert_eq!(list.oldest(), Some((ConnToken::new(3, 7), now)));
        list.remove(ConnToken::new(3, 7));
        assert!(list.is_empty());
        assert_eq!(list.oldest(), None);
    }
}
