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

use crate::accept::{AcceptGate, Limits};
use crate::accept_loop::{AcceptLoop, Place};
use crate::config::Balance;
use crate::inbox::{Handoff, Inbox};
use crate::listener_set::ListenerSet;
use crate::socket::Listener;
use crate::stats::{bump, AcceptorStats, PauseCause};
use crate::token::Reserved;

/// How long the acceptor sleeps, when stopped for lack of room, before it looks again even if
/// no shard woke it: a safety net (a failed waker write), not the mechanism (`AcceptGate`).
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

/// The acceptor's half of the accept loop: picking a shard and pushing to its inbox.
struct Shards<'a> {
    inboxes: &'a [Arc<Inbox>],
    balance: Balance,
    limits: &'a Limits,
    stats: &'a AcceptorStats,
    /// Per shard: handoffs pushed so far.
    pushed: Vec<u64>,
    /// Per shard: fed in this batch, to be woken once after it.
    woken: Vec<bool>,
    cursor: usize,
    /// The shard `reserve` picked for the next connection.
    picked: usize,
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
        let mut accept = AcceptLoop::new(listeners, self.batch, self.backoff, ROOM_RECHECK);
        let mut place = Shards {
            inboxes: &self.inboxes,
            balance: self.balance,
            limits: &self.limits,
            stats: &self.stats,
            pushed: vec![0; shards],
            woken: vec![false; shards],
            cursor: 0,
            picked: 0,
        };
        let mut events = Events::with_capacity(256);
        // The stop flag is read between turns, and a turn is bounded (`batch` calls per
        // listener, failures included), so a drain never waits on a busy acceptor.
        while !self.stop.load(Ordering::SeqCst) {
            let timeout = timeout(&accept, Instant::now());
            if let Err(error) = self.poll.poll(&mut events, timeout) {
                if error.kind() != io::ErrorKind::Interrupted {
                    tracing::error!(%error, "acceptor: poll failed; accepting stops");
                    return;
                }
            }
            for event in events.iter() {
                if let Some(Reserved::Listener(slot)) = Reserved::from_mio(event.token()) {
                    accept.listeners.mark_ready(slot as usize);
                }
            }
            if self.stop.load(Ordering::SeqCst) {
                break;
            }
            apply_commands(&self.poll, &self.commands, &mut accept.listeners);
            let now = Instant::now();
            accept.turn(now, &self.stats.accept, &mut place);
            self.watch_for_room(&mut accept, &place);
            place.wake_fed();
        }
    }

    /// Paused for room: raise the gate's flag, then look once more. A shard that freed room
    /// before the flag went up saw no flag and woke nobody (the gate's fences make one of the
    /// two see the other).
    fn watch_for_room(&self, accept: &mut AcceptLoop, place: &Shards<'_>) {
        let Some(cause) = accept.waiting_for_room() else {
            self.gate.clear_waiting();
            return;
        };
        self.gate.set_waiting();
        if place.has_room(cause) {
            accept.room_freed();
        }
    }
}

fn timeout(accept: &AcceptLoop, now: Instant) -> Option<Duration> {
    if accept.has_work() {
        return Some(Duration::ZERO);
    }
    accept.wake_at().map(|at| at.saturating_duration_since(now))
}

fn apply_commands(poll: &Poll, commands: &SegQueue<AcceptorCommand>, listeners: &mut ListenerSet) {
    while let Some(command) = commands.pop() {
        let registry = poll.registry();
        match command {
            AcceptorCommand::Add { id, listener } => {
                if let Err(error) = listeners.add(registry, id, listener) {
                    tracing::error!(%error, listener = id, "acceptor: registering a new listener failed");
                }
            }
            AcceptorCommand::Remove { id } => {
                listeners.remove(registry, id);
            }
        }
    }
}

impl Place for Shards<'_> {
    fn reserve(&mut self) -> Result<(), PauseCause> {
        self.picked = self.pick().ok_or(PauseCause::ConnectionLimit)?;
        Ok(())
    }

    /// Counted once it is in an inbox: a connection held while every inbox was full is
    /// placed (and counted) when the pause ends.
    fn place(&mut self, handoff: Handoff) -> Result<(), Handoff> {
        self.push(self.picked, handoff)?;
        bump(&self.stats.accepted, 1);
        Ok(())
    }

    fn has_room(&self, cause: PauseCause) -> bool {
        match cause {
            PauseCause::InboxFull => self.inboxes.iter().any(|inbox| inbox.has_room()),
            _ => self.pick().is_some(),
        }
    }

    fn paused(&mut self, cause: PauseCause) {
        // At the connection limit every shard looks at its idle keep-alive connections.
        if cause == PauseCause::ConnectionLimit {
            for inbox in self.inboxes {
                inbox.wake();
            }
        }
    }
}

impl Shards<'_> {
    /// The shard to hand the next connection to, or `None` when every shard is at its limit.
    fn pick(&self) -> Option<usize> {
        let total: u64 = (0..self.inboxes.len()).map(|shard| self.load(shard)).sum();
        if total >= self.limits.global as u64 {
            return None;
        }
        let shards = self.inboxes.len();
        let mut best: Option<(usize, u64)> = None;
        for offset in 0..shards {
            let shard = (self.cursor + offset) % shards;
            let load = self.load(shard);
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
    fn load(&self, shard: usize) -> u64 {
        let signal = &self.limits.shards[shard].balance;
        let taken = signal.handoffs_taken.load(Ordering::Acquire);
        signal.active.load(Ordering::Relaxed) + self.pushed[shard].saturating_sub(taken)
    }

    /// Pushes to `first`, or to the next shard whose inbox has room.
    fn push(&mut self, first: usize, mut handoff: Handoff) -> Result<(), Handoff> {
        let shards = self.inboxes.len();
        for offset in 0..shards {
            let shard = (first + offset) % shards;
            match self.inboxes[shard].push_handoff(handoff) {
                Ok(()) => {
                    self.pushed[shard] += 1;
                    self.woken[shard] = true;
                    self.cursor = shard + 1;
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

    /// One wake per shard that got connections in this batch.
    fn wake_fed(&mut self) {
        for (shard, woken) in self.woken.iter_mut().enumerate() {
            if std::mem::take(woken) {
                self.inboxes[shard].wake();
            }
        }
    }
}
