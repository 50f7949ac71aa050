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
use crate::inbuf::InBuf;
use crate::offload::{Completion, OffloadSink};
use crate::protocol::{Cx, Protocol, Step, Verb};
use crate::socket::Stream;
use crate::stats::{bump, CloseReason, ShardStats};
use crate::timer::{TimerKey, TimerWheel};
use crate::token::ConnToken;

/// IO settings a shard applies to all its connections.
#[derive(Clone, Debug)]
pub(crate) struct IoConfig {
    pub max_input: usize,
    pub read_budget: usize,
    pub write_high_water: usize,
    pub write_timeout: Duration,
    pub linger: Duration,
}

/// The shard's parts a connection borrows while it is driven.
pub(crate) struct Env<'a> {
    pub now: Instant,
    pub shard: usize,
    pub draining: bool,
    pub registry: &'a Registry,
    pub input_pool: &'a mut BufPool,
    pub output_pool: &'a mut BufPool,
    pub jobs: &'a mut OffloadSink,
    pub stats: &'a ShardStats,
    pub timers: &'a mut TimerWheel<ConnToken>,
    pub ready: &'a mut Vec<ConnToken>,
    pub scratch: &'a mut [u8],
    pub io: &'a IoConfig,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Wait {
    Nothing,
    Flush,
    Completion,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Open,
    /// Output is being flushed; the protocol gets no more input.
    Closing,
    /// The write side is shut down; input is read and dropped until EOF or the linger deadline.
    Lingering,
}

/// Outcome of driving a connection: `Err` closes it for the reason given.
pub(crate) type Drive = Result<(), CloseReason>;

pub(crate) struct Conn {
    stream: Stream,
    token: ConnToken,
    listener: u16,
    protocol: Box<dyn Protocol>,
    input: Option<InBuf>,
    out: Option<Vec<u8>>,
    /// Bytes of `out` already written. u32: a connection's pending output above 4 GiB is
    /// refused in `flush` (no protocol of ours comes near it; the high-water mark is KiB).
    out_pos: u32,
    deadline: Option<Instant>,
    /// The write timeout while output waits, or the linger deadline once lingering (a
    /// lingering connection has no output left, so the two never overlap).
    io_deadline: Option<Instant>,
    /// The one wheel entry this connection has, at or before its earliest deadline.
    armed: Option<TimerKey>,
    wait: Wait,
    phase: Phase,
    peer_eof: bool,
    eof_delivered: bool,
    writable_registered: bool,
    /// The protocol called `Cx::refuse`: the close counts as `Aborted`.
    refused: bool,
}

impl crate::table::Keyed for Conn {
    fn token(&self) -> ConnToken {
        self.token
    }
}

