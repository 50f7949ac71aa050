//! Messages into a connection: anything may send an owned value to a connection by its
//! [`ConnAddr`], and the connection's protocol receives it in [`crate::Protocol::on_message`].
//!
//! Who may send to whom:
//! - a protocol, through [`crate::Cx::send`], to any connection on any shard;
//! - any thread, through a [`Messenger`] from [`crate::ReactorHandle::messenger`], one
//!   message at a time or in a [`Batch`] that wakes each receiving shard once.
//!
//! Delivery paths:
//! - same shard (from a `Cx`): the message goes onto the shard's local queue and is delivered
//!   later in the same loop turn, never from inside the sender's own call, so a connection is
//!   never re-entered while it is being driven (a protocol may even send to itself). No atomic
//!   operation, no wake.
//! - another shard, or any thread: the message goes into the owning shard's one inbox (a
//!   lock-free bounded queue); the first push since the shard last looked writes its waker,
//!   every later one sees the wake pending, so a batch costs one wake however many messages it
//!   holds (see [`crate::Snapshot`]'s `wakes`).
//!
//! Cost and bound: a [`Message`] is a `Box<dyn Any + Send>`, one allocation per message (none
//! for a zero-sized payload); share a large payload with an `Arc` inside it. Each shard's local
//! queue and its inbox hold at most [`crate::ReactorConfig::message_capacity`] messages each; a
//! send beyond that is refused at once with [`SendError::Full`], which hands the message back.
//! A sender that gets `Full` keeps the message (and every later one for the same receiver, to
//! keep the order) and retries later, for example from a short protocol deadline, and should
//! stop consuming its own input meanwhile; or it drops the receiver as too slow.
//!
//! Order: messages from one sender to one receiver arrive in the order they were sent (both
//! queues are FIFO and one sender pushes from one thread). Nothing is ordered between senders.
//!
//! A message for a connection that closed (its token's generation no longer matches its slot)
//! is dropped and counted (`messages_stale`), never delivered to a connection that reuses the
//! slot. A message for a connection that is closing (its protocol already said it was done)
//! is dropped and counted the same way.

use std::any::Any;
use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crossbeam_utils::CachePadded;

use crate::inbox::Inbox;
use crate::outbound::{ConnectId, ConnectOutcome, Connects};
use crate::protocol::Protocol;
use crate::socket::ListenAddr;
use crate::stats::{bump, ShardStats};
use crate::token::ConnToken;

/// An owned message payload: downcast it with [`Box::downcast`] in the receiver.
pub type Message = Box<dyn Any + Send>;

/// Where a connection lives: its shard and its token there. Valid for the connection's whole
/// life and never for another connection (the token carries a generation).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConnAddr {
    /// The shard that owns the connection.
    pub shard: usize,
    /// The connection's token on that shard.
    pub token: ConnToken,
}

/// Why a send was refused; the message comes back with it.
pub enum SendError {
    /// The receiving queue is full: retry later or give up (see the module docs).
    Full(Message),
    /// No shard has that number.
    NoSuchShard(Message),
}

impl SendError {
    /// The message that was not sent.
    pub fn into_message(self) -> Message {
        match self {
            Self::Full(message) | Self::NoSuchShard(message) => message,
        }
    }

    /// True for [`SendError::Full`].
    pub fn is_full(&self) -> bool {
        matches!(self, Self::Full(_))
    }
}

impl fmt::Debug for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Full(_) => "SendError::Full",
            Self::NoSuchShard(_) => "SendError::NoSuchShard",
        })
    }
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Full(_) => "the receiving shard's message queue is full",
            Self::NoSuchShard(_) => "no such shard",
        })
    }
}

impl std::error::Error for SendError {}

/// Somewhere a protocol's sends and connect requests go: the shard's mail, or a test harness.
pub trait MessageSink {
    /// Sends `message` to `to` from a connection on shard `from`.
    fn send(&mut self, from: usize, to: ConnAddr, message: Message) -> Result<(), SendError>;

    /// Asks for an outbound connection to `target` for the connection `asker`.
    fn connect(
        &mut self,
        asker: ConnToken,
        target: ListenAddr,
        timeout: Duration,
        protocol: Box<dyn Protocol>,
    ) -> ConnectId;

    /// Asks to link the connection `asker` with `peer` (see [`crate::link`]).
    fn link(&mut self, asker: ConnToken, peer: ConnAddr);

    /// Asks to end the link of the connection `asker`, if it has one (see [`crate::link`]).
    fn unlink(&mut self, asker: ConnToken) {
        let _ = asker;
    }
}

/// What waits in a shard's local queue for one of its connections.
pub(crate) enum Local {
    Message(Message),
    Connect(ConnectOutcome),
    /// The linked peer (`peer`) closed or unlinked (`link`: the link's id), or a link to it
    /// could not be made (`None`).
    Unlinked {
        peer: ConnToken,
        link: Option<u32>,
    },
}

