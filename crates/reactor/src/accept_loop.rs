//! The one accept loop, run by the acceptor thread and by every shard in reuseport mode.
//!
//! Policy, in one place:
//! - each turn accepts at most `batch` times per ready listener, and every call counts against
//!   that budget, failed ones too, so one listener can never keep the loop from its other work
//!   (its stop flag, its inbox) however it fails;
//! - `WouldBlock` clears the listener's readiness (a new edge will come);
//! - a per-connection error is counted and the loop goes on;
//! - fd or memory exhaustion pauses all accepting for `backoff`, counted, logged once a second;
//! - any other error is the listener's own (shut down, not listening): that listener alone
//!   backs off for `backoff` on a timer, counted, logged once a second;
//! - no room (connection limit, or every inbox full) pauses until room is freed, re-checked
//!   every `room_recheck` in case no wake comes.
//!
//! Where an accepted connection goes is the caller's business, through [`Place`].

use std::time::{Duration, Instant};

use mio::Registry;

use crate::accept::{classify, AcceptFailure, Pause, RateLimitedLog};
use crate::inbox::Handoff;
use crate::listener_set::ListenerSet;
use crate::stats::{AcceptStats, PauseCause};

/// Where accepted connections go: a shard's inbox (acceptor) or the shard itself (reuseport).
pub(crate) trait Place {
    /// Whether one more connection may be accepted now; `Err` says why not. May reserve a
    /// place, which [`place`](Self::place) uses or [`unreserve`](Self::unreserve) gives back.
    fn reserve(&mut self) -> Result<(), PauseCause>;
    /// A reserved place was not used (the accept failed).
    fn unreserve(&mut self) {}
    /// Takes an accepted connection, or gives it back when it fits nowhere right now.
    fn place(&mut self, handoff: Handoff) -> Result<(), Handoff>;
    /// Whether a pause for `cause` may end.
    fn has_room(&self, cause: PauseCause) -> bool;
    /// Accepting just paused for `cause` (to let shards react, e.g. evict idle connections).
    fn paused(&mut self, cause: PauseCause) {
        let _ = cause;
    }
}

/// How a listener fared in one turn.
enum Turn {
    /// Budget spent or backlog drained.
    Done,
    /// Accepting must pause (the pause is set).
    Pause,
}

pub(crate) struct AcceptLoop {
    pub listeners: ListenerSet,
    pause: Option<Pause>,
    /// A connection accepted while it fit nowhere, placed first when the pause ends.
    held: Option<Handoff>,
    batch: usize,
    backoff: Duration,
    room_recheck: Duration,
    exhausted_log: RateLimitedLog,
    listener_log: RateLimitedLog,
    limit_log: RateLimitedLog,
}

impl AcceptLoop {
    pub fn new(
        listeners: ListenerSet,
        batch: usize,
        backoff: Duration,
        room_recheck: Duration,
    ) -> Self {
        Self {
            listeners,
            pause: None,
            held: None,
            batch: batch.max(1),
            backoff,
            room_recheck,
            exhausted_log: RateLimitedLog::default(),
            listener_log: RateLimitedLog::default(),
            limit_log: RateLimitedLog::default(),
        }
    }

    /// True when a turn should run without waiting for an event.
    pub fn has_work(&self) -> bool {
        self.pause.is_none() && self.listeners.any_ready()
    }