impl Conn {
    pub fn new(
        stream: Stream,
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
            wait: Wait::Nothing,
            phase: Phase::Open,
            peer_eof: false,
            eof_delivered: false,
            writable_registered: false,
            refused: false,
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
        if self.phase == Phase::Lingering {
            return self.discard_input(env);
        }
        let mut budget = env.io.read_budget;
        while self.may_read(env.io) {
            let Some((read, drained)) = self.read_once(env)? else {
                break;
            };
            self.feed(env)?;
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
        if self.pending_output() > env.io.write_high_water {
            bump(&env.stats.read_paused, 1);
        }
        self.settle(env)
    }

    /// `EPOLLERR`: the peer reset the connection (or it failed otherwise). Closed at once,
    /// even while the protocol awaits a job and reads nothing: nobody is left to answer.
    pub fn on_error(&mut self) -> Drive {
        Err(CloseReason::IoError)
    }

    pub fn on_writable(&mut self, env: &mut Env<'_>) -> Drive {
        self.settle(env)
    }

    pub fn on_completion(&mut self, completion: Completion, env: &mut Env<'_>) -> Drive {
        if self.wait == Wait::Completion {
            self.wait = Wait::Nothing;
            self.resume_reading(env);
        }
        let verb = self.call(env, |p, cx| p.on_completion(completion, cx))?;
        self.apply(verb)?;
        self.feed(env)?;
        self.settle(env)
    }

    pub fn on_drain(&mut self, env: &mut Env<'_>) -> Drive {
        // A request sent before the drain may still sit unread in the kernel: hand it over
        // first, so the protocol does not take a busy connection for an idle one.
        if self.phase == Phase::Open && self.may_read(env.io) {
            self.on_readable(env, true)?;
        }
        if self.phase != Phase::Open {
            return Ok(());
        }
        let verb = self.call(env, |p, cx| p.on_drain(cx))?;
        self.apply(verb)?;
        self.settle(env)
    }

    /// The wheel fired for this connection: find out which deadline passed.
    pub fn on_timer(&mut self, env: &mut Env<'_>) -> Drive {
        self.armed = None;
        let now = env.now;
        if self.io_deadline.is_some_and(|at| at <= now) {
            return Err(if self.phase == Phase::Lingering {
                self.finished()
            } else {
                CloseReason::WriteTimeout
            });
        }
        if self.deadline.is_some_and(|at| at <= now) {
            self.deadline = None;
            let verb = self.call(env, |p, cx| p.on_deadline(cx))?;
            self.apply(verb)?;
        }
        self.settle(env)
    }

    /// Gives back buffers and cancels the timer; the socket closes when `self` drops.
    pub fn release(mut self, env: &mut Env<'_>) {
        if let Some(key) = self.armed.take() {
            env.timers.cancel(key);
        }
        if let Some(buf) = self.input.take() {
            env.input_pool.give(buf.data);
        }
        if let Some(out) = self.out.take() {
            env.output_pool.give(out);
        }
    }

    fn may_read(&self, io: &IoConfig) -> bool {
        self.phase == Phase::Open
            && self.wait == Wait::Nothing
            && !self.peer_eof
            && self.pending_output() <= io.write_high_water
    }

    /// One `read`: the bytes read, and whether they fell short of the room offered (the
    /// receive queue is empty); `Ok(None)` when the socket has nothing more (WouldBlock, EOF).
    fn read_once(&mut self, env: &mut Env<'_>) -> Result<Option<(usize, bool)>, CloseReason> {
        let pool = &mut *env.input_pool;
        let buf = self.input.get_or_insert_with(|| {
            let mut data = pool.take();
            let size = pool.buf_size();
            data.resize(size, 0);
            InBuf {
                data,
                start: 0,
                end: 0,
            }
        });
        if !buf.make_room(env.io.max_input) {
            return Err(CloseReason::InputOverflow);
        }
        let room = buf.data.len() - buf.end as usize;
        loop {
            return match self.stream.read(&mut buf.data[buf.end as usize..]) {
                Ok(0) => {
                    self.peer_eof = true;
                    Ok(None)
                }
                Ok(n) => {
                    buf.end += n as u32;
                    bump(&env.stats.bytes_in, n as u64);
                    Ok(Some((n, n < room)))
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => Err(CloseReason::IoError),
            };
        }
    }

    /// Hands buffered input to the protocol unless it is waiting or closing.
    fn feed(&mut self, env: &mut Env<'_>) -> Drive {
        if self.phase != Phase::Open || self.wait != Wait::Nothing {
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
            let step = self.call(env, |p, cx| p.on_input(input, cx));
            match step {
                Ok(step) => step,
                Err(reason) => {
                    env.input_pool.give(buf.data);
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

    fn apply(&mut self, verb: Verb) -> Drive {
        match verb {
            Verb::Read => {}
            Verb::WaitFlush => self.wait = Wait::Flush,
            Verb::AwaitCompletion => self.wait = Wait::Completion,
            // A closing protocol is done: its deadline could only answer a request that will
            // never complete, after the response that said close.
            Verb::CloseAfterFlush => {
                self.phase = Phase::Closing;
                self.deadline = None;
            }
            Verb::CloseNow => return Err(CloseReason::Aborted),
        }
        Ok(())
    }

    /// After any event: write what is pending, resolve waits that the write ended, deliver a
    /// pending EOF, move a closing connection on, give idle buffers back and re-arm the timer.
    fn settle(&mut self, env: &mut Env<'_>) -> Drive {
        loop {
            self.flush(env)?;
            if self.wait == Wait::Flush && self.pending_output() == 0 {
                self.wait = Wait::Nothing;
                self.resume_reading(env);
                let verb = self.call(env, |p, cx| p.on_flushed(cx))?;
                self.apply(verb)?;
                self.feed(env)?;
                continue;
            }
            break;
        }
        self.deliver_eof(env)?;
        self.advance_close(env)?;
        self.release_idle_buffers(env);
        self.sync_timer(env);
        Ok(())
    }

    fn deliver_eof(&mut self, env: &mut Env<'_>) -> Drive {
        if !self.peer_eof
            || self.eof_delivered
            || self.phase != Phase::Open
            || self.wait != Wait::Nothing
        {
            return Ok(());
        }
        self.eof_delivered = true;
        let unconsumed = self.input.as_ref().map_or(0, InBuf::unconsumed);
        let verb = self.call(env, |p, cx| p.on_eof(unconsumed, cx))?;
        self.apply(verb)?;
        // No more input will come: a protocol that neither waits nor closes is done.
        if self.phase == Phase::Open && self.wait == Wait::Nothing {
            self.phase = Phase::Closing;
        }
        self.flush(env)
    }

    fn advance_close(&mut self, env: &mut Env<'_>) -> Drive {
        if self.phase != Phase::Closing || self.pending_output() > 0 {
            return Ok(());
        }
        if self.peer_eof {
            return Err(if self.eof_delivered && !self.refused {
                CloseReason::Peer
            } else {
                self.finished()
            });
        }
        // Lingering close: shut our side so the peer sees the end of the response, then read
        // and drop what it still sends, so that closing never resets a response in flight.
        if self.stream.shutdown_write().is_err() {
            return Err(self.finished());
        }
        self.phase = Phase::Lingering;
        self.io_deadline = Some(env.now + env.io.linger);
        self.deadline = None;
        self.discard_input(env)
    }

    fn discard_input(&mut self, env: &mut Env<'_>) -> Drive {
        if let Some(buf) = self.input.take() {
            env.input_pool.give(buf.data);
        }
        let mut budget = env.io.read_budget;
        loop {
            match self.stream.read(env.scratch) {
                Ok(0) => return Err(self.finished()),
                Ok(n) => {
                    bump(&env.stats.bytes_in, n as u64);
                    budget = budget.saturating_sub(n);
                    if budget == 0 {
                        env.ready.push(self.token);
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Err(self.finished()),
            }
        }
        self.sync_timer(env);
        Ok(())
    }

    /// Writes pending output until done or `WouldBlock`; registers `WRITABLE` only then.
    fn flush(&mut self, env: &mut Env<'_>) -> Drive {
        let Some(out) = self.out.as_ref() else {
            return Ok(());
        };
        if out.len() > u32::MAX as usize {
            return Err(CloseReason::Aborted);
        }
        let was_blocked_above_mark = self.pending_output() > env.io.write_high_water;
        let mut progressed = false;
        while (self.out_pos as usize) < out.len() {
            match self.stream.write(&out[self.out_pos as usize..]) {
                Ok(0) => return Err(CloseReason::IoError),
                Ok(n) => {
                    self.out_pos += n as u32;
                    progressed = true;
                    bump(&env.stats.bytes_out, n as u64);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    return self.wait_writable(progressed, was_blocked_above_mark, env);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Err(CloseReason::IoError),
            }
        }
        self.out_pos = 0;
        self.io_deadline = None;
        if let Some(out) = self.out.take() {
            env.output_pool.give(out);
        }
        if was_blocked_above_mark {
            self.resume_reading(env);
        }
        Ok(())
    }

    fn wait_writable(&mut self, progressed: bool, was_above: bool, env: &mut Env<'_>) -> Drive {
        if !self.writable_registered {
            // WRITABLE stays registered from now on: with edge triggering it only reports when
            // a full send buffer gains room, so leaving it costs nothing and saves a syscall.
            let interest = Interest::READABLE | Interest::WRITABLE;
            if self
                .stream
                .reregister(env.registry, self.token.to_mio(), interest)
                .is_err()
            {
                return Err(CloseReason::IoError);
            }
            self.writable_registered = true;
        }
        if progressed || self.io_deadline.is_none() {
            self.io_deadline = Some(env.now + env.io.write_timeout);
        }
        let pending = self.pending_output() as u64;
        if pending
            > env
                .stats
                .peak_output_buffered
                .load(std::sync::atomic::Ordering::Relaxed)
        {
            crate::stats::set(&env.stats.peak_output_buffered, pending);
        }
        if was_above && self.pending_output() <= env.io.write_high_water {
            self.resume_reading(env);
        }
        Ok(())
    }

    /// Reading stopped before `WouldBlock`, so no new edge may come: retry from the ready list.
    fn resume_reading(&mut self, env: &mut Env<'_>) {
        if !self.peer_eof && self.phase == Phase::Open {
            env.ready.push(self.token);
        }
    }

    fn release_idle_buffers(&mut self, env: &mut Env<'_>) {
        if self.input.as_ref().is_some_and(|b| b.unconsumed() == 0) {
            if let Some(buf) = self.input.take() {
                env.input_pool.give(buf.data);
            }
        }
    }

    /// Keeps one wheel entry at or before the earliest deadline. A later deadline leaves an
    /// earlier entry in place (it fires, finds nothing due, and re-arms), so moving an idle
    /// deadline forward on every request costs no wheel operation.
    fn sync_timer(&mut self, env: &mut Env<'_>) {
        let earliest = [self.deadline, self.io_deadline]
            .into_iter()
            .flatten()
            .min();
        match (earliest, self.armed) {
            (None, Some(key)) => {
                env.timers.cancel(key);
                self.armed = None;
            }
            (Some(at), Some(key)) if env.timers.fires_by(key, at) => {}
            (Some(at), armed) => {
                if let Some(key) = armed {
                    env.timers.cancel(key);
                }
                self.armed = Some(env.timers.insert(at, self.token));
            }
            (None, None) => {}
        }
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
        let mut cx = Cx {
            now: env.now,
            shard: env.shard,
            token: self.token,
            out: &mut self.out,
            out_written: self.out_pos as usize,
            buffered_input: self.input.as_ref().map_or(0, InBuf::unconsumed),
            pool: &mut *env.output_pool,
            deadline: &mut self.deadline,
            jobs: &mut *env.jobs,
            draining: env.draining,
            refused: &mut self.refused,
        };
        let protocol = self.protocol.as_mut();
        catch_unwind(AssertUnwindSafe(|| f(protocol, &mut cx))).map_err(|panic| {
            let message = crate::offload::panic_message(panic.as_ref());
            tracing::error!(shard = env.shard, %message, "a protocol panicked; closing its connection");
            CloseReason::Panicked
        })
    }

    /// The reason for a close the protocol asked for.
    fn finished(&self) -> CloseReason {
        if self.refused {
            CloseReason::Aborted
        } else {
            CloseReason::Done
        }
    }

    fn pending_output(&self) -> usize {
        self.out
            .as_ref()
            .map_or(0, |out| out.len() - self.out_pos as usize)
    }
}

#[cfg(test)]
mod tests {
    /// Every idle connection costs this much in the shard's slab; docs/BENCHMARKS.md (S4)
    /// has the measured bytes per idle connection. A guard, not a timing.
    #[test]
    fn a_connection_stays_small() {
        let size = std::mem::size_of::<super::Conn>();
        assert!(size <= 160, "Conn grew to {size} bytes");
    }
}
