//! Drives a [`Protocol`] without a socket: plain bytes in, output bytes out, a manual clock,
//! and offloaded jobs run when the test says so. For protocol tests in this and other crates.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use crate::buffer::BufPool;
use crate::message::{ConnAddr, Message, MessageSink, SendError};
use crate::offload::{panic_message, Completion, Job, JobFailure, JobId, Refused};
use crate::outbound::{ConnectError, ConnectId, ConnectOutcome};
use crate::protocol::{Cx, JobSink, Protocol, Step, Verb};
use crate::socket::ListenAddr;
use crate::token::ConnToken;

/// Collects jobs instead of running them.
#[derive(Default)]
struct QueuedJobs {
    jobs: Vec<(JobId, Job)>,
    next: u64,
    refuse: bool,
}

impl JobSink for QueuedJobs {
    fn submit(&mut self, _token: ConnToken, job: Job) -> Result<JobId, Refused> {
        if self.refuse {
            return Err(Refused);
        }
        let id = JobId(self.next);
        self.next += 1;
        self.jobs.push((id, job));
        Ok(id)
    }
}

/// Collects sent messages instead of delivering them.
#[derive(Default)]
struct SentMessages {
    sent: Vec<(ConnAddr, Message)>,
    refuse: bool,
    connects: Vec<(ConnectId, ListenAddr, Box<dyn Protocol>)>,
    links: Vec<ConnAddr>,
    /// The protocol called `Cx::unlink` during the last call.
    unlink: bool,
}

impl MessageSink for SentMessages {
    fn send(&mut self, _from: usize, to: ConnAddr, message: Message) -> Result<(), SendError> {
        if self.refuse {
            return Err(SendError::Full(message));
        }
        self.sent.push((to, message));
        Ok(())
    }

    fn connect(
        &mut self,
        _asker: ConnToken,
        target: ListenAddr,
        _timeout: Duration,
        protocol: Box<dyn Protocol>,
    ) -> ConnectId {
        let id = ConnectId(self.connects.len() as u64);
        self.connects.push((id, target, protocol));
        id
    }

    fn link(&mut self, _asker: ConnToken, peer: ConnAddr) {
        self.links.push(peer);
    }

    fn unlink(&mut self, _asker: ConnToken) {
        self.unlink = true;
    }
}

/// One simulated connection. Input handed to [`push`](Self::push) is buffered like the shard
/// buffers it: what the protocol leaves unconsumed comes back with the next bytes.
pub struct Harness {
    /// The clock the protocol sees; move it with [`advance`](Self::advance).
    pub now: Instant,
    /// What [`Cx::is_draining`] answers.
    pub draining: bool,
    /// The shard number the protocol sees.
    pub shard: usize,
    /// The token the protocol sees ([`Cx::token`], [`Cx::addr`]).
    pub token: ConnToken,
    input: Vec<u8>,
    /// Bytes of `input` the protocol was already handed.
    seen: usize,
    out: Option<Vec<u8>>,
    /// Always empty: the harness has no socket, so `Cx::can_send_file` is false here.
    segments: crate::segment::Segments,
    pool: BufPool,
    deadline: Option<crate::moment::Moment>,
    /// What `deadline` counts from, as a shard's timer wheel's start.
    epoch: Instant,
    jobs: QueuedJobs,
    mail: SentMessages,
    refused: bool,
    idle_marks: usize,
    resumed: bool,
    /// The linked peer's output (`link_to`), as the shard lends it.
    peer: Option<crate::link::Lent>,
    /// The peer's output as it was when the protocol unlinked (`Cx::unlink`), still
    /// readable with `take_peer_output`.
    parted: Option<crate::link::Lent>,
    /// The protocol unlinked since `take_unlinked_by_protocol` last asked.
    unlinked_by_protocol: bool,
}

impl Default for Harness {
    fn default() -> Self {
        Self::new()
    }
}

impl Harness {
    /// A fresh connection at an arbitrary `now`.
    pub fn new() -> Self {
        let now = Instant::now();
        Self {
            now,
            epoch: now,
            draining: false,
            shard: 0,
            token: ConnToken::new(0, 0),
            input: Vec::new(),
            seen: 0,
            out: None,
            segments: Default::default(),
            pool: BufPool::new(4096, 4),
            deadline: None,
            jobs: QueuedJobs::default(),
            mail: SentMessages::default(),
            refused: false,
            idle_marks: 0,
            resumed: false,
            peer: None,
            parted: None,
            unlinked_by_protocol: false,
        }
    }

