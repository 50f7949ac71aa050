//! One HTTP/1.1 connection as a [`Protocol`]: the request cycle, timeouts, pipelining, drain.
//!
//! Cycle: `Idle` (nothing of the next request yet) -> `Head` (bytes of a head) -> `Body` (when
//! the request has one) -> answered inline, or `Awaiting` a job -> `Idle` again; any refusal or
//! `Connection: close` goes to `Closed`, after which nothing else is ever answered.
//!
//! One direction: what a request is answered with is `crate::exchange`'s, which returns it as
//! a value (`Next` after the head, `Answer` once the body is in); this module owns the cycle
//! and acts on the value (deadlines, offload, holds, refusals, bookkeeping, verbs).
//!
//! Deadlines, one at a time (RFC 9112 §9.5 leaves them to us):
//! - header: from accept, from the end of the previous response when the next request is
//!   already buffered, or from its first byte otherwise, to the end of its head: 408;
//! - body: from the end of the head to the end of the body: 408;
//! - idle: from the end of a response while nothing else is buffered: closed silently;
//! - offload: from the submission of a job: 504.

use std::any::Any;
use std::rc::Rc;

use coreloop_reactor::{Cx, Job, JobFailure, JobId, Verb};

use crate::error::HttpError;
use crate::exchange::{
    self, Answer, BlockingWork, Encoded, Env, Exchange, Fixed, Next, Planned, Terms,
};
use crate::factory::{Settings, Shared};
use crate::handlers::JobReply;
use crate::head::{self, Head};
use crate::response::{write_reply, Finish, Reply};
use crate::scan::{self, HeadScan};

mod done;
mod events;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    Idle,
    Head,
    Body,
    /// A job runs; the scratch has its id (`Scratch::job`), so that no idle connection
    /// carries 8 bytes for it.
    Awaiting,
    /// A proxy route waits for its upstream's response (`crate::proxy`).
    Proxying,
    Closed,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Timer {
    Header,
    Body,
    Idle,
    Offload,
    /// A proxy route's `response_timeout`.
    Proxy,
}

/// Where the connection is in an `on_input` call, whose input may hold several pipelined
/// requests: an answer's idling (the idle deadline, `Cx::mark_idle`, the scratch back to the
/// pool) waits for the end of the call ([`HttpConn::settle_input`]), as the next request in
/// the same input would undo it at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Batch {
    /// Outside `on_input`: idling is done at the answer.
    Off,
    /// In `on_input`, nothing idled yet.
    On,
    /// In `on_input`, an answer idled: settle at the end of the call.
    Idled,
}

/// What handling one step of a request led to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Flow {
    /// Need more bytes.
    Partial,
    /// The head is in; the body comes next.
    Continue,
    /// A response was written; the next request may follow.
    Answered,
    /// A job runs; wait for it.
    Await,
    /// A response with `Connection: close` was written.
    Close,
    /// Something outside the request cycle runs (a delay, a file body; see `crate::held`):
    /// wait as the verb says.
    Hold(Verb),
}

/// The HTTP/1.1 protocol state of one connection.
pub struct HttpConn {
    pub(crate) shared: Rc<Shared>,
    pub(crate) settings: Rc<Settings>,
    pub(crate) phase: Phase,
    timer: Option<Timer>,
    /// When the connection was accepted, as nanoseconds since the shard's epoch
    /// (`Shared::epoch`): 8 bytes where an `Instant` takes 16, for `max_connection_age`.
    opened: u64,
    pub(crate) served: u64,
    /// Boxed from the shard's pool while a request is in progress, like `scratch`.
    pub(crate) exchange: Option<Box<Exchange>>,
    /// The request's buffers, from the shard's pool while a request is in progress and
    /// back in it once the connection is idle: an idle connection owns none.
    pub(crate) scratch: Option<Box<Scratch>>,
    /// The peer half-closed: the response in progress closes the connection.
    pub(crate) peer_eof: bool,
    /// `on_drain` came while a request was in progress: its response closes.
    pub(crate) draining: bool,
    /// The request being answered is HTTP/1.0 (its keep-alive is announced).
    pub(crate) http10: bool,
    /// While draining: whether another complete request is buffered behind this one, so that
    /// this response must not be the closing one (`None`: not looked, as the drain began
    /// while a job ran; then any buffered byte counts).
    more_buffered: Option<bool>,
    batch: Batch,
}

