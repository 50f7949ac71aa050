//! What a connection has outstanding beyond its request phase: the offloaded job in flight
//! (cancelled if the connection goes first), a `/delay` waiting on the connection's deadline,
//! or a file body being sent one window at a time.
//!
//! A file body: the first piece goes out with the head; each next piece is queued only once
//! the socket has taken the previous one (`Protocol::on_flushed`): a `sendfile` segment when
//! its pages are in the page cache, else a window read on the offload pool (`files::body`).
//! So a download holds at most one window however large the file, and a client that stops
//! reading stops the reads. A client that goes away drops the connection, which cancels a
//! read still queued and releases a queued segment's file.
//!
//! `/delay` holds no thread: it is the connection's own deadline on the shard's timer wheel.

use std::any::Any;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use coreloop_reactor::{CancelToken, Completion, Cx, Job, JobId, JobTerms, Refused, Verb};

use crate::conn::{Flow, HttpConn, Phase};
use crate::error::HttpError;
use crate::files::FileBody;
use crate::handlers::JobReply;

/// How long a window read refused by a full offload queue waits before it is tried again.
const RETRY_AFTER: Duration = Duration::from_millis(10);

/// Lives in the request's pooled `Exchange`: outstanding things belong to the request in
/// progress, and an idle connection (which has no exchange) holds nothing.
#[derive(Debug, Default)]
pub(crate) struct Held {
    /// The job in flight and its token, so that dropping the connection voids it.
    job: Option<(JobId, CancelToken)>,
    hold: Option<Hold>,
}

#[derive(Debug)]
enum Hold {
    /// `/delay`: at the deadline, 200 — or 504 when the delay asked exceeds the offload timeout.
    Delay {
        timeout: bool,
    },
    Stream(Box<Stream>),
}

/// The rest of a file response whose head is written.
#[derive(Debug)]
struct Stream {
    status: u16,
    close: bool,
    state: Window,
    /// Where a read job that never ran leaves the body (see [`Lent`]).
    home: Home,
}

type Home = Arc<Mutex<Option<Box<FileBody>>>>;

/// The body inside a read job. A job the full queue refuses is dropped unrun, and with it the
/// open file: this puts the body back where the connection can take it and try again. A job
/// that runs takes the body out first, so the normal path never touches the lock.
struct Lent {
    body: Option<Box<FileBody>>,
    home: Home,
}

impl Drop for Lent {
    fn drop(&mut self) {
        if let Some(body) = self.body.take() {
            *self.home.lock().unwrap_or_else(PoisonError::into_inner) = Some(body);
        }
    }
}

#[derive(Debug)]
enum Window {
    /// The last window is in the output buffer; the next is read once it is written.
    Flushing(Box<FileBody>),
    /// A read is on the offload pool, and owns the body meanwhile.
    Reading(JobId),
    /// The offload queue refused the read; tried again at the deadline, until `give_up`.
    Retrying(Box<FileBody>, Instant),
}

/// How a streamed response ends: its status (for the counters) and whether it closes.
#[derive(Clone, Copy)]
struct Pieces {
    status: u16,
    close: bool,
}

/// A window read's result, with the body handed back.
struct WindowRead {
    body: Box<FileBody>,
    result: std::io::Result<()>,
}

impl Held {
    /// How to answer input that arrives while something is held, or `None` when nothing is.
    pub fn input_verb(&self) -> Option<Verb> {
        Some(match self.hold()? {
            Hold::Delay { .. } => Verb::AwaitCompletion,
            Hold::Stream(stream) if matches!(stream.state, Window::Reading(_)) => {
                Verb::AwaitCompletion
            }
            // Input stays buffered (the next request waits for this response).
            _ => Verb::Read,
        })
    }

    fn hold(&self) -> Option<&Hold> {
        self.hold.as_ref()
    }

    fn hold_mut(&mut self) -> Option<&mut Hold> {
        self.hold.as_mut()
    }

