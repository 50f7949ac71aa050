//! The client side of a proxy route, as phases of [`HttpConn`]: pick and dial a server (retry
//! on a failed connect, when nothing was sent), link, stream the request body into the link,
//! then wait for the upstream side's word that the response is complete or failed.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use coreloop_reactor::{ConnAddr, ConnectError, ConnectOutcome, Cx, ListenAddr, Verb};

use super::head::{self, ClientSide, Rewrite};
use super::pool::{Parked, ServerPool};
use super::upstream::{Abort, Pipe, SharedPipe, State};
use super::{Outcome, ProxySpec, ProxyTarget, ProxyTicket};

mod attempt;
mod target;

use crate::conn::{verb_after, Flow, HttpConn, Phase};
use crate::error::HttpError;
use crate::head::{Framing, Head};
use attempt::{attempt, attempt_taken};
use target::{raw_target, strip};

/// The upstream side's word to the client side: look at the pipe.
pub(crate) struct ProxyWake;

/// One shard's view of one upstream, shared by that shard's connections.
type ShardTarget = Rc<RefCell<Box<dyn ProxyTarget>>>;

/// A shard's [`ProxyTarget`]s, one per proxy route's spec, built at first use.
pub(crate) struct Targets {
    by_spec: RefCell<Vec<(usize, ShardTarget)>>,
    wants_peers: std::cell::Cell<bool>,
    /// Where the shard writes a rewritten request head before it knows whether a pooled
    /// connection's pipe takes a copy (and this buffer comes back) or a new pipe takes it.
    scratch: RefCell<Vec<u8>>,
}

impl Targets {
    pub fn new(wants_peers: bool) -> Self {
        Self {
            by_spec: RefCell::new(Vec::new()),
            wants_peers: std::cell::Cell::new(wants_peers),
            scratch: RefCell::new(Vec::new()),
        }
    }

    /// The shard's head buffer, empty (with its capacity when it came back).
    fn scratch(&self) -> Vec<u8> {
        std::mem::take(&mut *self.scratch.borrow_mut())
    }

    /// Gives the head buffer back, emptied.
    fn give_scratch(&self, mut buffer: Vec<u8>) {
        buffer.clear();
        *self.scratch.borrow_mut() = buffer;
    }

    pub fn wants_peers(&self) -> bool {
        self.wants_peers.get()
    }

    /// New settings: their specs are new values, so the views are built again at first use.
    pub fn reloaded(&self, wants_peers: bool) {
        self.by_spec.borrow_mut().clear();
        self.wants_peers.set(wants_peers);
    }

    fn of(&self, spec: &Arc<ProxySpec>, shard: usize) -> ShardTarget {
        let key = Arc::as_ptr(spec) as usize;
        let mut by_spec = self.by_spec.borrow_mut();
        if let Some((_, target)) = by_spec.iter().find(|(k, _)| *k == key) {
            return target.clone();
        }
        let target = Rc::new(RefCell::new((spec.target)(shard)));
        by_spec.push((key, target.clone()));
        target
    }
}

/// A proxied request in progress, in its `Exchange`.
pub(crate) struct ProxyExchange {
    spec: Arc<ProxySpec>,
    ticket: Option<Box<dyn ProxyTicket>>,
    pipe: SharedPipe,
    upstream: Option<ConnAddr>,
    /// The request has a body still to forward.
    body: bool,
    /// RFC 9110 §9.2.2: the method may be sent twice (no body, no response byte: retried).
    idempotent: bool,
    /// The server of this attempt: where a redial goes.
    server: Option<(ListenAddr, std::time::Duration, Option<Rc<ServerPool>>)>,
    /// This attempt runs on a pooled connection.
    reused: bool,
    /// A pooled connection was taken for a request with a body: the body waits until the
    /// upstream side says the head is written.
    awaits_start: bool,
}

impl std::fmt::Debug for ProxyExchange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProxyExchange")
            .field("upstream", &self.upstream)
            .finish()
    }
}

