//! The upstream side of a proxied request: a protocol on the outbound connection that sends
//! the rewritten request head, parses the response head, and streams the response into the
//! linked client connection's output, re-framed for the client (`head::Reframe`).
//!
//! After a response that lets its connection persist (HTTP/1.1 without `close`, a framed
//! body read to its end, nothing after it, the whole request sent), the side unlinks itself
//! from the client and parks in its server's pool (`pool.rs`) under `idle_timeout`. Parked,
//! any byte or an EOF closes it (an upstream may close an idle connection at any time, and
//! bytes nobody asked for would be read as the next response). A client that takes it
//! links to it: the next request is written when the link is made (`on_linked`, in the
//! client's loop turn), and a new exchange begins on the same connection.

use std::cell::RefCell;
use std::rc::{Rc, Weak};
use std::time::Instant;

use coreloop_reactor::{ConnAddr, Cx, Message, Protocol, Step, Verb};

use super::head::{self, Body, Reframe};
use super::pool::{Parked, ServerPool, CHECK_EVERY};

/// What the client side and the upstream side share for one request (one shard: `Rc`).
#[derive(Debug)]
pub(crate) struct Pipe {
    /// The rewritten request head: each attempt's upstream side copies it into its output
    /// (kept here, not copied per attempt, for a retry).
    pub request: Vec<u8>,
    /// The client connection, told by a [`super::ProxyWake`] when `state` moves on.
    pub client: ConnAddr,
    pub http10: bool,
    /// The client's request allows keeping its connection open.
    pub keep_alive: bool,
    pub head_only: bool,
    /// The client head limit applies to the upstream's head too.
    pub max_head: usize,
    pub state: State,
    /// When the upstream connected (the response latency starts there).
    pub connected: Option<Instant>,
    /// The route's `response_timeout`, also the upstream side's own guard (see `on_deadline`).
    pub response_timeout: std::time::Duration,
    /// The request head is in the upstream connection's output. A pooled connection gets it
    /// when it is linked to the client that took it: until then nothing of the request was
    /// sent.
    pub started: bool,
    /// A byte of a response came (an interim one included): the request is not retried.
    pub answered: bool,
    /// All of the request (head and body) went into the upstream connection's output; a
    /// response that ends before it leaves no reusable connection.
    pub request_done: bool,
}

