//! A shard's one inbox: everything other threads send to a shard arrives here.
//!
//! Producers (the acceptor, offload workers, the control handle) push onto lock-free queues and
//! then call [`Inbox::wake`]. The `wake_pending` flag makes that one `Waker` write per batch,
//! however many producers and items: the first producer to flip it wakes the shard, the rest see
//! it already set. The shard clears the flag *before* draining, so an item pushed after the
//! drain began either is seen by that drain or flips the flag again and wakes the next one.

use std::sync::atomic::{AtomicBool, Ordering};

use crossbeam_queue::{ArrayQueue, SegQueue};

use crate::message::Message;
use crate::offload::Completion;
use crate::shard::Control;
use crate::socket::{PeerAddr, Stream};
use crate::token::ConnToken;

/// Messages an inbox holds when no capacity is given.
const DEFAULT_MESSAGES: usize = 65_536;

/// A freshly accepted connection on its way to a shard.
pub struct Handoff {
    pub(crate) stream: Stream,
    pub(crate) peer: PeerAddr,
    pub(crate) listener: usize,
}

/// A shard's inbox. `H` is what the acceptor hands over (a [`Handoff`] in the reactor; generic
/// so that the handoff path can be benchmarked on its own).
pub struct Inbox<H = Handoff> {
    /// Bounded: a full inbox tells the acceptor to try another shard.
    handoffs: ArrayQueue<H>,
    /// Unbounded but in practice bounded by the offload queue plus its workers: a finished job
    /// must never be refused.
    completions: SegQueue<(ConnToken, Completion)>,
    control: SegQueue<Control>,
    /// Bounded: a full queue refuses the send, and the sender sees it (`SendError::Full`).
    messages: ArrayQueue<(ConnToken, Message)>,
    waker: mio::Waker,
    wake_pending: AtomicBool,
}

impl<H> Inbox<H> {
    /// An inbox holding at most `capacity` handoffs, waking its shard through `waker`.
    pub fn new(capacity: usize, waker: mio::Waker) -> Self {
        Self::with_messages(capacity, DEFAULT_MESSAGES, waker)
    }

    /// Like [`new`](Self::new), holding at most `messages` messages for connections.
    pub fn with_messages(capacity: usize, messages: usize, waker: mio::Waker) -> Self {
        Self {
            handoffs: ArrayQueue::new(capacity.max(1)),
            completions: SegQueue::new(),
            control: SegQueue::new(),
            messages: ArrayQueue::new(messages.max(1)),
            waker,
            wake_pending: AtomicBool::new(false),
        }
    }

    /// Queues a connection without waking the shard; the acceptor wakes once per batch.
    pub fn push_handoff(&self, handoff: H) -> Result<(), H> {
        self.handoffs.push(handoff)
    }

    pub(crate) fn push_completion(&self, token: ConnToken, completion: Completion) {
        self.completions.push((token, completion));
        self.wake();
    }

    /// Queues a message for a connection and wakes the shard (once per batch); a full queue
    /// hands the message back.
    pub fn push_message(&self, token: ConnToken, message: Message) -> Result<(), Message> {
        self.messages
            .push((token, message))
            .map_err(|(_, message)| message)?;
        self.wake();
        Ok(())
    }

    /// Queues a message without waking the shard: the caller wakes once for its batch.
    pub fn push_message_quiet(&self, token: ConnToken, message: Message) -> Result<(), Message> {
        self.messages
            .push((token, message))
            .map_err(|(_, message)| message)
    }

    pub(crate) fn pop_message(&self) -> Option<(ConnToken, Message)> {
        self.messages.pop()
    }

    pub(crate) fn push_control(&self, control: Control) {
        self.control.push(control);
        self.wake();
    }

    /// Wakes the shard unless a wake is already pending.
    ///
    /// A failed waker write must not leave the flag up: every later producer would take the
    /// wake for done and the shard would never look at its queues. So the flag goes down
    /// again (the next push retries the write), and the shard also drains its queues on any
    /// turn that finds the flag up ([`wake_pending`](Self::wake_pending)), whatever woke it.
    pub fn wake(&self) {
        if !self.wake_pending.swap(true, Ordering::SeqCst) {
            if let Err(error) = self.waker.wake() {
                self.wake_pending.store(false, Ordering::SeqCst);
                tracing::warn!(%error, "waking a shard failed; the next push retries");
            }
        }
    }

    /// True when a producer pushed and its wake may not have arrived (or failed).
    pub fn wake_pending(&self) -> bool {
        self.wake_pending.load(Ordering::Relaxed)
    }

    /// True when any queue holds something.
    pub fn has_items(&self) -> bool {
        !self.handoffs.is_empty()
            || !self.completions.is_empty()
            || !self.control.is_empty()
            || !self.messages.is_empty()
    }

    /// Called by the shard, on its waker event, before it drains the queues.
    pub fn begin_drain(&self) {
        self.wake_pending.store(false, Ordering::SeqCst);
    }

    /// The oldest handoff.
    pub fn pop_handoff(&self) -> Option<H> {
        self.handoffs.pop()
    }

    pub(crate) fn pop_completion(&self) -> Option<(ConnToken, Completion)> {
        self.completions.pop()
    }

    pub(crate) fn pop_control(&self) -> Option<Control> {
        self.control.pop()
    }

    /// False when a push would be refused.
    pub fn has_room(&self) -> bool {
        !self.handoffs.is_full()
    }

    /// Handoffs waiting.
    pub fn handoffs_queued(&self) -> usize {
        self.handoffs.len()
    }
}