    /// Nothing in flight or held: the state of most requests.
    pub fn is_empty(&self) -> bool {
        self.job.is_none() && self.hold.is_none()
    }

    /// Cancels the job in flight, if any: nobody waits for it any more.
    pub fn cancel_job(&mut self) {
        if let Some((_, token)) = self.job.take() {
            token.cancel();
        }
    }

    fn voids(&mut self, id: JobId) {
        if self.job.as_ref().is_some_and(|(job, _)| *job == id) {
            self.job = None;
        }
    }
}

impl Drop for HttpConn {
    fn drop(&mut self) {
        if let Some(held) = self.held_mut() {
            held.cancel_job();
        }
    }
}

impl HttpConn {
    fn held(&self) -> Option<&Held> {
        self.exchange.as_deref().map(|e| &e.held)
    }

    fn held_mut(&mut self) -> Option<&mut Held> {
        self.exchange.as_deref_mut().map(|e| &mut e.held)
    }

    /// `Protocol::on_input` while something is held: how to wait instead of parsing.
    pub(crate) fn held_input_verb(&self) -> Option<Verb> {
        self.held()?.input_verb()
    }

    /// Puts `hold` in the request's exchange; false if no request is in progress.
    fn put_hold(&mut self, hold: Hold) -> bool {
        match self.held_mut() {
            Some(held) => {
                held.hold = Some(hold);
                true
            }
            None => false,
        }
    }

    fn take_hold(&mut self) -> Option<Hold> {
        self.held_mut()?.hold.take()
    }

    /// Offloads `job` with the connection's offload deadline and a cancel token, so that the
    /// pool drops it unrun once its client has its 504 or has gone.
    pub(crate) fn offload(&mut self, job: Job, cx: &mut Cx<'_>) -> Result<JobId, Refused> {
        let cancel = CancelToken::new();
        let terms = JobTerms {
            deadline: Some(cx.now() + self.settings.config.offload_timeout),
            cancel: Some(cancel.clone()),
        };
        let id = cx.offload_with(job, terms)?;
        if let Some(held) = self.held_mut() {
            held.job = Some((id, cancel));
        }
        Ok(id)
    }

    /// `/delay?ms=N`: answered at the connection's deadline, no thread held meanwhile.
    pub(crate) fn hold_delay(&mut self, delay: Duration, cx: &mut Cx<'_>) -> Flow {
        let limit = self.settings.config.offload_timeout;
        if !self.put_hold(Hold::Delay {
            timeout: delay > limit,
        }) {
            return self.refuse(HttpError::HandlerPanicked, cx);
        }
        cx.set_deadline(cx.now() + delay.min(limit));
        // A wait, not a read: requests pipelined behind this one stay in the reactor's buffer
        // and a half-close stays unread until the deadline answers and resumes input, so they
        // are answered in order before the EOF is (a read EOF here used to drop them).
        Flow::Hold(Verb::AwaitCompletion)
    }

    /// The head of a file response is written: queue what is ready (the window read last,
    /// then a `sendfile` segment if the next one is in the page cache), and wait for it to be
    /// written before the next piece; finish once nothing is left to queue.
    pub(crate) fn stream_body(
        &mut self,
        body: Box<FileBody>,
        status: u16,
        close: bool,
        cx: &mut Cx<'_>,
    ) -> Flow {
        self.send_pieces(body, Pieces { status, close }, true, cx)
    }

