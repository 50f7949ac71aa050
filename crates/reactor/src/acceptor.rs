//! The acceptor thread (least-loaded and round-robin modes): it owns every listener, accepts,
//! and hands each connection to a shard through that shard's inbox.
//!
//! Least-loaded picks the smallest `active + in_flight`, where `in_flight` is what the acceptor
//! pushed that the shard has not yet taken; without it a burst of accepts would all land on the
//! shard whose published count has not moved yet. Ties go round-robin.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_queue::SegQueue;
use mio::{Events, Poll};

use crate::accept::{classify, AcceptFailure, AcceptGate, Limits, Pause, RateLimitedLog};
use crate::config::Balance;
use crate::inbox::{Handoff, Inbox};
use crate::listener_set::ListenerSet;
use crate::socket::Listener;
use crate::stats::{bump, AcceptorStats, PauseCause};
use crate::token::Reserved;

/// How long the acceptor sleeps, when stopped for lack of room, before it looks again even if
/// no shard woke it: a safety net, not the mechanism.
const ROOM_RECHECK: Duration = Duration::from_millis(250);

/// A change to the acceptor's listeners, sent by the reactor handle (a reload).
pub(crate) enum AcceptorCommand {
    Add { id: usize, listener: Listener },
    Remove { id: usize },
}

pub(crate) struct Acceptor {
    pub poll: Poll,
    pub listeners: Vec<(usize, Listener)>,
    pub commands: Arc<SegQueue<AcceptorCommand>>,
    pub inboxes: Arc<[Arc<Inbox>]>,
    pub balance: Balance,
    pub limits: Limits,
    pub gate: Arc<AcceptGate>,
    pub stats: Arc<AcceptorStats>,
    pub stop: Arc<AtomicBool>,
    pub batch: usize,
    pub backoff: Duration,
}

struct State {
    listeners: ListenerSet,
    pushed: Vec<u64>,
    cursor: usize,
    pause: Option<Pause>,
    /// A connection accepted while every inbox turned out full, waiting for room.
    held: Option<Handoff>,
    woken: Vec<bool>,
    log: RateLimitedLog,
}

impl Acceptor {
    pub fn run(mut self) {
        let mut listeners = ListenerSet::default();
        for (id, listener) in std::mem::take(&mut self.listeners) {
            if let Err(error) = listeners.add(self.poll.registry(), id, listener) {
                tracing::error!(%error, "acceptor: registering a listener failed");
            }
        }
        let shards = self.inboxes.len();
        let mut state = State {
            listeners,
            pushed: vec![0; shards],
            cursor: 0,
            pause: None,
            held: None,
            woken: vec![false; shards],
            log: RateLimitedLog::default(),
        };
        let mut events = Events::with_capacity(256);
        while !self.stop.load(Ordering::SeqCst) {
            let timeout = self.timeout(&state, Instant::now());
            if let Err(error) = self.poll.poll(&mut events, timeout) {
                if error.kind() != io::ErrorKind::Interrupted {
                    tracing::error!(%error, "acceptor: poll failed; accepting stops");
                    return;
                }
            }
            for event in events.iter() {
                if let Some(Reserved::Listener(slot)) = Reserved::from_mio(event.token()) {
                    state.listeners.mark_ready(slot as usize);
                }
            }
            if self.stop.load(Ordering::SeqCst) {
                break;
            }
            self.apply_commands(&mut state);
            self.accept_batch(&mut state, Instant::now());
        }
    }

    fn apply_commands(&self, state: &mut State) {
        while let Some(command) = self.commands.pop() {
            let registry = self.poll.registry();
            match command {
                AcceptorCommand::Add { id, listener } => {
                    if let Err(error) = state.listeners.add(registry, id, listener) {
                        tracing::error!(%error, listener = id, "acceptor: registering a new listener failed");
                    }
                }
                AcceptorCommand::Remove { id } => {
                    state.listeners.remove(registry, id);
                }
            }
        }
    }

    fn timeout(&self, state: &State, now: Instant) -> Option<Duration> {
        match state.pause {
            Some(Pause {
                until: Some(at), ..
            }) => Some(at.saturating_duration_since(now)),
            Some(Pause { until: None, .. }) => Some(ROOM_RECHECK),
            None if state.listeners.any_ready() => Some(Duration::ZERO),
            None => None,
        }
    }

    /// One batch: at most `batch` accepts per listener, then one wake per shard that got any.
    fn accept_batch(&mut self, state: &mut State, now: Instant) {
        if self.end_pause(state, now) {
            for slot in 0..state.listeners.len() {
                if !self.accept_from(state, slot, now) {
                    break;
                }
            }
        }
        // Room may have been freed between the failed pick and raising the gate's flag; the
        // shard that freed it saw no flag and woke nobody, so look once more now.
        if let Some(pause) = state.pause {
            if pause.until.is_none() && self.has_room_for(pause.cause, state) {
                state.pause = Some(Pause {
                    until: Some(now),
                    ..pause
                });
            }
        }
        for (shard, woken) in state.woken.iter_mut().enumerate() {
            if std::mem::take(woken) {
                self.inboxes[shard].wake();
            }
        }
    }

