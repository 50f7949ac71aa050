//! How the reactor's events reach an HTTP connection: each `Protocol` callback maps to a step
//! of the state machine in the parent module.

use coreloop_reactor::{Completion, ConnectOutcome, Cx, Message, Protocol, Step, Verb};

use super::*;

impl Protocol for HttpConn {
    fn on_open(&mut self, cx: &mut Cx<'_>) -> Verb {
        // The header clock starts at accept: a client that connects and sends nothing is a
        // slowloris too, and gets its 408.
        self.opened = self.shared.since_epoch(cx.now());
        self.shared.note_peer(cx.token());
        self.shared.send_file.set(cx.can_send_file());
        self.phase = Phase::Head;
        self.arm(Timer::Header, cx);
        Verb::Read
    }

    fn on_input(&mut self, input: &[u8], cx: &mut Cx<'_>) -> Step {
        if let Some(verb) = self.held_input_verb() {
            return Step::new(0, verb);
        }
        self.batch = Batch::On;
        let step = self.steps(input, cx);
        self.settle_input(cx);
        step
    }

    fn on_eof(&mut self, _unconsumed: &[u8], cx: &mut Cx<'_>) -> Verb {
        self.peer_eof = true;
        if let Some(verb) = self.held_eof(cx) {
            return verb;
        }
        match self.phase {
            // Let the job finish; its response is written and then the connection closes.
            Phase::Awaiting | Phase::Proxying => Verb::AwaitCompletion,
            // Nothing more can arrive, so no deadline may answer for a request that will never
            // complete (found by fuzzing: a 408 after the close; regression below).
            _ => {
                self.phase = Phase::Closed;
                self.timer = None;
                cx.clear_deadline();
                Verb::CloseAfterFlush
            }
        }
    }

    fn on_deadline(&mut self, cx: &mut Cx<'_>) -> Verb {
        if let Some(verb) = self.held_deadline(cx) {
            return verb;
        }
        let flow = match (self.timer.take(), self.phase) {
            (_, Phase::Closed) => Flow::Close,
            (Some(Timer::Idle), Phase::Idle) => return Verb::CloseAfterFlush,
            // The drain grace of a connection that never sent a byte.
            (Some(Timer::Idle), Phase::Head) if !self.request_started() => {
                return Verb::CloseAfterFlush
            }
            (Some(Timer::Proxy), Phase::Proxying) => return self.proxy_timeout(cx),
            (Some(Timer::Offload), Phase::Awaiting) => self.refuse(HttpError::HandlerTimeout, cx),
            (Some(Timer::Body), _) => self.refuse(HttpError::BodyTimeout, cx),
            _ => self.refuse(HttpError::HeaderTimeout, cx),
        };
        verb_after(flow)
    }

    fn on_completion(&mut self, completion: Completion, cx: &mut Cx<'_>) -> Verb {
        let completion = match self.held_completion(completion, cx) {
            Ok(verb) => return verb,
            Err(completion) => completion,
        };
        let job = self.scratch.as_ref().and_then(|s| s.job);
        let Phase::Awaiting = self.phase else {
            // A completion after its 504 (or after the connection began closing): ignored.
            return match self.phase {
                Phase::Closed => Verb::CloseAfterFlush,
                _ => Verb::Read,
            };
        };
        if job != Some(completion.job) {
            return Verb::AwaitCompletion;
        }
        let reply = match completion.result {
            Ok(output) => output
                .downcast::<JobReply>()
                .map(|r| *r)
                .map_err(|_| HttpError::HandlerPanicked),
            Err(JobFailure::Expired) => Err(HttpError::HandlerTimeout),
            Err(_) => Err(HttpError::HandlerPanicked),
        };
        let flow = self.answer_job(reply, cx);
        if flow == Flow::Answered && cx.buffered_input() > 0 {
            // The next request is already here: its header clock runs from now.
            self.begin_request(cx);
        }
        verb_after(flow)
    }

    fn on_flushed(&mut self, cx: &mut Cx<'_>) -> Verb {
        self.held_flushed(cx)
    }

    fn on_drain(&mut self, cx: &mut Cx<'_>) -> Verb {
        self.draining = true;
        if let Some(verb) = self.held_drain(cx) {
            return verb;
        }
        match self.phase {
            Phase::Closed => Verb::CloseAfterFlush,
            // Idle, or connected with nothing of a request yet: a request may be on the wire
            // already (sent before the client could know), so answer for a short grace, each
            // response saying `Connection: close`, then close.
            Phase::Idle => self.drain_grace(cx),
            Phase::Head if !self.request_started() => self.drain_grace(cx),
            Phase::Head | Phase::Body => Verb::Read,
            Phase::Awaiting | Phase::Proxying => Verb::AwaitCompletion,
        }
    }

    fn on_connect(&mut self, outcome: ConnectOutcome, cx: &mut Cx<'_>) -> Verb {
        self.proxy_connected(outcome, cx)
    }

    fn on_message(&mut self, message: Message, cx: &mut Cx<'_>) -> Verb {
        if message.is::<crate::proxy::ProxyWake>() {
            return self.proxy_wake(false, cx);
        }
        match self.phase {
            Phase::Awaiting | Phase::Proxying => Verb::AwaitCompletion,
            Phase::Closed => Verb::CloseAfterFlush,
            _ => Verb::Read,
        }
    }

    // The upstream connection of a proxied request ended; outside one, nothing to do.
    fn on_unlinked(&mut self, cx: &mut Cx<'_>) -> Verb {
        self.proxy_wake(true, cx)
    }
}

impl HttpConn {
    /// The requests of `input`, one step after another, until one needs more bytes or the
    /// connection must wait.
    fn steps(&mut self, input: &[u8], cx: &mut Cx<'_>) -> Step {
        let (mut pos, mut answered) = (0, 0);

        loop {
            let (used, flow) = match self.phase {
                Phase::Closed => return Step::new(input.len(), Verb::CloseAfterFlush),
                Phase::Awaiting | Phase::Proxying => return Step::new(pos, Verb::AwaitCompletion),
                Phase::Body => self
                    .step_body(&input[pos..], cx)
                    .unwrap_or_else(|e| (0, self.refuse(e, cx))),
                Phase::Idle | Phase::Head if pos == input.len() => break,
                Phase::Idle | Phase::Head => self.step_head(&input[pos..], cx),
            };
            pos += used;
            match flow {
                Flow::Partial => break,
                Flow::Continue => {}
                Flow::Answered => {
                    answered += 1;
                    let config = &self.settings.config;
                    if answered >= config.max_pipeline_depth
                        || cx.pending_output() >= config.max_pending_output
                    {
                        return Step::new(pos, Verb::WaitFlush);
                    }
                }
                Flow::Await => return Step::new(pos, Verb::AwaitCompletion),
                Flow::Hold(verb) => return Step::new(pos, verb),
                Flow::Close => return Step::new(input.len(), Verb::CloseAfterFlush),
            }
        }
        Step::new(pos, Verb::Read)
    }
}
