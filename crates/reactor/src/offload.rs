//! The offload pool: M threads that run blocking jobs so that no shard loop ever stalls.
//!
//! A job carries its shard and connection token. Its result goes into that shard's inbox, whose
//! waker is written at most once per batch (see [`crate::inbox`]). The job queue is bounded:
//! when it is full, [`JobSink::submit`] refuses at once and the protocol answers "busy" instead of
//! queueing without bound. A panicking job is caught and delivered as [`JobFailure::Panicked`].
//!
//! A job may carry [`JobTerms`]: a deadline and a [`CancelToken`]. A worker that dequeues a job
//! past its deadline (its client has had its timeout answer) or whose token was cancelled (its
//! connection is gone) drops it unrun and counts it, so a burst of slow jobs cannot leave a
//! queue of dead work that keeps live requests waiting long after the burst.

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError};

use crate::inbox::Inbox;
use crate::protocol::JobSink;
use crate::token::ConnToken;

/// What a job returns; the protocol downcasts it to the type its job produced.
pub type JobOutput = Box<dyn Any + Send>;

/// A blocking piece of work.
pub type Job = Box<dyn FnOnce() -> JobOutput + Send>;

/// Names a job among those of one connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct JobId(pub u64);

/// The job queue was full; nothing was queued.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refused;

/// Why a job produced no output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JobFailure {
    /// The job panicked; the message, when it was a string.
    Panicked(String),
    /// The job was dequeued after its [`JobTerms::deadline`] and dropped unrun.
    Expired,
}

/// Set by a protocol when nobody waits for its job any more (its connection closed); a worker
/// that dequeues the job then drops it unrun. Clones share the flag.
#[derive(Clone, Debug, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    /// A token not yet cancelled.
    pub fn new() -> Self {
        Self::default()
    }

    /// Cancels every job carrying this token that has not started yet.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// Whether [`cancel`](Self::cancel) was called.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// When a job stops being worth running; see [`crate::Cx::offload_with`].
#[derive(Clone, Debug, Default)]
pub struct JobTerms {
    /// Past this instant the job is dropped when dequeued, and its connection gets a
    /// [`JobFailure::Expired`] completion.
    pub deadline: Option<Instant>,
    /// Once cancelled the job is dropped when dequeued; no completion is delivered.
    pub cancel: Option<CancelToken>,
}