    /// Accepts from one listener; `false` when accepting must pause.
    fn accept_from(&mut self, state: &mut State, slot: usize, now: Instant) -> bool {
        let mut accepted = 0;
        while state.listeners.is_ready(slot) && accepted < self.batch {
            let Some(shard) = self.pick(state) else {
                self.begin_pause(state, now, PauseCause::ConnectionLimit, None);
                return false;
            };
            let (listener, outcome) = state.listeners.accept(slot);
            match outcome {
                Ok((stream, peer)) => {
                    accepted += 1;
                    bump(&self.stats.accepted, 1);
                    let handoff = Handoff {
                        stream,
                        peer,
                        listener,
                    };
                    if let Err(handoff) = self.push(state, shard, handoff) {
                        state.held = Some(handoff);
                        self.begin_pause(state, now, PauseCause::InboxFull, None);
                        return false;
                    }
                }
                Err(error) => match classify(&error) {
                    AcceptFailure::Drained => state.listeners.set_drained(slot),
                    AcceptFailure::Exhausted => {
                        state
                            .log
                            .warn(now, "accept: out of file descriptors; pausing", &error);
                        self.begin_pause(state, now, PauseCause::FdLimit, Some(now + self.backoff));
                        return false;
                    }
                    AcceptFailure::Transient => self.stats.accept.error(),
                },
            }
        }
        true
    }

    /// The shard to hand the next connection to, or `None` when every shard is at its limit.
    fn pick(&self, state: &State) -> Option<usize> {
        let total: u64 = (0..self.inboxes.len())
            .map(|shard| self.load(state, shard))
            .sum();
        if total >= self.limits.global as u64 {
            return None;
        }
        let shards = self.inboxes.len();
        let mut best: Option<(usize, u64)> = None;
        for offset in 0..shards {
            let shard = (state.cursor + offset) % shards;
            let load = self.load(state, shard);
            if self.limits.per_shard.is_some_and(|max| load >= max as u64) {
                continue;
            }
            if self.balance == Balance::RoundRobin {
                return Some(shard);
            }
            if best.is_none_or(|(_, least)| load < least) {
                best = Some((shard, load));
            }
        }
        best.map(|(shard, _)| shard)
    }

    /// A shard's live plus in-flight connections. The shard publishes `active` before
    /// `handoffs_taken` (Release); reading `taken` first (Acquire) means a connection that is
    /// no longer in flight is already seen as active, never as neither (which let one
    /// connection too many past `max_connections`).
    fn load(&self, state: &State, shard: usize) -> u64 {
        let stats = &self.limits.shards[shard];
        let taken = stats.handoffs_taken.load(Ordering::Acquire);
        stats.active.load(Ordering::Relaxed) + state.pushed[shard].saturating_sub(taken)
    }

    /// Pushes to `first`, or to the next shard whose inbox has room.
    fn push(&self, state: &mut State, first: usize, mut handoff: Handoff) -> Result<(), Handoff> {
        let shards = self.inboxes.len();
        for offset in 0..shards {
            let shard = (first + offset) % shards;
            match self.inboxes[shard].push_handoff(handoff) {
                Ok(()) => {
                    state.pushed[shard] += 1;
                    state.woken[shard] = true;
                    state.cursor = shard + 1;
                    return Ok(());
                }
                Err(back) => {
                    bump(&self.stats.inbox_full[shard], 1);
                    handoff = back;
                }
            }
        }
        Err(handoff)
    }

    fn begin_pause(
        &self,
        state: &mut State,
        now: Instant,
        cause: PauseCause,
        until: Option<Instant>,
    ) {
        self.stats.accept.paused(cause);
        if until.is_none() {
            // Raise the flag before sleeping; the re-check in `end_pause` closes the race
            // with a shard that freed room just before the flag went up.
            self.gate.set_waiting();
        }
        state.pause = Some(Pause {
            since: now,
            until,
            cause,
        });
    }

    /// `true` when accepting may go on: no pause, or its time has come, or room was freed.
    fn end_pause(&mut self, state: &mut State, now: Instant) -> bool {
        let Some(pause) = state.pause else {
            return true;
        };
        let room = match pause.until {
            Some(until) => now >= until,
            None => self.has_room(state),
        };
        if !room {
            self.gate.set_waiting();
            return false;
        }
        self.gate.clear_waiting();
        let nanos = now.duration_since(pause.since).as_nanos() as u64;
        self.stats.accept.paused_for(pause.cause, nanos);
        state.pause = None;
        if let Some(handoff) = state.held.take() {
            let first = state.cursor % self.inboxes.len();
            if let Err(handoff) = self.push(state, first, handoff) {
                state.held = Some(handoff);
                self.begin_pause(state, now, PauseCause::InboxFull, None);
                return false;
            }
        }
        true
    }

    fn has_room(&self, state: &State) -> bool {
        state
            .pause
            .is_none_or(|pause| self.has_room_for(pause.cause, state))
    }

    fn has_room_for(&self, cause: PauseCause, state: &State) -> bool {
        match cause {
            PauseCause::InboxFull => self.inboxes.iter().any(|inbox| inbox.has_room()),
            _ => self.pick(state).is_some(),
        }
    }
}
