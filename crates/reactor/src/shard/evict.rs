//! Eviction near the connection limit: a shard closes its oldest idle keep-alive
//! connections, once idle for `keepalive_grace`, to make room (DESIGN's failure rule).

use std::sync::atomic::Ordering;
use std::time::Instant;

use super::{Loop, Shard};
use crate::idle::IdleList;

/// Free slots below this fraction of a limit start eviction (nginx uses the same 1/16).
const EVICT_BELOW_DIVISOR: usize = 16;
/// Evictions per loop turn at most: each is a `shutdown` and a `read`; the rest wait a turn.
const EVICT_PER_TURN: usize = 32;

impl Shard {
    /// Near the connection limit, closes the oldest idle keep-alive connections that have
    /// been idle at least `keepalive_grace` (a request may be on the wire to a younger one),
    /// at most `EVICT_PER_TURN` a turn. Costs nothing when no connection is idle, and one
    /// load per shard otherwise.
    pub(super) fn evict_idle(&mut self, state: &mut Loop, now: Instant) {
        state.evict_at = None;
        if state.idle.iter().all(IdleList::is_empty) || state.draining.is_some() {
            return;
        }
        let wanted = self.evictions_wanted(state).min(EVICT_PER_TURN);
        let mut evicted = 0;
        while evicted < wanted {
            let Some((listener, slot)) = oldest_ripe(state, now) else {
                break;
            };
            let Some(token) = state.conns.token_at(slot) else {
                // Cannot happen: a close takes its connection off.
                state.idle[listener].remove_slot(slot);
                continue;
            };
            // Counted first: an eviction may end at once (the peer had gone), and `close`
            // takes it off the count however it ends.
            state.evicting += 1;
            self.drive(state, token, now, |conn, env| conn.evict(env).map(drop));
            let stayed = state
                .conns
                .get_mut(token)
                .is_some_and(|conn| !conn.evicting());
            if stayed {
                state.evicting -= 1;
            } else {
                evicted += 1;
            }
        }
        if evicted > 0 {
            if let Some(suppressed) = state.evict_log.allow(now) {
                tracing::warn!(
                    shard = self.id,
                    evicted,
                    suppressed,
                    "connection limit reached, closing idle keep-alive connections"
                );
            }
        }
    }

    /// How many connections this shard should evict to bring free slots back to 1/16 of the
    /// limits: the global one shared out over the shards, and the per-shard one. Connections
    /// already being evicted count as free.
    pub(super) fn evictions_wanted(&self, state: &Loop) -> usize {
        let shards = self.limits.shards.len().max(1);
        let global = self.limits.global;
        let active: usize = self
            .limits
            .shards
            .iter()
            .map(|s| s.balance.active.load(Ordering::Relaxed) as usize)
            .sum();
        let free = global.saturating_sub(active) + state.evicting;
        let short = (global / EVICT_BELOW_DIVISOR).max(1).saturating_sub(free);
        let mut wanted = short.div_ceil(shards);
        if let Some(max) = self.limits.per_shard {
            let free = max.saturating_sub(state.conns.len()) + state.evicting;
            let short = (max / EVICT_BELOW_DIVISOR).max(1).saturating_sub(free);
            wanted = wanted.max(short);
        }
        wanted
    }
}

/// The connection idle longest among those past their listener's grace: its listener and
/// slot; otherwise notes in `evict_at` when the first one will be. One look per listener.
fn oldest_ripe(state: &mut Loop, now: Instant) -> Option<(usize, usize)> {
    let mut best: Option<(Instant, usize, usize)> = None;
    let mut next_ripe: Option<Instant> = None;
    let epoch = state.timers.epoch();
    for (listener, list) in state.idle.iter().enumerate() {
        let Some((slot, since)) = list.oldest() else {
            continue;
        };
        let since = since.instant(epoch);
        let ripe = since + state.ios[listener].keepalive_grace;
        if ripe > now {
            next_ripe = Some(next_ripe.map_or(ripe, |at| at.min(ripe)));
        } else if best.is_none_or(|(oldest, _, _)| since < oldest) {
            best = Some((since, listener, slot));
        }
    }
    if best.is_none() {
        state.evict_at = next_ripe;
    }
    best.map(|(_, listener, slot)| (listener, slot))
}
