//! A shard: one thread, one `mio::Poll`, one slab of connections, one timer wheel.
//!
//! `Shard::run` is the only caller of `poll` on its thread. Everything from other threads
//! (handoffs, offload completions, control messages) arrives through the shard's [`Inbox`].

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crossbeam_utils::CachePadded;
use mio::{Events, Poll};

use crate::accept::{AcceptGate, Limits, RateLimitedLog};
use crate::accept_loop::LocalAccept;
use crate::buffer::BufPool;
use crate::conn::{Conn, Drive, Env, IoConfig};
use crate::idle::IdleList;
use crate::inbox::{Handoff, Inbox};
use crate::link::Links;
use crate::message::{Local, ShardMail};
use crate::offload::{Completion, OffloadSink};
use crate::outbound::{Connects, Pending};
use crate::protocol::{ConnFactory, ConnInfo};
use crate::stats::{bump, set, CloseReason, ShardStats};
use crate::table::ConnTable;
use crate::timer::TimerWheel;
use crate::token::{ConnToken, Reserved};

mod admit;
mod control;
mod drain;
mod evict;
mod link;
use link::{give_back, lend_peer};
mod mail;
mod outbound;

use admit::Adopter;
pub(crate) use control::Control;

const EVENTS_CAPACITY: usize = 1024;
const IDLE_POOL_BUFFERS: usize = 256;

pub(crate) struct Shard {
    pub id: usize,
    pub poll: Poll,
    pub inbox: Arc<Inbox>,
    pub jobs: OffloadSink,
    pub mail: ShardMail,
    pub stats: Arc<CachePadded<ShardStats>>,
    pub gate: Arc<AcceptGate>,
    pub local_accept: Option<LocalAccept>,
    /// The connection limits, for eviction (and admission in reuseport mode).
    pub limits: Limits,
    /// Reuseport mode: this shard's connections hold places of `limits` (see `Limits::admit`).
    pub admits: bool,
    /// Size of a pooled output buffer (output buffers grow as a protocol writes).
    pub output_buffer: usize,
    pub timer_tick: Duration,
    pub slab_capacity: usize,
}

struct Loop {
    /// By listener id; `None` for an id this shard has not heard of yet.
    factories: Vec<Option<Box<dyn ConnFactory>>>,
    conns: ConnTable<Conn>,
    timers: TimerWheel<ConnToken>,
    /// By listener id: its IO settings and its input buffer pool (its own `read_buffer`).
    ios: Vec<IoConfig>,
    input_pools: Vec<BufPool>,
    output_pool: BufPool,
    /// While draining, by listener id: when its connections still open are closed.
    drain_cuts: Vec<Option<Instant>>,
    ready: Vec<ConnToken>,
    ready_scratch: Vec<ConnToken>,
    fired: Vec<ConnToken>,
    scratch: Vec<u8>,
    draining: Option<Instant>,
    next_clock: Instant,
    /// The turn's `now` as a moment of the timer wheel's epoch, for every drive's `Env`.
    moment: crate::moment::MomentCache,
    /// By listener id: its keep-alive connections idle between requests, oldest first (one
    /// list per listener, as each has its own `keepalive_grace`).
    idle: Vec<IdleList>,
    /// Connections closing for eviction (lingering): their slots are as good as free.
    evicting: usize,
    /// When the oldest idle connection passes its grace, while slots are short.
    evict_at: Option<Instant>,
    evict_log: RateLimitedLog,
    /// Connects asked for by protocols, started by `open_outbound`.
    connects: Connects,
    segments: crate::segment::Segments,
    /// Outbound connections still connecting, and who asked.
    pending: Vec<Pending>,
    /// Linked connections, both sides (`crate::link`).
    links: Links,
}

