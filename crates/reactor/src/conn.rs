//! One connection and the IO rules that drive it.
//!
//! mio is edge-triggered: a readiness edge is reported once, so whoever stops reading before
//! `WouldBlock` (budget spent, output above the high-water mark, waiting for a flush or a job)
//! must come back by itself. The rule here: every pause that ends puts the connection on the
//! shard's ready list, and a ready connection is read again before the next `poll`.

use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use mio::{Interest, Registry};

use crate::buffer::BufPool;
use crate::idle::IdleList;
use crate::inbuf::InBuf;
use crate::link::Lent;
use crate::message::{Message, Outbox, ShardMail};
use crate::moment::Moment;
use crate::offload::{Completion, OffloadSink};
use crate::outbound::Connects;
use crate::protocol::{Cx, Protocol};
use crate::segment::Segments;
use crate::stats::{bump, CloseReason, ShardStats};
use crate::timer::{TimerKey, TimerWheel};
use crate::token::ConnToken;
use crate::transport::Transport;

mod lifecycle;
mod link;
mod outbound;
mod read;
mod write;

use lifecycle::{State, Wait};

/// IO settings a shard applies to one listener's connections.
#[derive(Clone, Debug)]
pub(crate) struct IoConfig {
    pub max_input: usize,
    pub read_budget: usize,
    pub read_buffer: usize,
    pub write_high_water: usize,
    pub write_timeout: Duration,
    pub linger: Duration,
    /// `None`: the drain deadline of `begin_drain`.
    pub drain: Option<Duration>,
    /// How long an idle keep-alive connection is spared by eviction.
    pub keepalive_grace: Duration,
    /// TLS for this listener's new connections; `None`: plaintext.
    pub tls: Option<std::sync::Arc<crate::tls::TlsListener>>,
}

impl IoConfig {
    /// These settings with a listener's own values over them.
    pub fn for_listener(&self, own: &crate::config::ListenerIo) -> IoConfig {
        let read_buffer = own.read_buffer.unwrap_or(self.read_buffer).max(1);
        IoConfig {
            max_input: self.max_input.max(read_buffer),
            read_budget: self.read_budget,
            read_buffer,
            write_high_water: own.write_high_water.unwrap_or(self.write_high_water),
            write_timeout: own.write_timeout.unwrap_or(self.write_timeout),
            linger: own.linger.unwrap_or(self.linger),
            drain: own.drain.or(self.drain),
            keepalive_grace: own.keepalive_grace.unwrap_or(self.keepalive_grace),
            // Set apart (`ListenerSpec::tls`, `Control::SetTls`): it is no IO setting.
            tls: None,
        }
    }
}

/// The shard's parts a connection borrows while it is driven.
pub(crate) struct Env<'a> {
    pub now: Instant,
    /// `now` as a moment of the timer wheel's epoch, for the deadlines.
    pub moment: Moment,
    pub shard: usize,
    pub draining: bool,
    pub registry: &'a Registry,
    pub input_pool: &'a mut BufPool,
    pub output_pool: &'a mut BufPool,
    pub jobs: &'a mut OffloadSink,
    pub mail: &'a mut ShardMail,
    pub connects: &'a mut Connects,
    pub stats: &'a ShardStats,
    pub timers: &'a mut TimerWheel<ConnToken>,
    pub ready: &'a mut Vec<ConnToken>,
    pub idle: &'a mut IdleList,
    pub scratch: &'a mut [u8],
    /// File segments queued behind connections' output (`Cx::send_file`).
    pub segments: &'a mut Segments,
    pub io: &'a IoConfig,
    /// The linked peer's output, lent while this connection is driven.
    pub link: Option<&'a mut Lent>,
}

/// Outcome of driving a connection: `Err` closes it for the reason given.
pub(crate) type Drive = Result<(), CloseReason>;

pub(crate) struct Conn {
    stream: Transport,
    token: ConnToken,
    listener: u16,
    protocol: Box<dyn Protocol>,
    input: Option<InBuf>,
    out: Option<Vec<u8>>,
    /// Bytes of `out` already written. u32: a connection's pending output above 4 GiB is
    /// refused in `flush` (no protocol of ours comes near it; the high-water mark is KiB).
    out_pos: u32,
    /// The protocol's deadline (`Cx::set_deadline`). Deadlines are `Moment`s of the timer
    /// wheel's epoch: 8 bytes where an `Option<Instant>` takes 16.
    deadline: Option<Moment>,
    /// The write timeout while output waits, or the linger deadline once lingering (a
    /// lingering connection has no output left, so the two never overlap).
    io_deadline: Option<Moment>,
    /// The one wheel entry this connection has, at or before its earliest deadline.
    armed: Option<TimerKey>,
    state: State,
    writable_registered: bool,
    /// The protocol called `Cx::refuse`: the close counts as `Aborted`.
    refused: bool,
    /// Opened by this shard (`Cx::connect`), not accepted: counted apart, held by no listener.
    outbound: bool,
    /// Linked to another connection (`Cx::link`): the shard's link table has the peer and
    /// lends its output while this one is driven (a flag here, as `Conn` stays small).
    linked: bool,
}

