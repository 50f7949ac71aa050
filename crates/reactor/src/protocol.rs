//! The contract between the reactor and a protocol.
//!
//! A protocol is a sans-IO state machine over bytes. The shard hands it the bytes it has read and
//! a [`Cx`] that holds the connection's write buffer, its deadline, the offload pool and the loop's
//! `now`; the protocol answers with a [`Verb`]. It never sees a socket, an fd, a thread or a clock,
//! so every edge case can be driven from a test with plain byte slices and a manual clock
//! (see [`crate::testing::Harness`]).
//!
//! Three objects take part, from widest to narrowest:
//! - [`ProtocolFactory`] (`Send + Sync`): one per listener, shared by every shard;
//! - [`ConnFactory`]: one per listener per shard, made on the shard's own thread, so it may hold
//!   shard-local state (`Rc`, caches such as the `Date` header) that its connections share;
//! - [`Protocol`]: one per connection.

use std::any::Any;
use std::net::SocketAddr;
use std::time::SystemTime;

use crate::message::Message;
use crate::offload::Completion;
use crate::outbound::ConnectOutcome;

mod cx;

pub use cx::{Cx, JobSink};

/// What the shard does next with a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verb {
    /// Keep reading. Input left unconsumed is an incomplete message: it stays buffered and comes
    /// back with the next bytes.
    Read,
    /// Stop handing over input until every pending output byte is written, then hand over what is
    /// buffered again. Used to bound pipelined responses waiting for a slow reader.
    WaitFlush,
    /// A job was offloaded, or a connect asked for ([`Cx::connect`]): hand over no input, and
    /// read none, until its completion (or the connect's outcome) has been delivered.
    AwaitCompletion,
    /// Write what is pending, shut down the write side, drain the peer's input for a short while,
    /// then close (lingering close: the peer reads the whole response, never a reset).
    CloseAfterFlush,
    /// Close at once; pending output is dropped.
    CloseNow,
}

/// The result of handing input to a protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Step {
    /// Bytes of the input the protocol is done with.
    pub consumed: usize,
    /// What to do next.
    pub verb: Verb,
}

impl Step {
    /// A step that consumed `consumed` bytes.
    pub fn new(consumed: usize, verb: Verb) -> Self {
        Self { consumed, verb }
    }
}

/// Where a connection came from.
#[derive(Clone, Debug)]
pub struct ConnInfo {
    /// Index of the listener in the reactor's listener table.
    pub listener: usize,
    /// The peer's address; `None` for Unix sockets.
    pub peer: Option<SocketAddr>,
    /// The shard that owns the connection.
    pub shard: usize,
}

/// A connection's protocol state machine. Every method gets the connection's [`Cx`].
///
/// A line protocol that answers each line with its length, driven sans-IO by the
/// [`Harness`](crate::testing::Harness):
///
/// ```
/// use coreloop_reactor::testing::Harness;
/// use coreloop_reactor::{Cx, Protocol, Step, Verb};
///
/// struct Lengths;
///
/// impl Protocol for Lengths {
///     fn on_input(&mut self, input: &[u8], cx: &mut Cx<'_>) -> Step {
///         let mut consumed = 0;
///         // Only the bytes not seen before can hold a new terminator.
///         let from = cx.unseen_from();
///         for (at, _) in input.iter().enumerate().skip(from).filter(|(_, b)| **b == b'\n') {
///             let line = at - consumed;
///             cx.out().extend_from_slice(format!("{line}\n").as_bytes());
///             consumed = at + 1;
///         }
///         Step::new(consumed, Verb::Read)
///     }
///
///     fn on_eof(&mut self, unconsumed: &[u8], cx: &mut Cx<'_>) -> Verb {
///         // A last line without its newline still gets its answer.
///         if !unconsumed.is_empty() {
///             cx.out().extend_from_slice(format!("{}\n", unconsumed.len()).as_bytes());
///         }
///         Verb::CloseAfterFlush
///     }
/// }
///
/// let mut harness = Harness::new();
/// let mut lengths = Lengths;
/// harness.push(&mut lengths, b"abc\nde");
/// harness.push(&mut lengths, b"f\nxy");
/// assert_eq!(harness.eof(&mut lengths), Verb::CloseAfterFlush);
/// assert_eq!(harness.take_output(), b"3\n3\n2\n");
/// ```
pub trait Protocol {
    /// The connection was just accepted: a protocol that wants a first-byte deadline sets it here.
    fn on_open(&mut self, cx: &mut Cx<'_>) -> Verb {
        let _ = cx;
        Verb::Read
    }

