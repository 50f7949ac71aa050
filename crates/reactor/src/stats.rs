//! Counters, owned by the thread that moves them and read by anyone.
//!
//! Atomic ordering: every counter has exactly one writer (its shard, or the acceptor), so it is
//! bumped with a plain `load` + `store`, both `Relaxed`: no locked instruction on the hot path.
//! Readers (the metrics scrape) may see counters from slightly different moments; each one on
//! its own is exact and never goes backwards, which is all Prometheus needs. Each shard's block
//! is cache-padded so two shards never write the same cache line.

use std::sync::atomic::{AtomicU64, Ordering};

use crossbeam_utils::CachePadded;

/// Adds `n` to a counter that only the calling thread writes.
#[inline]
pub(crate) fn bump(counter: &AtomicU64, n: u64) {
    counter.store(
        counter.load(Ordering::Relaxed).wrapping_add(n),
        Ordering::Relaxed,
    );
}

#[inline]
pub(crate) fn set(counter: &AtomicU64, value: u64) {
    counter.store(value, Ordering::Relaxed);
}

#[inline]
fn get(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

/// Why a connection was closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CloseReason {
    /// The protocol finished it (after its last response was flushed).
    Done,
    /// The peer closed first.
    Peer,
    /// The protocol refused the peer (bad input, a timeout it enforces): it closed at once,
    /// or after its refusal was flushed (`Cx::refuse`).
    Aborted,
    /// A read or write failed (reset, broken pipe).
    IoError,
    /// The peer did not read its output within the write timeout.
    WriteTimeout,
    /// The peer sent more unconsumed input than the input limit.
    InputOverflow,
    /// Still open at the drain deadline.
    Drain,
    /// The protocol panicked (a bug); only this connection was closed.
    Panicked,
    /// An idle keep-alive connection closed (cleanly) to make room near `max_connections`.
    Evicted,
}

impl CloseReason {
    /// Every reason, in the order of [`ShardSnapshot::closed`].
    pub const ALL: [CloseReason; 9] = [
        Self::Done,
        Self::Peer,
        Self::Aborted,
        Self::IoError,
        Self::WriteTimeout,
        Self::InputOverflow,
        Self::Drain,
        Self::Panicked,
        Self::Evicted,
    ];

    /// A metric label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Done => "done",
            Self::Peer => "peer",
            Self::Aborted => "aborted",
            Self::IoError => "io_error",
            Self::WriteTimeout => "write_timeout",
            Self::InputOverflow => "input_overflow",
            Self::Drain => "drain",
            Self::Panicked => "panicked",
            Self::Evicted => "evicted",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Why accepting paused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PauseCause {
    /// `EMFILE` or `ENFILE`: no file descriptor left.
    FdLimit,
    /// `max_connections`, global or per shard, reached.
    ConnectionLimit,
    /// Every shard's inbox was full.
    InboxFull,
}

impl PauseCause {
    /// Every cause, in the order of [`AcceptSnapshot::paused`].
    pub const ALL: [PauseCause; 3] = [Self::FdLimit, Self::ConnectionLimit, Self::InboxFull];

    /// A metric label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::FdLimit => "fd_limit",
            Self::ConnectionLimit => "connection_limit",
            Self::InboxFull => "inbox_full",
        }
    }
}

/// Accept-path counters, kept by whoever accepts: the acceptor, or each shard in reuseport mode.
#[derive(Debug, Default)]
pub(crate) struct AcceptStats {
    accept_errors: AtomicU64,
    listener_errors: AtomicU64,
    paused: [AtomicU64; 3],
    paused_nanos: [AtomicU64; 3],
    /// 1 while a pause of that cause is on (a pause starts with `paused`, ends with
    /// `paused_for`).
    paused_now: [AtomicU64; 3],
}

impl AcceptStats {
    /// An accept failed for one connection's sake.
    pub fn error(&self) {
        bump(&self.accept_errors, 1);
    }

    /// An accept failed because of the listening socket itself (it backs off).
    pub fn listener_error(&self) {
        bump(&self.accept_errors, 1);
        bump(&self.listener_errors, 1);
    }

    pub fn paused(&self, cause: PauseCause) {
        bump(&self.paused[cause as usize], 1);
        set(&self.paused_now[cause as usize], 1);
    }

    pub fn paused_for(&self, cause: PauseCause, nanos: u64) {
        bump(&self.paused_nanos[cause as usize], nanos);
        set(&self.paused_now[cause as usize], 0);
    }

