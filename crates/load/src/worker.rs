//! One client thread: its own `Poll`, its share of the connections, timers
//! for connects and open-loop sends, and its own statistics.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::{Events, Poll};

use crate::conn::{split_token, Conn, Phase, Stream, TlsClient};
use crate::exchange::{self, Env, ReadUntil, Verdict};
use crate::lowat;
use crate::plan::Plan;
pub use crate::progress::Progress;
use crate::stats::{ErrorKind, Stats};

mod connect;

const SCRATCH: usize = 64 * 1024;
const EVENTS: usize = 1024;
/// Longest sleep in `poll`, so phase changes are noticed without a timer.
const MAX_POLL: Duration = Duration::from_millis(50);

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    Connect,
    Send,
    /// Batch mode: the stall guard of a receive low-water mark (lowat.rs).
    LowWater,
}

/// A worker thread's state. `run` is the only caller of `poll`.
pub struct Worker {
    id: usize,
    poll: Poll,
    conns: Vec<Conn>,
    env: Env,
    scratch: Vec<u8>,
    timers: BinaryHeap<Reverse<(Instant, usize, Timer)>>,
    ready: Vec<usize>,
    /// Connections read in this poll batch with requests queued, written after all reads.
    writes: Vec<usize>,
    measuring: bool,
    next_scan: Instant,
    drain_deadline: Option<Instant>,
    stopped_at: Option<Instant>,
    progress: Arc<Progress>,
    /// `https://`: this worker's TLS configuration and session cache.
    tls: Option<TlsClient>,
}

/// What a worker hands back when it ends.
#[derive(Debug)]
pub struct Finished {
    pub stats: Stats,
    /// When it stopped starting requests (end of duration or budget spent).
    pub stopped_at: Instant,
    /// When the drain ended.
    pub finished_at: Instant,
}

impl Worker {
    /// Worker `id` of `plan.workers` takes global connections id, id + W, ...
    pub fn new(
        id: usize,
        plan: Arc<Plan>,
        budget: Option<u64>,
        progress: Arc<Progress>,
    ) -> io::Result<Self> {
        let globals: Vec<usize> = (id..plan.connections).step_by(plan.workers).collect();
        let conns: Vec<Conn> = globals
            .iter()
            .map(|&g| Conn::new(g, plan.pipeline, plan.expect_body))
            .collect();
        let mut timers = BinaryHeap::with_capacity(3 * conns.len() + 1);
        for local in 0..conns.len() {
            timers.push(Reverse((plan.first_connect(local), local, Timer::Connect)));
        }
        let next_scan = plan.t0;
        let tls = plan.tls.as_ref().map(|t| t.client(conns.len()));
        Ok(Self {
            id,
            poll: Poll::new()?,
            conns,
            env: Env {
                plan,
                stats: Stats::default(),
                budget,
                in_flight: 0,
                stopping: false,
            },
            scratch: vec![0; SCRATCH],
            timers,
            ready: Vec::new(),
            writes: Vec::new(),
            measuring: false,
            next_scan,
            drain_deadline: None,
            stopped_at: None,
            progress,
            tls,
        })
    }