    /// [`Self::stream_body`]; `probe`: try to queue a segment behind the window (false when
    /// the caller just queued one: a second residency check would only find it busy).
    fn send_pieces(
        &mut self,
        body: Box<FileBody>,
        Pieces { status, close }: Pieces,
        probe: bool,
        cx: &mut Cx<'_>,
    ) -> Flow {
        let mut body = body;
        body.put_window(cx);
        if probe {
            body.queue_segment(cx);
        }
        let previous = self.take_hold();
        if !body.more() {
            return self.done(status, close, cx);
        }
        // The offload deadline of the first read is over; a client that stops reading meets
        // the reactor's write timeout instead.
        cx.clear_deadline();
        let home = match previous {
            Some(Hold::Stream(stream)) => stream.home,
            _ => Home::default(),
        };
        let stream = Stream {
            status,
            close,
            state: Window::Flushing(body),
            home,
        };
        if !self.put_hold(Hold::Stream(Box::new(stream))) {
            return Flow::Hold(self.cut(cx));
        }
        if cx.pending_output() == 0 {
            // Nothing was ready (the first window was not read, and the segment is no longer
            // in the cache): read a window now instead of waiting for a flush that never comes.
            return Flow::Hold(self.held_flushed(cx));
        }
        Flow::Hold(Verb::WaitFlush)
    }

    /// Goes on with the held stream after `body`'s next piece is ready, as [`Self::stream_body`]
    /// with the stream's status and close, the answer mapped to a verb.
    fn resume_stream(&mut self, body: Box<FileBody>, probe: bool, cx: &mut Cx<'_>) -> Verb {
        let Some(Hold::Stream(stream)) = self.held().and_then(Held::hold) else {
            return self.cut(cx);
        };
        // A drain that began mid-body closes the connection once the body is out.
        let pieces = Pieces {
            status: stream.status,
            close: stream.close || self.draining || self.peer_eof,
        };
        match self.send_pieces(body, pieces, probe, cx) {
            Flow::Hold(verb) => verb,
            // The next request may be buffered: it is handed over once this output is written.
            Flow::Answered => Verb::WaitFlush,
            _ => Verb::CloseAfterFlush,
        }
    }

    /// `Protocol::on_flushed`: the previous piece is written; send the next from the page
    /// cache, or read it on the pool.
    pub(crate) fn held_flushed(&mut self, cx: &mut Cx<'_>) -> Verb {
        let Some(Hold::Stream(stream)) = self.held_mut().and_then(Held::hold_mut) else {
            return Verb::Read;
        };
        match std::mem::replace(&mut stream.state, Window::Reading(JobId(u64::MAX))) {
            Window::Flushing(mut body) => {
                if body.queue_segment(cx) {
                    return self.resume_stream(body, false, cx);
                }
                let give_up = cx.now() + self.settings.config.offload_timeout;
                self.read_window(body, give_up, cx)
            }
            other => {
                stream.state = other;
                Verb::Read
            }
        }
    }

    fn read_window(&mut self, body: Box<FileBody>, give_up: Instant, cx: &mut Cx<'_>) -> Verb {
        let Some(Hold::Stream(stream)) = self.held().and_then(Held::hold) else {
            return self.cut(cx);
        };
        let home = stream.home.clone();
        let job = window_job(body, home.clone());
        let state = match self.offload(job, cx) {
            Ok(id) => {
                cx.set_deadline(cx.now() + self.settings.config.offload_timeout);
                Window::Reading(id)
            }
            Err(Refused) => {
                let body = home.lock().unwrap_or_else(PoisonError::into_inner).take();
                match body {
                    Some(body) if cx.now() < give_up => {
                        cx.set_deadline((cx.now() + RETRY_AFTER).min(give_up));
                        Window::Retrying(body, give_up)
                    }
                    _ => return self.cut(cx),
                }
            }
        };
        let verb = match state {
            Window::Reading(_) => Verb::AwaitCompletion,
            _ => Verb::Read,
        };
        if let Some(Hold::Stream(stream)) = self.held_mut().and_then(Held::hold_mut) {
            stream.state = state;
        }
        verb
    }

    /// A window read came back: send it, and finish or wait for it to be written.
    pub(crate) fn held_completion(
        &mut self,
        completion: Completion,
        cx: &mut Cx<'_>,
    ) -> Result<Verb, Completion> {
        if let Some(held) = self.held_mut() {
            held.voids(completion.job);
        }
        let reading = match self.held().and_then(Held::hold) {
            Some(Hold::Stream(stream)) => match stream.state {
                Window::Reading(id) => id == completion.job,
                _ => false,
            },
            _ => false,
        };
        if !reading {
            return Err(completion);
        }
        cx.clear_deadline();
        let read = completion
            .result
            .ok()
            .and_then(|output| output.downcast::<WindowRead>().ok());
        let Some(read) = read.filter(|r| r.result.is_ok()) else {
            return Ok(self.cut(cx));
        };
        Ok(self.resume_stream(read.body, true, cx))
    }