    fn with_cx<R>(&mut self, f: impl FnOnce(&mut Cx<'_>) -> R) -> R {
        let buffered_input = self.input.len();
        let mut cx = Cx {
            now: self.now,
            shard: self.shard,
            token: self.token,
            out: &mut self.out,
            out_written: 0,
            segments: &mut self.segments,
            can_send_file: false,
            unseen_from: 0,
            buffered_input,
            pool: &mut self.pool,
            deadline: &mut self.deadline,
            epoch: self.epoch,
            moment: crate::moment::Moment::new(self.epoch, self.now),
            jobs: &mut self.jobs,
            mail: &mut self.mail,
            draining: self.draining,
            refused: &mut self.refused,
            marked_idle: false,
            resume: false,
            link: self.peer.as_mut(),
        };
        let result = f(&mut cx);
        if cx.marked_idle {
            self.idle_marks += 1;
        }
        self.resumed |= cx.resume;
        // As the shard does right after the call: the link ends, the peer's output stays.
        if std::mem::take(&mut self.mail.unlink) && self.peer.is_some() {
            self.parted = self.peer.take();
            self.unlinked_by_protocol = true;
        }
        result
    }

    /// The shard drops pending output on [`Verb::CloseNow`]; so does the harness.
    fn answer(&mut self, verb: Verb) -> Verb {
        if verb == Verb::CloseNow {
            self.out = None;
        }
        verb
    }

    /// Whether the protocol called [`Cx::resume`] since the last look (and forgets it).
    pub fn take_resumed(&mut self) -> bool {
        std::mem::take(&mut self.resumed)
    }

    /// Times the protocol called [`Cx::mark_idle`].
    pub fn idle_marks(&self) -> usize {
        self.idle_marks
    }

    /// Calls [`Protocol::on_open`].
    pub fn open(&mut self, protocol: &mut dyn Protocol) -> Verb {
        let verb = self.with_cx(|cx| protocol.on_open(cx));
        self.answer(verb)
    }

    /// Appends `bytes` to the buffered input and hands all of it to the protocol.
    pub fn push(&mut self, protocol: &mut dyn Protocol, bytes: &[u8]) -> Verb {
        self.input.extend_from_slice(bytes);
        self.feed(protocol).verb
    }

    /// Hands the buffered input to the protocol again (as the shard does after a flush or a
    /// completion) and returns the whole step.
    pub fn feed(&mut self, protocol: &mut dyn Protocol) -> Step {
        let input = std::mem::take(&mut self.input);
        let seen = self.seen;
        let step = self.with_cx(|cx| {
            cx.unseen_from = seen;
            protocol.on_input(&input, cx)
        });
        assert!(
            step.consumed <= input.len(),
            "protocol consumed more than it was given"
        );
        self.input = input;
        self.input.drain(..step.consumed);
        self.seen = self.input.len();
        self.answer(step.verb);
        step
    }

    /// Calls [`Protocol::on_eof`].
    pub fn eof(&mut self, protocol: &mut dyn Protocol) -> Verb {
        let unconsumed = std::mem::take(&mut self.input);
        let verb = self.with_cx(|cx| protocol.on_eof(&unconsumed, cx));
        self.input = unconsumed;
        self.answer(verb)
    }

    /// Calls [`Protocol::on_drain`].
    pub fn drain(&mut self, protocol: &mut dyn Protocol) -> Verb {
        self.draining = true;
        let verb = self.with_cx(|cx| protocol.on_drain(cx));
        self.answer(verb)
    }

    /// Calls [`Protocol::on_flushed`], as the shard does once a [`Verb::WaitFlush`] has written
    /// every pending byte: take the output first, since all of it counts as written.
    pub fn flushed(&mut self, protocol: &mut dyn Protocol) -> Verb {
        assert!(
            self.out.as_ref().is_none_or(Vec::is_empty),
            "on_flushed with output pending: take_output first"
        );
        let verb = self.with_cx(|cx| protocol.on_flushed(cx));
        self.answer(verb)
    }

    /// Moves the clock on.
    pub fn advance(&mut self, by: Duration) {
        self.now += by;
    }

    /// The protocol's deadline.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline.map(|at| at.instant(self.epoch))
    }

    /// Fires the deadline if `now` has reached it, as the shard's timer wheel would.
    pub fn fire_due_deadline(&mut self, protocol: &mut dyn Protocol) -> Option<Verb> {
        self.deadline().filter(|at| *at <= self.now)?;
        self.deadline = None;
        let verb = self.with_cx(|cx| protocol.on_deadline(cx));
        Some(self.answer(verb))
    }

    /// Makes the job queue refuse (as a full offload queue does) or accept again.
    pub fn refuse_jobs(&mut self, refuse: bool) {
        self.jobs.refuse = refuse;
    }

    /// Jobs submitted and not yet run.
    pub fn queued_jobs(&self) -> usize {
        self.jobs.jobs.len()
    }