impl HttpConn {
    /// A proxy route's head: rewrite it, pick a server and dial it. The body (if any) waits in
    /// the input buffer until the link exists.
    pub(crate) fn start_proxy(
        &mut self,
        head: &Head<'_>,
        raw: &[u8],
        spec: Arc<ProxySpec>,
        more: bool,
        cx: &mut Cx<'_>,
    ) -> Flow {
        let peer = self.shared.peer_of(cx.token());
        let mut target_path = raw_target(raw);
        if let Some(prefix) = &spec.strip_prefix {
            target_path = strip(target_path, prefix.as_bytes());
        }
        let client = ClientSide {
            addr: peer.map(|p| p.ip()),
            proto: spec.proto,
            host: head.host,
            framing: head.framing,
            set: &spec.set_headers,
        };
        let mut request = self.shared.proxies.scratch();
        // At once, not by doubling: the proxy adds its own fields to the client's head.
        request.reserve(raw.len() + 256);
        let rewrite = head::write_request(raw, &target_path, &client, &mut request);
        if rewrite != Rewrite::Forward {
            self.shared.proxies.give_scratch(request);
            return match rewrite {
                Rewrite::AnswerHere => self.answer_options_here(head.framing != Framing::Empty, cx),
                Rewrite::BadMaxForwards => self.refuse(HttpError::InvalidMaxForwards, cx),
                _ => self.refuse(HttpError::MalformedHeader, cx),
            };
        }
        let now = cx.now();
        let target = self.shared.proxies.of(&spec, cx.shard());
        let picked = target.borrow_mut().pick(now);
        let Some(pick) = picked else {
            self.shared.proxies.give_scratch(request);
            tracing::debug!(upstream = %spec.upstream, "no server available");
            return self.proxy_refuse(HttpError::NoUpstream, cx);
        };
        head::end_request(&mut request, pick.pool.as_ref().is_some_and(|p| p.keeps()));
        let body = head.framing != Framing::Empty;
        let keep_alive =
            self.exchange.as_ref().is_some_and(|e| e.keep_alive) && !self.must_close(cx);
        let parked = pick.pool.as_ref().and_then(|pool| pool.take());
        let fresh = Pipe {
            request,
            client: cx.addr(),
            http10: self.http10,
            keep_alive,
            head_only: self.exchange.as_ref().is_some_and(|e| e.head_only),
            max_head: self.settings.config.max_header_bytes,
            state: State::Waiting,
            connected: None,
            response_timeout: spec.response_timeout,
            started: false,
            answered: false,
            request_done: !body,
        };
        let pipe = pipe_for(parked.as_ref(), fresh, &self.shared.proxies);
        if head.expect_continue && body && !more {
            // Answered here and not forwarded (head.rs drops `Expect`): never both.
            cx.out().extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
        }
        let idempotent = matches!(
            head.method_token,
            "GET" | "HEAD" | "PUT" | "DELETE" | "OPTIONS" | "TRACE"
        );
        let mut proxy = ProxyExchange {
            spec,
            ticket: None,
            pipe,
            upstream: None,
            body,
            idempotent,
            server: None,
            reused: false,
            awaits_start: false,
        };
        let claimed = attempt_taken(&mut proxy, pick, parked, cx);
        if let Some(exchange) = self.exchange.as_mut() {
            exchange.proxy = Some(Box::new(proxy));
        }
        self.phase = if body { Phase::Body } else { Phase::Proxying };
        self.arm_attempt(claimed, cx);
        Flow::Await
    }

    fn proxy_mut(&mut self) -> Option<&mut ProxyExchange> {
        self.exchange.as_mut()?.proxy.as_deref_mut()
    }

    /// The outcome of a dial.
    pub(crate) fn proxy_connected(&mut self, outcome: ConnectOutcome, cx: &mut Cx<'_>) -> Verb {
        let now = cx.now();
        let Some(proxy) = self.proxy_mut() else {
            return Verb::Read;
        };
        match outcome.result {
            Ok(addr) => {
                if let Some(ticket) = proxy.ticket.as_mut() {
                    ticket.connected(now);
                }
                proxy.upstream = Some(addr);
                proxy.pipe.borrow_mut().connected = Some(now);
                let timeout = proxy.spec.response_timeout;
                let body = proxy.body;
                cx.link(addr);
                let _ = cx.send(addr, Box::new(super::upstream::Linked));
                if body {
                    self.arm_body(cx);
                    Verb::Read
                } else {
                    self.arm_proxy(timeout, cx);
                    Verb::AwaitCompletion
                }
            }
            Err(error) => {
                let retry = proxy.ticket.take().and_then(|t| t.retry(error, now));
                if let Some(pick) = retry {
                    let claimed = attempt(proxy, pick, cx);
                    self.arm_attempt(claimed, cx);
                    return Verb::AwaitCompletion;
                }
                let error = match error {
                    ConnectError::TimedOut => HttpError::GatewayTimeout,
                    ConnectError::NoRoom | ConnectError::Aborted => HttpError::NoUpstream,
                    _ => HttpError::BadGateway,
                };
                let flow = self.proxy_refuse(error, cx);
                verb_after(flow)
            }
        }
    }