/// Per-request buffers, pooled per shard ([`Shared::take_scratch`]) so that neither an idle
/// connection holds them nor a steady state allocates them.
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    /// Body bytes for handlers that read them.
    pub body: Vec<u8>,
    pub echo_type: Vec<u8>,
    /// The percent-decoded path.
    pub path: Vec<u8>,
    /// Access log only (empty otherwise): the request's method, target, and the pending
    /// output when its response began.
    pub log_method: Vec<u8>,
    pub log_path: Vec<u8>,
    pub log_agent: Vec<u8>,
    pub log_referer: Vec<u8>,
    pub log_minor: u8,
    pub log_mark: usize,
    /// When the request in progress started (its latency's start). Here rather than in
    /// `HttpConn`, so an idle connection does not carry it; `None`: nothing of a request yet.
    pub started: Option<crate::stamp::Stamp>,
    /// The job the request waits for (`Phase::Awaiting`), set when it is submitted.
    pub job: Option<JobId>,
    /// How far the look for the end of a head that arrives in pieces got. Here rather than in
    /// `HttpConn`, so an idle connection does not carry it.
    pub scan: HeadScan,
}

impl Scratch {
    /// Empties every buffer, keeping capacity.
    #[inline]
    pub(crate) fn clear(&mut self) {
        self.body.clear();
        self.echo_type.clear();
        self.path.clear();
        self.log_method.clear();
        self.log_path.clear();
        self.log_agent.clear();
        self.log_referer.clear();
        self.log_minor = 1;
        self.log_mark = 0;
        self.started = None;
        self.job = None;
        self.scan = HeadScan::default();
    }

    /// Bytes of capacity held.
    #[inline]
    pub(crate) fn capacity(&self) -> usize {
        [
            &self.body,
            &self.echo_type,
            &self.path,
            &self.log_method,
            &self.log_path,
            &self.log_agent,
            &self.log_referer,
        ]
        .iter()
        .map(|v| v.capacity())
        .sum()
    }
}

/// The connection's scratch, taken from the pool if it has none.
#[inline]
pub(crate) fn scratch_of<'a>(
    slot: &'a mut Option<Box<Scratch>>,
    shared: &Shared,
) -> &'a mut Scratch {
    slot.get_or_insert_with(|| take_scratch(shared))
}

/// Out of line, so that a look into a connection's scratch stays a test of its slot: a request
/// takes one once and looks three more times, and with the take inlined `get_or_insert_with`
/// became a call at every look.
#[inline(never)]
fn take_scratch(shared: &Shared) -> Box<Scratch> {
    shared.take_scratch()
}

impl HttpConn {
    pub(crate) fn new(shared: Rc<Shared>) -> Self {
        let settings = shared.settings.borrow().clone();
        Self {
            shared,
            settings,
            phase: Phase::Idle,
            timer: None,
            opened: 0,
            served: 0,
            exchange: None,
            scratch: None,
            peer_eof: false,
            draining: false,
            http10: false,
            more_buffered: None,
            batch: Batch::Off,
        }
    }

    /// This request's buffers.
    pub(crate) fn scratch(&mut self) -> &mut Scratch {
        scratch_of(&mut self.scratch, &self.shared)
    }

    /// True once a byte of the request in progress has arrived (`begin_request`).
    pub(crate) fn request_started(&self) -> bool {
        self.scratch.as_ref().is_some_and(|s| s.started.is_some())
    }

    fn release_scratch(&mut self) {
        if let Some(scratch) = self.scratch.take() {
            self.shared.give_scratch(scratch);
        }
    }

