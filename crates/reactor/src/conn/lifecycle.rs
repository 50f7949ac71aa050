//! A connection's lifecycle: the one state value, and every move between states.
//!
//! The IO (reads, writes, the lingering drain) is in `conn.rs`; this file decides what state
//! a connection is in after each protocol answer, flush, completion and EOF.

use super::{Conn, Drive, Env};
use crate::inbuf::InBuf;
use crate::protocol::Verb;
use crate::stats::CloseReason;

/// What a paused connection waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Wait {
    Flush,
    Completion,
    /// Half-closed and linked: the peer's EOF was read, output from the linked peer still
    /// flows until this side's write is shut down or the link ends (`crate::link`).
    Peer,
}

/// How far the peer's end of the stream has got, once input no longer flows to the protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Eof {
    /// No FIN read yet.
    Open,
    /// The FIN was read; the protocol has not been told.
    Seen,
    /// The protocol was told ([`Protocol::on_eof`]); it can never read again.
    Told,
}

/// A connection's lifecycle: one value, so that no impossible combination of flags can exist.
///
/// ```text
/// Reading --WaitFlush/AwaitCompletion--> Waiting --flush/completion--> Reading
///    |  \--on_eof says Read-----------------------------------------+  (or Closing, if Told)
///    |                                                              v
///    +--CloseAfterFlush--> Closing --output written--> Lingering --EOF/deadline--> (closed)
/// ```
///
/// "Closed" is not a state a `Conn` can be in: a drive that returns `Err(reason)` has the shard
/// drop the connection from its table, so a closed connection cannot be driven again. An
/// outbound connection starts in `Connecting`, before `Reading`.
///
/// A message (`Protocol::on_message`) moves nothing by itself: its verb goes through `apply`
/// like any other, so a waiting connection keeps waiting unless the protocol called
/// `Cx::resume` (then a completion wait ends, as a completion would), and a closing or lingering one is
/// not called at all (the shard counts the message as stale).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum State {
    /// An outbound connection whose non-blocking connect has not completed; its protocol has
    /// not been called yet. The shard moves it to `Reading` (or closes it) when the socket
    /// reports, or closes it at the connect deadline (its `io_deadline`).
    Connecting,
    /// Input is read and handed to the protocol. `eof_seen`: the FIN was read and the protocol
    /// is told once its buffered input was handed over. There is no `Reading` after `Told`:
    /// after the peer's EOF a protocol that neither waits nor closes is done (issue 10, §5).
    Reading { eof_seen: bool },
    /// The protocol stopped input until output is flushed or a job's completion arrives.
    Waiting { until: Wait, eof: Eof },
    /// The protocol is done: pending output is written, then the write side is shut down.
    Closing { eof: Eof },
    /// The write side is shut down; input is read and dropped until EOF or the linger
    /// deadline, and the connection then closes as `reason`.
    Lingering { reason: CloseReason },
}

impl Conn {
    /// The protocol's answer, as a move between states. A closing or lingering connection
    /// ignores everything but `CloseNow`: the protocol already said it was done.
    pub(super) fn apply(&mut self, verb: Verb) -> Drive {
        let eof = match self.state {
            State::Reading { eof_seen: false } => Eof::Open,
            State::Reading { eof_seen: true } => Eof::Seen,
            State::Waiting { eof, .. } => eof,
            State::Closing { .. } | State::Lingering { .. } | State::Connecting => {
                return match verb {
                    Verb::CloseNow => Err(CloseReason::Aborted),
                    _ => Ok(()),
                };
            }
        };
        match verb {
            // Reading stays reading; a wait goes on until what it waits for happens.
            Verb::Read => {}
            Verb::WaitFlush => self.wait_for(Wait::Flush, eof),
            Verb::AwaitCompletion => self.wait_for(Wait::Completion, eof),
            Verb::CloseAfterFlush => self.begin_close(eof),
            Verb::CloseNow => return Err(CloseReason::Aborted),
        }
        Ok(())
    }

    pub(super) fn wait_for(&mut self, until: Wait, eof: Eof) {
        self.state = State::Waiting { until, eof };
    }

    // A closing protocol is done: its deadline could only answer a request that will never
    // complete, after the response that said close.
    pub(super) fn begin_close(&mut self, eof: Eof) {
        self.state = State::Closing { eof };
        self.deadline = None;
    }

