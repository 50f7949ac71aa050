//! The end of a request: its counters and access-log line, then the connection's next
//! phase (idle with its keep-alive deadline, the next pipelined request, or closed).

use std::time::Duration;

use coreloop_reactor::Cx;

use super::{Batch, Flow, HttpConn, Phase, Timer};
use crate::access::{AccessRecord, ACCESS_FIELD_MAX, ACCESS_PATH_MAX};
use crate::exchange::Target;
use crate::head::Head;
use crate::stamp::Stamp;
use crate::stats;

impl HttpConn {
    /// The `route` and `method` slots of the response being finished: the configured pattern
    /// that answered (or `none`) and the method the router knows (or `other`).
    pub(super) fn labels(&self) -> (usize, usize) {
        let Some(exchange) = self.exchange.as_deref() else {
            return (stats::NO_ROUTE, stats::UNKNOWN_METHOD);
        };
        let route = match exchange.target {
            Target::Route { group, entry, .. } => self.settings.routes.slot(group, entry),
            _ => stats::NO_ROUTE,
        };
        (route, exchange.method)
    }

    /// Bookkeeping after a response: counters, then the next phase and its deadline.
    pub(crate) fn done(&mut self, status: u16, close: bool, cx: &mut Cx<'_>) -> Flow {
        let labels = self.labels();
        self.done_as(status, close, labels, true, cx)
    }

    /// [`HttpConn::done`] with the response's `route` and `method` label slots given;
    /// `follows`: bytes may follow the request in the input, so another request may be
    /// answered before an `on_input` call ends (when none can, idling now saves settling).
    pub(super) fn done_as(
        &mut self,
        status: u16,
        close: bool,
        (route, method): (usize, usize),
        follows: bool,
        cx: &mut Cx<'_>,
    ) -> Flow {
        let series = stats::series(route, method);
        self.shared.stats.count(series, status);
        let started = self.scratch.as_mut().and_then(|s| s.started.take());
        // The response is in the connection's output, which the reactor writes to the socket
        // when this step returns. Within an `on_input` call that may answer more, that write
        // waits for the call's end, and the response is timed then with the rest of its batch
        // (`stamp::Untimed`); the next request of the batch began when this one did, with the
        // same read. An access log line needs its own duration at once.
        let batched =
            follows && !close && self.batch != Batch::Off && self.shared.access_log.is_none();
        if batched {
            let since = started.unwrap_or_else(Stamp::now);
            self.shared.note_done(cx.token(), cx.now(), since);
            self.shared.hold_timing(cx.token(), since, series);
        } else {
            let now = Stamp::now();
            self.shared.time_held(|| now);
            self.shared.note_done(cx.token(), cx.now(), now);
            let duration = now.since(started.unwrap_or(now));
            self.shared.stats.time(series, duration, 1);
            self.log_access(status, duration, cx);
        }
        self.served += 1;
        self.http10 = false;
        self.more_buffered = None;
        if let Some(exchange) = self.exchange.take() {
            self.shared.give_exchange(exchange);
        }
        if close {
            self.release_scratch();
            self.phase = Phase::Closed;
            cx.clear_deadline();
            return Flow::Close;
        }
        self.phase = Phase::Idle;
        if self.is_draining(cx) {
            // Another request is buffered (that is why this one did not close): it is answered
            // next, and the drain grace bounds the wait if it never completes.
            self.release_scratch();
            self.drain_grace(cx);
        } else if self.batch == Batch::Off || !follows {
            self.release_scratch();
            self.arm(Timer::Idle, cx);
            cx.mark_idle();
            // Whatever an earlier answer in this call left is settled by this one.
            if self.batch == Batch::Idled {
                self.batch = Batch::On;
            }
        } else {
            // The scratch stays for a next request in this input, as the pool would hand it
            // out: cleared.
            if let Some(scratch) = self.scratch.as_deref_mut() {
                scratch.clear();
            }
            self.timer = Some(Timer::Idle);
            self.batch = Batch::Idled;
        }
        Flow::Answered
    }

    /// The access log line of the response just finished, if the listener keeps a log.
    fn log_access(&self, status: u16, duration: Duration, cx: &Cx<'_>) {
        let (Some(log), Some(scratch)) = (&self.shared.access_log, self.scratch.as_deref()) else {
            return;
        };
        (log.0)(&AccessRecord {
            shard: cx.shard(),
            listener: self.shared.listener.get(),
            peer: self.shared.peer_of(cx.token()),
            method: &scratch.log_method,
            path: &scratch.log_path,
            user_agent: &scratch.log_agent,
            referer: &scratch.log_referer,
            minor: scratch.log_minor,
            status,
            bytes: cx.pending_output().saturating_sub(scratch.log_mark) as u64,
            duration,
        });
    }

    /// The end of an `on_input` call: the idling an answer left for it ([`Batch`]), as
    /// `done_as` outside a call would have done it. A request begun since has its own
    /// deadline and the scratch.
    pub(super) fn settle_input(&mut self, cx: &mut Cx<'_>) {
        self.shared.time_held(Stamp::now);
        let idled = self.batch == Batch::Idled;
        self.batch = Batch::Off;
        if !idled {
            return;
        }
        cx.mark_idle();
        if self.phase == Phase::Idle {
            self.release_scratch();
            self.arm(Timer::Idle, cx);
        }
    }

    /// Copies what the access log needs from the head (the head's bytes go away before the
    /// response is done, e.g. while a job runs).
    pub(super) fn note_request(&mut self, head: &Head<'_>, cx: &Cx<'_>) {
        let scratch = self.scratch();
        scratch.log_method.clear();
        scratch
            .log_method
            .extend_from_slice(head.method_token.as_bytes());
        let target: &[&[u8]] = match head.query {
            [] => &[head.path],
            query => &[head.path, b"?", query],
        };
        bounded(&mut scratch.log_path, target, ACCESS_PATH_MAX);
        let agent = head.user_agent.unwrap_or_default();
        bounded(&mut scratch.log_agent, &[agent], ACCESS_FIELD_MAX);
        let referer = head.referer.unwrap_or_default();
        bounded(&mut scratch.log_referer, &[referer], ACCESS_FIELD_MAX);
        scratch.log_minor = head.minor;
        scratch.log_mark = cx.pending_output();
    }
}

/// `out` = the concatenation of `parts`, cut at `max` bytes (capacity kept).
fn bounded(out: &mut Vec<u8>, parts: &[&[u8]], max: usize) {
    out.clear();
    for part in parts {
        let room = max.saturating_sub(out.len());
        out.extend_from_slice(&part[..part.len().min(room)]);
    }
}
