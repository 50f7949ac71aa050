//! The access log: shards push fixed-size records into a bounded lock-free queue; one writer
//! thread formats and writes them. A full queue drops the line and counts it
//! (`coreloop_access_log_dropped_total`): a slow disk must never stall a shard.

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use coreloop_config::AccessLog;
use coreloop_http::{AccessLogHook, AccessRecord, ACCESS_PATH_MAX};
use coreloop_metrics::ServerStats;
use crossbeam_queue::ArrayQueue;

/// Records that may wait for the writer (each about 300 bytes).
const QUEUE: usize = 8192;
/// How often the writer looks at the queue when it found it empty. Polling, not a wake per
/// record: a wake is a syscall on the shard's hot path.
const POLL: Duration = Duration::from_millis(20);

/// One response, copied out of the shard (no allocation: fixed arrays).
struct Line {
    shard: u16,
    status: u16,
    method: [u8; 16],
    method_len: u8,
    path: [u8; ACCESS_PATH_MAX],
    path_len: u16,
    bytes: u64,
    micros: u64,
}

impl Line {
    fn copy(record: &AccessRecord<'_>) -> Self {
        let mut line = Line {
            shard: u16::try_from(record.shard).unwrap_or(u16::MAX),
            status: record.status,
            method: [0; 16],
            method_len: 0,
            path: [0; ACCESS_PATH_MAX],
            path_len: 0,
            bytes: record.bytes,
            micros: u64::try_from(record.duration.as_micros()).unwrap_or(u64::MAX),
        };
        let m = record.method.len().min(line.method.len());
        line.method[..m].copy_from_slice(&record.method[..m]);
        line.method_len = m as u8;
        let p = record.path.len().min(ACCESS_PATH_MAX);
        line.path[..p].copy_from_slice(&record.path[..p]);
        line.path_len = p as u16;
        line
    }

    /// `2024-01-02T03:04:05.678Z shard=1 GET /plaintext 200 152 87us`; the time is when the
    /// writer saw it (within `POLL` of the response). Non-printable bytes are escaped.
    fn write(&self, now: SystemTime, out: &mut impl Write) -> io::Result<()> {
        let method = or_dash(&self.method[..usize::from(self.method_len)]);
        let path = or_dash(&self.path[..usize::from(self.path_len)]);
        writeln!(
            out,
            "{} shard={} {} {} {} {} {}us",
            rfc3339(now),
            self.shard,
            method,
            path,
            self.status,
            self.bytes,
            self.micros
        )
    }
}

fn or_dash(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        return "-".to_owned();
    }
    bytes.escape_ascii().to_string()
}

/// The running writer; [`AccessLogWriter::stop`] flushes what is queued.
pub(crate) struct AccessLogWriter {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// Starts the writer for `target` and returns the hook for the HTTP factories, or `None` when
/// the access log is off.
pub(crate) fn start(
    target: &AccessLog,
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
            .spawn(move || write_loop(&queue, &stop, io::BufWriter::new(out)))?
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

fn write_loop(queue: &ArrayQueue<Line>, stop: &AtomicBool, mut out: impl Write) {
    loop {
        let stopping = stop.load(Ordering::Acquire);
        let now = SystemTime::now();
        let mut wrote = false;
        while let Some(line) = queue.pop() {
            // A failing disk loses lines, it does not stop the server.
            let _ = line.write(now, &mut out);
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

/// UTC, millisecond precision, from the Unix epoch (civil-from-days, H. Hinnant's algorithm):
/// no time-zone database and no extra crate for one timestamp format.
fn rfc3339(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        since.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339_utc() {
        let t = UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        assert_eq!(rfc3339(t), "2023-11-14T22:13:20.123Z");
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(rfc3339(leap), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn a_line_escapes_and_dashes() {
        let record = AccessRecord {
            shard: 3,
            method: b"GET",
            path: b"/a\nb",
            status: 200,
            bytes: 10,
            duration: Duration::from_micros(42),
        };
        let mut out = Vec::new();
        Line::copy(&record).write(UNIX_EPOCH, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "1970-01-01T00:00:00.000Z shard=3 GET /a\\nb 200 10 42us\n"
        );
        let refused = AccessRecord {
            method: b"",
            path: b"",
            ..record
        };
        let mut out = Vec::new();
        Line::copy(&refused).write(UNIX_EPOCH, &mut out).unwrap();
        assert!(String::from_utf8(out).unwrap().contains(" - - 200 "));
    }

    #[test]
    fn a_full_queue_drops_and_counts() {
        let stats = Arc::new(ServerStats::default());
        let queue = ArrayQueue::new(1);
        let record = AccessRecord {
            shard: 0,
            method: b"GET",
            path: b"/",
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