impl crate::table::Keyed for Conn {
    fn token(&self) -> ConnToken {
        self.token
    }
}

impl Conn {
    pub fn new(
        stream: Transport,
        token: ConnToken,
        listener: usize,
        protocol: Box<dyn Protocol>,
    ) -> Self {
        Self {
            stream,
            token,
            // Listener ids are below MAX_LISTENERS.
            listener: listener as u16,
            protocol,
            input: None,
            out: None,
            out_pos: 0,
            deadline: None,
            io_deadline: None,
            armed: None,
            state: State::Reading { eof_seen: false },
            writable_registered: false,
            refused: false,
            outbound: false,
            linked: false,
        }
    }

    pub fn listener(&self) -> usize {
        usize::from(self.listener)
    }

    pub fn register(&mut self, registry: &Registry) -> io::Result<()> {
        self.stream
            .register(registry, self.token.to_mio(), Interest::READABLE)
    }

    pub fn on_open(&mut self, env: &mut Env<'_>) -> Drive {
        let verb = self.call(env, |p, cx| p.on_open(cx))?;
        self.apply(verb)?;
        self.settle(env)
    }

    /// Readable or read-closed readiness, or a turn from the ready list.
    ///
    /// A read that fills less than the room it was offered has emptied the socket's receive
    /// queue, so the loop stops there instead of paying a second `read` for `EAGAIN`: on Linux
    /// every segment that arrives later raises a new edge (epoll's callback runs per arrival,
    /// not per empty-to-ready transition). The exception is a FIN already queued with the data
    /// (`peer_closed_hint`, from `EPOLLRDHUP`): its edge has been consumed, so read on to the
    /// end. Turns from the ready list pass `true` and read until `WouldBlock`.
    pub fn on_readable(&mut self, env: &mut Env<'_>, peer_closed_hint: bool) -> Drive {
        if let State::Lingering { reason } = self.state {
            return self.discard_input(env, reason);
        }
        let mut budget = env.io.read_budget;
        while self.may_read(env) {
            let Some((read, drained)) = self.read_once(env)? else {
                break;
            };
            self.feed(env, read)?;
            if drained && !peer_closed_hint {
                break;
            }
            budget = budget.saturating_sub(read);
            if budget == 0 {
                bump(&env.stats.budget_yields, 1);
                env.ready.push(self.token);
                break;
            }
        }
        if self.paced_output(env) > env.io.write_high_water {
            bump(&env.stats.read_paused, 1);
        }
        self.settle(env)
    }

    /// `EPOLLERR`: the peer reset the connection (or it failed otherwise). Closed at once,
    /// even while the protocol awaits a job and reads nothing: nobody is left to answer.
    pub fn on_error(&mut self) -> Drive {
        self.stream.reset();
        Err(CloseReason::IoError)
    }

    pub fn on_writable(&mut self, env: &mut Env<'_>) -> Drive {
        self.settle(env)
    }

    pub fn on_completion(&mut self, completion: Completion, env: &mut Env<'_>) -> Drive {
        if let State::Waiting {
            until: Wait::Completion,
            ..
        } = self.state
        {
            self.end_wait(env);
        }
        let verb = self.call(env, |p, cx| p.on_completion(completion, cx))?;
        self.apply(verb)?;
        self.feed(env, 0)?;
        self.settle(env)
    }

    /// A message for this connection. `Ok(false)`: it is closing, and the message was dropped.
    pub fn on_message(&mut self, message: Message, env: &mut Env<'_>) -> Result<bool, CloseReason> {
        if matches!(
            self.state,
            State::Closing { .. } | State::Lingering { .. } | State::Connecting
        ) {
            return Ok(false);
        }
        // `Cx::resume` is read here alone, so `Conn` carries no flag for it.
        let (verb, resume) = self.call(env, |p, cx| {
            let verb = p.on_message(message, cx);
            (verb, cx.resume)
        })?;
        self.apply_resumable(verb, resume, env)?;
        self.settle(env)?;
        Ok(true)
    }

    /// A protocol's answer from a callback that may end a completion wait (`Cx::resume`):
    /// the wait ends first, as a completion would, then buffered input is handed over.
    pub(crate) fn apply_resumable(
        &mut self,
        verb: crate::protocol::Verb,
        resume: bool,
        env: &mut Env<'_>,
    ) -> Drive {
        let waits = matches!(
            self.state,
            State::Waiting {
                until: Wait::Completion,
                ..
            }
        );
        if resume && waits {
            self.end_wait(env);
        }
        self.apply(verb)?;
        if resume && waits {
            self.feed(env, 0)?;
        }
        Ok(())
    }