    /// Request body bytes: forwarded once the link exists, as they were framed (validated by
    /// the decoder on the way; no limit but the upstream's).
    pub(crate) fn proxy_body(
        &mut self,
        input: &[u8],
        cx: &mut Cx<'_>,
    ) -> Result<(usize, Flow), HttpError> {
        let Some(exchange) = self.exchange.as_mut() else {
            return Err(HttpError::InvalidChunk);
        };
        let linked = exchange
            .proxy
            .as_ref()
            .is_some_and(|p| p.upstream.is_some() && !p.awaits_start);
        let Some(decoder) = exchange.decoder.as_mut() else {
            return Ok((0, Flow::Partial));
        };
        let out = match cx.peer_out() {
            Some(out) if linked => out,
            _ => return Ok((0, Flow::Partial)),
        };
        let progress = decoder.decode(input, &mut None, &mut exchange.received, u64::MAX)?;
        out.extend_from_slice(&input[..progress.consumed]);
        if !progress.done {
            return Ok((progress.consumed, Flow::Partial));
        }
        let timeout = exchange.proxy.as_ref().map(|p| p.spec.response_timeout);
        if let Some(proxy) = exchange.proxy.as_ref() {
            proxy.pipe.borrow_mut().request_done = true;
        }
        self.phase = Phase::Proxying;
        if let Some(timeout) = timeout {
            self.arm_proxy(timeout, cx);
        }
        // A response that is complete already is taken now (it said so by a message that
        // found the body unfinished).
        if self
            .proxy_state()
            .is_some_and(|s| s != State::Waiting && !matches!(s, State::Streaming { .. }))
        {
            return Ok((progress.consumed, self.proxy_settle(cx)));
        }
        Ok((progress.consumed, Flow::Await))
    }

    fn proxy_state(&self) -> Option<State> {
        let proxy = self.exchange.as_ref()?.proxy.as_ref()?;
        let state = proxy.pipe.borrow().state;
        Some(state)
    }

    /// The upstream side moved on ([`ProxyWake`]), or its connection ended.
    pub(crate) fn proxy_wake(&mut self, unlinked: bool, cx: &mut Cx<'_>) -> Verb {
        let Some(mut state) = self.proxy_state() else {
            return self.idle_verb();
        };
        let current = self.proxy_mut().is_some_and(|p| p.upstream.is_some());
        if unlinked && !current {
            // The end of a previous request's upstream connection (it closes once its
            // response is complete), or of one this request gave up on.
            return self.idle_verb();
        }
        if !unlinked && state == State::Waiting {
            return self.proxy_started(cx);
        }
        if unlinked {
            // The upstream connection ended without its side saying how: a reset.
            state = match state {
                State::Waiting => State::Invalid { closed: true },
                State::Streaming { status } => State::Broken {
                    status,
                    closed: true,
                },
                done => done,
            };
            if let Some(proxy) = self.proxy_mut() {
                proxy.pipe.borrow_mut().state = state;
                proxy.upstream = None;
            }
        }
        let (State::Complete { .. } | State::Invalid { .. } | State::Broken { .. }) = state else {
            return self.idle_verb();
        };
        if state == (State::Invalid { closed: true }) {
            if let Some(retry) = self.retry_kind() {
                if self.proxy_retry(retry, cx) {
                    return self.idle_verb();
                }
            }
        }
        cx.resume();
        let flow = self.proxy_settle(cx);
        if flow == Flow::Answered && cx.buffered_input() > 0 {
            self.begin_request_now(cx);
        }
        verb_after(flow)
    }

    /// The response is done one way or another: account for it and move on.
    fn proxy_settle(&mut self, cx: &mut Cx<'_>) -> Flow {
        let Some(state) = self.proxy_state() else {
            return Flow::Answered;
        };
        // The upstream answered before the request body was all sent: the rest of it is
        // still on the client connection, which cannot go on.
        let body_unread = self.phase == Phase::Body;
        let latency = self
            .exchange
            .as_ref()
            .and_then(|e| e.proxy.as_ref())
            .and_then(|p| p.pipe.borrow().connected)
            .map(|at| cx.now().saturating_duration_since(at))
            .unwrap_or_default();
        let outcome = match state {
            State::Complete { status, .. } => Outcome::Complete(status),
            State::Broken { closed: true, .. } | State::Invalid { closed: true } => Outcome::Closed,
            _ => Outcome::Invalid,
        };
        if let Some(ticket) = self.proxy_mut().and_then(|p| p.ticket.as_mut()) {
            ticket.finished(outcome, latency);
        }
        match state {
            State::Complete { status, keep_alive } => {
                let close = !keep_alive || body_unread;
                if close {
                    cx.refuse();
                }
                self.done(status, close, cx)
            }
            State::Broken { status, .. } => {
                cx.refuse();
                self.done(status, true, cx)
            }
            _ => self.proxy_refuse(HttpError::BadGateway, cx),
        }
    }