    fn drain_grace(&mut self, cx: &mut Cx<'_>) -> Verb {
        let at = cx.now() + self.settings.config.drain_grace;
        self.timer = Some(Timer::Idle);
        cx.set_deadline(cx.deadline().map_or(at, |current| current.min(at)));
        Verb::Read
    }

    fn arm(&mut self, timer: Timer, cx: &mut Cx<'_>) {
        let config = &self.settings.config;
        let after = match timer {
            Timer::Header => config.header_timeout,
            Timer::Body => config.body_timeout,
            Timer::Idle => config.idle_timeout,
            Timer::Offload => config.offload_timeout,
            Timer::Proxy => config.offload_timeout,
        };
        self.timer = Some(timer);
        cx.set_deadline_in(after);
    }

    pub(crate) fn arm_proxy(&mut self, timeout: std::time::Duration, cx: &mut Cx<'_>) {
        self.timer = Some(Timer::Proxy);
        cx.set_deadline_in(timeout);
    }

    pub(crate) fn arm_body(&mut self, cx: &mut Cx<'_>) {
        self.arm(Timer::Body, cx);
    }

    pub(crate) fn clear_timer(&mut self, cx: &mut Cx<'_>) {
        self.timer = None;
        cx.clear_deadline();
    }

    pub(crate) fn begin_request_now(&mut self, cx: &mut Cx<'_>) {
        self.begin_request(cx);
    }

    /// The first bytes of a request: take the current settings and start the header clock.
    fn begin_request(&mut self, cx: &mut Cx<'_>) {
        if self.phase == Phase::Idle {
            self.phase = Phase::Head;
            self.settings = self.shared.settings.borrow().clone();
            self.arm(Timer::Header, cx);
            // The access log fields need no clearing here: an idle connection owns no
            // scratch, and the pool hands scratch out cleared (`Shared::give_scratch`).
        }
        // A real clock read, not the loop-turn clock (`cx.now()`): an in-memory answer is
        // written in the turn that read its first byte, so the turn clock would time it as 0.
        // One vDSO read per request; docs/BENCHMARKS.md ("Request latency clock") has the cost.
        let scratch = scratch_of(&mut self.scratch, &self.shared);
        if scratch.started.is_none() {
            scratch.started = Some(self.shared.request_start(cx.token(), cx.now()));
        }
    }

    fn step_head(&mut self, input: &[u8], cx: &mut Cx<'_>) -> (usize, Flow) {
        self.begin_request(cx);
        // Field by field, so that no `Rc` clone of the settings is needed per request.
        let config = &self.settings.config;
        let scan = &mut scratch_of(&mut self.scratch, &self.shared).scan;
        if scan.waiting() {
            match scan.look(input, cx.unseen_from(), config) {
                Ok(true) => {}
                Ok(false) => return (0, Flow::Partial),
                Err(error) => return (0, self.refuse(error, cx)),
            }
        }
        let mut head = Head::empty();
        let parsed = head::parse_into(input, &mut scan.line, config, &mut head);
        // Only a head that waited, or whose line the strict parser read (HTTP/1.2, errors),
        // has scan state to forget: the common one never touches it.
        if scan.touched() && !matches!(parsed, Ok(false)) {
            *scan = HeadScan::default();
        }
        match parsed {
            Ok(true) => {
                if self.is_draining(cx) {
                    let rest = &input[head.len..];
                    self.more_buffered = Some(scan::request_follows(rest, head.framing));
                }
                let raw = &input[..head.len];
                let flow = self.on_head(&head, raw, input.len() > head.len, cx);
                (
                    head.len,
                    flow.unwrap_or_else(|error| self.refuse(error, cx)),
                )
            }
            Ok(false) => {
                scan.wait(input);
                (0, Flow::Partial)
            }
            Err(error) => (0, self.refuse(error, cx)),
        }
    }

