//! Standard `process_*` figures, read from `/proc/self` (no libc: plain files).
//!
//! Reading them costs file opens (and, on a kernel before 6.2, a directory walk as long as the
//! connection count for the fd count); a scrape runs on a shard and must not pay that, so a
//! server thread refreshes a [`ProcessCache`] once a second and the scrape reads its atomics.

use std::fs;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Clock ticks per second of `/proc/<pid>/stat` times. `sysconf(_SC_CLK_TCK)` is 100 on every
/// Linux architecture we run on (USER_HZ is fixed by the kernel ABI), and asking needs libc.
const CLOCK_TICKS: f64 = 100.0;

/// The process at one moment; a figure that could not be read is `None` and is left out.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ProcessSnapshot {
    /// `process_resident_memory_bytes`.
    pub resident_bytes: Option<u64>,
    /// `process_open_fds`.
    pub open_fds: Option<u64>,
    /// `process_max_fds` (the soft limit).
    pub max_fds: Option<u64>,
    /// `process_cpu_seconds_total` (user + system).
    pub cpu_seconds: Option<f64>,
    /// `process_start_time_seconds` (Unix time).
    pub start_time_seconds: Option<f64>,
}

/// The last [`snapshot`], in atomics: written by the refreshing thread, read by scrapes.
#[derive(Debug)]
pub struct ProcessCache {
    resident_bytes: AtomicU64,
    open_fds: AtomicU64,
    max_fds: AtomicU64,
    cpu_seconds: AtomicU64,
    start_time_seconds: AtomicU64,
}

/// A figure not (yet) read. `u64::MAX` is never a real count here: an unlimited fd limit is
/// stored one below it.
const UNKNOWN: u64 = u64::MAX;

impl Default for ProcessCache {
    fn default() -> Self {
        let unknown = || AtomicU64::new(UNKNOWN);
        Self {
            resident_bytes: unknown(),
            open_fds: unknown(),
            max_fds: unknown(),
            cpu_seconds: unknown(),
            start_time_seconds: unknown(),
        }
    }
}

impl ProcessCache {
    /// Reads `/proc/self` now and stores the figures (off the shards: it walks the fd table).
    pub fn refresh(&self) {
        let p = snapshot();
        let count = |v: Option<u64>| v.map_or(UNKNOWN, |v| v.min(UNKNOWN - 1));
        let float = |v: Option<f64>| v.map_or(UNKNOWN, f64::to_bits);
        self.resident_bytes.store(count(p.resident_bytes), Relaxed);
        self.open_fds.store(count(p.open_fds), Relaxed);
        self.max_fds.store(count(p.max_fds), Relaxed);
        self.cpu_seconds.store(float(p.cpu_seconds), Relaxed);
        self.start_time_seconds
            .store(float(p.start_time_seconds), Relaxed);
    }

    /// The figures of the last refresh (all `None` before the first).
    pub fn get(&self) -> ProcessSnapshot {
        let count = |a: &AtomicU64| Some(a.load(Relaxed)).filter(|&v| v != UNKNOWN);
        let float = |a: &AtomicU64| count(a).map(f64::from_bits);
        ProcessSnapshot {
            resident_bytes: count(&self.resident_bytes),
            open_fds: count(&self.open_fds),
            max_fds: count(&self.max_fds),
            cpu_seconds: float(&self.cpu_seconds),
            start_time_seconds: float(&self.start_time_seconds),
        }
    }
}

/// Reads `/proc/self`.
pub fn snapshot() -> ProcessSnapshot {
    let stat = fs::read_to_string("/proc/self/stat").ok();
    let fields = stat.as_deref().map(stat_fields);
    let field = |i: usize| -> Option<f64> { fields.as_ref()?.get(i)?.parse().ok() };
    let cpu_seconds = field(13)
        .zip(field(14))
        .map(|(user, system)| (user + system) / CLOCK_TICKS);
    let start_time_seconds = boot_time().and_then(|boot| Some(boot + field(21)? / CLOCK_TICKS));
    ProcessSnapshot {
        resident_bytes: status_kib("VmRSS:").map(|kib| kib * 1024),
        open_fds: open_fds(),
        max_fds: max_open_files(),
        cpu_seconds,
        start_time_seconds,
    }
}

