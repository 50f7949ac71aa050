//! What the machine allows: CPUs for `shards = "auto"` and the hard fd
//! limit for `max_connections`. A value, not a global, so tests are
//! deterministic and the server can decide when to sample it.

use crate::defaults::{AUTO_MAX_CONNECTIONS_CAP, FD_MARGIN_BASE};
use crate::schema::{MaxConnections, Server, Shards};

/// The machine facts validation depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Host {
    /// CPUs available to this process.
    pub cpus: usize,
    /// The hard `RLIMIT_NOFILE`; the server raises its soft limit to this.
    /// `u64::MAX` when unlimited.
    pub fd_hard_limit: u64,
}

impl Host {
    /// This machine, now.
    pub fn current() -> Host {
        // If the limit cannot be read, do not refuse to start on a guess;
        // the server's own setrlimit at start-up will report the real error.
        let fd_hard_limit =
            rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(u64::MAX, |(_, hard)| hard);
        Host {
            cpus: num_cpus::get().max(1),
            fd_hard_limit,
        }
    }
}

impl Default for Host {
    fn default() -> Self {
        Host::current()
    }
}

/// Shards to run: `auto` is one per CPU.
pub(crate) fn shard_count(server: &Server, host: &Host) -> usize {
    match server.shards {
        Shards::Auto => host.cpus.max(1),
        Shards::Count(n) => n as usize,
    }
}

/// File descriptors that are not connections: stdio, logs and offloaded file reads, an epoll,
/// a waker and a timer per shard, and the listening sockets, counted as if each listener had
/// one per shard plus the acceptor's (so a reload that switches nothing cannot run out). The
/// reactor reserves exactly this much at start (`coreloop_reactor::limits::reserved_fds`; a
/// test in the server crate holds the two equal), so `check-config` prints the limit the
/// server runs with.
pub(crate) fn fd_margin(server: &Server, host: &Host, listeners: usize) -> u64 {
    let shards = shard_count(server, host) as u64;
    FD_MARGIN_BASE + 3 * shards + listeners as u64 * (shards + 1)
}

/// The global connection limit, with `auto` resolved; None when the fd
/// limit leaves no room at all.
pub(crate) fn connection_limit(server: &Server, host: &Host, listeners: usize) -> Option<u64> {
    match server.max_connections {
        MaxConnections::Limit(n) => Some(n),
        MaxConnections::Auto => {
            let room = host
                .fd_hard_limit
                .checked_sub(fd_margin(server, host, listeners))?;
            (room > 0).then_some(room.min(AUTO_MAX_CONNECTIONS_CAP))
        }
    }
}

impl Host {
    /// A machine with no fd limit, for checks that must not depend on this one.
    pub(crate) fn unlimited() -> Host {
        Host {
            cpus: 1,
            fd_hard_limit: u64::MAX,
        }
    }
}