impl Pipe {
    /// The same request's pipe for another attempt (the head moves over): nothing sent,
    /// nothing answered.
    pub fn retried(&mut self, body: bool) -> Pipe {
        Pipe {
            request: std::mem::take(&mut self.request),
            client: self.client,
            http10: self.http10,
            keep_alive: self.keep_alive,
            head_only: self.head_only,
            max_head: self.max_head,
            state: State::Waiting,
            connected: None,
            response_timeout: self.response_timeout,
            started: false,
            answered: false,
            request_done: !body,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum State {
    /// No byte of a final response yet (1xx may have been forwarded).
    Waiting,
    /// The client's head is written; the body flows.
    Streaming { status: u16 },
    /// The whole response is in the client's output.
    Complete { status: u16, keep_alive: bool },
    /// Nothing of a response reached the client: it answers 502. `closed`: the server closed
    /// or reset first; else its response was invalid.
    Invalid { closed: bool },
    /// A part of the response reached the client and the rest never will: it must close.
    Broken { status: u16, closed: bool },
}

pub(crate) type SharedPipe = Rc<RefCell<Pipe>>;

/// How the upstream side ends a response it does not keep the connection after: at once, not
/// by a lingering close, so that its link to the client ends in this loop turn. Nothing is
/// lost: its own output (the request) was written before the response came, and it reads
/// nothing more.
const DONE: Verb = Verb::CloseNow;

/// The client asks the upstream side to close (its response timeout passed).
pub(crate) struct Abort;

/// The client linked the two connections (sent right after `Cx::link`, so it arrives once the
/// link exists): a response that came whole, EOF included, before the link is taken now.
pub(crate) struct Linked;

pub(crate) struct UpstreamSide {
    pipe: SharedPipe,
    body: Option<(Body, Reframe)>,
    /// What was unread at an EOF that came before the link (bounded by the input buffer).
    early: Option<Vec<u8>>,
    /// The final response head lets the connection persist and its body is framed.
    reusable: bool,
    /// The pool it parks in after a reusable response; `None`: it never parks.
    home: Option<Weak<ServerPool>>,
    /// Parked: its ticket in the pool (still there, or taken, its link on the way).
    parked: Option<Rc<Parked>>,
    /// Its ticket from the last time it was parked, parked again with it (one allocation
    /// per connection, not per request).
    spare: Option<Rc<Parked>>,
    /// Parked: when it closes unused (`idle_timeout`).
    idle_until: Option<Instant>,
}

impl UpstreamSide {
    pub fn new(pipe: SharedPipe, home: Option<Weak<ServerPool>>) -> Self {
        Self {
            pipe,
            body: None,
            early: None,
            reusable: false,
            home,
            parked: None,
            spare: None,
            idle_until: None,
        }
    }

    /// The response is complete in the client's output (the pipe says so, and the client is
    /// told here): park, when everything allows it, or close. `leftover`: bytes came after
    /// the response (an upstream that sends more than it framed cannot be trusted with the
    /// next request). Parked, the unlink is the client's word (its `on_unlinked` finds the
    /// state complete): one message fewer per pooled request than a wake and an unlink.
    fn after_response(&mut self, leftover: bool, cx: &mut Cx<'_>) -> Verb {
        let request_done = self.pipe.borrow().request_done;
        let keep = self.reusable && !leftover && request_done && !cx.is_draining();
        let pool = self.home.as_ref().and_then(Weak::upgrade);
        let Some(pool) = pool.filter(|_| keep) else {
            self.wake(cx);
            return DONE;
        };
        let Some(parked) = pool.park(cx.addr(), self.spare.take()) else {
            self.wake(cx);
            return DONE;
        };
        cx.unlink();
        *parked.last.borrow_mut() = Some(self.pipe.clone());
        self.parked = Some(parked);
        self.body = None;
        let until = cx.now() + pool.idle_timeout;
        self.idle_until = Some(until);
        cx.set_deadline(until.min(cx.now() + CHECK_EVERY));
        Verb::Read
    }

    /// A client took the parked connection and linked to it: write its request and begin
    /// its exchange. (Not linked after all: the client is told that nothing was sent, and
    /// this connection closes.)
    fn reuse(&mut self, cx: &mut Cx<'_>) -> Verb {
        let Some(parked) = self.parked.take() else {
            return Verb::Read;
        };
        let Some(next) = parked.next.borrow_mut().take() else {
            return Verb::CloseNow;
        };
        self.spare = Some(parked);
        self.pipe = next;
        self.reusable = false;
        self.idle_until = None;
        self.early = Some(Vec::new());
        if cx.peer_out().is_none() {
            self.settle(State::Invalid { closed: true }, cx);
            return Verb::CloseNow;
        }
        let (timeout, client) = {
            let mut pipe = self.pipe.borrow_mut();
            cx.out().extend_from_slice(&pipe.request);
            pipe.started = true;
            (pipe.response_timeout, pipe.client)
        };
        cx.set_deadline(cx.now() + timeout);
        // A client with a request body waits for this before it sends it; one without waits
        // for the response only.
        if !self.pipe.borrow().request_done {
            let _ = cx.send(client, Box::new(super::ProxyWake));
        }
        Verb::Read
    }

    /// Parked: still wanted (held by a live pool), and not idle too long. Taken and still
    /// parked: its link was refused or never made (it is made in the taker's loop turn, and
    /// `on_linked` unparks), and the taker heard so from the reactor and redialed: nobody
    /// will use it.
    fn parked_check(&mut self, cx: &mut Cx<'_>) -> Verb {
        let Some(parked) = self.parked.as_ref() else {
            return Verb::Read;
        };
        if parked.next.borrow().is_some() {
            return Verb::CloseNow;
        }
        let held = (self.home.as_ref().and_then(Weak::upgrade)).is_some_and(|p| p.holds(parked));
        let until = self.idle_until.unwrap_or(cx.now());
        if !held || cx.now() >= until {
            return Verb::CloseNow;
        }
        cx.set_deadline(until.min(cx.now() + CHECK_EVERY));
        Verb::Read
    }

    fn settle(&mut self, state: State, cx: &mut Cx<'_>) {
        self.pipe.borrow_mut().state = state;
        self.wake(cx);
    }

    /// Tells the client to look at the pipe; a client gone meanwhile is no error.
    fn wake(&self, cx: &mut Cx<'_>) {
        let client = self.pipe.borrow().client;
        let _ = cx.send(client, Box::new(super::ProxyWake));
    }

    fn fail(&mut self, closed: bool, cx: &mut Cx<'_>) -> Verb {
        let state = match self.pipe.borrow().state {
            State::Streaming { status } => State::Broken { status, closed },
            _ => State::Invalid { closed },
        };
        self.settle(state, cx);
        cx.refuse();
        Verb::CloseNow
    }

    fn on_head(&mut self, input: &[u8], cx: &mut Cx<'_>) -> Step {
        let (head_only, max_head, http10) = {
            let pipe = self.pipe.borrow();
            (pipe.head_only, pipe.max_head, pipe.http10)
        };
        let mut fields = head::fields();
        let response = match head::parse_response(input, head_only, &mut fields) {
            Ok(Some(response)) => response,
            Ok(None) if input.len() > max_head => return Step::new(0, self.fail(false, cx)),
            Ok(None) => return Step::new(0, Verb::Read),
            Err(_) => return Step::new(0, self.fail(false, cx)),
        };
        if response.len > max_head {
            return Step::new(0, self.fail(false, cx));
        }
        let keep_alive = self.pipe.borrow().keep_alive;
        let Some(out) = cx.peer_out() else {
            // The link is made right after the client's connect call; input that comes
            // first is handed over again then.
            return Step::new(0, Verb::Read);
        };
        if response.status < 200 {
            // RFC 9110 §15.2: 1xx go to HTTP/1.1 clients only.
            if !http10 {
                head::write_response(&response, http10, keep_alive, out);
            }
            return Step::new(response.len, Verb::Read);
        }
        let (reframe, keep_alive) = head::write_response(&response, http10, keep_alive, out);
        let status = response.status;
        self.reusable = response.reusable && !matches!(response.body, Body::UntilClose);
        if reframe == Reframe::None {
            self.pipe.borrow_mut().state = State::Complete { status, keep_alive };
            let leftover = input.len() > response.len;
            return Step::new(input.len(), self.after_response(leftover, cx));
        }
        self.pipe.borrow_mut().state = State::Streaming { status };
        self.body = Some((response.body, reframe));
        let _ = keep_alive;
        Step::new(response.len, Verb::Read)
    }

    fn on_body(&mut self, input: &[u8], cx: &mut Cx<'_>) -> Step {
        let Some((body, reframe)) = self.body.as_mut() else {
            return Step::new(input.len(), Verb::Read);
        };
        let reframe = *reframe;
        let Some(out) = cx.peer_out() else {
            return Step::new(0, self.fail(true, cx));
        };
        let (consumed, done) = match body {
            Body::Framed(decoder) => {
                // The decoder validates the framing as it passes: a bad chunk size is a
                // broken response, never bytes the client would misread.
                let mut received = 0;
                let progress = if reframe == Reframe::DecodeAndClose {
                    decoder.decode(input, &mut Some(&mut *out), &mut received, u64::MAX)
                } else {
                    let progress = decoder.decode(input, &mut None, &mut received, u64::MAX);
                    if let Ok(p) = &progress {
                        out.extend_from_slice(&input[..p.consumed]);
                    }
                    progress
                };
                match progress {
                    Ok(progress) => (progress.consumed, progress.done),
                    Err(_) => return Step::new(0, self.fail(false, cx)),
                }
            }
            Body::UntilClose => {
                if reframe == Reframe::Chunk && !input.is_empty() {
                    head::push_hex(out, input.len() as u64);
                    out.extend_from_slice(b"\r\n");
                    out.extend_from_slice(input);
                    out.extend_from_slice(b"\r\n");
                } else {
                    out.extend_from_slice(input);
                }
                (input.len(), false)
            }
            Body::None => (0, true),
        };
        if done {
            self.complete();
            // Bytes after the response: dropped, and the connection with them.
            let leftover = consumed < input.len();
            return Step::new(input.len(), self.after_response(leftover, cx));
        }
        Step::new(consumed, Verb::Read)
    }

    /// The response is all in the client's output: said in the pipe (the caller tells the
    /// client).
    fn complete(&mut self) {
        let (status, keep_alive) = {
            let pipe = self.pipe.borrow();
            let status = match pipe.state {
                State::Streaming { status } => status,
                _ => 502,
            };
            let reframe = self.body.as_ref().map(|(_, r)| *r);
            (
                status,
                pipe.keep_alive && reframe != Some(Reframe::DecodeAndClose),
            )
        };
        self.body = None;
        self.pipe.borrow_mut().state = State::Complete { status, keep_alive };
    }
}

impl Protocol for UpstreamSide {
    fn on_open(&mut self, cx: &mut Cx<'_>) -> Verb {
        let mut pipe = self.pipe.borrow_mut();
        cx.out().extend_from_slice(&pipe.request);
        pipe.started = true;
        drop(pipe);
        let guard = cx.now() + self.pipe.borrow().response_timeout;
        cx.set_deadline(guard);
        Verb::Read
    }

    /// A client that went away while this connection was connecting never links it, and
    /// nobody else would close it: at `response_timeout` an unlinked upstream side closes.
    /// A linked one is the client's to time out (and its body may stream for longer).
    fn on_deadline(&mut self, cx: &mut Cx<'_>) -> Verb {
        if self.parked.is_some() {
            return self.parked_check(cx);
        }
        let waiting = self.pipe.borrow().state == State::Waiting;
        if waiting && cx.peer_out().is_none() {
            return Verb::CloseNow;
        }
        Verb::Read
    }

    fn on_input(&mut self, input: &[u8], cx: &mut Cx<'_>) -> Step {
        if self.parked.is_some() {
            // Nobody asked: whatever it is, it cannot be the answer to a later request.
            return Step::new(input.len(), Verb::CloseNow);
        }
        if !input.is_empty() {
            self.pipe.borrow_mut().answered = true;
        }
        // Heads (1xx ones, then the final one) and the body's start may come in one read:
        // all of it is taken now, as the reactor hands buffered input over only on a read.
        let mut at = 0;
        loop {
            let state = self.pipe.borrow().state;
            let step = match state {
                State::Waiting => self.on_head(&input[at..], cx),
                State::Streaming { .. } => {
                    let step = self.on_body(&input[at..], cx);
                    return Step::new(at + step.consumed, step.verb);
                }
                _ => return Step::new(input.len(), Verb::CloseNow),
            };
            at += step.consumed;
            if step.verb != Verb::Read || step.consumed == 0 || at == input.len() {
                return Step::new(at, step.verb);
            }
        }
    }

    fn on_eof(&mut self, unconsumed: &[u8], cx: &mut Cx<'_>) -> Verb {
        if self.parked.is_some() {
            // The upstream closed an idle connection, as it may; a client that took it
            // already hears of it by the link (nothing was sent: it retries).
            return Verb::CloseNow;
        }
        let live = matches!(
            self.pipe.borrow().state,
            State::Waiting | State::Streaming { .. }
        );
        if live && self.early.is_none() && cx.peer_out().is_none() {
            // The whole response and its EOF came before the link: keep it for `Linked`.
            self.early = Some(unconsumed.to_vec());
            return Verb::AwaitCompletion;
        }
        let until_close = matches!(self.body, Some((Body::UntilClose, _)));
        let state = self.pipe.borrow().state;
        match state {
            State::Streaming { .. } if until_close => {}
            State::Waiting | State::Streaming { .. } => return self.fail(true, cx),
            _ => return Verb::CloseAfterFlush,
        }
        let _ = unconsumed;
        if let Some((_, Reframe::Chunk)) = self.body {
            if let Some(out) = cx.peer_out() {
                out.extend_from_slice(b"0\r\n\r\n");
            }
        }
        self.complete();
        self.wake(cx);
        DONE
    }

    fn on_message(&mut self, message: Message, cx: &mut Cx<'_>) -> Verb {
        if message.is::<Abort>() {
            return Verb::CloseNow;
        }
        let Some(early) = self.early.take().filter(|_| message.is::<Linked>()) else {
            return Verb::Read;
        };
        let mut at = 0;
        while at < early.len() {
            let step = self.on_input(&early[at..], cx);
            at += step.consumed;
            if step.verb != Verb::Read || step.consumed == 0 {
                if step.verb != Verb::Read {
                    return step.verb;
                }
                break;
            }
        }
        // `early` stays set (empty) so that this EOF is the real one now.
        self.early = Some(Vec::new());
        self.on_eof(&early[at..], cx)
    }

    /// A client that took this parked connection is linked to it now: its request goes.
    /// (No message: it would cost a delivery per pooled request.)
    fn on_linked(&mut self, cx: &mut Cx<'_>) -> Verb {
        let taken = (self.parked.as_ref()).is_some_and(|p| p.next.borrow().is_some());
        if taken {
            return self.reuse(cx);
        }
        Verb::Read
    }

    fn on_unlinked(&mut self, cx: &mut Cx<'_>) -> Verb {
        let _ = cx;
        Verb::CloseNow
    }

    /// In flight: the response finishes (and the connection then closes, not parked).
    /// Parked: nothing to finish, so it closes now and holds no drain up.
    fn on_drain(&mut self, cx: &mut Cx<'_>) -> Verb {
        let _ = cx;
        match &self.parked {
            Some(parked) if parked.next.borrow().is_none() => Verb::CloseNow,
            _ => Verb::Read,
        }
    }
}

impl Drop for UpstreamSide {
    /// However the connection ends (the protocol's own close, a reset, a drain cut), a parked
    /// one leaves its pool, so no client takes a stale address.
    fn drop(&mut self) {
        let pool = self.home.as_ref().and_then(Weak::upgrade);
        if let (Some(parked), Some(pool)) = (&self.parked, pool) {
            pool.remove(parked);
        }
    }
}

#[cfg(test)]
#[path = "upstream_tests.rs"]
mod tests;