    pub fn snapshot(&self) -> AcceptSnapshot {
        AcceptSnapshot {
            accept_errors: get(&self.accept_errors),
            listener_errors: get(&self.listener_errors),
            paused: self.paused.each_ref().map(get),
            paused_seconds: self.paused_nanos.each_ref().map(|n| get(n) as f64 / 1e9),
            paused_now: self.paused_now.each_ref().map(get),
        }
    }
}

/// Accept-path figures at one moment.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AcceptSnapshot {
    /// Accept calls that failed for a reason other than the fd limit (which pauses instead).
    pub accept_errors: u64,
    /// Of `accept_errors`, those of the listening socket itself (it backed off on a timer).
    pub listener_errors: u64,
    /// Times accepting paused, by [`PauseCause::ALL`] order.
    pub paused: [u64; 3],
    /// Seconds spent paused, by [`PauseCause::ALL`] order.
    pub paused_seconds: [f64; 3],
    /// Acceptors paused right now, by [`PauseCause::ALL`] order (the acceptor, or in
    /// reuseport mode each shard, counts 1 while paused).
    pub paused_now: [u64; 3],
}

impl AcceptSnapshot {
    fn add(&mut self, other: &AcceptSnapshot) {
        self.accept_errors += other.accept_errors;
        self.listener_errors += other.listener_errors;
        for i in 0..3 {
            self.paused[i] += other.paused[i];
            self.paused_seconds[i] += other.paused_seconds[i];
            self.paused_now[i] += other.paused_now[i];
        }
    }
}

/// One listener's counters on one shard.
#[derive(Debug, Default)]
pub(crate) struct ListenerStats {
    pub active: AtomicU64,
    pub accepted: AtomicU64,
    /// By [`CloseReason::ALL`] order. A connection counts under the listener it came from; an
    /// outbound one under the listener of the connection that asked for it.
    pub closed: [AtomicU64; 9],
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
    /// Of `bytes_out`, those sent from files by `sendfile` (`crate::segment`).
    pub bytes_sendfile: AtomicU64,
}

/// What the acceptor reads on every accept to balance and to hold the limits. It has its own
/// cache line, so the acceptor's reads do not contend with the shard's per-event counters
/// (`bytes_in`, `events`, ...), which change far more often.
#[derive(Debug, Default)]
pub(crate) struct BalanceSignal {
    /// Open connections.
    pub active: AtomicU64,
    /// Handoffs taken from the inbox (published after `active`; see `Acceptor::load`).
    pub handoffs_taken: AtomicU64,
}

/// One shard's counters. Written only by that shard's thread.
#[derive(Debug)]
pub(crate) struct ShardStats {
    pub balance: CachePadded<BalanceSignal>,
    pub accepted: AtomicU64,
    pub loop_iterations: AtomicU64,
    pub events: AtomicU64,
    pub stale_events: AtomicU64,
    pub stale_completions: AtomicU64,
    pub messages_delivered: AtomicU64,
    pub messages_stale: AtomicU64,
    pub messages_refused: AtomicU64,
    pub wakes: AtomicU64,
    pub outbound: OutboundStats,
    pub completions: AtomicU64,
    pub budget_yields: AtomicU64,
    pub read_paused: AtomicU64,
    pub peak_output_buffered: AtomicU64,
    pub listeners: Box<[ListenerStats]>,
    pub accept: AcceptStats,
}

impl ShardStats {
    pub fn new(listeners: usize) -> CachePadded<Self> {
        CachePadded::new(Self {
            balance: CachePadded::default(),
            accepted: AtomicU64::new(0),
            loop_iterations: AtomicU64::new(0),
            events: AtomicU64::new(0),
            stale_events: AtomicU64::new(0),
            stale_completions: AtomicU64::new(0),
            messages_delivered: AtomicU64::new(0),
            messages_stale: AtomicU64::new(0),
            messages_refused: AtomicU64::new(0),
            wakes: AtomicU64::new(0),
            outbound: OutboundStats::default(),
            completions: AtomicU64::new(0),
            budget_yields: AtomicU64::new(0),
            read_paused: AtomicU64::new(0),
            peak_output_buffered: AtomicU64::new(0),
            listeners: (0..listeners).map(|_| ListenerStats::default()).collect(),
            accept: AcceptStats::default(),
        })
    }