impl JobTerms {
    /// Why a job with these terms must not run at `now`, if it must not.
    fn void_at(&self, now: Instant) -> Option<DropReason> {
        if self.cancel.as_ref().is_some_and(CancelToken::is_cancelled) {
            Some(DropReason::Closed)
        } else if self.deadline.is_some_and(|at| at <= now) {
            Some(DropReason::Deadline)
        } else {
            None
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum DropReason {
    Deadline,
    Closed,
}

/// A finished job, delivered to [`crate::Protocol::on_completion`].
#[derive(Debug)]
pub struct Completion {
    /// The id [`crate::Cx::offload`] returned.
    pub job: JobId,
    /// The job's output, or why there is none.
    pub result: Result<JobOutput, JobFailure>,
}

/// Pool-wide counters, written by whichever thread saw the event.
#[derive(Debug, Default)]
pub struct OffloadStats {
    /// Jobs that returned.
    pub completed: AtomicU64,
    /// Jobs that panicked.
    pub panicked: AtomicU64,
    /// Jobs refused because the queue was full.
    pub refused: AtomicU64,
    /// Jobs dropped unrun because their deadline had passed when a worker took them.
    pub dropped_deadline: AtomicU64,
    /// Jobs dropped unrun because their connection had cancelled them.
    pub dropped_closed: AtomicU64,
}

struct Task {
    shard: usize,
    token: ConnToken,
    id: JobId,
    job: Job,
    terms: JobTerms,
}

/// The running pool. Its threads start with the first job submitted, so a reactor whose
/// protocols never offload runs no offload thread.
pub(crate) struct OffloadPool {
    sender: Sender<Task>,
    /// Kept only to read the depth: a receiver does not keep the queue open, senders do.
    receiver: Receiver<Task>,
    workers: Arc<Workers>,
    exited: Receiver<()>,
    pub stats: Arc<OffloadStats>,
}

/// The pool's threads, started on first use.
struct Workers {
    threads: usize,
    receiver: Receiver<Task>,
    inboxes: Arc<[Arc<Inbox>]>,
    stats: Arc<OffloadStats>,
    exit_tx: Sender<()>,
    /// Set once the threads run: the one check a submit pays (a relaxed-enough load).
    started: AtomicBool,
    /// Taken only to start the threads (once) and to join them at shutdown.
    handles: Mutex<Vec<JoinHandle<()>>>,
}

impl Workers {
    /// Starts the threads unless they run; `false` when not one could be started.
    fn ensure_started(&self) -> bool {
        if self.started.load(Ordering::Acquire) {
            return true;
        }
        let mut handles = self.handles.lock().unwrap_or_else(|e| e.into_inner());
        if self.started.load(Ordering::Acquire) {
            return true;
        }
        for i in 0..self.threads.max(1) {
            let receiver = self.receiver.clone();
            let inboxes = self.inboxes.clone();
            let stats = self.stats.clone();
            let exit_tx = self.exit_tx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("coreloop-offload-{i}"))
                .spawn(move || {
                    run_worker(&receiver, &inboxes, &stats);
                    let _ = exit_tx.send(());
                });
            match spawned {
                Ok(handle) => handles.push(handle),
                Err(error) => {
                    tracing::error!(%error, "starting an offload thread failed");
                    break;
                }
            }
        }
        // With fewer threads than asked the pool still runs; with none every submit retries.
        let any = !handles.is_empty();
        self.started.store(any, Ordering::Release);
        any
    }
}

impl OffloadPool {
    /// A pool of `threads` threads (started by the first submit) and a queue of `queue` jobs.
    pub fn start(
        threads: usize,
        queue: usize,
        inboxes: Arc<[Arc<Inbox>]>,
    ) -> std::io::Result<Self> {
        let (sender, receiver) = crossbeam_channel::bounded::<Task>(queue.max(1));
        let (exit_tx, exited) = crossbeam_channel::unbounded();
        let stats = Arc::new(OffloadStats::default());
        let workers = Arc::new(Workers {
            threads,
            receiver: receiver.clone(),
            inboxes,
            stats: stats.clone(),
            exit_tx,
            started: AtomicBool::new(false),
            handles: Mutex::new(Vec::new()),
        });
        Ok(Self {
            sender,
            receiver,
            workers,
            exited,
            stats,
        })
    }

    /// A submitter for one shard.
    pub fn sink(&self, shard: usize) -> OffloadSink {
        OffloadSink {
            sender: self.sender.clone(),
            workers: self.workers.clone(),
            shard,
            next_id: 0,
            stats: self.stats.clone(),
        }
    }

    /// Reads the queue depth from anywhere without keeping the queue open.
    pub fn depth_probe(&self) -> DepthProbe {
        DepthProbe(self.receiver.clone())
    }

    /// Lets the workers finish and joins those that do by `deadline`; a job that hangs past it
    /// leaves its thread detached rather than hanging the shutdown.
    pub fn shutdown(self, deadline: Instant) {
        let Self {
            sender,
            workers,
            exited,
            receiver,
            ..
        } = self;
        drop(receiver);
        drop(sender);
        let handles =
            std::mem::take(&mut *workers.handles.lock().unwrap_or_else(|e| e.into_inner()));
        let mut remaining = handles.len();
        while remaining > 0 {
            let wait = deadline.saturating_duration_since(Instant::now());
            if exited.recv_timeout(wait).is_err() {
                tracing::warn!(
                    remaining,
                    "offload jobs still running at the deadline; detaching"
                );
                return;
            }
            remaining -= 1;
        }
        for worker in handles {
            let _ = worker.join();
        }
    }
}

/// An idle worker looks this often at the allocator's free memory.
const TRIM_WHEN_IDLE: Duration = Duration::from_secs(1);

/// Growth of the free heap above its lowest level since the last trim that makes an idle
/// worker trim again.
const TRIM_SLACK: usize = 1024 * 1024;

fn run_worker(receiver: &Receiver<Task>, inboxes: &[Arc<Inbox>], stats: &OffloadStats) {
    // Jobs allocate on this thread (a file window is 128 KiB) and their results are freed on a
    // shard, often long after the job: glibc returns such chunks to this thread's arena and
    // keeps them, so 100 finished downloads left 13.6 MiB of RSS behind. An idle worker
    // therefore trims after its own jobs and whenever the free heap has grown by more than
    // TRIM_SLACK (connections that closed while the pool was already
    // idle), off every shard's path and at most once a second.
    let mut worked = false;
    let mut free_low = 0usize;
    loop {
        let task = match receiver.recv_timeout(TRIM_WHEN_IDLE) {
            Ok(task) => task,
            Err(RecvTimeoutError::Timeout) => {
                // Trimmed pages stay counted as free, so the level to beat is the lowest seen
                // since the last trim: memory taken again and then freed counts as growth.
                let free = crate::sys::free_heap_bytes();
                free_low = free_low.min(free);
                if std::mem::take(&mut worked) || free > free_low + TRIM_SLACK {
                    crate::sys::release_free_memory();
                    free_low = crate::sys::free_heap_bytes();
                }
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => return,
        };
        worked = true;
        match task.terms.void_at(Instant::now()) {
            Some(DropReason::Closed) => {
                stats.dropped_closed.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            Some(DropReason::Deadline) => {
                stats.dropped_deadline.fetch_add(1, Ordering::Relaxed);
                let completion = Completion {
                    job: task.id,
                    result: Err(JobFailure::Expired),
                };
                inboxes[task.shard].push_completion(task.token, completion);
                continue;
            }
            None => {}
        }
        let result = catch_unwind(AssertUnwindSafe(task.job)).map_err(|panic| {
            stats.panicked.fetch_add(1, Ordering::Relaxed);
            JobFailure::Panicked(panic_message(panic.as_ref()))
        });
        if result.is_ok() {
            stats.completed.fetch_add(1, Ordering::Relaxed);
        }
        let completion = Completion {
            job: task.id,
            result,
        };
        inboxes[task.shard].push_completion(task.token, completion);
    }
}

/// The text of a panic payload, which is a `&str` or a `String` for `panic!` with a message.
pub fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}

/// Reads the offload queue depth.
#[derive(Clone)]
pub(crate) struct DepthProbe(Receiver<Task>);

impl DepthProbe {
    pub fn depth(&self) -> usize {
        self.0.len()
    }
}

/// A shard's handle on the pool.
pub(crate) struct OffloadSink {
    sender: Sender<Task>,
    workers: Arc<Workers>,
    shard: usize,
    next_id: u64,
    stats: Arc<OffloadStats>,
}

impl JobSink for OffloadSink {
    fn submit(&mut self, token: ConnToken, job: Job) -> Result<JobId, Refused> {
        self.submit_with(token, job, JobTerms::default())
    }

    fn submit_with(
        &mut self,
        token: ConnToken,
        job: Job,
        terms: JobTerms,
    ) -> Result<JobId, Refused> {
        if !self.workers.ensure_started() {
            self.stats.refused.fetch_add(1, Ordering::Relaxed);
            return Err(Refused);
        }
        let id = JobId(self.next_id);
        self.next_id += 1;
        let task = Task {
            shard: self.shard,
            token,
            id,
            job,
            terms,
        };
        match self.sender.try_send(task) {
            Ok(()) => Ok(id),
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.stats.refused.fetch_add(1, Ordering::Relaxed);
                Err(Refused)
            }
        }
    }
}
