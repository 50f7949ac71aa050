//! Draining a shard: on `Control::Drain` every connection hears `on_drain`; each listener's
//! connections still open at its drain time are cut; the shard is done when none is left.

use std::time::Instant;

use super::{Loop, Shard};
use crate::stats::CloseReason;

impl Shard {
    pub(super) fn start_drain(&mut self, state: &mut Loop, deadline: Instant, now: Instant) {
        if state.draining.is_some() {
            return;
        }
        // Each listener's connections are cut at its own drain time, or at `deadline`; the
        // shard runs until the last of them.
        state.drain_cuts = state
            .ios
            .iter()
            .map(|io| Some(io.drain.map_or(deadline, |d| now + d)))
            .collect();
        let last = state.drain_cuts.iter().flatten().copied().max();
        state.draining = Some(last.map_or(deadline, |l| l.max(deadline)));
        if let Some(mut local) = self.local_accept.take() {
            local.accept.close(self.poll.registry());
        }
        let tokens = state.conns.tokens();
        for token in tokens {
            self.drive(state, token, now, |conn, env| conn.on_drain(env));
        }
    }

    /// Closes the connections of every listener whose drain time has come.
    pub(super) fn cut_drained_listeners(&mut self, state: &mut Loop, now: Instant) {
        let due: Vec<usize> = (0..state.drain_cuts.len())
            .filter(|&l| state.drain_cuts[l].is_some_and(|at| at <= now))
            .collect();
        if due.is_empty() {
            return;
        }
        for &listener in &due {
            state.drain_cuts[listener] = None;
        }
        // Once per listener per drain: a scan of the table is fine here.
        for token in state.conns.tokens() {
            let of_due = state
                .conns
                .get_mut(token)
                .is_some_and(|conn| due.contains(&conn.listener()));
            if of_due {
                self.close(state, token, now, CloseReason::Drain);
            }
        }
    }

    /// A draining shard is done when its last connection closed, or at the deadline.
    pub(super) fn finished(&mut self, state: &mut Loop, now: Instant) -> bool {
        let Some(deadline) = state.draining else {
            return false;
        };
        self.cut_drained_listeners(state, now);
        if state.conns.is_empty() && self.inbox.handoffs_queued() == 0 {
            return true;
        }
        if now >= deadline {
            let open = state.conns.len();
            tracing::info!(
                shard = self.id,
                open,
                "drain deadline reached; closing what is left"
            );
            return true;
        }
        false
    }

    pub(super) fn close_all(&mut self, state: &mut Loop, now: Instant, reason: CloseReason) {
        let tokens = state.conns.tokens();
        for token in tokens {
            self.close(state, token, now, reason);
        }
    }
}
