//! Reading a connection's input: one `read` at a time into its pooled buffer, each handed to
//! the protocol, until the socket is empty, the read budget is spent or output backs up; and
//! giving the input buffer back to the pool while the connection is idle.

use std::io;

use super::lifecycle::State;
use super::{Conn, Drive, Env};
use crate::inbuf::InBuf;
use crate::protocol::Step;
use crate::stats::{bump, CloseReason};

impl Conn {
    pub(super) fn may_read(&self, env: &Env<'_>) -> bool {
        self.state == State::Reading { eof_seen: false }
            && self.paced_output(env) <= env.io.write_high_water
    }

    /// One `read`: the bytes read, and whether they fell short of the room offered (the
    /// receive queue is empty); `Ok(None)` when the socket has nothing more (WouldBlock, EOF).
    pub(super) fn read_once(
        &mut self,
        env: &mut Env<'_>,
    ) -> Result<Option<(usize, bool)>, CloseReason> {
        let pool = &mut *env.input_pool;
        let buf = self.input.get_or_insert_with(|| InBuf {
            data: pool.take_filled().into_boxed_slice(),
            start: 0,
            end: 0,
        });
        if !buf.make_room(env.io.max_input) {
            return Err(CloseReason::InputOverflow);
        }
        let room = buf.data.len() - buf.end as usize;
        loop {
            return match self.stream.read(&mut buf.data[buf.end as usize..], env.now) {
                Ok(0) => {
                    // Only a reading connection reads (`may_read`), so this is its FIN.
                    self.state = State::Reading { eof_seen: true };
                    Ok(None)
                }
                Ok(n) => {
                    // A request is on the way: not idle any more.
                    env.idle.remove(self.token);
                    buf.end += n as u32;
                    bump(
                        &env.stats.listeners[self.listener as usize].bytes_in,
                        n as u64,
                    );
                    Ok(Some((n, self.stream.drained(n, room))))
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => Err(CloseReason::IoError),
            };
        }
    }

    /// Hands buffered input to the protocol unless it is waiting or closing. `fresh`: bytes at
    /// the end it has not been handed before. Only a read adds input, and every read is fed at
    /// once, so the bytes read just now are the only unseen ones (`Cx::unseen_from`) and the
    /// connection keeps no count of its own.
    pub(super) fn feed(&mut self, env: &mut Env<'_>, fresh: usize) -> Drive {
        if !matches!(self.state, State::Reading { .. }) {
            return Ok(());
        }
        let Some(mut buf) = self.input.take() else {
            return Ok(());
        };
        if buf.unconsumed() == 0 {
            self.input = Some(buf);
            return Ok(());
        }
        let step: Step = {
            let input = buf.bytes();
            let seen = input.len().saturating_sub(fresh);
            let step = self.call(env, |p, cx| {
                cx.unseen_from = seen;
                p.on_input(input, cx)
            });
            match step {
                Ok(step) => step,
                Err(reason) => {
                    env.input_pool.give_filled(buf.data.into_vec());
                    return Err(reason);
                }
            }
        };
        buf.start += step.consumed.min(buf.unconsumed()) as u32;
        if buf.start == buf.end {
            buf.start = 0;
            buf.end = 0;
        }
        self.input = Some(buf);
        self.apply(step.verb)
    }

    pub(super) fn discard_input(&mut self, env: &mut Env<'_>, reason: CloseReason) -> Drive {
        if let Some(buf) = self.input.take() {
            env.input_pool.give_filled(buf.data.into_vec());
        }
        let mut budget = env.io.read_budget;
        loop {
            match self.stream.discard(env.scratch) {
                Ok(0) => return Err(reason),
                Ok(n) => {
                    bump(
                        &env.stats.listeners[self.listener as usize].bytes_in,
                        n as u64,
                    );
                    budget = budget.saturating_sub(n);
                    if budget == 0 {
                        env.ready.push(self.token);
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Err(reason),
            }
        }
        self.sync_timer(env);
        Ok(())
    }

    /// Reading stopped before `WouldBlock`, so no new edge may come: retry from the ready list.
    /// A linked peer paused by this output is retried too.
    pub(super) fn resume_reading(&mut self, env: &mut Env<'_>) {
        if self.state == (State::Reading { eof_seen: false }) {
            env.ready.push(self.token);
        }
        if let Some(link) = env.link.as_deref() {
            env.ready.push(link.peer);
        }
    }

    pub(super) fn release_idle_buffers(&mut self, env: &mut Env<'_>) {
        if self.input.as_ref().is_some_and(|b| b.unconsumed() == 0) {
            if let Some(buf) = self.input.take() {
                env.input_pool.give_filled(buf.data.into_vec());
            }
        }
    }
}