    /// Runs until the end of the measured phase (or the request budget) and
    /// the drain after it; returns this worker's figures.
    pub fn run(mut self) -> io::Result<Finished> {
        let mut events = Events::with_capacity(EVENTS);
        self.ready.reserve(self.conns.len());
        self.writes.reserve(self.conns.len());
        loop {
            let now = Instant::now();
            self.tick(now);
            // Send timers queue writes too; they must not wait out the poll.
            self.flush_writes();
            if self.finished(now) {
                break;
            }
            let timeout = self.poll_timeout(now);
            if let Err(e) = self.poll.poll(&mut events, Some(timeout)) {
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
            let now = Instant::now();
            for ev in events.iter() {
                let readable = ev.is_readable() || ev.is_read_closed() || ev.is_error();
                let until = if ev.is_read_closed() || ev.is_error() {
                    ReadUntil::WouldBlock
                } else {
                    ReadUntil::ShortRead
                };
                self.on_event(ev.token(), readable.then_some(until), now);
            }
            self.serve_ready();
            self.flush_writes();
            self.publish();
        }
        Ok(self.finish())
    }

    /// Phase changes, due timers and the timeout scan.
    fn tick(&mut self, now: Instant) {
        let plan = Arc::clone(&self.env.plan);
        if !self.measuring && now >= plan.measure_start {
            self.measuring = true;
        }
        let over = now >= plan.end || self.env.budget == Some(0) || self.progress.stop_requested();
        if !self.env.stopping && over {
            self.begin_stop(now);
        }
        self.fire_timers(now);
        if now >= self.next_scan {
            self.scan_timeouts(now);
            self.next_scan = now + scan_interval(plan.timeout);
        }
    }

    fn begin_stop(&mut self, now: Instant) {
        self.env.stopping = true;
        self.stopped_at = Some(now);
        let plan = Arc::clone(&self.env.plan);
        self.drain_deadline = Some(now + plan.timeout + 2 * scan_interval(plan.timeout));
        if let Some(interval) = plan.interval {
            let end = now.min(plan.end);
            self.env.stats.backlog = self
                .conns
                .iter()
                .map(|c| exchange::backlog(c, &plan, interval, end))
                .sum();
            // Warm-up requests still unsent on a connection that never got
            // to send in the measured phase were skipped too.
            if now >= plan.measure_start {
                self.env.stats.warmup.skipped += self
                    .conns
                    .iter()
                    .map(|c| exchange::unsent_warmup(c, &plan, interval))
                    .sum::<u64>();
            }
        }
        // Slots not yet connected will not be: close them so `finished` can see the end. Not
        // a slot reconnecting with requests to write again after a clean close (`reconnect`):
        // those were sent once and can still be answered in the drain, as an open socket's
        // can, so failing them would count as errors requests the server answers (seen: 202
        // of 203 completed and one "read" error, against a server that closes after every
        // response). If the connect fails, `retry_connect` fails them then.
        for c in &mut self.conns {
            let retrying = !c.in_flight.is_empty()
                && matches!(c.phase, Phase::Connecting(_) | Phase::Handshaking(_));
            if c.phase != Phase::Open && !retrying {
                exchange::fail_all(c, &mut self.env, ErrorKind::Read);
                c.close(self.poll.registry());
                c.phase = Phase::Done;
            }
        }
    }

    fn finished(&self, now: Instant) -> bool {
        if !self.env.stopping {
            return false;
        }
        self.env.in_flight == 0 || self.drain_deadline.is_some_and(|d| now >= d)
    }

    fn poll_timeout(&self, now: Instant) -> Duration {
        if !self.ready.is_empty() {
            return Duration::ZERO;
        }
        let plan = &self.env.plan;
        let mut until = now + MAX_POLL;
        if let Some(Reverse((t, _, _))) = self.timers.peek() {
            until = until.min(*t);
        }
        until = until.min(self.next_scan);
        if !self.measuring {
            until = until.min(plan.measure_start);
        }
        if !self.env.stopping {
            until = until.min(plan.end);
        }
        if let Some(d) = self.drain_deadline {
            until = until.min(d);
        }
        until.saturating_duration_since(now)
    }

    fn fire_timers(&mut self, now: Instant) {
        while let Some(Reverse((t, local, kind))) = self.timers.peek().copied() {
            if t > now {
                break;
            }
            self.timers.pop();
            match kind {
                Timer::Connect => self.on_connect_timer(local, now),
                Timer::Send => {
                    self.conns[local].send_timer = false;
                    self.pump(local, ReadUntil::WouldBlock);
                }
                Timer::LowWater => self.on_guard(local, now),
            }
        }
    }

    /// `readable` is how far to read when the event reports input.
    fn on_event(&mut self, token: mio::Token, readable: Option<ReadUntil>, now: Instant) {
        let (local, generation) = split_token(token);
        let Some(conn) = self.conns.get(local) else {
            return;
        };
        if conn.generation != generation {
            return;
        }
        match conn.phase {
            Phase::Connecting(since) => self.check_connected(local, since, now),
            Phase::Handshaking(since) => self.handshake(local, since),
            Phase::Open => match readable {
                Some(until) => self.pump(local, until),
                None => self.on_writable(local, now),
            },
            Phase::Waiting | Phase::Done => {}
        }
    }

    fn on_writable(&mut self, local: usize, now: Instant) {
        match exchange::flush(&mut self.conns[local], &mut self.env) {
            Verdict::Fail(kind) => self.fail(local, kind, now),
            _ => self.sync_interest(local, now),
        }
    }

    /// Keeps WRITABLE registered exactly while output is pending.
    fn sync_interest(&mut self, local: usize, now: Instant) {
        let conn = &mut self.conns[local];
        let want = conn.unwritten > 0 || conn.stream.as_ref().is_some_and(Stream::pending_output);
        if want == conn.write_interest {
            return;
        }
        let token = conn.token(local);
        let Some(stream) = conn.stream.as_mut() else {
            return;
        };
        match stream.want_write(self.poll.registry(), token, want) {
            Ok(()) => conn.write_interest = want,
            Err(_) => self.fail(local, ErrorKind::Write, now),
        }
    }

    /// Reads what is there and queues what is due; the write waits for
    /// `flush_writes`, after every event of the batch has been read (as wrk
    /// does): 6% fewer client CPU-seconds per request pipelining 16 deep.
    fn pump(&mut self, local: usize, until: ReadUntil) {
        let conn = &mut self.conns[local];
        if conn.phase != Phase::Open {
            return;
        }
        let mut stamp = None;
        let mut v = exchange::read(conn, &mut self.env, &mut self.scratch, until, &mut stamp);
        let batch = self.env.plan.refill_when_empty;
        if batch && stamp.is_some() && v == Verdict::Keep {
            lowat::after_read(conn);
        }
        let idle = conn.in_flight.is_empty();
        // Closed loop measures new requests from here: the clock read after
        // the last read (one clock read per response, not two; it is earlier
        // by the framing of that read's bytes, so latencies err long).
        let now = stamp.unwrap_or_else(Instant::now);
        if v == Verdict::More {
            self.ready.push(local);
            v = Verdict::Keep;
        }
        match v {
            Verdict::Keep | Verdict::More => {
                exchange::fill(conn, &mut self.env, now);
                if batch && idle && !conn.in_flight.is_empty() {
                    self.arm_low_water(local, now);
                }
                let conn = &mut self.conns[local];
                if conn.unwritten == 0 {
                    self.arm_send_timer(local);
                    self.sync_interest(local, now);
                } else if !conn.write_queued {
                    conn.write_queued = true;
                    self.writes.push(local);
                }
            }
            Verdict::Reconnect => self.reconnect(local, now),
            Verdict::Fail(kind) => self.fail(local, kind, now),
        }
    }

    /// Writes what the batch's reads queued.
    fn flush_writes(&mut self) {
        let now = Instant::now();
        let mut writes = std::mem::take(&mut self.writes);
        for local in writes.drain(..) {
            let conn = &mut self.conns[local];
            conn.write_queued = false;
            if conn.phase != Phase::Open {
                continue;
            }
            match exchange::flush(conn, &mut self.env) {
                Verdict::Fail(kind) => self.fail(local, kind, now),
                _ => {
                    self.arm_send_timer(local);
                    self.sync_interest(local, now);
                }
            }
        }
        self.writes = writes;
    }

    /// A new batch was queued: set its mark, and make sure a guard will look.
    fn arm_low_water(&mut self, local: usize, now: Instant) {
        let conn = &mut self.conns[local];
        if lowat::arm(conn) && !conn.low_water.guard_pending {
            conn.low_water.guard_pending = true;
            let due = now + conn.low_water.guard(self.env.plan.timeout);
            self.timers.push(Reverse((due, local, Timer::LowWater)));
        }
    }

    /// One guard timer per slot at most: it follows the slot's batches,
    /// and drops the mark of a batch that has waited past the guard.
    fn on_guard(&mut self, local: usize, now: Instant) {
        let conn = &mut self.conns[local];
        conn.low_water.guard_pending = false;
        let Some(oldest) = conn.in_flight.front() else {
            return;
        };
        if conn.phase != Phase::Open || conn.low_water.mark() <= 1 {
            return;
        }
        let due = oldest.queued + conn.low_water.guard(self.env.plan.timeout);
        if due > now {
            conn.low_water.guard_pending = true;
            self.timers.push(Reverse((due, local, Timer::LowWater)));
            return;
        }
        lowat::set_mark(conn, 1);
        self.pump(local, ReadUntil::WouldBlock);
    }

    fn arm_send_timer(&mut self, local: usize) {
        let conn = &mut self.conns[local];
        if let Some(due) = exchange::send_timer(conn, &self.env) {
            conn.send_timer = true;
            self.timers.push(Reverse((due, local, Timer::Send)));
        }
    }

    fn serve_ready(&mut self) {
        // Swap out so connections that hit the budget again go on a fresh list.
        let mut ready = std::mem::take(&mut self.ready);
        for local in ready.drain(..) {
            // The budget ran out on full reads; only `WouldBlock` ends this.
            self.pump(local, ReadUntil::WouldBlock);
        }
        if self.ready.is_empty() {
            self.ready = ready;
        }
    }

    /// Fails requests that waited longer than the timeout, and connects that did.
    fn scan_timeouts(&mut self, now: Instant) {
        let timeout = self.env.plan.timeout;
        for local in 0..self.conns.len() {
            let conn = &self.conns[local];
            match conn.phase {
                Phase::Open => {
                    let late = conn
                        .in_flight
                        .front()
                        .is_some_and(|r| now.saturating_duration_since(r.queued) >= timeout);
                    if late {
                        self.fail(local, ErrorKind::Timeout, now);
                    }
                }
                Phase::Connecting(since) if now.saturating_duration_since(since) >= timeout => {
                    let e = io::Error::from_raw_os_error(110);
                    self.connect_failed(local, &e, now);
                }
                Phase::Handshaking(since) if now.saturating_duration_since(since) >= timeout => {
                    self.handshake_failed(local, crate::tls::Failure::Timeout, now);
                }
                _ => {}
            }
        }
    }

    fn publish(&self) {
        self.progress.responses[self.id].store(self.env.stats.responses, Ordering::Relaxed);
    }

    fn finish(mut self) -> Finished {
        let left: u64 = self
            .conns
            .iter()
            .flat_map(|c| c.in_flight.iter())
            .filter(|r| r.measured)
            .count() as u64;
        self.env.stats.unfinished = left;
        self.publish();
        for c in &mut self.conns {
            c.close(self.poll.registry());
        }
        let finished_at = Instant::now();
        Finished {
            stats: self.env.stats,
            stopped_at: self.stopped_at.unwrap_or(finished_at),
            finished_at,
        }
    }
}

/// Timeouts are found by a scan; this bounds how late one can be noticed.
fn scan_interval(timeout: Duration) -> Duration {
    (timeout / 8).clamp(Duration::from_millis(1), Duration::from_millis(100))
}