    /// When a pause or a listener's back-off ends, for the poll timeout.
    pub fn wake_at(&self) -> Option<Instant> {
        let pause = self.pause.map(|p| p.until);
        match (pause, self.listeners.next_retry()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// A shard freed room: a pause for room ends at the next turn.
    pub fn room_freed(&mut self) {
        if let Some(pause) = self.pause.as_mut() {
            if pause.cause != PauseCause::FdLimit {
                pause.until = pause.since;
            }
        }
    }

    /// The cause of a pause for room (connection limit, inbox), while one lasts.
    pub fn waiting_for_room(&self) -> Option<PauseCause> {
        self.pause
            .map(|p| p.cause)
            .filter(|cause| *cause != PauseCause::FdLimit)
    }

    pub fn close(&mut self, registry: &Registry) {
        self.listeners.close_all(registry);
    }

    /// One turn: ends a pause whose time or room has come, then accepts from every ready
    /// listener, at most `batch` calls each.
    pub fn turn(&mut self, now: Instant, stats: &AcceptStats, place: &mut impl Place) {
        self.listeners.retry_due(now);
        if !self.pause_over(now, stats, place) {
            return;
        }
        for slot in 0..self.listeners.len() {
            if let Turn::Pause = self.accept_from(slot, now, stats, place) {
                return;
            }
        }
    }

    fn accept_from(
        &mut self,
        slot: usize,
        now: Instant,
        stats: &AcceptStats,
        place: &mut impl Place,
    ) -> Turn {
        let mut calls = 0;
        while self.listeners.is_ready(slot) && calls < self.batch {
            if let Err(cause) = place.reserve() {
                self.begin_pause(now, cause, stats, place);
                return Turn::Pause;
            }
            calls += 1;
            let (listener, outcome) = self.listeners.accept(slot);
            let error = match outcome {
                Ok((stream, peer)) => {
                    let handoff = Handoff {
                        stream,
                        peer,
                        listener,
                    };
                    if let Err(handoff) = place.place(handoff) {
                        self.held = Some(handoff);
                        self.begin_pause(now, PauseCause::InboxFull, stats, place);
                        return Turn::Pause;
                    }
                    continue;
                }
                Err(error) => error,
            };
            place.unreserve();
            match classify(&error) {
                AcceptFailure::Drained => self.listeners.set_drained(slot),
                AcceptFailure::Connection => stats.error(),
                AcceptFailure::Exhausted => {
                    if let Some(suppressed) = self.exhausted_log.allow(now) {
                        tracing::warn!(%error, suppressed, "accept: out of file descriptors; pausing");
                    }
                    self.begin_pause(now, PauseCause::FdLimit, stats, place);
                    return Turn::Pause;
                }
                AcceptFailure::Listener => {
                    stats.listener_error();
                    if let Some(suppressed) = self.listener_log.allow(now) {
                        tracing::error!(
                            listener,
                            %error,
                            suppressed,
                            backoff_ms = self.backoff.as_millis() as u64,
                            "accept failed on the listening socket itself; backing that listener off"
                        );
                    }
                    self.listeners.back_off(slot, now + self.backoff);
                }
            }
        }
        Turn::Done
    }

    fn begin_pause(
        &mut self,
        now: Instant,
        cause: PauseCause,
        stats: &AcceptStats,
        place: &mut impl Place,
    ) {
        stats.paused(cause);
        let until = match cause {
            PauseCause::FdLimit => now + self.backoff,
            _ => now + self.room_recheck,
        };
        if cause == PauseCause::ConnectionLimit {
            if let Some(suppressed) = self.limit_log.allow(now) {
                tracing::warn!(
                    suppressed,
                    "max_connections reached; accepting paused until connections close"
                );
            }
        }
        self.pause = Some(Pause {
            since: now,
            until,
            cause,
        });
        place.paused(cause);
    }

    /// Ends a pause whose time has come or whose room was found, counting the time spent in
    /// it, and places a held connection first. Listeners stay marked ready through a pause: no
    /// new edge comes for connections already in the backlog.
    fn pause_over(&mut self, now: Instant, stats: &AcceptStats, place: &mut impl Place) -> bool {
        let Some(pause) = self.pause else {
            return true;
        };
        let room_pause = pause.cause != PauseCause::FdLimit;
        let room = room_pause && place.has_room(pause.cause);
        if now < pause.until && !room {
            return false;
        }
        if room_pause && !room {
            // Re-checked and still no room: the same pause goes on (counted once).
            if let Some(pause) = self.pause.as_mut() {
                pause.until = now + self.room_recheck;
            }
            return false;
        }
        let nanos = now.duration_since(pause.since).as_nanos() as u64;
        stats.paused_for(pause.cause, nanos);
        self.pause = None;
        if let Some(handoff) = self.held.take() {
            if let Err(handoff) = place.place(handoff) {
                self.held = Some(handoff);
                self.begin_pause(now, PauseCause::InboxFull, stats, place);
                return false;
            }
        }
        true
    }
}

/// A reuseport shard's own accepting: the shared loop, and the limits the shard holds itself.
pub(crate) struct LocalAccept {
    pub accept: AcceptLoop,
    pub limits: crate::accept::Limits,
}