impl Shard {
    /// Runs the loop until drained. `factories` are made on this thread, one per listener.
    pub fn run(mut self, factories: Vec<Option<Box<dyn ConnFactory>>>, ios: Vec<IoConfig>) {
        let start = Instant::now();
        let input_pools = ios
            .iter()
            .map(|io| BufPool::new(io.read_buffer, IDLE_POOL_BUFFERS))
            .collect();
        let idle = ios.iter().map(|_| IdleList::default()).collect();
        let mut state = Loop {
            factories,
            ios,
            input_pools,
            drain_cuts: Vec::new(),
            // Reserved up front: untouched pages cost no memory, and the slab never grows by
            // copying (a copy touches every entry, and the old block's pages stay counted
            // until it is freed), so resident memory follows the live connections.
            conns: ConnTable::with_capacity(self.slab_capacity),
            timers: TimerWheel::new(start, self.timer_tick, 4096),
            output_pool: BufPool::new(self.output_buffer, IDLE_POOL_BUFFERS),
            ready: Vec::new(),
            ready_scratch: Vec::new(),
            fired: Vec::new(),
            scratch: vec![0; 4096],
            draining: None,
            next_clock: start,
            moment: crate::moment::MomentCache::new(start),
            idle,
            evicting: 0,
            evict_at: None,
            evict_log: RateLimitedLog::default(),
            connects: Connects::default(),
            segments: Default::default(),
            pending: Vec::new(),
            links: Links::default(),
        };
        let mut events = Events::with_capacity(EVENTS_CAPACITY);
        loop {
            let now = Instant::now();
            self.tick_clock(&mut state, now);
            let timeout = self.poll_timeout(&state, now);
            if let Err(error) = self.poll.poll(&mut events, timeout) {
                if error.kind() != std::io::ErrorKind::Interrupted {
                    tracing::error!(shard = self.id, %error, "poll failed; shard stops");
                    break;
                }
            }
            let now = Instant::now();
            bump(&self.stats.loop_iterations, 1);
            let mut count = 0;
            for event in events.iter() {
                count += 1;
                self.dispatch(&mut state, event, now);
            }
            bump(&self.stats.events, count);
            // A wake that failed, or items pushed without one, are still picked up: the poll
            // timeout bounds how late (see `Inbox::wake`).
            if self.inbox.wake_pending() || self.inbox.has_items() {
                self.drain_inbox(&mut state, now);
            }
            self.accept_local(&mut state, now);
            self.run_ready(&mut state, now);
            self.open_outbound(&mut state, now);
            self.deliver_local(&mut state, now);
            self.expire_timers(&mut state, now);
            self.evict_idle(&mut state, now);
            if self.finished(&mut state, now) {
                break;
            }
        }
        self.close_all(&mut state, Instant::now(), CloseReason::Drain);
    }

    fn dispatch(&mut self, state: &mut Loop, event: &mio::event::Event, now: Instant) {
        if let Some(token) = ConnToken::from_mio(event.token()) {
            if !state.pending.is_empty() && self.connect_event(state, token, now) {
                return;
            }
            if event.is_error() {
                self.drive(state, token, now, |conn, _| conn.on_error());
                return;
            }
            // Both halves in one drive: when the writable half closes the connection, its
            // readable half is not a stale event (one lookup, one count at most).
            let writable = event.is_writable();
            let readable = event.is_readable() || event.is_read_closed();
            let peer_closed = event.is_read_closed();
            self.drive(state, token, now, |conn, env| {
                if writable {
                    conn.on_writable(env)?;
                }
                if readable {
                    conn.on_readable(env, peer_closed)?;
                }
                Ok(())
            });
            return;
        }
        match Reserved::from_mio(event.token()) {
            Some(Reserved::Waker) => {
                bump(&self.stats.wakes, 1);
                self.drain_inbox(state, now);
            }
            Some(Reserved::Listener(i)) => {
                if let Some(local) = self.local_accept.as_mut() {
                    local.accept.listeners.mark_ready(i as usize);
                }
            }
            None => {}
        }
    }