    /// No response head within `response_timeout`: 504, and the upstream connection closed.
    pub(crate) fn proxy_timeout(&mut self, cx: &mut Cx<'_>) -> Verb {
        let Some(proxy) = self.proxy_mut() else {
            return self.idle_verb();
        };
        let waiting = proxy.pipe.borrow().state == State::Waiting;
        if !waiting {
            // The head came: the timeout covers the head only.
            return Verb::AwaitCompletion;
        }
        // A terminal state first, so that the upstream side writes nothing more, then the
        // message that closes it.
        proxy.pipe.borrow_mut().state = State::Invalid { closed: false };
        let latency = proxy.spec.response_timeout;
        if let Some(ticket) = proxy.ticket.as_mut() {
            ticket.finished(Outcome::TimedOut, latency);
        }
        if let Some(upstream) = proxy.upstream.take() {
            let _ = cx.send(upstream, Box::new(Abort));
        }
        tracing::debug!(upstream = %proxy.spec.upstream, "response timeout");
        cx.resume();
        let flow = self.proxy_refuse(HttpError::GatewayTimeout, cx);
        verb_after(flow)
    }

    /// A failure answered before any byte of a response: the client connection goes on
    /// unless a request body is left unread on it.
    fn proxy_refuse(&mut self, error: HttpError, cx: &mut Cx<'_>) -> Flow {
        if self.phase == Phase::Body {
            if let Some(exchange) = self.exchange.as_mut() {
                exchange.keep_alive = false;
            }
        }
        if let Some(proxy) = self.proxy_mut() {
            if let Some(upstream) = proxy.upstream.take() {
                let _ = cx.send(upstream, Box::new(Abort));
            }
        }
        self.refuse(error, cx)
    }

    fn idle_verb(&self) -> Verb {
        match self.phase {
            Phase::Proxying | Phase::Awaiting => Verb::AwaitCompletion,
            Phase::Closed => Verb::CloseAfterFlush,
            _ => Verb::Read,
        }
    }
}

/// The pipe of a request: the pooled connection's own from its last exchange when it takes
/// one and nobody else holds that pipe any more (its upstream side and the ticket's slot
/// are the only holders: the last client is done with it), so a pooled request allocates
/// no pipe and no head buffer; else a new one, which takes the head buffer.
fn pipe_for(parked: Option<&Rc<Parked>>, mut fresh: Pipe, targets: &Targets) -> SharedPipe {
    let last = parked.and_then(|p| p.last.borrow_mut().take());
    match last {
        Some(last) if Rc::strong_count(&last) == 2 => {
            let head = std::mem::take(&mut fresh.request);
            {
                let mut old = last.borrow_mut();
                let mut request = std::mem::take(&mut old.request);
                request.clear();
                request.extend_from_slice(&head);
                *old = Pipe { request, ..fresh };
            }
            targets.give_scratch(head);
            last
        }
        _ => Rc::new(RefCell::new(fresh)),
    }
}

#[cfg(test)]
#[test]
fn a_pooled_connections_pipe_is_used_again_only_once_its_last_client_let_go() {
    use coreloop_reactor::token::ConnToken;
    let addr = ConnAddr {
        shard: 0,
        token: ConnToken::new(1, 1),
    };
    let pipe = |request: &[u8]| Pipe {
        request: request.to_vec(),
        client: addr,
        http10: false,
        keep_alive: true,
        head_only: false,
        max_head: 8192,
        state: State::Complete {
            status: 200,
            keep_alive: true,
        },
        connected: None,
        response_timeout: std::time::Duration::from_secs(1),
        started: true,
        answered: true,
        request_done: true,
    };
    let targets = Targets::new(false);
    let parked = Rc::new(Parked {
        addr,
        next: RefCell::new(None),
        last: RefCell::new(None),
    });
    // The upstream side's pipe, offered at park, while the last client still holds it.
    let side = Rc::new(RefCell::new(pipe(b"GET /old HTTP/1.1\r\n\r\n")));
    let client = side.clone();
    *parked.last.borrow_mut() = Some(side.clone());
    let mut fresh = pipe(b"GET /new HTTP/1.1\r\n\r\n");
    fresh.state = State::Waiting;
    let got = pipe_for(Some(&parked), fresh, &targets);
    assert!(
        !Rc::ptr_eq(&got, &side),
        "still held by its client: a new pipe"
    );
    drop(client);
    *parked.last.borrow_mut() = Some(side.clone());
    let mut fresh = pipe(b"GET /next HTTP/1.1\r\n\r\n");
    fresh.state = State::Waiting;
    let got = pipe_for(Some(&parked), fresh, &targets);
    assert!(Rc::ptr_eq(&got, &side), "let go: the same pipe");
    let used = got.borrow();
    assert_eq!(used.request, b"GET /next HTTP/1.1\r\n\r\n");
    assert_eq!(used.state, State::Waiting);
    assert!(
        targets.scratch().capacity() > 0,
        "the head buffer came back"
    );
}