    pub fn closed(&self, listener: usize, reason: CloseReason) {
        bump(&self.listeners[listener].closed[reason.index()], 1);
    }

    pub fn snapshot(&self, shard: usize, listeners: usize) -> ShardSnapshot {
        ShardSnapshot {
            shard,
            active: get(&self.balance.active),
            accepted: get(&self.accepted),
            closed: std::array::from_fn(|i| self.listeners.iter().map(|l| get(&l.closed[i])).sum()),
            bytes_in: self.listeners.iter().map(|l| get(&l.bytes_in)).sum(),
            bytes_out: self.listeners.iter().map(|l| get(&l.bytes_out)).sum(),
            handoffs_taken: get(&self.balance.handoffs_taken),
            loop_iterations: get(&self.loop_iterations),
            events: get(&self.events),
            stale_events: get(&self.stale_events),
            stale_completions: get(&self.stale_completions),
            messages_delivered: get(&self.messages_delivered),
            messages_stale: get(&self.messages_stale),
            messages_refused: get(&self.messages_refused),
            wakes: get(&self.wakes),
            outbound: self.outbound.snapshot(),
            completions: get(&self.completions),
            budget_yields: get(&self.budget_yields),
            read_paused: get(&self.read_paused),
            peak_output_buffered: get(&self.peak_output_buffered),
            listeners: self
                .listeners
                .iter()
                .take(listeners)
                .map(|l| ListenerSnapshot {
                    active: get(&l.active),
                    accepted: get(&l.accepted),
                    closed: l.closed.each_ref().map(get),
                    bytes_in: get(&l.bytes_in),
                    bytes_out: get(&l.bytes_out),
                    bytes_sendfile: get(&l.bytes_sendfile),
                })
                .collect(),
            accept: self.accept.snapshot(),
        }
    }
}

/// A shard's outbound connection counters.
#[derive(Debug, Default)]
pub(crate) struct OutboundStats {
    pub connects: AtomicU64,
    pub connected: AtomicU64,
    pub refused: AtomicU64,
    pub timed_out: AtomicU64,
    pub failed: AtomicU64,
    pub active: AtomicU64,
}

impl OutboundStats {
    fn snapshot(&self) -> OutboundSnapshot {
        OutboundSnapshot {
            connects: get(&self.connects),
            connected: get(&self.connected),
            refused: get(&self.refused),
            timed_out: get(&self.timed_out),
            failed: get(&self.failed),
            active: get(&self.active),
        }
    }
}

/// A shard's outbound connections, by outcome of their connect.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OutboundSnapshot {
    /// Connects started.
    pub connects: u64,
    /// Connects that came up.
    pub connected: u64,
    /// Connects the peer refused.
    pub refused: u64,
    /// Connects that passed their timeout.
    pub timed_out: u64,
    /// Connects that failed otherwise, were aborted by a drain, or found no room under
    /// `max_connections`.
    pub failed: u64,
    /// Outbound connections open now (connecting or connected); they also count in the
    /// shard's `active` and so in `max_connections`.
    pub active: u64,
}

/// One listener's figures on one shard.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListenerSnapshot {
    /// Open connections.
    pub active: u64,
    /// Connections accepted so far.
    pub accepted: u64,
    /// Connections closed, by [`CloseReason::ALL`] order (an outbound connection counts under
    /// the listener of the connection that asked for it).
    pub closed: [u64; 9],
    /// Bytes read from peers.
    pub bytes_in: u64,
    /// Bytes written to peers.
    pub bytes_out: u64,
    /// Of `bytes_out`, bytes sent from files by `sendfile` (no copy through user memory).
    pub bytes_sendfile: u64,
}

impl ListenerSnapshot {
    /// Connections of this listener closed for `reason`.
    pub fn closed_for(&self, reason: CloseReason) -> u64 {
        self.closed[reason.index()]
    }
}