    fn on_head(
        &mut self,
        head: &Head<'_>,
        raw: &[u8],
        more: bool,
        cx: &mut Cx<'_>,
    ) -> Result<Flow, HttpError> {
        if self.shared.access_log.is_some() {
            self.note_request(head, cx);
        }
        self.http10 = head.minor == 0;
        let mut env = Env {
            settings: &self.settings,
            shared: &self.shared,
            scratch: scratch_of(&mut self.scratch, &self.shared),
        };
        let (exchange, next) = match exchange::plan(&mut env, head, more)? {
            Planned::Exchange(exchange, next) => (exchange, next),
            Planned::Fixed(fixed) => return Ok(self.answer_fixed(fixed, head, more, cx)),
        };
        self.exchange = Some(exchange);
        match next {
            Next::Proxy(spec) => Ok(self.start_proxy(head, raw, spec, more, cx)),
            Next::Answer => Ok(self.finish(cx)),
            Next::Body { interim } => {
                if interim {
                    cx.out().extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
                }
                self.phase = Phase::Body;
                self.arm(Timer::Body, cx);
                Ok(Flow::Continue)
            }
        }
    }

    fn step_body(&mut self, input: &[u8], cx: &mut Cx<'_>) -> Result<(usize, Flow), HttpError> {
        let limit = self.settings.config.max_body_bytes;
        let keep = self
            .exchange
            .as_ref()
            .is_some_and(|e| exchange::reads_body(&self.settings, e.target));
        if self.exchange.as_ref().is_some_and(|e| e.proxy.is_some()) {
            return self.proxy_body(input, cx);
        }
        let Some(exchange) = self.exchange.as_mut() else {
            return Err(HttpError::InvalidChunk);
        };
        let Some(decoder) = exchange.decoder.as_mut() else {
            return Ok((0, self.finish(cx)));
        };
        let mut sink = keep.then(|| &mut scratch_of(&mut self.scratch, &self.shared).body);
        let progress = decoder.decode(input, &mut sink, &mut exchange.received, limit)?;
        let flow = if progress.done {
            self.finish(cx)
        } else {
            Flow::Partial
        };
        Ok((progress.consumed, flow))
    }

    /// Writes the response of a request that failed and closes (or, for a server-side failure
    /// with a connection that can go on, just answers).
    pub(crate) fn refuse(&mut self, error: HttpError, cx: &mut Cx<'_>) -> Flow {
        self.scratch().log_mark = cx.pending_output();
        let refusal = error.refusal();
        tracing::debug!(status = refusal.status, fault = ?refusal.fault, "{error}");
        let head_only = self.exchange.as_ref().is_some_and(|e| e.head_only);
        let close = refusal.close
            || self.exchange.as_ref().is_none_or(|e| !e.keep_alive)
            || self.must_close(cx);
        let extra: &[u8] = if refusal.status == 503 {
            b"Retry-After: 1\r\n"
        } else {
            b""
        };
        let reply = Reply {
            status: refusal.status,
            content_type: Some(b"text/plain"),
            extra,
            body: error.phrase().as_bytes(),
        };
        let finish = Finish {
            date: &self.shared.date.get(),
            close,
            head_only,
            announce_keep_alive: self.http10,
        };
        write_reply(cx.out(), &reply, finish);
        self.scratch().body.clear();
        if close {
            cx.refuse();
        }
        self.done(refusal.status, close, cx)
    }

    fn is_draining(&self, cx: &Cx<'_>) -> bool {
        self.draining || cx.is_draining()
    }

    /// Whether the response being written must end the connection (limits, drain). A drain
    /// answers every request complete in the input first: only the last one closes.
    pub(crate) fn must_close(&self, cx: &Cx<'_>) -> bool {
        let config = &self.settings.config;
        let limit = config.max_requests_per_connection;
        let too_many = limit > 0 && self.served + 1 >= limit;
        let too_old = config.max_connection_age.is_some_and(|age| {
            let lived = self
                .shared
                .since_epoch(cx.now())
                .saturating_sub(self.opened);
            u128::from(lived) >= age.as_nanos()
        });
        let last = !self
            .more_buffered
            .unwrap_or_else(|| cx.buffered_input() > 0);
        too_many || too_old || (self.is_draining(cx) && last)
    }

