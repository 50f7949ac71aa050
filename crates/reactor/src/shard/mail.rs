//! Delivering messages to this shard's connections: from its own local queue, and from its
//! inbox (see `crate::message` for who sends what where).

use std::time::Instant;

use super::{Loop, Shard};
use crate::message::{Local, Message};
use crate::stats::bump;
use crate::token::ConnToken;

impl Shard {
    /// Delivers what this shard's protocols sent each other, in order. Only what was queued
    /// when the pass began: messages sent while delivering wait for the next turn (which
    /// polls without blocking), so two protocols answering each other cannot starve the loop.
    pub(super) fn deliver_local(&mut self, state: &mut Loop, now: Instant) {
        let queued = self.mail.local.len();
        for _ in 0..queued {
            let Some((token, message)) = self.mail.local.pop_front() else {
                break;
            };
            match message {
                Local::Message(message) => self.deliver_message(state, token, message, now),
                Local::Connect(outcome) => {
                    self.try_drive(state, token, now, |conn, env| conn.on_connect(outcome, env));
                }
                Local::Unlinked { peer, link } => self.unlinked(state, token, peer, link, now),
            }
        }
    }

    pub(super) fn deliver_message(
        &mut self,
        state: &mut Loop,
        token: ConnToken,
        message: Message,
        now: Instant,
    ) {
        let mut taken = false;
        let live = self.try_drive(state, token, now, |conn, env| {
            // A protocol that closes on the message (or panics on it) did receive it.
            let outcome = conn.on_message(message, env);
            taken = outcome != Ok(false);
            outcome.map(|_| ())
        });
        let counter = if live && taken {
            &self.stats.messages_delivered
        } else {
            &self.stats.messages_stale
        };
        bump(counter, 1);
    }
}