    /// Delivers the outcome of this connection's `Cx::connect`.
    pub fn on_connect(
        &mut self,
        outcome: crate::outbound::ConnectOutcome,
        env: &mut Env<'_>,
    ) -> Drive {
        if matches!(self.state, State::Closing { .. } | State::Lingering { .. }) {
            return Ok(());
        }
        // `AwaitCompletion` after `Cx::connect` waits for this outcome.
        if let State::Waiting {
            until: Wait::Completion,
            ..
        } = self.state
        {
            self.end_wait(env);
        }
        let verb = self.call(env, |p, cx| p.on_connect(outcome, cx))?;
        self.apply(verb)?;
        self.feed(env, 0)?;
        self.settle(env)
    }

    pub fn on_drain(&mut self, env: &mut Env<'_>) -> Drive {
        if self.state == State::Connecting {
            return Err(CloseReason::Drain);
        }
        // A request sent before the drain may still sit unread in the kernel: hand it over
        // first, so the protocol does not take a busy connection for an idle one.
        if self.may_read(env) {
            self.on_readable(env, true)?;
        }
        if matches!(self.state, State::Closing { .. } | State::Lingering { .. }) {
            return Ok(());
        }
        let verb = self.call(env, |p, cx| p.on_drain(cx))?;
        self.apply(verb)?;
        self.settle(env)
    }

    /// The wheel fired for this connection: find out which deadline passed.
    pub fn on_timer(&mut self, env: &mut Env<'_>) -> Drive {
        self.armed = None;
        let now = env.moment;
        if let Some(by) = self.stream.handshake_deadline() {
            // The protocol's deadline (HTTP's header deadline) runs from the accept, so a
            // handshake that outlives it is a slowloris too; the protocol is not called, as
            // no answer of its own could reach the peer.
            if by <= env.now || self.deadline.is_some_and(|at| at <= now) {
                self.stream.handshake_timed_out();
                return Err(CloseReason::Aborted);
            }
        }
        if self.io_deadline.is_some_and(|at| at <= now) {
            return Err(match self.state {
                State::Lingering { reason } => reason,
                _ => CloseReason::WriteTimeout,
            });
        }
        if self.deadline.is_some_and(|at| at <= now) {
            self.deadline = None;
            let (verb, resume) = self.call(env, |p, cx| {
                let verb = p.on_deadline(cx);
                (verb, cx.resume)
            })?;
            self.apply_resumable(verb, resume, env)?;
        }
        self.settle(env)
    }

    /// Closes an idle keep-alive connection to make room near the connection limit, cleanly
    /// (lingering close, as `CloseReason::Evicted`). `Ok(false)` when it is not idle after all
    /// (input or output pending, or no longer reading): it stays, off the idle list.
    pub fn evict(&mut self, env: &mut Env<'_>) -> Result<bool, CloseReason> {
        // (`Ok(true)`: it now lingers, see `evicting`.)
        env.idle.remove(self.token);
        let unread = self.input.as_ref().map_or(0, InBuf::unconsumed);
        if self.state != (State::Reading { eof_seen: false })
            || unread > 0
            || self.pending_output(env) > 0
        {
            return Ok(false);
        }
        self.deadline = None;
        self.linger(env, CloseReason::Evicted)?;
        Ok(true)
    }

    /// True while this connection is being closed for eviction.
    pub fn evicting(&self) -> bool {
        self.state
            == (State::Lingering {
                reason: CloseReason::Evicted,
            })
    }

    /// Gives back buffers and cancels the timer; the socket closes when `self` drops.
    pub fn release(mut self, env: &mut Env<'_>) {
        self.stream.finish();
        env.idle.remove(self.token);
        if let Some(key) = self.armed.take() {
            env.timers.cancel(key);
        }
        if let Some(buf) = self.input.take() {
            env.input_pool.give_filled(buf.data.into_vec());
        }
        if let Some(out) = self.out.take() {
            env.output_pool.give(out);
        }
        // Drops the segment's handle on its file.
        env.segments.take(self.token);
    }

    /// Keeps one wheel entry at or before the earliest deadline. A later deadline leaves an
    /// earlier entry in place (it fires, finds nothing due, and re-arms), so moving an idle
    /// deadline forward on every request costs no wheel operation.
    ///
    /// The case of nearly every event (an entry armed, fired by the earliest deadline) is
    /// checked inline; a change of the wheel is out of line.
    #[inline]
    fn sync_timer(&mut self, env: &mut Env<'_>) {
        let earliest = self.earliest_deadline(env.timers.epoch());
        if let (Some(at), Some(key)) = (earliest, self.armed) {
            if env.timers.fires_by_moment(key, at) {
                return;
            }
        }
        self.rearm(env, earliest);
    }