    /// New input: `input` holds every byte not yet consumed, oldest first. The protocol consumes
    /// what it can (all complete messages) and leaves the rest.
    fn on_input(&mut self, input: &[u8], cx: &mut Cx<'_>) -> Step;

    /// The peer shut down its write side; `unconsumed` holds the input still buffered (a final
    /// message without its terminator, which a protocol may still answer). Nothing more will
    /// be read, so these bytes are not handed over again.
    fn on_eof(&mut self, unconsumed: &[u8], cx: &mut Cx<'_>) -> Verb {
        let _ = (unconsumed, cx);
        Verb::CloseAfterFlush
    }

    /// The deadline set with [`Cx::set_deadline`] has passed (it is cleared before this call).
    fn on_deadline(&mut self, cx: &mut Cx<'_>) -> Verb {
        let _ = cx;
        Verb::CloseNow
    }

    /// An offloaded job finished, or failed.
    fn on_completion(&mut self, completion: Completion, cx: &mut Cx<'_>) -> Verb {
        let _ = (completion, cx);
        Verb::CloseNow
    }

    /// Pending output reached zero after the protocol answered [`Verb::WaitFlush`]: the socket
    /// took every byte. A protocol that produces output in windows (a file body) writes the
    /// next one here. Called before buffered input is handed over again; the default changes
    /// nothing. Answering `WaitFlush` again makes sense only with new output pending.
    fn on_flushed(&mut self, cx: &mut Cx<'_>) -> Verb {
        let _ = cx;
        Verb::Read
    }

    /// A message sent to this connection with [`Cx::send`] or a [`crate::Messenger`]. Called
    /// outside any other call of this connection, whatever its state, except once it is
    /// closing (the message is then dropped and counted). The default drops it.
    fn on_message(&mut self, message: Message, cx: &mut Cx<'_>) -> Verb {
        let _ = (message, cx);
        Verb::Read
    }

    /// The outcome of this connection's [`Cx::connect`]: the new connection's address, or
    /// why it did not come up. The default ignores it.
    fn on_connect(&mut self, outcome: ConnectOutcome, cx: &mut Cx<'_>) -> Verb {
        let _ = (outcome, cx);
        Verb::Read
    }

    /// The link this connection or its peer asked for ([`Cx::link`]) was just made, in the loop
    /// turn it was asked in: [`Cx::peer_out`] is the peer's output from now on. Called on
    /// both sides (the asker first), each before the input it buffered meanwhile is handed
    /// over; a link that could not be made is [`on_unlinked`](Self::on_unlinked) instead. A
    /// side can start on its peer here rather than wait for a message sent after the link.
    /// The default does nothing.
    fn on_linked(&mut self, cx: &mut Cx<'_>) -> Verb {
        let _ = cx;
        Verb::Read
    }

    /// The connection this one is linked to ([`Cx::link`]) closed, or the link asked for could
    /// not be made (see [`crate::link`]). [`Cx::peer_out`] is `None` from now on. The default
    /// closes once pending output is written; a connection half-closed by its peer's EOF
    /// closes after flushing whatever this answers short of `CloseNow`.
    fn on_unlinked(&mut self, cx: &mut Cx<'_>) -> Verb {
        let _ = cx;
        Verb::CloseAfterFlush
    }

    /// The server started draining: finish what is in flight and say when to close. The default
    /// closes once pending output is written.
    fn on_drain(&mut self, cx: &mut Cx<'_>) -> Verb {
        let _ = cx;
        Verb::CloseAfterFlush
    }
}

/// Makes the per-shard connection factories of one listener. Shared by all shards.
pub trait ProtocolFactory: Send + Sync + 'static {
    /// Called once on each shard's own thread when the shard starts (and after a replacement).
    fn for_shard(&self, shard: usize) -> Box<dyn ConnFactory>;
}

/// Makes the protocol objects of one listener on one shard.
pub trait ConnFactory {
    /// A new connection was accepted.
    fn open(&mut self, info: &ConnInfo) -> Box<dyn Protocol>;

    /// Called by the shard loop at start and about once a second with the wall-clock time, so
    /// that shard-local caches such as the HTTP `Date` header never read the clock themselves.
    fn on_clock(&mut self, wall: SystemTime) {
        let _ = wall;
    }

    /// A message sent to this listener on every shard with [`crate::ReactorHandle::broadcast`],
    /// such as a live configuration change.
    fn on_message(&mut self, message: &(dyn Any + Send + Sync)) {
        let _ = message;
    }
}

/// A closure is a listener's factory: each shard gets its own clone, and each connection
/// the protocol the closure makes.
///
/// ```
/// use coreloop_reactor::{ConnInfo, Cx, Protocol, ProtocolFactory, Step, Verb};
///
/// struct Discard;
/// impl Protocol for Discard {
///     fn on_input(&mut self, input: &[u8], _cx: &mut Cx<'_>) -> Step {
///         Step::new(input.len(), Verb::Read)
///     }
/// }
///
/// let factory: std::sync::Arc<dyn ProtocolFactory> =
///     std::sync::Arc::new(|_info: &ConnInfo| Discard);
/// # let _ = factory;
/// ```
impl<F, P> ProtocolFactory for F
where
    F: Fn(&ConnInfo) -> P + Clone + Send + Sync + 'static,
    P: Protocol + 'static,
{
    fn for_shard(&self, _shard: usize) -> Box<dyn ConnFactory> {
        Box::new(self.clone())
    }
}

/// A closure is a shard's connection factory (see the [`ProtocolFactory`] impl for closures).
impl<F, P> ConnFactory for F
where
    F: FnMut(&ConnInfo) -> P,
    P: Protocol + 'static,
{
    fn open(&mut self, info: &ConnInfo) -> Box<dyn Protocol> {
        Box::new(self(info))
    }
}
