//! The accept path pieces shared by the acceptor thread and by shards in reuseport mode:
//! error classification, rate-limited logging, connection limits, and the gate through which
//! shards wake an acceptor that stopped for lack of room. The loop itself is in
//! `accept_loop.rs`, one for both.

use std::io;
use std::sync::atomic::{fence, AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_utils::CachePadded;

use crate::stats::{PauseCause, ShardStats};

/// What one failed `accept` means for the loop.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum AcceptFailure {
    /// The backlog is empty.
    Drained,
    /// No fd (or kernel memory) left: pause on a timer, the backlog keeps the connection.
    Exhausted,
    /// That one connection failed (reset before accept, a firewall, a signal); go on.
    Connection,
    /// Anything else is about the listening socket itself (it was shut down, is no longer
    /// listening, or is not a socket): retrying at once would spin, so that listener backs
    /// off on a timer.
    Listener,
}

/// Allow-lists the errors that concern one connection; see accept(2), "Error handling": Linux
/// passes a new connection's pending network errors on as accept's own error.
pub(crate) fn classify(error: &io::Error) -> AcceptFailure {
    if error.kind() == io::ErrorKind::WouldBlock {
        return AcceptFailure::Drained;
    }
    match error.raw_os_error() {
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM) => {
            AcceptFailure::Exhausted
        }
        Some(
            libc::ECONNABORTED
            | libc::EPROTO
            | libc::EPERM
            | libc::EINTR
            | libc::ECONNRESET
            | libc::ETIMEDOUT
            | libc::ENETDOWN
            | libc::ENOPROTOOPT
            | libc::EHOSTDOWN
            | libc::ENONET
            | libc::EHOSTUNREACH
            | libc::ENETUNREACH,
        ) => AcceptFailure::Connection,
        _ => AcceptFailure::Listener,
    }
}

/// Lets a line through at most once a second, and counts the ones it held back.
#[derive(Debug, Default)]
pub(crate) struct RateLimitedLog {
    last: Option<Instant>,
    suppressed: u64,
}

impl RateLimitedLog {
    /// `Some(lines held back since the last one)` when a line may be logged now.
    pub fn allow(&mut self, now: Instant) -> Option<u64> {
        if self
            .last
            .is_some_and(|at| now.duration_since(at) < Duration::from_secs(1))
        {
            self.suppressed += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.suppressed))
    }
}

/// Lets shards wake an acceptor that stopped because every shard was full (connection limit
/// or inbox).
///
/// Atomic ordering: the acceptor stores `waiting` and then loads the shards' counters; a
/// shard stores its counter and then loads `waiting`. Store-then-load on both sides can be
/// reordered on any CPU (x86 included), so each side has a `SeqCst` fence between its store and
/// its load: then at least one of them sees the other's store, and either the acceptor's
/// re-check finds the room or the shard finds the flag and wakes it. The 250 ms re-check in
/// the acceptor is a safety net for a failed waker write, not the mechanism.
pub(crate) struct AcceptGate {
    waiting: AtomicBool,
    waker: Option<mio::Waker>,
}

impl AcceptGate {
    pub fn new(waker: Option<mio::Waker>) -> Self {
        Self {
            waiting: AtomicBool::new(false),
            waker,
        }
    }

    /// Raises the flag; the caller re-checks for room afterwards (see the type's note).
    pub fn set_waiting(&self) {
        self.waiting.store(true, Ordering::SeqCst);
        fence(Ordering::SeqCst);
    }

    pub fn clear_waiting(&self) {
        self.waiting.store(false, Ordering::SeqCst);
    }

    /// Called by a shard after it published the room it freed (`active`, `handoffs_taken`).
    pub fn capacity_freed(&self) {
        if self.waker.is_none() {
            return;
        }
        fence(Ordering::SeqCst);
        if self.waiting.load(Ordering::Relaxed) && self.waiting.swap(false, Ordering::SeqCst) {
            self.wake();
        }
    }

    /// Wakes the acceptor (to stop, or to pick up a listener command).
    pub fn wake(&self) {
        if let Some(waker) = &self.waker {
            let _ = waker.wake();
        }
    }
}

/// The connection limits, read against every shard's published counters.
#[derive(Clone)]
pub(crate) struct Limits {
    pub global: usize,
    pub per_shard: Option<usize>,
    pub shards: Arc<[Arc<CachePadded<ShardStats>>]>,
    /// Reuseport mode: connections admitted over all shards (accepted or about to be, and not
    /// yet closed). Shards accept concurrently, so each takes a place here before `accept`
    /// (an atomic add), which holds `global` exactly; the acceptor, one thread, needs none.
    pub admitted: Arc<CachePadded<AtomicUsize>>,
}

impl Limits {
    /// Takes one of the `global` places; `false` (and nothing taken) when all are taken.
    pub fn admit(&self) -> bool {
        if self.admitted.fetch_add(1, Ordering::AcqRel) < self.global {
            return true;
        }
        self.admitted.fetch_sub(1, Ordering::AcqRel);
        false
    }

    /// Gives back a place taken with [`admit`](Self::admit).
    pub fn release(&self) {
        self.admitted.fetch_sub(1, Ordering::AcqRel);
    }
}

/// An accept pause: since when, until when, and why. A pause for room (connection limit,
/// inbox) also ends as soon as room is found.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Pause {
    pub since: Instant,
    pub until: Instant,
    pub cause: PauseCause,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(errno: i32) -> AcceptFailure {
        classify(&io::Error::from_raw_os_error(errno))
    }

    #[test]
    fn accept_errors_are_classified_by_allow_list() {
        assert_eq!(
            classify(&io::ErrorKind::WouldBlock.into()),
            AcceptFailure::Drained
        );
        for errno in [libc::EMFILE, libc::ENFILE, libc::ENOBUFS, libc::ENOMEM] {
            assert_eq!(os(errno), AcceptFailure::Exhausted, "errno {errno}");
        }
        for errno in [
            libc::ECONNABORTED,
            libc::EPROTO,
            libc::EPERM,
            libc::EINTR,
            libc::ENETDOWN,
            libc::EHOSTUNREACH,
        ] {
            assert_eq!(os(errno), AcceptFailure::Connection, "errno {errno}");
        }
        // Not listening, not a socket, a bad fd, or anything unforeseen: the listener's fault.
        for errno in [
            libc::EINVAL,
            libc::EBADF,
            libc::ENOTSOCK,
            libc::EOPNOTSUPP,
            libc::EFAULT,
            9999,
        ] {
            assert_eq!(os(errno), AcceptFailure::Listener, "errno {errno}");
        }
        let no_errno = io::Error::other("no errno");
        assert_eq!(classify(&no_errno), AcceptFailure::Listener);
    }

    #[test]
    fn a_rate_limited_log_lets_one_line_a_second_through_and_counts_the_rest() {
        let mut log = RateLimitedLog::default();
        let t0 = Instant::now();
        assert_eq!(log.allow(t0), Some(0));
        assert_eq!(log.allow(t0 + Duration::from_millis(10)), None);
        assert_eq!(log.allow(t0 + Duration::from_millis(999)), None);
        assert_eq!(log.allow(t0 + Duration::from_secs(1)), Some(2));
    }
}