    /// Runs every queued job on this thread, catching panics as the pool does.
    pub fn run_jobs(&mut self) -> Vec<Completion> {
        std::mem::take(&mut self.jobs.jobs)
            .into_iter()
            .map(|(job, work)| Completion {
                job,
                result: catch_unwind(AssertUnwindSafe(work))
                    .map_err(|panic| JobFailure::Panicked(panic_message(panic.as_ref()))),
            })
            .collect()
    }

    /// Delivers a completion with [`Protocol::on_completion`].
    pub fn complete(&mut self, protocol: &mut dyn Protocol, completion: Completion) -> Verb {
        let verb = self.with_cx(|cx| protocol.on_completion(completion, cx));
        self.answer(verb)
    }

    /// Delivers a message with [`Protocol::on_message`], as the shard does.
    pub fn message(&mut self, protocol: &mut dyn Protocol, message: Message) -> Verb {
        let verb = self.with_cx(|cx| protocol.on_message(message, cx));
        self.answer(verb)
    }

    /// Messages the protocol sent with [`Cx::send`], oldest first, taken out.
    pub fn take_sent(&mut self) -> Vec<(ConnAddr, Message)> {
        std::mem::take(&mut self.mail.sent)
    }

    /// Makes [`Cx::send`] refuse with [`SendError::Full`] (as a full queue does), or accept.
    pub fn refuse_sends(&mut self, refuse: bool) {
        self.mail.refuse = refuse;
    }

    /// Connections the protocol asked for with [`Cx::connect`], oldest first, taken out: the
    /// id, the target and the protocol that would drive the new connection (drive it with a
    /// second harness).
    pub fn take_connects(&mut self) -> Vec<(ConnectId, ListenAddr, Box<dyn Protocol>)> {
        std::mem::take(&mut self.mail.connects)
    }

    /// Delivers a successful [`Protocol::on_connect`]: the new connection is at `addr`.
    pub fn connected(
        &mut self,
        protocol: &mut dyn Protocol,
        id: ConnectId,
        addr: ConnAddr,
    ) -> Verb {
        let outcome = ConnectOutcome {
            id,
            result: Ok(addr),
        };
        let verb = self.with_cx(|cx| protocol.on_connect(outcome, cx));
        self.answer(verb)
    }

    /// Delivers a failed [`Protocol::on_connect`].
    pub fn connect_failed(
        &mut self,
        protocol: &mut dyn Protocol,
        id: ConnectId,
        error: ConnectError,
    ) -> Verb {
        let outcome = ConnectOutcome {
            id,
            result: Err(error),
        };
        let verb = self.with_cx(|cx| protocol.on_connect(outcome, cx));
        self.answer(verb)
    }

    /// Links asked for with [`Cx::link`], oldest first, taken out (make one with
    /// [`link_to`](Self::link_to), refuse it with [`unlinked`](Self::unlinked)).
    pub fn take_links(&mut self) -> Vec<ConnAddr> {
        std::mem::take(&mut self.mail.links)
    }

    /// Links the connection to a peer: from now on [`Cx::peer_out`] is a buffer that
    /// [`take_peer_output`](Self::take_peer_output) reads (the peer never writes it out).
    pub fn link_to(&mut self, peer: ConnAddr) {
        self.parted = None;
        self.peer = Some(crate::link::Lent {
            peer: peer.token,
            out: None,
            written: 0,
            shut: false,
            own_shut: crate::link::Shut::Open,
        });
    }

    /// Links the connection to a peer, as [`link_to`](Self::link_to), and tells the protocol:
    /// [`Protocol::on_linked`].
    pub fn linked(&mut self, protocol: &mut dyn Protocol, peer: ConnAddr) -> Verb {
        self.link_to(peer);
        let verb = self.with_cx(|cx| protocol.on_linked(cx));
        self.answer(verb)
    }

    /// Ends the link, as when the peer closes: [`Protocol::on_unlinked`].
    pub fn unlinked(&mut self, protocol: &mut dyn Protocol) -> Verb {
        self.peer = None;
        let verb = self.with_cx(|cx| protocol.on_unlinked(cx));
        self.answer(verb)
    }

    /// What the protocol wrote into the linked peer's output, taken out: as if the peer's
    /// socket took it all, so [`Cx::peer_pending_output`] is `0` afterwards.
    pub fn take_peer_output(&mut self) -> Vec<u8> {
        self.peer
            .as_mut()
            .or(self.parted.as_mut())
            .and_then(|peer| peer.out.take())
            .unwrap_or_default()
    }

