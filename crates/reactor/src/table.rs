//! The connection table: a slab addressed only by [`ConnToken`]s.
//!
//! A slot is reused as soon as its connection closes, so a bare index could reach the wrong
//! connection; every lookup here compares the whole token (index and generation) with the one
//! the occupant carries. Generations come from one wrapping counter per table: a stale token
//! could only match after 2^32 more connections on the same shard.

use slab::Slab;

use crate::token::ConnToken;

/// A value that knows the token it was stored under.
pub trait Keyed {
    /// The token [`ConnTable::insert_with`] gave it.
    fn token(&self) -> ConnToken;
}

/// A slab of `T` keyed by tokens with generations.
#[derive(Debug)]
pub struct ConnTable<T> {
    slab: Slab<T>,
    next_generation: u32,
}

impl<T: Keyed> ConnTable<T> {
    /// An empty table with room reserved for `capacity` entries.
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            slab: Slab::with_capacity(capacity),
            next_generation: 0,
        }
    }

    /// Stores what `make` builds for the next token; `make` may decline (`None`), and the
    /// slot stays free. The value must report the token it was given.
    pub fn insert_with(&mut self, make: impl FnOnce(ConnToken) -> Option<T>) -> Option<ConnToken> {
        let entry = self.slab.vacant_entry();
        let token = ConnToken::new(entry.key(), self.next_generation);
        self.next_generation = self.next_generation.wrapping_add(1);
        let value = make(token)?;
        debug_assert_eq!(
            value.token(),
            token,
            "a table value must carry its own token"
        );
        entry.insert(value);
        Some(token)
    }

    /// The live value `token` names; `None` for a token whose connection is gone.
    pub fn get_mut(&mut self, token: ConnToken) -> Option<&mut T> {
        self.slab
            .get_mut(token.index())
            .filter(|value| value.token() == token)
    }

    /// The token of the live entry in slot `index` (side tables indexed by slot, such as
    /// the idle list, keep no generation of their own).
    pub fn token_at(&self, index: usize) -> Option<ConnToken> {
        self.slab.get(index).map(Keyed::token)
    }

    /// Takes the live value `token` names out; `None` (and nothing removed) for a stale token.
    pub fn remove(&mut self, token: ConnToken) -> Option<T> {
        self.get_mut(token)?;
        Some(self.slab.remove(token.index()))
    }

    /// Live entries.
    pub fn len(&self) -> usize {
        self.slab.len()
    }

    /// True when no entry is live.
    pub fn is_empty(&self) -> bool {
        self.slab.is_empty()
    }

    /// The tokens of every live entry.
    pub fn tokens(&self) -> Vec<ConnToken> {
        self.slab.iter().map(|(_, value)| value.token()).collect()
    }
}