    #[inline(never)]
    fn rearm(&mut self, env: &mut Env<'_>, earliest: Option<Moment>) {
        match (earliest, self.armed) {
            (None, Some(key)) => {
                env.timers.cancel(key);
                self.armed = None;
            }
            // (An entry that fires by `at` was kept by `sync_timer`.)
            (Some(at), armed) => {
                if let Some(key) = armed {
                    env.timers.cancel(key);
                }
                self.armed = Some(env.timers.insert_moment(at, self.token));
            }
            (None, None) => {}
        }
    }

    /// The earliest of the connection's deadlines. Plain comparisons of the two moments (and
    /// the handshake's only over TLS): an iterator over the three `Option`s cost about 40 of
    /// `sync_timer`'s 70 instructions per event (callgrind, S1).
    #[inline]
    fn earliest_deadline(&self, epoch: std::time::Instant) -> Option<Moment> {
        let own = match (self.deadline, self.io_deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let Transport::Tls(tls) = &self.stream else {
            return own;
        };
        let Some(handshake) = tls.handshake_deadline() else {
            return own;
        };
        let handshake = Moment::new(epoch, handshake);
        Some(own.map_or(handshake, |at| at.min(handshake)))
    }

    /// Calls the protocol with a [`Cx`] over this connection's buffers and deadline. A panic
    /// in the protocol closes this connection alone (`CloseReason::Panicked`): the shard and
    /// its other connections live on. The protocol object is dropped with the connection, so
    /// no state a panic may have left half-updated is used again.
    fn call<R>(
        &mut self,
        env: &mut Env<'_>,
        f: impl FnOnce(&mut dyn Protocol, &mut Cx<'_>) -> R,
    ) -> Result<R, CloseReason> {
        let mut outbox = Outbox {
            mail: &mut *env.mail,
            connects: &mut *env.connects,
        };
        let mut cx = Cx {
            now: env.now,
            epoch: env.timers.epoch(),
            moment: env.moment,
            shard: env.shard,
            token: self.token,
            out: &mut self.out,
            out_written: self.out_pos as usize,
            segments: &mut *env.segments,
            can_send_file: self.stream.can_sendfile(),
            unseen_from: 0,
            buffered_input: self.input.as_ref().map_or(0, InBuf::unconsumed),
            pool: &mut *env.output_pool,
            deadline: &mut self.deadline,
            jobs: &mut *env.jobs,
            mail: &mut outbox,
            draining: env.draining,
            refused: &mut self.refused,
            marked_idle: false,
            resume: false,
            link: env.link.as_deref_mut(),
        };
        let protocol = self.protocol.as_mut();
        let result = catch_unwind(AssertUnwindSafe(|| f(protocol, &mut cx)));
        let marked_idle = cx.marked_idle;
        let result = result.map_err(|panic| {
            let message = crate::offload::panic_message(panic.as_ref());
            tracing::error!(shard = env.shard, %message, "a protocol panicked; closing its connection");
            CloseReason::Panicked
        })?;
        if marked_idle {
            env.idle.push(self.token, env.moment);
        }
        Ok(result)
    }

    /// The reason for a close the protocol asked for.
    fn finished(&self) -> CloseReason {
        if self.refused {
            CloseReason::Aborted
        } else {
            CloseReason::Done
        }
    }

    /// Bytes not yet written: the output buffer's and a queued file segment's.
    #[inline]
    fn pending_output(&self, env: &Env<'_>) -> usize {
        let segment = env.segments.remaining(self.token);
        self.buffered_output()
            .saturating_add(usize::try_from(segment).unwrap_or(usize::MAX))
    }

    /// Output held in memory and not yet on the socket: the output buffer's unwritten bytes,
    /// plus one for any ciphertext the transport still holds (its size is rustls's, bounded;
    /// `> 0` is what counts for closing, eviction and waits).
    #[inline]
    fn buffered_output(&self) -> usize {
        let own = self
            .out
            .as_ref()
            .map_or(0, |out| out.len() - self.out_pos as usize);
        own + usize::from(self.stream.has_pending())
    }
}

#[cfg(test)]
mod tests {
    /// Every idle connection costs this much in the shard's slab: 128 bytes in a release
    /// build, 136 in a test build (mio's sockets carry a selector id under debug assertions).
    /// docs/BENCHMARKS.md (S4) has the measured bytes per idle connection. A guard, not a
    /// timing.
    #[test]
    fn a_connection_stays_small() {
        let size = std::mem::size_of::<super::Conn>();
        let limit = if cfg!(debug_assertions) { 136 } else { 128 };
        assert!(size <= limit, "Conn grew to {size} bytes");
    }
}
