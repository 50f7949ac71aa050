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
use std::time::{Duration, Instant, SystemTime};

use crate::buffer::BufPool;
use crate::message::{ConnAddr, Message, MessageSink, SendError};
use crate::offload::{Completion, Job, JobId, JobTerms, Refused};
use crate::outbound::{ConnectId, ConnectOutcome};
use crate::socket::ListenAddr;
use crate::token::ConnToken;

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

/// Somewhere offloaded jobs go: the shard's offload pool, or a test harness.
pub trait JobSink {
    /// Queues `job` for the connection `token`; refused at once when the queue is full.
    fn submit(&mut self, token: ConnToken, job: Job) -> Result<JobId, Refused>;

    /// Like [`submit`](Self::submit), with terms that let the pool drop the job unrun; a sink
    /// that cannot honour them runs the job anyway.
    fn submit_with(
        &mut self,
        token: ConnToken,
        job: Job,
        terms: JobTerms,
    ) -> Result<JobId, Refused> {
        let _ = terms;
        self.submit(token, job)
    }
}

/// A protocol's view of its connection and of the shard, for the length of one call.
pub struct Cx<'a> {
    pub(crate) now: Instant,
    pub(crate) shard: usize,
    pub(crate) token: ConnToken,
    pub(crate) out: &'a mut Option<Vec<u8>>,
    pub(crate) out_written: usize,
    /// The shard's file segments; this connection's is queued behind `out` (`send_file`).
    pub(crate) segments: &'a mut crate::segment::Segments,
    pub(crate) can_send_file: bool,
    pub(crate) unseen_from: usize,
    pub(crate) buffered_input: usize,
    pub(crate) pool: &'a mut BufPool,
    /// The connection's deadline, as a moment of `epoch` (the shard's timer wheel's start).
    pub(crate) deadline: &'a mut Option<crate::moment::Moment>,
    pub(crate) epoch: Instant,
    /// `now` as a moment of `epoch`.
    pub(crate) moment: crate::moment::Moment,
    pub(crate) jobs: &'a mut dyn JobSink,
    pub(crate) mail: &'a mut dyn MessageSink,
    pub(crate) draining: bool,
    pub(crate) refused: &'a mut bool,
    pub(crate) marked_idle: bool,
    /// [`Cx::resume`] was called.
    pub(crate) resume: bool,
    /// The linked peer's output, lent for this call (`None`: not linked, or the peer closed).
    pub(crate) link: Option<&'a mut crate::link::Lent>,
}

