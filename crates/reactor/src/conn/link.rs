//! A connection's side of a link (`crate::link`): lending its output to the peer, pacing its
//! reads by the peer's output, the half-close the peer asks for, and the end of the link.

use super::lifecycle::{Eof, State, Wait};
use super::{Conn, Drive, Env};
use crate::link::{Lent, Shut};
use crate::stats::CloseReason;
use crate::token::ConnToken;

impl Conn {
    /// True while linked (the shard's link table names the peer).
    pub fn is_linked(&self) -> bool {
        self.linked
    }

    /// True when this connection may be linked now: connected, not closing, not linked.
    pub fn may_link(&self) -> bool {
        !self.linked
            && matches!(self.state, State::Reading { .. } | State::Waiting { .. })
            && !matches!(
                self.state,
                State::Waiting {
                    until: Wait::Peer,
                    ..
                }
            )
    }

    pub fn set_linked(&mut self, linked: bool) {
        self.linked = linked;
    }

    /// Lends this connection's output to its peer's call; `restore` takes it back.
    pub fn lend(&mut self, owner: ConnToken, borrower_shut: Shut) -> Lent {
        Lent {
            peer: owner,
            out: self.out.take(),
            written: std::mem::take(&mut self.out_pos) as usize,
            shut: false,
            own_shut: borrower_shut,
        }
    }

    /// Takes the lent output back: `true` when the peer left bytes to write, so the caller
    /// puts this connection on the ready list.
    pub fn restore(&mut self, out: Option<Vec<u8>>, written: usize) -> bool {
        self.out = out;
        // `written` came from `out_pos`, a u32.
        self.out_pos = written as u32;
        // The buffer only: no protocol of ours both links and sends file segments (the
        // splice and proxy protocols link; only the HTTP files handler sends segments).
        self.buffered_output() > 0
    }

    /// The output whose size paces this connection's reads: its peer's while linked (the
    /// bytes it reads go there), its own otherwise (its protocol answers into it).
    pub(super) fn paced_output(&self, env: &Env<'_>) -> usize {
        match (self.linked, env.link.as_deref()) {
            (true, Some(lent)) => lent.pending(),
            _ => self.pending_output(env),
        }
    }

    /// Every byte is written: shut down the write side if the peer asked for it.
    #[inline]
    pub(super) fn shut_if_asked(&mut self, env: &mut Env<'_>) -> Drive {
        // Only a linked connection's peer can ask: the common case returns before the call.
        if env.link.is_none() {
            return Ok(());
        }
        self.shut_when_flushed(env)
    }

    fn shut_when_flushed(&mut self, env: &mut Env<'_>) -> Drive {
        let pending = self.pending_output(env);
        let Some(link) = env.link.as_deref_mut() else {
            return Ok(());
        };
        if link.own_shut != Shut::AfterFlush || pending > 0 {
            return Ok(());
        }
        link.own_shut = Shut::Done;
        self.stream
            .shutdown_write()
            .map_err(|_| CloseReason::IoError)
    }

    /// Half-closed in both directions (the peer's EOF read and told, this side's write shut
    /// down): nothing can flow any more.
    pub(super) fn half_closed_both_ways(&self, env: &Env<'_>) -> Drive {
        let waits_for_peer = self.state
            == State::Waiting {
                until: Wait::Peer,
                eof: Eof::Told,
            };
        let shut = env.link.as_deref().map(|link| link.own_shut);
        if waits_for_peer && shut == Some(Shut::Done) {
            return Err(CloseReason::Peer);
        }
        Ok(())
    }

    /// The link ended (the peer closed) or could not be made.
    pub fn on_unlinked(&mut self, env: &mut Env<'_>) -> Drive {
        self.linked = false;
        if matches!(self.state, State::Closing { .. } | State::Lingering { .. }) {
            return Ok(());
        }
        let (verb, resume) = self.call(env, |p, cx| {
            let verb = p.on_unlinked(cx);
            (verb, cx.resume)
        })?;
        self.apply_resumable(verb, resume, env)?;
        self.close_if_waiting_for_peer();
        self.settle(env)
    }

    /// This connection ended its own link (`Cx::unlink`): a half-closed side waiting for its
    /// peer has nothing left to wait for.
    pub fn after_unlink(&mut self, env: &mut Env<'_>) -> Drive {
        self.close_if_waiting_for_peer();
        self.settle(env)
    }

    /// A side half-closed and waiting for its linked peer, with no link left: nothing can
    /// reach it any more, so it closes.
    fn close_if_waiting_for_peer(&mut self) {
        if let State::Waiting {
            until: Wait::Peer,
            eof,
        } = self.state
        {
            self.begin_close(eof);
        }
    }

    /// The link was just made: the protocol hears it, then input buffered before it goes to
    /// the protocol.
    pub fn on_linked(&mut self, env: &mut Env<'_>) -> Drive {
        if matches!(self.state, State::Reading { .. } | State::Waiting { .. }) {
            let verb = self.call(env, |p, cx| p.on_linked(cx))?;
            self.apply(verb)?;
        }
        self.feed(env, 0)?;
        self.settle(env)
    }
}