    /// The connection's deadline passed while something was held.
    pub(crate) fn held_deadline(&mut self, cx: &mut Cx<'_>) -> Option<Verb> {
        match self.take_hold()? {
            Hold::Delay { timeout } => {
                // Ends the wait `hold_delay` began; buffered input is handed over again.
                cx.resume();
                let flow = match timeout {
                    true => self.refuse(HttpError::HandlerTimeout, cx),
                    false => self.answer_job(Ok(JobReply::text(200, "ok\n")), cx),
                };
                Some(after(flow))
            }
            Hold::Stream(mut stream) => {
                match std::mem::replace(&mut stream.state, Window::Reading(JobId(u64::MAX))) {
                    Window::Retrying(body, give_up) => {
                        self.put_hold(Hold::Stream(stream));
                        Some(self.read_window(body, give_up, cx))
                    }
                    // A read that outlived the offload timeout: the head is long sent, so there is
                    // no 504 to give; the client sees the body end short and the connection close.
                    _ => Some(self.cut(cx)),
                }
            }
        }
    }

    /// `Protocol::on_eof` while something is held. HTTP/1.1 lets a client shut its write side
    /// once its request is sent (RFC 9112 §9.6), so the held response still goes out in full
    /// and the connection closes after it: a `/delay` waits for its deadline, a file body
    /// for its next piece. `None` when nothing is held.
    pub(crate) fn held_eof(&mut self, cx: &mut Cx<'_>) -> Option<Verb> {
        let verb = match self.held()?.hold()? {
            // The deadline answers; its verb ends the wait.
            Hold::Delay { .. } => Verb::AwaitCompletion,
            Hold::Stream(stream) => match stream.state {
                Window::Reading(_) | Window::Retrying(..) => Verb::AwaitCompletion,
                Window::Flushing(_) if cx.pending_output() > 0 => Verb::WaitFlush,
                Window::Flushing(_) => self.held_flushed(cx),
            },
        };
        Some(verb)
    }

    /// `Protocol::on_drain` while something is held: finish it (its response then closes).
    pub(crate) fn held_drain(&mut self, cx: &mut Cx<'_>) -> Option<Verb> {
        let verb = self.held_input_verb()?;
        Some(match verb {
            Verb::Read if cx.pending_output() > 0 => Verb::WaitFlush,
            verb => verb,
        })
    }

    /// Ends a response that cannot be completed: the connection closes after what is written.
    fn cut(&mut self, cx: &mut Cx<'_>) -> Verb {
        if let Some(held) = self.held_mut() {
            held.hold = None;
            held.cancel_job();
        }
        self.phase = Phase::Closed;
        cx.clear_deadline();
        cx.refuse();
        Verb::CloseAfterFlush
    }
}

/// The read of the next window as a job; the body comes back in its [`WindowRead`].
fn window_job(body: Box<FileBody>, home: Home) -> Job {
    let mut lent = Lent {
        body: Some(body),
        home,
    };
    Box::new(move || -> Box<dyn Any + Send> {
        let Some(mut body) = lent.body.take() else {
            return Box::new(());
        };
        let result = body.read_window();
        Box::new(WindowRead { body, result })
    })
}

fn after(flow: Flow) -> Verb {
    match flow {
        Flow::Answered => Verb::WaitFlush,
        Flow::Close => Verb::CloseAfterFlush,
        Flow::Hold(verb) => verb,
        Flow::Await => Verb::AwaitCompletion,
        Flow::Partial | Flow::Continue => Verb::Read,
    }
}