/// One shard's figures at one moment.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ShardSnapshot {
    /// The shard's index.
    pub shard: usize,
    /// Open connections.
    pub active: u64,
    /// Connections taken over so far (from the acceptor, or accepted itself in reuseport mode).
    pub accepted: u64,
    /// Connections closed, by [`CloseReason::ALL`] order.
    pub closed: [u64; 9],
    /// Bytes read from peers.
    pub bytes_in: u64,
    /// Bytes written to peers.
    pub bytes_out: u64,
    /// Connections taken from the inbox.
    pub handoffs_taken: u64,
    /// Turns of the event loop.
    pub loop_iterations: u64,
    /// Readiness events handled (events per poll = events / loop_iterations).
    pub events: u64,
    /// Events that named a connection that is gone (dropped by the generation check).
    pub stale_events: u64,
    /// Offload completions for a connection that is gone (dropped by the generation check).
    pub stale_completions: u64,
    /// Messages delivered to a connection's protocol ([`crate::Protocol::on_message`]).
    pub messages_delivered: u64,
    /// Messages dropped: their connection was gone (generation mismatch) or closing.
    pub messages_stale: u64,
    /// Sends from this shard's protocols refused because the receiving queue was full.
    pub messages_refused: u64,
    /// Inbox wakes this shard handled: one per batch of handoffs, completions, control and
    /// messages, however many items the batch held.
    pub wakes: u64,
    /// Outbound connections this shard opened (`Cx::connect`).
    pub outbound: OutboundSnapshot,
    /// Offload completions delivered.
    pub completions: u64,
    /// Times a connection hit its per-event read budget and was put on the ready list.
    pub budget_yields: u64,
    /// Times reading paused because pending output passed the high-water mark.
    pub read_paused: u64,
    /// The most output one connection held unwritten, seen at a short write (bounded by the
    /// high-water mark plus one read's worth of protocol output).
    pub peak_output_buffered: u64,
    /// Per listener, in listener order.
    pub listeners: Vec<ListenerSnapshot>,
    /// This shard's own accept path (reuseport mode only).
    pub accept: AcceptSnapshot,
}

impl ShardSnapshot {
    /// Connections closed for `reason`.
    pub fn closed_for(&self, reason: CloseReason) -> u64 {
        self.closed[reason.index()]
    }
}

/// The acceptor thread's counters (least-loaded and round-robin modes).
#[derive(Debug)]
pub(crate) struct AcceptorStats {
    pub accepted: AtomicU64,
    pub inbox_full: Box<[AtomicU64]>,
    pub accept: AcceptStats,
}

impl AcceptorStats {
    pub fn new(shards: usize) -> Self {
        Self {
            accepted: AtomicU64::new(0),
            inbox_full: (0..shards).map(|_| AtomicU64::new(0)).collect(),
            accept: AcceptStats::default(),
        }
    }
}

/// The whole reactor at one moment.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Snapshot {
    /// Per shard, in shard order.
    pub shards: Vec<ShardSnapshot>,
    /// Connections the acceptor accepted (0 in reuseport mode).
    pub acceptor_accepted: u64,
    /// Handoffs that found a shard's inbox full, per shard.
    pub inbox_full: Vec<u64>,
    /// The accept path summed over the acceptor and every shard.
    pub accept: AcceptSnapshot,
    /// Offload jobs waiting for a worker.
    pub offload_queue_depth: u64,
    /// Offload jobs that returned.
    pub offload_completed: u64,
    /// Offload jobs that panicked.
    pub offload_panicked: u64,
    /// Offload jobs refused because the queue was full.
    pub offload_refused: u64,
    /// Offload jobs dropped unrun: dequeued past their deadline.
    pub offload_dropped_deadline: u64,
    /// Offload jobs dropped unrun: their connection had closed (cancelled them).
    pub offload_dropped_closed: u64,
}

impl Snapshot {
    pub(crate) fn gather(
        shards: &[std::sync::Arc<CachePadded<ShardStats>>],
        listeners: usize,
        acceptor: &AcceptorStats,
        offload: &crate::offload::OffloadStats,
        queue_depth: usize,
    ) -> Self {
        let shards: Vec<ShardSnapshot> = shards
            .iter()
            .enumerate()
            .map(|(i, s)| s.snapshot(i, listeners))
            .collect();
        let mut accept = acceptor.accept.snapshot();
        for shard in &shards {
            accept.add(&shard.accept);
        }
        Self {
            shards,
            acceptor_accepted: get(&acceptor.accepted),
            inbox_full: acceptor.inbox_full.iter().map(get).collect(),
            accept,
            offload_queue_depth: queue_depth as u64,
            offload_completed: get(&offload.completed),
            offload_panicked: get(&offload.panicked),
            offload_refused: get(&offload.refused),
            offload_dropped_deadline: get(&offload.dropped_deadline),
            offload_dropped_closed: get(&offload.dropped_closed),
        }
    }

    /// Open connections over all shards.
    pub fn active(&self) -> u64 {
        self.shards.iter().map(|s| s.active).sum()
    }
}
