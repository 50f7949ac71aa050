//! What a connection has outstanding beyond its request phase: the offloaded job in flight
//! (cancelled if the connection goes first), a `/delay` waiting on the connection's deadline,
//! or a file body being sent one window at a time.
//!
//! A file body: the first window goes out with the head; each next window is read on the
//! offload pool only once the socket has taken the previous one (`Protocol::on_flushed`), so
//! a download holds one window however large the file, and a client that stops reading stops
//! the reads. A client that goes away drops the connection, which cancels a read still queued.
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

#[derive(Debug, Default)]
pub(crate) struct Held {
    /// The job in flight and its token, so that dropping the connection voids it.
    job: Option<(JobId, CancelToken)>,
    hold: Option<Hold>,
    /// The delay a `/delay` head asked for, until its body (if any) is in.
    planned: Option<Duration>,
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

/// A window read's result, with the body handed back.
struct WindowRead {
    body: Box<FileBody>,
    result: std::io::Result<()>,
}

impl Held {
    /// How to answer input that arrives while something is held, or `None` when nothing is.
    pub fn input_verb(&self) -> Option<Verb> {
        Some(match self.hold.as_ref()? {
            Hold::Stream(stream) if matches!(stream.state, Window::Reading(_)) => {
                Verb::AwaitCompletion
            }
            // Input stays buffered (the next request waits for this response).
            _ => Verb::Read,
        })
    }

    /// Sets the planned delay of the request being read; returns the one it replaces.
    pub fn plan_delay(&mut self, delay: Option<Duration>) -> Option<Duration> {
        std::mem::replace(&mut self.planned, delay)
    }

    fn voids(&mut self, id: JobId) {
        if self.job.as_ref().is_some_and(|(job, _)| *job == id) {
            self.job = None;
        }
    }
}

impl Drop for HttpConn {
    fn drop(&mut self) {
        if let Some((_, token)) = self.held.job.take() {
            token.cancel();
        }
    }
}

impl HttpConn {
    /// Offloads `job` with the connection's offload deadline and a cancel token, so that the
    /// pool drops it unrun once its client has its 504 or has gone.
    pub(crate) fn offload(&mut self, job: Job, cx: &mut Cx<'_>) -> Result<JobId, Refused> {
        let cancel = CancelToken::new();
        let terms = JobTerms {
            deadline: Some(cx.now() + self.settings.config.offload_timeout),
            cancel: Some(cancel.clone()),
        };
        let id = cx.offload_with(job, terms)?;
        self.held.job = Some((id, cancel));
        Ok(id)
    }

    /// `/delay?ms=N`: answered at the connection's deadline, no thread held meanwhile.
    pub(crate) fn hold_delay(&mut self, delay: Duration, cx: &mut Cx<'_>) -> Flow {
        let limit = self.settings.config.offload_timeout;
        self.held.hold = Some(Hold::Delay {
            timeout: delay > limit,
        });
        cx.set_deadline(cx.now() + delay.min(limit));
        Flow::Hold(Verb::Read)
    }

    /// The head and first window of a file response are written: send the rest, if any.
    pub(crate) fn stream_body(
        &mut self,
        body: Box<FileBody>,
        status: u16,
        close: bool,
        cx: &mut Cx<'_>,
    ) -> Flow {
        let mut body = body;
        if cx.pending_output() == 0 {
            // Nothing else is pending (the head went out with the first window): the window
            // itself becomes the output buffer, saving a copy of every byte.
            body.swap_window(cx.out());
        } else {
            cx.out().extend_from_slice(body.window());
        }
        let previous = self.held.hold.take();
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
        self.held.hold = Some(Hold::Stream(Box::new(Stream {
            status,
            close,
            state: Window::Flushing(body),
            home,
        })));
        Flow::Hold(Verb::WaitFlush)
    }

    /// `Protocol::on_flushed`: the previous window is written; read the next.
    pub(crate) fn held_flushed(&mut self, cx: &mut Cx<'_>) -> Verb {
        let Some(Hold::Stream(stream)) = self.held.hold.as_mut() else {
            return Verb::Read;
        };
        match std::mem::replace(&mut stream.state, Window::Reading(JobId(u64::MAX))) {
            Window::Flushing(body) => {
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
        let Some(Hold::Stream(stream)) = self.held.hold.as_ref() else {
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
        if let Some(Hold::Stream(stream)) = self.held.hold.as_mut() {
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
        self.held.voids(completion.job);
        let reading = match self.held.hold.as_ref() {
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
        let Some(Hold::Stream(stream)) = self.held.hold.as_ref() else {
            return Ok(self.cut(cx));
        };
        // A drain that began mid-body closes the connection once the body is out.
        let (status, close) = (stream.status, stream.close || self.draining);
        let flow = self.stream_body(read.body, status, close, cx);
        Ok(match flow {
            Flow::Hold(verb) => verb,
            // The next request may be buffered: it is handed over once this output is written.
            Flow::Answered => Verb::WaitFlush,
            _ => Verb::CloseAfterFlush,
        })
    }

    /// The connection's deadline passed while something was held.
    pub(crate) fn held_deadline(&mut self, cx: &mut Cx<'_>) -> Option<Verb> {
        match self.held.hold.take()? {
            Hold::Delay { timeout: true } => {
                Some(after(self.refuse(HttpError::HandlerTimeout, cx)))
            }
            Hold::Delay { timeout: false } => {
                Some(after(self.answer_job(Ok(JobReply::text(200, "ok\n")), cx)))
            }
            Hold::Stream(mut stream) => {
                match std::mem::replace(&mut stream.state, Window::Reading(JobId(u64::MAX))) {
                    Window::Retrying(body, give_up) => {
                        self.held.hold = Some(Hold::Stream(stream));
                        Some(self.read_window(body, give_up, cx))
                    }
                    // A read that outlived the offload timeout: the head is long sent, so there is
                    // no 504 to give; the client sees the body end short and the connection close.
                    _ => Some(self.cut(cx)),
                }
            }
        }
    }

    /// `Protocol::on_drain` while something is held: finish it (its response then closes).
    pub(crate) fn held_drain(&mut self, cx: &mut Cx<'_>) -> Option<Verb> {
        let verb = self.held.input_verb()?;
        Some(match verb {
            Verb::Read if cx.pending_output() > 0 => Verb::WaitFlush,
            verb => verb,
        })
    }

    /// Ends a response that cannot be completed: the connection closes after what is written.
    fn cut(&mut self, cx: &mut Cx<'_>) -> Verb {
        self.held.hold = None;
        if let Some((_, token)) = self.held.job.take() {
            token.cancel();
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