    /// The flush or completion a connection waited for happened. A protocol that was told of
    /// the peer's EOF before it waited has nothing left to read: it closes, however it got here.
    pub(super) fn end_wait(&mut self, env: &mut Env<'_>) {
        let State::Waiting { eof, .. } = self.state else {
            return;
        };
        match eof {
            Eof::Open => {
                self.state = State::Reading { eof_seen: false };
                self.resume_reading(env);
            }
            Eof::Seen => self.state = State::Reading { eof_seen: true },
            Eof::Told => self.begin_close(Eof::Told),
        }
    }

    /// A `WaitFlush` has written every byte. A protocol that streams (a file body in windows)
    /// queues its next window here and waits again, even after the peer's EOF; only when it
    /// does not is the wait over. `WaitFlush` with nothing new pending would wait for nothing.
    fn after_flush(&mut self, env: &mut Env<'_>) -> Drive {
        let verb = self.call(env, |p, cx| p.on_flushed(cx))?;
        let waits_again = match verb {
            Verb::AwaitCompletion => true,
            Verb::WaitFlush => self.pending_output(env) > 0,
            Verb::Read | Verb::CloseAfterFlush | Verb::CloseNow => false,
        };
        if !waits_again {
            self.end_wait(env);
        }
        if verb == Verb::WaitFlush && !waits_again {
            return Ok(());
        }
        self.apply(verb)
    }

    /// After any event: write what is pending, resolve waits that the write ended, deliver a
    /// pending EOF, move a closing connection on, give idle buffers back and re-arm the timer.
    pub(super) fn settle(&mut self, env: &mut Env<'_>) -> Drive {
        loop {
            self.flush(env)?;
            let flushed = matches!(
                self.state,
                State::Waiting {
                    until: Wait::Flush,
                    ..
                }
            ) && self.pending_output(env) == 0;
            if flushed {
                self.after_flush(env)?;
                self.feed(env, 0)?;
                continue;
            }
            break;
        }
        // A connection reading with no EOF seen has no EOF to deliver, waits for no peer and
        // is not closing: the three steps below would each only find that out.
        if self.state != (State::Reading { eof_seen: false }) {
            self.deliver_eof(env)?;
            self.half_closed_both_ways(env)?;
            self.advance_close(env)?;
        }
        self.release_idle_buffers(env);
        self.sync_timer(env);
        Ok(())
    }

    /// Tells the protocol of the peer's EOF once it reads again. After this call no path leads
    /// back to `Reading`: a protocol that neither waits nor closes is done.
    pub(super) fn deliver_eof(&mut self, env: &mut Env<'_>) -> Drive {
        if self.state != (State::Reading { eof_seen: true }) {
            return Ok(());
        }
        let input = self.input.take();
        let verb = {
            let unconsumed = input.as_ref().map_or(&[][..], InBuf::bytes);
            self.call(env, |p, cx| p.on_eof(unconsumed, cx))
        };
        self.input = input;
        let verb = verb?;
        match verb {
            Verb::WaitFlush => self.wait_for(Wait::Flush, Eof::Told),
            Verb::AwaitCompletion => self.wait_for(Wait::Completion, Eof::Told),
            Verb::Read if self.linked => self.wait_for(Wait::Peer, Eof::Told),
            Verb::Read | Verb::CloseAfterFlush => self.begin_close(Eof::Told),
            Verb::CloseNow => return Err(CloseReason::Aborted),
        }
        self.flush(env)
    }

    pub(super) fn advance_close(&mut self, env: &mut Env<'_>) -> Drive {
        let State::Closing { eof } = self.state else {
            return Ok(());
        };
        if self.pending_output(env) > 0 {
            return Ok(());
        }
        match eof {
            Eof::Told if !self.refused => return Err(CloseReason::Peer),
            Eof::Told | Eof::Seen => return Err(self.finished()),
            Eof::Open => {}
        }
        self.linger(env, self.finished())
    }

    /// Lingering close: shut our side so the peer sees the end of the response, then read and
    /// drop what it still sends, so that closing never resets a response in flight.
    pub(super) fn linger(&mut self, env: &mut Env<'_>, reason: CloseReason) -> Drive {
        self.state = State::Lingering { reason };
        if self.stream.shutdown_write().is_err() {
            return Err(reason);
        }
        self.io_deadline = Some(env.moment.after(env.io.linger));
        self.deadline = None;
        self.discard_input(env, reason)
    }
}