impl Cx<'_> {
    /// The loop's time for this batch of events.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// The shard that owns this connection.
    pub fn shard(&self) -> usize {
        self.shard
    }

    /// The connection's token, as carried by its completions.
    pub fn token(&self) -> ConnToken {
        self.token
    }

    /// The write buffer: append output here. It is taken from the shard's pool on first use and
    /// returned once written, so an idle connection holds none.
    pub fn out(&mut self) -> &mut Vec<u8> {
        let pool = &mut *self.pool;
        self.out.get_or_insert_with(|| pool.take())
    }

    /// In [`Protocol::on_input`]: where in `input` the bytes this protocol has not been handed
    /// before start (`0` on a first call, `input.len()` when it is handed the same bytes
    /// again after a flush or a completion). A protocol that scans for a terminator starts
    /// its scan there (less what a terminator may straddle), so it never rescans; `0` outside
    /// `on_input`.
    pub fn unseen_from(&self) -> usize {
        self.unseen_from
    }

    /// Bytes written by the protocol and not yet sent, a queued file segment's included.
    pub fn pending_output(&self) -> usize {
        let segment = self.segments.remaining(self.token);
        self.out
            .as_ref()
            .map_or(0, |out| out.len() - self.out_written)
            .saturating_add(usize::try_from(segment).unwrap_or(usize::MAX))
    }

    /// Whether [`send_file`](Self::send_file) can be used on this connection: its transport
    /// writes to the socket as it is (plain TCP or Unix); false where it must see the bytes
    /// (TLS), and in the test harness.
    pub fn can_send_file(&self) -> bool {
        self.can_send_file
    }

    /// Queues `len` bytes of `file` from `offset` behind the output written so far; they are
    /// sent with `sendfile(2)`, page cache to socket, before any output written after this
    /// call. Until sent they count as pending output (high-water mark, [`Verb::WaitFlush`],
    /// write timeout, lingering close), and a connection that closes first drops its handle.
    ///
    /// `sendfile` runs on the shard: queue only a range that is in the page cache
    /// ([`crate::page_cache_resident`]), or a disk read blocks the whole shard. The file
    /// must not shrink meanwhile: a segment that meets the file's end closes the connection
    /// (a response announced its length). One segment at a time.
    pub fn send_file(
        &mut self,
        file: &std::sync::Arc<std::fs::File>,
        offset: u64,
        len: u64,
    ) -> Result<(), crate::SendFileRefused> {
        if !self.can_send_file {
            return Err(crate::SendFileRefused::Transport);
        }
        if self.segments.has(self.token) {
            return Err(crate::SendFileRefused::Busy);
        }
        if len == 0 {
            return Ok(());
        }
        let after = self.out.as_ref().map_or(0, Vec::len);
        let segment = crate::segment::Segment::new(file.clone(), offset, len, after);
        self.segments.insert(self.token, segment);
        Ok(())
    }

    /// Input received and not consumed, outside [`Protocol::on_input`] (where it is the input
    /// itself): a partial message the peer is still sending.
    pub fn buffered_input(&self) -> usize {
        self.buffered_input
    }

    /// Sets (or moves) the connection's one protocol deadline; [`Protocol::on_deadline`] runs when
    /// it passes.
    pub fn set_deadline(&mut self, at: Instant) {
        *self.deadline = Some(crate::moment::Moment::new(self.epoch, at));
    }

    /// [`set_deadline`](Self::set_deadline) at `after` from [`now`](Self::now): the same
    /// deadline, without an `Instant` to add and convert (what a protocol that sets a deadline
    /// on every request should call).
    pub fn set_deadline_in(&mut self, after: Duration) {
        *self.deadline = Some(self.moment.after(after));
    }

    /// Cancels the protocol deadline.
    pub fn clear_deadline(&mut self) {
        *self.deadline = None;
    }

    /// The protocol deadline, if one is set.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline.map(|at| at.instant(self.epoch))
    }

    /// Runs `job` on the offload pool; its [`Completion`] comes back through
    /// [`Protocol::on_completion`]. Return [`Verb::AwaitCompletion`] to wait for it.
    pub fn offload(&mut self, job: Job) -> Result<JobId, Refused> {
        self.jobs.submit(self.token, job)
    }

    /// Like [`offload`](Self::offload), but the pool drops the job unrun if, when a worker takes
    /// it, `terms.deadline` has passed (the completion is then [`crate::JobFailure::Expired`]) or
    /// `terms.cancel` was cancelled (no completion).
    pub fn offload_with(&mut self, job: Job, terms: JobTerms) -> Result<JobId, Refused> {
        self.jobs.submit_with(self.token, job, terms)
    }

    /// This connection's address, for others to send messages to.
    pub fn addr(&self) -> ConnAddr {
        ConnAddr {
            shard: self.shard,
            token: self.token,
        }
    }

    /// Sends `message` to the connection at `to` (this one included): delivered with
    /// [`Protocol::on_message`] after this call returns, later in this loop turn on the same
    /// shard, or through the owning shard's inbox. Refused at once when the receiving queue is
    /// full; see [`crate::message`] for the bound, the order and what to do then.
    ///
    /// A protocol that forwards every input chunk to a peer connection, in the harness:
    ///
    /// ```
    /// use coreloop_reactor::testing::Harness;
    /// use coreloop_reactor::token::ConnToken;
    /// use coreloop_reactor::{ConnAddr, Cx, Message, Protocol, Step, Verb};
    ///
    /// struct Forward {
    ///     to: ConnAddr,
    /// }
    ///
    /// impl Protocol for Forward {
    ///     fn on_input(&mut self, input: &[u8], cx: &mut Cx<'_>) -> Step {
    ///         match cx.send(self.to, Box::new(input.to_vec())) {
    ///             Ok(()) => Step::new(input.len(), Verb::Read),
    ///             // Full: keep the input (it comes back with the next bytes).
    ///             Err(_) => Step::new(0, Verb::Read),
    ///         }
    ///     }
    ///
    ///     fn on_message(&mut self, message: Message, cx: &mut Cx<'_>) -> Verb {
    ///         if let Ok(bytes) = message.downcast::<Vec<u8>>() {
    ///             cx.out().extend_from_slice(&bytes);
    ///         }
    ///         Verb::Read
    ///     }
    /// }
    ///
    /// let peer = ConnAddr { shard: 1, token: ConnToken::new(4, 0) };
    /// let mut harness = Harness::new();
    /// let mut forward = Forward { to: peer };
    /// harness.push(&mut forward, b"hi");
    /// let sent = harness.take_sent();
    /// assert_eq!(sent[0].0, peer);
    /// harness.message(&mut forward, Box::new(b"back".to_vec()));
    /// assert_eq!(harness.take_output(), b"back");
    /// ```
    pub fn send(&mut self, to: ConnAddr, message: Message) -> Result<(), SendError> {
        self.mail.send(self.shard, to, message)
    }

    /// Asks the shard to open a connection to `target` (TCP or Unix), driven by `protocol`
    /// once connected. The shard connects without blocking; if `timeout` passes first it
    /// gives up. The outcome comes back to this connection as [`Protocol::on_connect`] with
    /// the returned id, after this call. See [`crate::outbound`].
    ///
    /// ```
    /// use std::time::Duration;
    /// use coreloop_reactor::testing::Harness;
    /// use coreloop_reactor::{ConnectOutcome, Cx, ListenAddr, Protocol, Step, Verb};
    ///
    /// struct Quiet;
    /// impl Protocol for Quiet {
    ///     fn on_input(&mut self, input: &[u8], _cx: &mut Cx<'_>) -> Step {
    ///         Step::new(input.len(), Verb::Read)
    ///     }
    /// }
    ///
    /// /// Opens a backend connection on open; says whether it came up.
    /// struct Front;
    /// impl Protocol for Front {
    ///     fn on_open(&mut self, cx: &mut Cx<'_>) -> Verb {
    ///         let backend = ListenAddr::parse("127.0.0.1:6379").unwrap();
    ///         cx.connect(backend, Duration::from_secs(1), Box::new(Quiet));
    ///         Verb::Read
    ///     }
    ///     fn on_input(&mut self, input: &[u8], _cx: &mut Cx<'_>) -> Step {
    ///         Step::new(input.len(), Verb::Read)
    ///     }
    ///     fn on_connect(&mut self, outcome: ConnectOutcome, cx: &mut Cx<'_>) -> Verb {
    ///         let answer: &[u8] = if outcome.result.is_ok() { b"up\n" } else { b"down\n" };
    ///         cx.out().extend_from_slice(answer);
    ///         Verb::Read
    ///     }
    /// }
    ///
    /// let mut harness = Harness::new();
    /// let mut front = Front;
    /// harness.open(&mut front);
    /// let asked = harness.take_connects();
    /// assert_eq!(asked.len(), 1);
    /// harness.connect_failed(&mut front, asked[0].0, coreloop_reactor::ConnectError::Refused);
    /// assert_eq!(harness.take_output(), b"down\n");
    /// ```
    pub fn connect(
        &mut self,
        target: ListenAddr,
        timeout: Duration,
        protocol: Box<dyn Protocol>,
    ) -> ConnectId {
        self.mail.connect(self.token, target, timeout, protocol)
    }

    /// Links this connection with `peer`, a connection on the same shard (usually the one
    /// [`Cx::connect`] opened, from [`Protocol::on_connect`]): from then on each protocol can
    /// write into the other's output with [`Cx::peer_out`], and each connection reads its socket
    /// only while the other's pending output is at or below the high-water mark. Made by the
    /// shard right after this call; one that cannot be made comes back as
    /// [`Protocol::on_unlinked`]. See [`crate::link`] for the rules.
    ///
    /// A splice in the harness: input goes into the peer's output, EOF shuts the peer's write.
    ///
    /// ```
    /// use coreloop_reactor::testing::Harness;
    /// use coreloop_reactor::token::ConnToken;
    /// use coreloop_reactor::{ConnAddr, Cx, Protocol, Step, Verb};
    ///
    /// struct Splice;
    /// impl Protocol for Splice {
    ///     fn on_input(&mut self, input: &[u8], cx: &mut Cx<'_>) -> Step {
    ///         match cx.peer_out() {
    ///             Some(out) => {
    ///                 out.extend_from_slice(input);
    ///                 Step::new(input.len(), Verb::Read)
    ///             }
    ///             None => Step::new(0, Verb::Read),
    ///         }
    ///     }
    ///     fn on_eof(&mut self, _unconsumed: &[u8], cx: &mut Cx<'_>) -> Verb {
    ///         cx.shutdown_peer_write();
    ///         Verb::Read
    ///     }
    /// }
    ///
    /// let mut harness = Harness::new();
    /// let mut splice = Splice;
    /// harness.link_to(ConnAddr { shard: 0, token: ConnToken::new(7, 0) });
    /// harness.push(&mut splice, b"hello");
    /// assert_eq!(harness.take_peer_output(), b"hello");
    /// assert_eq!(harness.eof(&mut splice), Verb::Read);
    /// assert!(harness.peer_write_shut());
    /// ```
    pub fn link(&mut self, peer: ConnAddr) {
        self.mail.link(self.token, peer);
    }

    /// Ends this connection's link, if it has one, right after this call; neither side
    /// closes. The peer is told with [`Protocol::on_unlinked`] later in this loop turn, this
    /// connection is not. Both may be linked again afterwards (to each other or to others).
    /// [`Cx::peer_out`] still works for the rest of this call: what is written there goes
    /// to the peer as usual. A half-close asked for and not yet made is forgotten. For a
    /// proxy's pool: an upstream connection leaves its client after a complete response.
    ///
    /// ```
    /// use coreloop_reactor::testing::Harness;
    /// use coreloop_reactor::token::ConnToken;
    /// use coreloop_reactor::{ConnAddr, Cx, Protocol, Step, Verb};
    ///
    /// /// Forwards one line to its peer, then leaves it.
    /// struct OneLine;
    /// impl Protocol for OneLine {
    ///     fn on_input(&mut self, input: &[u8], cx: &mut Cx<'_>) -> Step {
    ///         let Some(end) = input.iter().position(|&b| b == b'\n') else {
    ///             return Step::new(0, Verb::Read);
    ///         };
    ///         if let Some(out) = cx.peer_out() {
    ///             out.extend_from_slice(&input[..=end]);
    ///         }
    ///         cx.unlink();
    ///         Step::new(end + 1, Verb::Read)
    ///     }
    /// }
    ///
    /// let mut harness = Harness::new();
    /// let mut one = OneLine;
    /// harness.link_to(ConnAddr { shard: 0, token: ConnToken::new(7, 0) });
    /// harness.push(&mut one, b"hi\nmore");
    /// assert_eq!(harness.take_peer_output(), b"hi\n");
    /// assert!(harness.take_unlinked_by_protocol());
    /// assert!(!harness.is_linked());
    /// ```
    pub fn unlink(&mut self) {
        self.mail.unlink(self.token);
    }

    /// The linked peer's output buffer, to append to (one copy, no queue): `None` when this
    /// connection is not linked, or no longer (see [`Cx::link`]).
    pub fn peer_out(&mut self) -> Option<&mut Vec<u8>> {
        let pool = &mut *self.pool;
        self.link.as_deref_mut().map(|lent| lent.out(pool))
    }

    /// The linked peer's output not yet written to its socket (`0` when not linked).
    pub fn peer_pending_output(&self) -> usize {
        self.link.as_deref().map_or(0, crate::link::Lent::pending)
    }

    /// Asks the linked peer to shut down its write side once its pending output is written
    /// (passes a half-close through); the peer keeps reading. Nothing when not linked.
    pub fn shutdown_peer_write(&mut self) {
        if let Some(lent) = self.link.as_deref_mut() {
            lent.shut = true;
        }
    }

    /// True once the server has started draining.
    pub fn is_draining(&self) -> bool {
        self.draining
    }

    /// Says that this connection is idle between requests: a keep-alive connection that
    /// answered everything it got and waits for the next request. Near `max_connections` the
    /// shard may close such connections, oldest first, once idle for `keepalive_grace`
    /// ([`crate::ReactorConfig::keepalive_grace`]), with a clean close (the peer reads an
    /// end of stream, never a reset). Any byte that arrives ends the idle state, so only call
    /// it again after the next answer. A protocol that never calls it is never evicted.
    pub fn mark_idle(&mut self) {
        self.marked_idle = true;
    }

    /// From [`Protocol::on_message`], [`Protocol::on_unlinked`] or
    /// [`Protocol::on_deadline`]: ends this connection's [`Verb::AwaitCompletion`] wait as a
    /// job completion or a connect outcome would, and hands buffered input over again after
    /// the call. For a wait on something done on this shard (the linked peer finished a
    /// response and says so by a message, or it closed, or the protocol gave up waiting).
    /// Ignored from any other callback and when the connection does not wait: a message, an
    /// unlink or a deadline alone leaves a wait in place.
    pub fn resume(&mut self) {
        self.resume = true;
    }

    /// Marks the close this connection is heading for as a refusal (bad input, a protocol
    /// timeout), so it is counted as `CloseReason::Aborted` rather than `Done`.
    pub fn refuse(&mut self) {
        *self.refused = true;
    }
}