    /// The body is in (or there is none): the exchange answers, and the cycle goes on as its
    /// answer says.
    pub(crate) fn finish(&mut self, cx: &mut Cx<'_>) -> Flow {
        // Out of `self` while the exchange answers, back in before the cycle acts (`done`
        // labels the response from it).
        let Some(mut exchange) = self.exchange.take() else {
            return self.refuse(HttpError::MalformedRequestLine, cx);
        };
        let terms = Terms {
            close: !exchange.keep_alive || self.must_close(cx),
            http10: self.http10,
        };
        let draining = self.is_draining(cx);
        let mut env = Env {
            settings: &self.settings,
            shared: &self.shared,
            scratch: scratch_of(&mut self.scratch, &self.shared),
        };
        let answer = exchange::answer(&mut env, &mut exchange, cx.out(), terms, draining);
        self.exchange = Some(exchange);
        match answer {
            Answer::Written(status) => self.done(status, terms.close, cx),
            Answer::Reply(reply) => self.answer_job(Ok(reply), cx),
            Answer::Job(work) => self.submit(work, cx),
            Answer::Delay(delay) => self.hold_delay(delay, cx),
            Answer::Refusal(error) => self.refuse(error, cx),
        }
    }

    /// A request planned as [`Planned::Fixed`]: what `finish` does for one with an exchange
    /// whose route answers with a pre-encoded response, without the exchange.
    fn answer_fixed(
        &mut self,
        fixed: Fixed,
        head: &Head<'_>,
        follows: bool,
        cx: &mut Cx<'_>,
    ) -> Flow {
        let close = !head.keep_alive || self.must_close(cx);
        let draining = self.is_draining(cx);
        let finish = Finish {
            date: &self.shared.date.get(),
            close,
            head_only: fixed.head_only,
            announce_keep_alive: self.http10,
        };
        let status = exchange::write_fixed(&self.settings, fixed, cx.out(), finish, draining);
        let labels = (fixed.route_slot(&self.settings), fixed.method);
        self.done_as(status, close, labels, follows, cx)
    }

    /// Hands `work` to the offload pool and waits for it under the offload deadline.
    fn submit(&mut self, work: BlockingWork, cx: &mut Cx<'_>) -> Flow {
        let job: Job = Box::new(move || Box::new(work()) as Box<dyn Any + Send>);
        match self.offload(job, cx) {
            Ok(id) => {
                self.scratch().job = Some(id);
                self.phase = Phase::Awaiting;
                self.arm(Timer::Offload, cx);
                Flow::Await
            }
            Err(_) => self.refuse(HttpError::Overloaded, cx),
        }
    }

    /// A handler's reply (from a job, or made on the shard), or the failure that replaces it.
    pub(crate) fn answer_job(
        &mut self,
        reply: Result<JobReply, HttpError>,
        cx: &mut Cx<'_>,
    ) -> Flow {
        let reply = match reply {
            Ok(reply) => reply,
            Err(error) => return self.refuse(error, cx),
        };
        // Output queued before may have been written while the job ran: measure from here.
        self.scratch().log_mark = cx.pending_output();
        let exchange = self.exchange.as_ref();
        let head_only = exchange.is_some_and(|e| e.head_only);
        let terms = Terms {
            close: exchange.is_none_or(|e| !e.keep_alive) || self.must_close(cx) || self.peer_eof,
            http10: self.http10,
        };
        let Encoded { status, rest } =
            exchange::encode(&self.shared, reply, head_only, cx.out(), terms);
        match rest {
            Some(body) => self.stream_body(body, status, terms.close, cx),
            None => self.done(status, terms.close, cx),
        }
    }
}

pub(crate) fn verb_after(flow: Flow) -> Verb {
    match flow {
        Flow::Await => Verb::AwaitCompletion,
        Flow::Close => Verb::CloseAfterFlush,
        Flow::Hold(verb) => verb,
        Flow::Partial | Flow::Continue | Flow::Answered => Verb::Read,
    }
}
