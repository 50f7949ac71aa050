//! The access log: shards push fixed-size records into a bounded lock-free queue; one writer
//! thread formats and writes them. A full queue drops the line and counts it
//! (`coreloop_access_log_dropped_total`): a slow disk must never stall a shard.

use std::io::{self, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use coreloop_config::AccessLog;
use coreloop_http::{AccessLogHook, AccessRecord, ACCESS_FIELD_MAX, ACCESS_PATH_MAX};

use crate::access_format::{self, Context, Format};
use coreloop_metrics::ServerStats;
use crossbeam_queue::ArrayQueue;

/// Records that may wait for the writer (each about 600 bytes: 2.4 MiB, allocated at start).
const QUEUE: usize = 4096;
/// How often the writer looks at the queue when it found it empty. Polling, not a wake per
/// record: a wake is a syscall on the shard's hot path.
const POLL: Duration = Duration::from_millis(20);

/// One response, copied out of the shard (no allocation: fixed arrays).
pub(crate) struct Line {
    pub shard: u16,
    pub listener: u16,
    pub status: u16,
    pub minor: u8,
    pub peer: Option<SocketAddr>,
    method: [u8; 16],
    method_len: u8,
    path: [u8; ACCESS_PATH_MAX],
    path_len: u16,
    agent: [u8; ACCESS_FIELD_MAX],
    agent_len: u8,
    referer: [u8; ACCESS_FIELD_MAX],
    referer_len: u8,
    pub bytes: u64,
    pub micros: u64,
}

/// Copies as much of `from` as fits into `to`; returns the length kept.
fn keep<const N: usize>(to: &mut [u8; N], from: &[u8]) -> usize {
    let n = from.len().min(N);
    to[..n].copy_from_slice(&from[..n]);
    n
}

impl Line {
    pub(crate) fn copy(record: &AccessRecord<'_>) -> Self {
        let mut line = Line {
            shard: u16::try_from(record.shard).unwrap_or(u16::MAX),
            listener: u16::try_from(record.listener).unwrap_or(u16::MAX),
            status: record.status,
            minor: record.minor,
            peer: record.peer,
            method: [0; 16],
            method_len: 0,
            path: [0; ACCESS_PATH_MAX],
            path_len: 0,
            agent: [0; ACCESS_FIELD_MAX],
            agent_len: 0,
            referer: [0; ACCESS_FIELD_MAX],
            referer_len: 0,
            bytes: record.bytes,
            micros: u64::try_from(record.duration.as_micros()).unwrap_or(u64::MAX),
        };
        line.method_len = keep(&mut line.method, record.method) as u8;
        line.path_len = keep(&mut line.path, record.path) as u16;
        line.agent_len = keep(&mut line.agent, record.user_agent) as u8;
        line.referer_len = keep(&mut line.referer, record.referer) as u8;
        line
    }

    pub(crate) fn method(&self) -> &[u8] {
        &self.method[..usize::from(self.method_len)]
    }

    pub(crate) fn path(&self) -> &[u8] {
        &self.path[..usize::from(self.path_len)]
    }

    pub(crate) fn agent(&self) -> &[u8] {
        &self.agent[..usize::from(self.agent_len)]
    }

    pub(crate) fn referer(&self) -> &[u8] {
        &self.referer[..usize::from(self.referer_len)]
    }
}

/// The running writer; [`AccessLogWriter::stop`] flushes what is queued.
pub(crate) struct AccessLogWriter {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// Starts the writer for `target` and returns the hook for the HTTP factories, or `None` when
/// the access log is off.
/// `listeners` names the `listener` field by index (listeners a reload adds later are
/// written by their index).
pub(crate) fn start(
    target: &AccessLog,
    format: Format,
    listeners: Vec<String>,
    stats: Arc<ServerStats>,
) -> io::Result<Option<(AccessLogHook, AccessLogWriter)>> {
    let out: Box<dyn Write + Send> = match target {
        AccessLog::Off => return Ok(None),
        AccessLog::Stdout => Box::new(io::stdout()),
        AccessLog::Stderr => Box::new(io::stderr()),
        AccessLog::File(path) => Box::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)?,
        ),
    };
    let queue = Arc::new(ArrayQueue::new(QUEUE));
    let stop = Arc::new(AtomicBool::new(false));
    let thread = {
        let (queue, stop) = (queue.clone(), stop.clone());
        std::thread::Builder::new()
            .name("access-log".into())
            .spawn(move || {
                let out = io::BufWriter::new(out);
                write_loop(&queue, &stop, format, &listeners, out)
            })?
    };
    let hook: AccessLogHook = Arc::new(move |record: &AccessRecord<'_>| {
        if queue.push(Line::copy(record)).is_err() {
            stats.access_log_dropped(1);
        }
    });
    let writer = AccessLogWriter {
        stop,
        thread: Some(thread),
    };
    Ok(Some((hook, writer)))
}

fn write_loop(
    queue: &ArrayQueue<Line>,
    stop: &AtomicBool,
    format: Format,
    listeners: &[String],
    mut out: impl Write,
) {
    loop {
        let stopping = stop.load(Ordering::Acquire);
        let cx = Context {
            now: SystemTime::now(),
            listeners,
        };
        let mut wrote = false;
        while let Some(line) = queue.pop() {
            // A failing disk loses lines, it does not stop the server.
            let _ = access_format::write(format, &line, &cx, &mut out);
            wrote = true;
        }
        if wrote {
            let _ = out.flush();
        }
        if stopping {
            return;
        }
        if !wrote {
            std::thread::park_timeout(POLL);
        }
    }
}

impl AccessLogWriter {
    /// Writes what is queued and ends the thread.
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_queue_drops_and_counts() {
        let stats = Arc::new(ServerStats::default());
        let queue = ArrayQueue::new(1);
        let record = AccessRecord {
            shard: 0,
            listener: 0,
            peer: None,
            method: b"GET",
            path: b"/",
            user_agent: b"",
            referer: b"",
            minor: 1,
            status: 200,
            bytes: 1,
            duration: Duration::ZERO,
        };
        assert!(queue.push(Line::copy(&record)).is_ok());
        if queue.push(Line::copy(&record)).is_err() {
            stats.access_log_dropped(1);
        }
        assert_eq!(stats.dropped(), 1);
    }
}
