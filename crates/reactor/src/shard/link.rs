//! Links on the shard (`crate::link`): making the links protocols asked for, lending a
//! peer's output for one drive and taking it back, and telling a side its link ended.

use std::time::Instant;

use super::{Loop, Shard};
use crate::link::{Lent, Link, Shut};
use crate::message::Local;
use crate::token::ConnToken;

/// The output of `token`'s linked peer, for one drive of `token`; `None` when the peer is gone
/// (its `Unlinked` is on the way).
pub(super) fn lend_peer(state: &mut Loop, token: ConnToken) -> Option<Lent> {
    let link = *state.links.by_conn.get(&token)?;
    let peer = state.conns.get_mut(link.peer)?;
    Some(peer.lend(link.peer, link.shut))
}

/// Gives the peer its output back after `token`'s drive. A peer left bytes to write or a
/// half-close to make is written later in this turn (ready list).
pub(super) fn give_back(state: &mut Loop, token: ConnToken, mut lent: Lent) {
    // A buffer taken for the peer and left empty goes back now: an idle peer holds none.
    if lent.pending() == 0 {
        if let Some(out) = lent.out.take() {
            state.output_pool.give(out);
        }
        lent.written = 0;
    }
    if let Some(own) = state.links.by_conn.get_mut(&token) {
        own.shut = lent.own_shut;
    }
    let Some(peer) = state.conns.get_mut(lent.peer) else {
        if let Some(out) = lent.out {
            state.output_pool.give(out);
        }
        return;
    };
    let mut wake = peer.restore(lent.out, lent.written);
    if lent.shut {
        if let Some(link) = state.links.by_conn.get_mut(&lent.peer) {
            if link.shut == Shut::Open {
                link.shut = Shut::AfterFlush;
                wake = true;
            }
        }
    }
    if wake {
        state.ready.push(lent.peer);
    }
}

/// An asker whose peer closed in this turn (its `Unlinked` still queued) is linked to
/// nothing: it may link again now, and the queued `Unlinked`, whose link id is no longer
/// its link's, is dropped as stale when it comes.
fn forget_gone_peer(state: &mut Loop, asker: ConnToken) {
    let Some(link) = state.links.by_conn.get(&asker) else {
        return;
    };
    if state.conns.get_mut(link.peer).is_some() {
        return;
    }
    state.links.by_conn.remove(&asker);
    if let Some(conn) = state.conns.get_mut(asker) {
        conn.set_linked(false);
    }
}

impl Shard {
    /// Makes every link asked for since the last call; one that cannot be made is told to the
    /// asker as `on_unlinked`. An asker already linked keeps its link: the request is dropped.
    pub(super) fn make_links(&mut self, state: &mut Loop, now: Instant) {
        if !state.connects.unlinks.is_empty() {
            self.end_links(state, now);
        }
        if state.connects.links.is_empty() {
            return;
        }
        // Taken out (a drive below may ask for more links, made by its own `make_links`) and
        // put back empty, so the list keeps its capacity: no allocation per link.
        let mut asked = std::mem::take(&mut state.connects.links);
        for (asker, peer) in asked.drain(..) {
            forget_gone_peer(state, asker);
            let mut may_link = |token| state.conns.get_mut(token).is_some_and(|c| c.may_link());
            if !may_link(asker) {
                continue;
            }
            let same_shard = peer.shard == self.id && peer.token != asker;
            if !(same_shard && may_link(peer.token)) {
                let refused = Local::Unlinked {
                    peer: peer.token,
                    link: None,
                };
                self.mail.local.push_back((asker, refused));
                continue;
            }
            let id = state.links.next_id();
            for (one, other) in [(asker, peer.token), (peer.token, asker)] {
                if let Some(conn) = state.conns.get_mut(one) {
                    conn.set_linked(true);
                }
                let link = Link {
                    peer: other,
                    shut: Shut::Open,
                    id,
                };
                state.links.by_conn.insert(one, link);
            }
            for token in [asker, peer.token] {
                self.try_drive(state, token, now, |conn, env| conn.on_linked(env));
            }
        }
        if state.connects.links.is_empty() {
            state.connects.links = asked;
        }
    }

    /// Ends the links whose side asked (`Cx::unlink`): both entries go at once, so either
    /// side may link again in this turn; the other side is told (`Local::Unlinked` with the
    /// link's id), the asker is driven once more, as a half-closed asker has nothing left to
    /// wait for.
    fn end_links(&mut self, state: &mut Loop, now: Instant) {
        let mut asked = std::mem::take(&mut state.connects.unlinks);
        for asker in asked.drain(..) {
            let Some(link) = state.links.by_conn.remove(&asker) else {
                continue;
            };
            state.links.by_conn.remove(&link.peer);
            for token in [asker, link.peer] {
                if let Some(conn) = state.conns.get_mut(token) {
                    conn.set_linked(false);
                }
            }
            let unlinked = Local::Unlinked {
                peer: asker,
                link: Some(link.id),
            };
            self.mail.local.push_back((link.peer, unlinked));
            self.try_drive(state, asker, now, |conn, env| conn.after_unlink(env));
        }
        if state.connects.unlinks.is_empty() {
            state.connects.unlinks = asked;
        }
    }

    /// `token` hears that its link `link` to `peer` ended, or was never made (`None`). Stale
    /// when `token` is linked again meanwhile (to anyone, the same peer included: a link
    /// with another id).
    pub(super) fn unlinked(
        &mut self,
        state: &mut Loop,
        token: ConnToken,
        peer: ConnToken,
        link: Option<u32>,
        now: Instant,
    ) {
        match state.links.by_conn.get(&token) {
            Some(entry) if entry.peer == peer && Some(entry.id) == link => {
                state.links.by_conn.remove(&token);
            }
            Some(_) => return,
            None => {}
        }
        self.try_drive(state, token, now, |conn, env| conn.on_unlinked(env));
    }
}