/// `process_open_fds`. Since Linux 6.2 the size `stat(2)` gives for `/proc/self/fd` is the
/// count, taken from the fd table's bitmap: a few hundred words at 10,000 fds, where walking
/// the directory lists every fd (0.7% of a core at 5,000 connections when it was done once a
/// second, docs/BENCHMARKS.md). An older kernel says 0 there (no process has no fd), and the
/// directory is walked, less the fd the walk itself holds open.
fn open_fds() -> Option<u64> {
    match fs::metadata("/proc/self/fd") {
        Ok(dir) if dir.len() > 0 => Some(dir.len()),
        _ => walked_fds(),
    }
}

fn walked_fds() -> Option<u64> {
    let dir = fs::read_dir("/proc/self/fd").ok()?;
    Some((dir.count() as u64).saturating_sub(1))
}

/// The fields of `/proc/self/stat` after the command name (which may hold spaces and
/// parentheses, so split after the last `)`), numbered as in proc(5) minus one.
fn stat_fields(stat: &str) -> Vec<&str> {
    let rest = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    // proc(5) numbers from 1 and the first two (pid, comm) are gone: pad them back.
    let mut fields = vec!["", ""];
    fields.extend(rest.split_whitespace());
    fields
}

fn status_kib(key: &str) -> Option<u64> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    line[key.len()..].split_whitespace().next()?.parse().ok()
}

fn max_open_files() -> Option<u64> {
    let limits = fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let soft = line["Max open files".len()..].split_whitespace().next()?;
    match soft {
        "unlimited" => Some(u64::MAX),
        n => n.parse().ok(),
    }
}

fn boot_time() -> Option<f64> {
    let stat = fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|l| l.starts_with("btime "))?;
    line["btime ".len()..].trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let p = snapshot();
        assert!(p.resident_bytes.unwrap() > 0);
        assert!(p.open_fds.unwrap() >= 3);
        assert!(p.max_fds.unwrap() >= p.open_fds.unwrap());
        assert!(p.cpu_seconds.unwrap() >= 0.0);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        let start = p.start_time_seconds.unwrap();
        assert!(start <= now + 1.0 && start > now - 86_400.0 * 365.0);
    }

    /// The count follows fds opened and closed, and agrees with the directory walk. Other
    /// tests of this binary run on other threads and may hold a few fds for a moment, hence
    /// the slack.
    #[test]
    fn the_fd_count_follows_opens_and_closes() {
        const SLACK: u64 = 8;
        let before = open_fds().unwrap();
        let files: Vec<_> = (0..64)
            .map(|_| fs::File::open("/dev/null").unwrap())
            .collect();
        let with = open_fds().unwrap();
        assert!(
            with + SLACK >= before + 64,
            "{before} then {with} with 64 more"
        );
        let walked = walked_fds().unwrap();
        assert!(
            with.abs_diff(walked) <= SLACK,
            "count {with}, walk {walked}"
        );
        drop(files);
        let after = open_fds().unwrap();
        assert!(
            after <= with - 64 + SLACK,
            "{with} then {after} with 64 closed"
        );
    }

    #[test]
    fn the_cache_holds_the_last_refresh() {
        let cache = ProcessCache::default();
        assert_eq!(cache.get(), ProcessSnapshot::default());
        cache.refresh();
        let got = cache.get();
        assert!(got.open_fds.unwrap() >= 3);
        assert!(got.cpu_seconds.is_some() && got.start_time_seconds.is_some());
    }

    #[test]
    fn a_command_name_with_parentheses_does_not_shift_fields() {
        let fields = stat_fields("42 (a) b) S 1 2 3 4 5 6 7 8 9 10 11 12 13");
        assert_eq!(fields[2], "S");
        assert_eq!(fields[13], "11"); // proc(5) field 14, utime
    }
}