    /// Whether the protocol ended its link with [`Cx::unlink`] since the last time this was
    /// asked (the harness then unlinks it, as the shard would: [`Cx::peer_out`] is `None`).
    pub fn take_unlinked_by_protocol(&mut self) -> bool {
        std::mem::take(&mut self.unlinked_by_protocol)
    }

    /// Whether the connection is linked now ([`link_to`](Self::link_to), until it or its peer
    /// unlinks).
    pub fn is_linked(&self) -> bool {
        self.peer.is_some()
    }

    /// Whether the protocol asked the peer to shut down its write side
    /// ([`Cx::shutdown_peer_write`]).
    pub fn peer_write_shut(&self) -> bool {
        self.peer.as_ref().is_some_and(|peer| peer.shut)
    }

    /// Everything written so far, taken out.
    pub fn take_output(&mut self) -> Vec<u8> {
        self.out.take().unwrap_or_default()
    }

    /// Whether the protocol called [`Cx::refuse`].
    pub fn refused(&self) -> bool {
        self.refused
    }

    /// Input bytes left unconsumed.
    pub fn buffered(&self) -> usize {
        self.input.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::ConnAddr;

    /// Writes what it is told, sends each message on to `next`, closes at once on `!`.
    struct Relay {
        next: ConnAddr,
    }

    impl Protocol for Relay {
        fn on_input(&mut self, input: &[u8], cx: &mut Cx<'_>) -> Step {
            cx.out().extend_from_slice(input);
            let verb = if input.ends_with(b"!") {
                Verb::CloseNow
            } else {
                Verb::Read
            };
            Step::new(input.len(), verb)
        }

        fn on_message(&mut self, message: Message, cx: &mut Cx<'_>) -> Verb {
            match cx.send(self.next, message) {
                Ok(()) => Verb::Read,
                Err(refused) => {
                    assert!(refused.is_full());
                    Verb::CloseAfterFlush
                }
            }
        }
    }

    #[test]
    fn messages_go_in_and_sends_are_collected_or_refused() {
        let next = ConnAddr {
            shard: 1,
            token: ConnToken::new(9, 2),
        };
        let mut harness = Harness::new();
        let mut relay = Relay { next };
        assert_eq!(harness.message(&mut relay, Box::new(7u32)), Verb::Read);
        let sent = harness.take_sent();
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].0, next);
        assert_eq!(
            *sent
                .into_iter()
                .next()
                .unwrap()
                .1
                .downcast::<u32>()
                .unwrap(),
            7
        );
        harness.refuse_sends(true);
        assert_eq!(
            harness.message(&mut relay, Box::new(8u32)),
            Verb::CloseAfterFlush
        );
        assert!(harness.take_sent().is_empty());
    }

    #[test]
    fn close_now_drops_pending_output_as_the_shard_does() {
        let mut harness = Harness::new();
        let mut relay = Relay {
            next: ConnAddr {
                shard: 0,
                token: ConnToken::new(0, 0),
            },
        };
        assert_eq!(harness.push(&mut relay, b"kept"), Verb::Read);
        assert_eq!(harness.take_output(), b"kept");
        assert_eq!(harness.push(&mut relay, b"dropped!"), Verb::CloseNow);
        assert!(harness.take_output().is_empty());
    }

    /// Sets its deadline on open, either way: `Some(d)` relative, `None` as an `Instant`.
    struct Deadlined(Option<Duration>);

    impl Protocol for Deadlined {
        fn on_open(&mut self, cx: &mut Cx<'_>) -> Verb {
            match self.0 {
                Some(after) => cx.set_deadline_in(after),
                None => cx.set_deadline(cx.now() + Duration::new(7, 1)),
            }
            Verb::Read
        }

        fn on_input(&mut self, input: &[u8], _cx: &mut Cx<'_>) -> Step {
            Step::new(input.len(), Verb::Read)
        }
    }

    /// Deadlines are kept as nanoseconds after an epoch: both setters give back the exact
    /// `Instant`, and it fires at it, not a nanosecond before.
    #[test]
    fn a_deadline_set_either_way_is_exact() {
        for (protocol, after) in [
            (Deadlined(Some(Duration::new(7, 1))), Duration::new(7, 1)),
            (Deadlined(None), Duration::new(7, 1)),
        ] {
            let mut protocol = protocol;
            let mut harness = Harness::new();
            harness.advance(Duration::from_millis(3));
            let opened = harness.now;
            harness.open(&mut protocol);
            assert_eq!(harness.deadline(), Some(opened + after));
            harness.advance(after - Duration::from_nanos(1));
            assert_eq!(harness.fire_due_deadline(&mut protocol), None);
            harness.advance(Duration::from_nanos(1));
            assert!(harness.fire_due_deadline(&mut protocol).is_some());
        }
    }
}