    /// Runs `f` on the live connection `token` names, then closes it if `f` says so. A token
    /// whose generation does not match the slot's connection is stale: dropped, and counted
    /// as a stale event.
    fn drive(
        &mut self,
        state: &mut Loop,
        token: ConnToken,
        now: Instant,
        f: impl FnOnce(&mut Conn, &mut Env<'_>) -> Drive,
    ) {
        if !self.try_drive(state, token, now, f) {
            bump(&self.stats.stale_events, 1);
        }
    }

    /// [`drive`](Self::drive) without the counting: `false` when `token` is stale.
    fn try_drive(
        &mut self,
        state: &mut Loop,
        token: ConnToken,
        now: Instant,
        f: impl FnOnce(&mut Conn, &mut Env<'_>) -> Drive,
    ) -> bool {
        // A shard with no links (every plain HTTP shard) looks its connection up once.
        let mut lent = None;
        if !state.links.by_conn.is_empty() {
            let Some(conn) = state.conns.get_mut(token) else {
                return false;
            };
            if conn.is_linked() {
                lent = lend_peer(state, token);
            }
        }
        let (conns, parts) = split(state);
        let Some(conn) = conns.get_mut(token) else {
            return false;
        };
        let listener = conn.listener();
        let mut env = env(self, parts, now, listener);
        env.link = lent.as_mut();
        let outcome = f(conn, &mut env);
        if let Some(lent) = lent {
            give_back(state, token, lent);
        }
        if let Err(reason) = outcome {
            self.close(state, token, now, reason);
        }
        // Checked here, not in the call: links are asked for rarely, drives happen per event.
        if state.connects.wants_links() {
            self.make_links(state, now);
        }
        true
    }

    fn close(&mut self, state: &mut Loop, token: ConnToken, now: Instant, reason: CloseReason) {
        let Some(conn) = state.conns.remove(token) else {
            return;
        };
        // However an eviction ends (EOF, linger deadline, reset, drain), it was an eviction.
        let reason = if conn.evicting() {
            state.evicting = state.evicting.saturating_sub(1);
            CloseReason::Evicted
        } else {
            reason
        };
        if let Some(link) = state.links.by_conn.remove(&token) {
            let unlinked = Local::Unlinked {
                peer: token,
                link: Some(link.id),
            };
            self.mail.local.push_back((link.peer, unlinked));
        }
        let outbound = conn.is_outbound();
        if outbound {
            self.outbound_closed(state, token);
        }
        let (conns, parts) = split(state);
        let active = conns.len() as u64;
        let listener = conn.listener();
        let mut env = env(self, parts, now, listener);
        conn.release(&mut env);
        self.stats.closed(listener, reason);
        set(&self.stats.balance.active, active);
        if outbound {
            let out = &self.stats.outbound.active;
            set(out, out.load(Ordering::Relaxed).saturating_sub(1));
        } else {
            let per_listener = &self.stats.listeners[listener].active;
            set(
                per_listener,
                per_listener.load(Ordering::Relaxed).saturating_sub(1),
            );
            if self.admits {
                self.limits.release();
            }
        }
        self.gate.capacity_freed();
        if let Some(local) = self.local_accept.as_mut() {
            local.accept.room_freed();
        }
    }

    fn drain_inbox(&mut self, state: &mut Loop, now: Instant) {
        self.inbox.begin_drain();
        self.drain_control(state, now);
        let mut took = false;
        while let Some(handoff) = self.inbox.pop_handoff() {
            took = true;
            if !self.adopt(state, handoff, now) {
                self.count_taken(); // never adopted: no longer in flight either
            }
        }
        if took {
            self.gate.capacity_freed();
        }
        while let Some((token, completion)) = self.inbox.pop_completion() {
            self.deliver(state, token, completion, now);
        }
        while let Some((token, message)) = self.inbox.pop_message() {
            self.deliver_message(state, token, message, now);
        }
        // Control first: a handoff from a listener added just now needs its factory.
        self.drain_control(state, now);
    }

    fn deliver(
        &mut self,
        state: &mut Loop,
        token: ConnToken,
        completion: Completion,
        now: Instant,
    ) {
        let delivered = self.try_drive(state, token, now, |conn, env| {
            conn.on_completion(completion, env)
        });
        let counter = if delivered {
            &self.stats.completions
        } else {
            &self.stats.stale_completions
        };
        bump(counter, 1);
    }

    /// Takes over an accepted connection: slot, token, registration, protocol. `false` when
    /// it was closed before it got a slot.
    fn adopt(&mut self, state: &mut Loop, handoff: Handoff, now: Instant) -> bool {
        let from_inbox = self.local_accept.is_none() && !self.admits;
        let Handoff {
            stream,
            peer,
            listener,
        } = handoff;
        if !matches!(state.factories.get(listener), Some(Some(_))) {
            // The listener's AddListener may have been queued after this shard last looked.
            self.drain_control(state, now);
        }
        let info = ConnInfo {
            listener,
            peer,
            shard: self.id,
        };
        let Some(Some(factory)) = state.factories.get_mut(listener) else {
            tracing::error!(
                shard = self.id,
                listener,
                "a connection for an unknown listener; closing it"
            );
            return false;
        };
        let tls = state.ios.get(listener).and_then(|io| io.tls.clone());
        let Some(transport) = transport(stream, tls, now, self.id) else {
            return false;
        };
        let protocol = factory.open(&info);
        let registry = self.poll.registry();
        let shard = self.id;
        let adopted = state.conns.insert_with(|token| {
            let mut conn = Conn::new(transport, token, listener, protocol);
            match conn.register(registry) {
                Ok(()) => Some(conn),
                Err(error) => {
                    tracing::warn!(shard, %error, "registering a connection failed; closing it");
                    None
                }
            }
        });
        let Some(token) = adopted else {
            return false;
        };
        bump(&self.stats.accepted, 1);
        set(&self.stats.balance.active, state.conns.len() as u64);
        if from_inbox {
            // After `active`, and before the protocol runs (it may answer the peer at once):
            // see `Acceptor::load` for why the order counts.
            self.count_taken();
        }
        bump(&self.stats.listeners[listener].accepted, 1);
        bump(&self.stats.listeners[listener].active, 1);
        let draining = state.draining.is_some();
        // One drive: a connection that `on_open` closed gets no `on_drain` (and no stale count).
        self.drive(state, token, now, |conn, env| {
            conn.on_open(env)?;
            if draining {
                conn.on_drain(env)?;
            }
            Ok(())
        });
        true
    }

    /// One more handoff taken from the inbox, published for the acceptor's balance.
    fn count_taken(&self) {
        let taken = &self.stats.balance.handoffs_taken;
        taken.store(taken.load(Ordering::Relaxed) + 1, Ordering::Release);
    }

    fn accept_local(&mut self, state: &mut Loop, now: Instant) {
        let Some(mut local) = self.local_accept.take() else {
            return;
        };
        if state.draining.is_none() {
            let stats = self.stats.clone();
            let mut place = Adopter {
                shard: self,
                state,
                now,
                limits: &local.limits,
            };
            local.accept.turn(now, &stats.accept, &mut place);
        }
        self.local_accept = Some(local);
    }

    fn run_ready(&mut self, state: &mut Loop, now: Instant) {
        std::mem::swap(&mut state.ready, &mut state.ready_scratch);
        let mut batch = std::mem::take(&mut state.ready_scratch);
        // The ready list is the shard's own: an entry whose connection closed since it was
        // pushed (or a second entry for one connection) is not a stale event.
        for token in batch.drain(..) {
            self.try_drive(state, token, now, |conn, env| conn.on_readable(env, true));
        }
        state.ready_scratch = batch;
    }

    fn expire_timers(&mut self, state: &mut Loop, now: Instant) {
        let mut fired = std::mem::take(&mut state.fired);
        state.timers.expire(now, |token| fired.push(token));
        for token in fired.drain(..) {
            if !state.pending.is_empty() && self.connect_timer(state, token, now) {
                continue;
            }
            self.drive(state, token, now, |conn, env| conn.on_timer(env));
        }
        state.fired = fired;
    }

    fn tick_clock(&mut self, state: &mut Loop, now: Instant) {
        if now < state.next_clock {
            return;
        }
        let wall = SystemTime::now();
        for factory in state.factories.iter_mut().flatten() {
            factory.on_clock(wall);
        }
        // Align to the next wall-clock second so a cached `Date` flips when the second does.
        let into_second = wall
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        state.next_clock = now + Duration::from_nanos(1_000_000_000 - u64::from(into_second));
    }

    fn poll_timeout(&self, state: &Loop, now: Instant) -> Option<Duration> {
        if !state.ready.is_empty()
            || !self.mail.local.is_empty()
            || !state.connects.queue.is_empty()
            || self
                .local_accept
                .as_ref()
                .is_some_and(|local| local.accept.has_work())
        {
            return Some(Duration::ZERO);
        }
        let mut wake = state.next_clock;
        if let Some(at) = state.timers.next_expiry() {
            wake = wake.min(at);
        }
        if let Some(at) = self
            .local_accept
            .as_ref()
            .and_then(|local| local.accept.wake_at())
        {
            wake = wake.min(at);
        }
        if let Some(at) = state.draining {
            wake = wake.min(at);
        }
        if let Some(at) = state.drain_cuts.iter().flatten().min() {
            wake = wake.min(*at);
        }
        if let Some(at) = state.evict_at {
            wake = wake.min(at);
        }
        Some(wake.saturating_duration_since(now))
    }
}

struct Parts<'a> {
    connects: &'a mut Connects,
    timers: &'a mut TimerWheel<ConnToken>,
    idle: &'a mut [IdleList],
    ios: &'a [IoConfig],
    input_pools: &'a mut [BufPool],
    output_pool: &'a mut BufPool,
    ready: &'a mut Vec<ConnToken>,
    scratch: &'a mut [u8],
    segments: &'a mut crate::segment::Segments,
    moment: &'a mut crate::moment::MomentCache,
    draining: bool,
}

/// Borrows the connection slab and the rest of the loop state separately.
fn split(state: &mut Loop) -> (&mut ConnTable<Conn>, Parts<'_>) {
    let parts = Parts {
        connects: &mut state.connects,
        timers: &mut state.timers,
        idle: &mut state.idle,
        ios: &state.ios,
        input_pools: &mut state.input_pools,
        output_pool: &mut state.output_pool,
        ready: &mut state.ready,
        scratch: &mut state.scratch,
        segments: &mut state.segments,
        moment: &mut state.moment,
        draining: state.draining.is_some(),
    };
    (&mut state.conns, parts)
}

/// The environment of one of `listener`'s connections.
fn env<'a>(shard: &'a mut Shard, parts: Parts<'a>, now: Instant, listener: usize) -> Env<'a> {
    Env {
        now,
        moment: parts.moment.moment(parts.timers.epoch(), now),
        shard: shard.id,
        draining: parts.draining,
        registry: shard.poll.registry(),
        input_pool: &mut parts.input_pools[listener],
        output_pool: parts.output_pool,
        jobs: &mut shard.jobs,
        mail: &mut shard.mail,
        connects: parts.connects,
        stats: &shard.stats,
        timers: parts.timers,
        ready: parts.ready,
        idle: &mut parts.idle[listener],
        scratch: parts.scratch,
        segments: parts.segments,
        io: &parts.ios[listener],
        link: None,
    }
}

/// The transport of an adopted connection: TLS when its listener has it. `None` (closed) if
/// rustls refuses to start a session.
fn transport(
    stream: crate::socket::Stream,
    tls: Option<Arc<crate::tls::TlsListener>>,
    now: Instant,
    shard: usize,
) -> Option<crate::transport::Transport> {
    use crate::transport::Transport;
    let Some(tls) = tls else {
        return Some(Transport::Plain(stream));
    };
    match crate::tls::stream::TlsStream::accept(stream, tls, now) {
        Ok(stream) => Some(Transport::Tls(Box::new(stream))),
        Err(error) => {
            tracing::error!(shard, %error, "starting a TLS session failed; closing the connection");
            None
        }
    }
}
