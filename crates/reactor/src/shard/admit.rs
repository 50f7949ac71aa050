//! A reuseport shard's side of the shared accept loop: it adopts what it accepts itself,
//! under the connection limits (see `Limits::admit`).

use std::sync::atomic::Ordering;
use std::time::Instant;

use super::{Loop, Shard};
use crate::accept_loop::Place;
use crate::inbox::Handoff;
use crate::stats::PauseCause;

/// A reuseport shard's half of the accept loop: its own connections, under the limits.
pub(super) struct Adopter<'a> {
    pub shard: &'a mut Shard,
    pub state: &'a mut Loop,
    pub now: Instant,
    pub limits: &'a crate::accept::Limits,
}

impl Place for Adopter<'_> {
    fn reserve(&mut self) -> Result<(), PauseCause> {
        let per_shard_full = self
            .limits
            .per_shard
            .is_some_and(|max| self.state.conns.len() >= max);
        if per_shard_full || !self.limits.admit() {
            return Err(PauseCause::ConnectionLimit);
        }
        Ok(())
    }

    fn unreserve(&mut self) {
        self.limits.release();
    }

    fn place(&mut self, handoff: Handoff) -> Result<(), Handoff> {
        if !self.shard.adopt(self.state, handoff, self.now) {
            self.limits.release();
        }
        Ok(())
    }

    fn has_room(&self, _cause: PauseCause) -> bool {
        let per_shard_ok = self
            .limits
            .per_shard
            .is_none_or(|max| self.state.conns.len() < max);
        per_shard_ok && self.limits.admitted.load(Ordering::Acquire) < self.limits.global
    }
}