/// Sends messages to connections from any thread. Cheap to clone.
#[derive(Clone)]
pub struct Messenger {
    inboxes: Arc<[Arc<Inbox>]>,
}

impl Messenger {
    pub(crate) fn new(inboxes: Arc<[Arc<Inbox>]>) -> Self {
        Self { inboxes }
    }

    /// Queues `message` for `to` in its shard's inbox and wakes the shard (once per batch).
    pub fn send(&self, to: ConnAddr, message: Message) -> Result<(), SendError> {
        let Some(inbox) = self.inboxes.get(to.shard) else {
            return Err(SendError::NoSuchShard(message));
        };
        inbox
            .push_message(to.token, message)
            .map_err(SendError::Full)
    }

    /// How many shards there are.
    pub fn shards(&self) -> usize {
        self.inboxes.len()
    }

    /// A batch of sends that wakes each receiving shard once, when it is finished (or
    /// dropped), however many messages it holds.
    ///
    /// ```no_run
    /// # fn demo(reactor: &coreloop_reactor::ReactorHandle, to: coreloop_reactor::ConnAddr) {
    /// let messenger = reactor.messenger();
    /// let mut batch = messenger.batch();
    /// for i in 0..100u32 {
    ///     if let Err(refused) = batch.send(to, Box::new(i)) {
    ///         // Full: the rest waits for a later batch.
    ///         let _ = refused.into_message();
    ///         break;
    ///     }
    /// }
    /// batch.finish(); // one wake for the shard of `to`
    /// # }
    /// ```
    pub fn batch(&self) -> Batch<'_> {
        Batch {
            messenger: self,
            woken: vec![false; self.inboxes.len()],
        }
    }
}

/// Sends queued by [`Messenger::batch`]; the shards are woken by [`Batch::finish`] or drop.
pub struct Batch<'a> {
    messenger: &'a Messenger,
    /// By shard: whether this batch queued something there.
    woken: Vec<bool>,
}

impl Batch<'_> {
    /// Queues `message` for `to` without waking its shard yet.
    pub fn send(&mut self, to: ConnAddr, message: Message) -> Result<(), SendError> {
        let Some(inbox) = self.messenger.inboxes.get(to.shard) else {
            return Err(SendError::NoSuchShard(message));
        };
        inbox
            .push_message_quiet(to.token, message)
            .map_err(SendError::Full)?;
        self.woken[to.shard] = true;
        Ok(())
    }

    /// Wakes every shard this batch queued messages for, once each.
    pub fn finish(self) {}
}

impl Drop for Batch<'_> {
    fn drop(&mut self) {
        for (inbox, queued) in self.messenger.inboxes.iter().zip(&self.woken) {
            if *queued {
                inbox.wake();
            }
        }
    }
}

/// A shard's outgoing mail: its local queue, and the other shards' inboxes.
pub(crate) struct ShardMail {
    pub local: VecDeque<(ConnToken, Local)>,
    capacity: usize,
    remote: Messenger,
    stats: Arc<CachePadded<ShardStats>>,
}

impl ShardMail {
    pub fn new(
        capacity: usize,
        inboxes: Arc<[Arc<Inbox>]>,
        stats: Arc<CachePadded<ShardStats>>,
    ) -> Self {
        Self {
            local: VecDeque::new(),
            capacity: capacity.max(1),
            remote: Messenger::new(inboxes),
            stats,
        }
    }
}

impl ShardMail {
    fn send_from(&mut self, from: usize, to: ConnAddr, message: Message) -> Result<(), SendError> {
        let sent = if to.shard == from {
            if self.local.len() >= self.capacity {
                Err(SendError::Full(message))
            } else {
                self.local.push_back((to.token, Local::Message(message)));
                Ok(())
            }
        } else {
            self.remote.send(to, message)
        };
        if sent.is_err() {
            bump(&self.stats.messages_refused, 1);
        }
        sent
    }
}

/// A protocol call's sink: the shard's mail and its connect requests (kept apart: requests
/// hold protocols, which are not `Send`, and the mail is built before the shard's thread).
pub(crate) struct Outbox<'a> {
    pub mail: &'a mut ShardMail,
    pub connects: &'a mut Connects,
}

impl MessageSink for Outbox<'_> {
    fn send(&mut self, from: usize, to: ConnAddr, message: Message) -> Result<(), SendError> {
        self.mail.send_from(from, to, message)
    }

    fn connect(
        &mut self,
        asker: ConnToken,
        target: ListenAddr,
        timeout: Duration,
        protocol: Box<dyn Protocol>,
    ) -> ConnectId {
        self.connects.push(asker, target, timeout, protocol)
    }

    fn link(&mut self, asker: ConnToken, peer: ConnAddr) {
        self.connects.links.push((asker, peer));
    }

    fn unlink(&mut self, asker: ConnToken) {
        self.connects.unlinks.push(asker);
    }
}
