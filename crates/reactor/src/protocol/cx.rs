//! [`Cx`]: what a protocol may see and do during one call, and where its offloaded jobs go.

use std::time::{Duration, Instant};

use crate::buffer::BufPool;
use crate::message::{ConnAddr, Message, MessageSink, SendError};
use crate::offload::{Job, JobId, JobTerms, Refused};
use crate::outbound::ConnectId;
use crate::socket::ListenAddr;
use crate::token::ConnToken;

use super::Protocol;

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
    #[inline]
    pub fn now(&self) -> Instant {
        self.now
    }

    /// The shard that owns this connection.
    pub fn shard(&self) -> usize {
        self.shard
    }

    /// The connection's token, as carried by its completions.
    #[inline]
    pub fn token(&self) -> ConnToken {
        self.token
    }

    /// The write buffer: append output here. It is taken from the shard's pool on first use and
    /// returned once written, so an idle connection holds none.
    #[inline]
    pub fn out(&mut self) -> &mut Vec<u8> {
        let pool = &mut *self.pool;
        self.out.get_or_insert_with(|| pool.take())
    }

    /// In [`Protocol::on_input`]: where in `input` the bytes this protocol has not been handed
    /// before start (`0` on a first call, `input.len()` when it is handed the same bytes
    /// again after a flush or a completion). A protocol that scans for a terminator starts
    /// its scan there (less what a terminator may straddle), so it never rescans; `0` outside
    /// `on_input`.
    #[inline]
    pub fn unseen_from(&self) -> usize {
        self.unseen_from
    }

    /// Bytes written by the protocol and not yet sent, a queued file segment's included.
    #[inline]
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
    /// call. Until sent they count as pending output (high-water mark, [`Verb::WaitFlush`](crate::Verb::WaitFlush),
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
    #[inline]
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
    #[inline]
    pub fn set_deadline_in(&mut self, after: Duration) {
        *self.deadline = Some(self.moment.after(after));
    }

    /// Cancels the protocol deadline.
    #[inline]
    pub fn clear_deadline(&mut self) {
        *self.deadline = None;
    }

    /// The protocol deadline, if one is set.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline.map(|at| at.instant(self.epoch))
    }

    /// Runs `job` on the offload pool; its [`Completion`](crate::Completion) comes back through
    /// [`Protocol::on_completion`]. Return [`Verb::AwaitCompletion`](crate::Verb::AwaitCompletion) to wait for it.
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
    #[inline]
    pub fn is_draining(&self) -> bool {
        self.draining
    }

    /// Says that this connection is idle between requests: a keep-alive connection that
    /// answered everything it got and waits for the next request. Near `max_connections` the
    /// shard may close such connections, oldest first, once idle for `keepalive_grace`
    /// ([`crate::ReactorConfig::keepalive_grace`]), with a clean close (the peer reads an
    /// end of stream, never a reset). Any byte that arrives ends the idle state, so only call
    /// it again after the next answer. A protocol that never calls it is never evicted.
    #[inline]
    pub fn mark_idle(&mut self) {
        self.marked_idle = true;
    }

    /// From [`Protocol::on_message`], [`Protocol::on_unlinked`] or
    /// [`Protocol::on_deadline`]: ends this connection's [`Verb::AwaitCompletion`](crate::Verb::AwaitCompletion) wait as a
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
