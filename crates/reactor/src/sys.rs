//! The only module of the workspace with `unsafe`: taking ownership of file descriptors that
//! systemd passed to this process by socket activation (sd_listen_fds(3)), asking glibc's
//! allocator to give free memory back (malloc_trim(3), mallinfo2(3)), and asking the kernel
//! how much of a file is in the page cache (cachestat(2), which libc does not wrap), and
//! reading the monotonic clock without std's wrapping around it.

use std::os::fd::{FromRawFd, OwnedFd, RawFd};

/// systemd passes the sockets as fds 3, 4, ... (`SD_LISTEN_FDS_START`).
const LISTEN_FDS_START: RawFd = 3;

/// The sockets systemd passed, with their fd numbers and names (`FileDescriptorName=`,
/// default the socket unit's name; `None` when `LISTEN_FDNAMES` gives none). The variables are removed whatever happens, so neither a second call nor a
/// child process can take the same fds again. Empty when the variables are absent or meant
/// for another process (`LISTEN_PID`).
pub(crate) fn take_listen_fds() -> Vec<(RawFd, Option<String>, OwnedFd)> {
    let pid = std::env::var("LISTEN_PID").ok();
    let count = std::env::var("LISTEN_FDS").ok();
    let names = std::env::var("LISTEN_FDNAMES").unwrap_or_default();
    for name in ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"] {
        std::env::remove_var(name);
    }
    let ours = pid.and_then(|p| p.parse::<u32>().ok()) == Some(std::process::id());
    let count: RawFd = count
        .and_then(|n| n.parse().ok())
        .filter(|_| ours)
        .unwrap_or(0);
    let mut names = names.split(':');
    (0..count)
        .filter_map(|i| {
            let fd = LISTEN_FDS_START + i;
            let name = names
                .next()
                .filter(|n| !n.is_empty() && *n != "unknown")
                .map(str::to_owned);
            // An fd that is not open cannot be owned; /proc tells without touching it.
            if std::fs::symlink_metadata(format!("/proc/self/fd/{fd}")).is_err() {
                tracing::warn!(
                    fd,
                    ?name,
                    "systemd passed an fd that is not open; ignoring it"
                );
                return None;
            }
            // SAFETY: `fd` is open (checked above) and was passed to this very process by the
            // service manager (LISTEN_PID matched); nothing else in the process owns it, and
            // the variables were removed above, so it is taken exactly once.
            let owned = unsafe { OwnedFd::from_raw_fd(fd) };
            Some((fd, name, owned))
        })
        .collect()
}

/// Gives the allocator's free memory (in every arena) back to the system; a no-op where the C
/// library is not glibc.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub(crate) fn release_free_memory() {
    // SAFETY: malloc_trim takes no pointer and touches only the allocator's own free lists,
    // under the allocator's locks; glibc documents it as safe to call from any thread.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// See the glibc version: other allocators keep their own policy.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub(crate) fn release_free_memory() {}

/// Bytes the allocator holds free in its arenas (not counting what it has already given back);
/// 0 where the C library is not glibc.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub(crate) fn free_heap_bytes() -> usize {
    // SAFETY: mallinfo2 takes no argument and returns a plain struct by value; it reads the
    // arenas' statistics under their locks and is safe to call from any thread.
    let info = unsafe { libc::mallinfo2() };
    info.fordblks
}

/// See the glibc version.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub(crate) fn free_heap_bytes() -> usize {
    0
}

/// `struct cachestat_range` of linux/mman.h.
#[repr(C)]
struct CachestatRange {
    off: u64,
    len: u64,
}

/// `struct cachestat` of linux/mman.h.
#[repr(C)]
#[derive(Default)]
struct Cachestat {
    nr_cache: u64,
    nr_dirty: u64,
    nr_writeback: u64,
    nr_evicted: u64,
    nr_recently_evicted: u64,
}

/// cachestat's number: 451 on every architecture (it came after the syscall tables were
/// unified, Linux 6.5).
#[cfg(target_os = "linux")]
const SYS_CACHESTAT: libc::c_long = 451;

/// Pages of `len` bytes of `file` from `offset` that are in the page cache. Never blocks on
/// the disk: the kernel only looks the pages up. `Err(ENOSYS)` before Linux 6.5.
#[cfg(target_os = "linux")]
pub(crate) fn cached_pages(file: &std::fs::File, offset: u64, len: u64) -> std::io::Result<u64> {
    use std::os::fd::AsRawFd;
    let range = CachestatRange { off: offset, len };
    let mut stat = Cachestat::default();
    // SAFETY: cachestat(fd, *const cachestat_range, *mut cachestat, flags) reads `range` and
    // writes one `struct cachestat` into `stat`; both are live, properly aligned #[repr(C)]
    // values of the kernel's layout (five and two u64), borrowed only for the call. `fd` is
    // open for the call's length because `file` is borrowed. An unknown syscall returns
    // ENOSYS and touches nothing.
    let rc = unsafe {
        libc::syscall(
            SYS_CACHESTAT,
            file.as_raw_fd(),
            &range as *const CachestatRange,
            &mut stat as *mut Cachestat,
            0u32,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(stat.nr_cache)
}

/// See the Linux version.
#[cfg(not(target_os = "linux"))]
pub(crate) fn cached_pages(_: &std::fs::File, _: u64, _: u64) -> std::io::Result<u64> {
    Err(std::io::ErrorKind::Unsupported.into())
}

/// `CLOCK_MONOTONIC` in nanoseconds (the clock `Instant` reads), from an arbitrary start
/// (boot). glibc reads it from the vDSO without a syscall. std's `Instant::now` adds range
/// checks, and its `duration_since` a timespec subtraction with a borrow and a `Result`: about
/// 110 instructions for the read and the subtraction every HTTP request pays for its latency
/// (callgrind, S1), where this and a u64 subtraction take about 25. (rustix's own vDSO reader
/// would need no `unsafe`, but its auxv probe crashes callgrind, which the instruction counts
/// of docs/BENCHMARKS.md are measured under.)
#[inline]
pub fn monotonic_nanos() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one `timespec` through the pointer, which points at a live
    // local of exactly that type, and keeps no pointer to it; CLOCK_MONOTONIC exists on every
    // Linux, so it cannot fail (and a failure would leave the zeros: a duration of 0).
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    // Never negative; u64 nanoseconds last 584 years of uptime.
    (now.tv_sec as u64) * 1_000_000_000 + now.tv_nsec as u64
}

/// The page size, the unit of the page cache.
pub(crate) fn page_size() -> u64 {
    // SAFETY: sysconf takes a constant and returns a value; it touches no memory of ours.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(size).ok().filter(|&s| s > 0).unwrap_or(4096)
}

/// Sets `SO_RCVLOWAT`: readiness (and a blocking read) waits until `bytes` bytes are queued,
/// so a reader that cannot act on less is woken once instead of once per segment. Linux
/// re-checks a socket's readiness when the mark is set, so lowering it wakes a waiting reader
/// at once. Neither socket2 nor rustix wraps this option.
pub fn set_recv_low_water(fd: std::os::fd::BorrowedFd<'_>, bytes: u32) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let value = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    // SAFETY: `fd` is a borrowed, hence open, descriptor for the whole call; the option value
    // points at a live `c_int` on this stack frame and its exact size is passed, so the kernel
    // reads no more than that and keeps no pointer to it.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVLOWAT,
            std::ptr::from_ref(&value).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}
