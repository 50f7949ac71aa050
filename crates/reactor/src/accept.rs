//! The accept path pieces shared by the acceptor thread and by shards in reuseport mode:
//! error classification, the fd-limit back-off, connection limits, and the gate through which
//! shards wake an acceptor that stopped for lack of room.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_utils::CachePadded;
use mio::Registry;

use crate::inbox::Handoff;
use crate::listener_set::ListenerSet;
use crate::stats::{PauseCause, ShardStats};

// errno values (Linux) of the accept failures that are handled rather than logged as errors.
const ENOMEM: i32 = 12;
const ENFILE: i32 = 23;
const EMFILE: i32 = 24;
const ENOBUFS: i32 = 105;

/// What one failed `accept` means for the loop.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum AcceptFailure {
    /// The backlog is empty.
    Drained,
    /// No fd (or kernel memory) left: pause on a timer, the backlog keeps the connection.
    Exhausted,
    /// That one connection failed (reset before accept, firewall); go on accepting.
    Transient,
}

pub(crate) fn classify(error: &io::Error) -> AcceptFailure {
    if error.kind() == io::ErrorKind::WouldBlock {
        return AcceptFailure::Drained;
    }
    match error.raw_os_error() {
        Some(EMFILE | ENFILE | ENOBUFS | ENOMEM) => AcceptFailure::Exhausted,
        // ECONNABORTED, EPROTO, EPERM, EINTR and the rest concern one connection at most.
        _ => AcceptFailure::Transient,
    }
}

/// Logs an event at most once a second, with the count of those it kept quiet.
#[derive(Debug, Default)]
pub(crate) struct RateLimitedLog {
    last: Option<Instant>,
    suppressed: u64,
}

impl RateLimitedLog {
    pub fn warn(&mut self, now: Instant, what: &str, error: &io::Error) {
        if self
            .last
            .is_some_and(|at| now.duration_since(at) < Duration::from_secs(1))
        {
            self.suppressed += 1;
            return;
        }
        tracing::warn!(%error, suppressed = self.suppressed, "{what}");
        self.last = Some(now);
        self.suppressed = 0;
    }
}

/// Lets shards wake an acceptor that stopped because every shard was full (connection limit
/// or inbox). The acceptor raises `waiting`, checks once more, then sleeps; a shard that frees
/// room sees the flag and writes the waker once. Costs a shard one relaxed load per close.
pub(crate) struct AcceptGate {
    waiting: AtomicBool,
    waker: Option<mio::Waker>,
}

impl AcceptGate {
    pub fn new(waker: Option<mio::Waker>) -> Self {
        Self {
            waiting: AtomicBool::new(false),
            waker,
        }
    }

    pub fn set_waiting(&self) {
        self.waiting.store(true, Ordering::SeqCst);
    }

    pub fn clear_waiting(&self) {
        self.waiting.store(false, Ordering::SeqCst);
    }

    pub fn capacity_freed(&self) {
        if self.waiting.load(Ordering::Relaxed) && self.waiting.swap(false, Ordering::SeqCst) {
            self.wake();
        }
    }

    /// Wakes the acceptor (to stop, or to pick up a listener command).
    pub fn wake(&self) {
        if let Some(waker) = &self.waker {
            let _ = waker.wake();
        }
    }
}

/// The connection limits, read against every shard's published counters.
#[derive(Clone)]
pub(crate) struct Limits {
    pub global: usize,
    pub per_shard: Option<usize>,
    pub shards: Arc<[Arc<CachePadded<ShardStats>>]>,
}

impl Limits {
    pub fn total_active(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.active.load(Ordering::Relaxed) as usize)
            .sum()
    }
}

/// An accept pause: since when, until when (`None`: until room is freed), and why.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Pause {
    pub since: Instant,
    pub until: Option<Instant>,
    pub cause: PauseCause,
}

/// How long a pause for the global connection limit waits before looking again when no
/// close on this shard wakes it (the room may have been freed on another shard).
const LIMIT_RECHECK: Duration = Duration::from_millis(50);

/// A shard's own listeners in reuseport mode.
pub(crate) struct LocalAccept {
    pub listeners: ListenerSet,
    pause: Option<Pause>,
    limits: Limits,
    batch: usize,
    backoff: Duration,
    log: RateLimitedLog,
}

impl LocalAccept {
    pub fn new(listeners: ListenerSet, limits: Limits, batch: usize, backoff: Duration) -> Self {
        Self {
            listeners,
            pause: None,
            limits,
            batch: batch.max(1),
            backoff,
            log: RateLimitedLog::default(),
        }
    }

    /// True when a listener should be accepted from without waiting for an event.
    pub fn has_work(&self) -> bool {
        self.pause.is_none() && self.listeners.any_ready()
    }

    pub fn resume_at(&self) -> Option<Instant> {
        self.pause.and_then(|p| p.until)
    }

    pub fn capacity_freed(&mut self) {
        if let Some(pause) = self.pause {
            if pause.cause == PauseCause::ConnectionLimit {
                self.pause = Some(Pause {
                    until: Some(pause.since),
                    ..pause
                });
            }
        }
    }

    pub fn close(&mut self, registry: &Registry) {
        self.listeners.close_all(registry);
    }

    /// Accepts from every ready listener, at most `batch` each, unless paused or at a limit.
    pub fn accept_ready(
        &mut self,
        now: Instant,
        active: usize,
        stats: &ShardStats,
        mut adopt: impl FnMut(Handoff),
    ) {
        if !self.pause_over(now, stats) {
            return;
        }
        let mut active = active;
        for slot in 0..self.listeners.len() {
            let mut accepted = 0;
            while self.listeners.is_ready(slot) && accepted < self.batch {
                if self.at_limit(active) {
                    self.begin_pause(
                        now,
                        PauseCause::ConnectionLimit,
                        Some(now + LIMIT_RECHECK),
                        stats,
                    );
                    return;
                }
                let (listener, outcome) = self.listeners.accept(slot);
                match outcome {
                    Ok((stream, peer)) => {
                        accepted += 1;
                        active += 1;
                        adopt(Handoff {
                            stream,
                            peer,
                            listener,
                        });
                    }
                    Err(error) => match classify(&error) {
                        AcceptFailure::Drained => self.listeners.set_drained(slot),
                        AcceptFailure::Exhausted => {
                            self.log
                                .warn(now, "accept: out of file descriptors; pausing", &error);
                            self.begin_pause(
                                now,
                                PauseCause::FdLimit,
                                Some(now + self.backoff),
                                stats,
                            );
                            return;
                        }
                        AcceptFailure::Transient => stats.accept.error(),
                    },
                }
            }
        }
    }

    fn at_limit(&self, active: usize) -> bool {
        self.limits.per_shard.is_some_and(|max| active >= max)
            || self.limits.total_active() >= self.limits.global
    }

    fn begin_pause(
        &mut self,
        now: Instant,
        cause: PauseCause,
        until: Option<Instant>,
        stats: &ShardStats,
    ) {
        stats.accept.paused(cause);
        self.pause = Some(Pause {
            since: now,
            until,
            cause,
        });
    }

    /// Ends a pause whose time has come, counting the time spent in it. Listeners stay marked
    /// ready through a pause: no new edge comes for connections already in the backlog.
    fn pause_over(&mut self, now: Instant, stats: &ShardStats) -> bool {
        let Some(pause) = self.pause else {
            return true;
        };
        if pause.until.is_some_and(|until| now < until) {
            return false;
        }
        let nanos = now.duration_since(pause.since).as_nanos() as u64;
        stats.accept.paused_for(pause.cause, nanos);
        self.pause = None;
        true
    }
}
