//! The upstream side of a proxied request: a protocol on the outbound connection that sends
//! the rewritten request head, parses the response head, and streams the response into the
//! linked client connection's output, re-framed for the client (`head::Reframe`).

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Instant;

use coreloop_reactor::{ConnAddr, Cx, Message, Protocol, Step, Verb};

use super::head::{self, Body, Reframe};

/// What the client side and the upstream side share for one request (one shard: `Rc`).
#[derive(Debug)]
pub(crate) struct Pipe {
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

/// How the upstream side ends once the response is complete: at once, not by a lingering
/// close, so that its link to the client ends in this loop turn and the client's next request
/// can link its own upstream connection (a connection links once). Nothing is lost: its own
/// output (the request) was written before the response came, and it reads nothing more.
const DONE: Verb = Verb::CloseNow;

/// The client asks the upstream side to close (its response timeout passed).
pub(crate) struct Abort;

/// The client linked the two connections (sent right after `Cx::link`, so it arrives once the
/// link exists): a response that came whole, EOF included, before the link is taken now.
pub(crate) struct Linked;

pub(crate) struct UpstreamSide {
    request: Option<Vec<u8>>,
    pipe: SharedPipe,
    body: Option<(Body, Reframe)>,
    /// What was unread at an EOF that came before the link (bounded by the input buffer).
    early: Option<Vec<u8>>,
}

impl UpstreamSide {
    pub fn new(request: Vec<u8>, pipe: SharedPipe) -> Self {
        Self {
            request: Some(request),
            pipe,
            body: None,
            early: None,
        }
    }

    fn settle(&mut self, state: State, cx: &mut Cx<'_>) {
        let client = {
            let mut pipe = self.pipe.borrow_mut();
            pipe.state = state;
            pipe.client
        };
        // The client waits for exactly this; a client gone meanwhile is no error.
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
        let response = match head::parse_response(input, head_only) {
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
        let raw = &input[..response.len];
        if response.status < 200 {
            // RFC 9110 §15.2: 1xx go to HTTP/1.1 clients only.
            if !http10 {
                head::write_response(raw, &response, http10, keep_alive, out);
            }
            return Step::new(response.len, Verb::Read);
        }
        let (reframe, keep_alive) = head::write_response(raw, &response, http10, keep_alive, out);
        let status = response.status;
        if reframe == Reframe::None {
            self.settle(State::Complete { status, keep_alive }, cx);
            return Step::new(input.len(), DONE);
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
                    out.extend_from_slice(format!("{:x}\r\n", input.len()).as_bytes());
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
            self.complete(cx);
            // Bytes after the response: this connection is closed, they are dropped.
            return Step::new(input.len(), DONE);
        }
        Step::new(consumed, Verb::Read)
    }

    fn complete(&mut self, cx: &mut Cx<'_>) {
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
        self.settle(State::Complete { status, keep_alive }, cx);
    }
}

impl Protocol for UpstreamSide {
    fn on_open(&mut self, cx: &mut Cx<'_>) -> Verb {
        if let Some(request) = self.request.take() {
            cx.out().extend_from_slice(&request);
        }
        let guard = cx.now() + self.pipe.borrow().response_timeout;
        cx.set_deadline(guard);
        Verb::Read
    }

    /// A client that went away while this connection was connecting never links it, and
    /// nobody else would close it: at `response_timeout` an unlinked upstream side closes.
    /// A linked one is the client's to time out (and its body may stream for longer).
    fn on_deadline(&mut self, cx: &mut Cx<'_>) -> Verb {
        let waiting = self.pipe.borrow().state == State::Waiting;
        if waiting && cx.peer_out().is_none() {
            return Verb::CloseNow;
        }
        Verb::Read
    }

    fn on_input(&mut self, input: &[u8], cx: &mut Cx<'_>) -> Step {
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
        self.complete(cx);
        DONE
    }

    fn on_message(&mut self, message: Message, cx: &mut Cx<'_>) -> Verb {
        let _ = cx;
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

    fn on_unlinked(&mut self, cx: &mut Cx<'_>) -> Verb {
        let _ = cx;
        Verb::CloseNow
    }

    fn on_drain(&mut self, cx: &mut Cx<'_>) -> Verb {
        let _ = cx;
        Verb::Read
    }
}
