//! The process's file descriptor limit, checked against `max_connections` at start.

/// Descriptors needed besides connections: listeners, epoll and waker fds per thread, stdio,
/// log files, and what protocols open (the files handler) — a margin, not an exact count.
pub fn reserved_fds(shards: usize, listeners: usize) -> u64 {
    64 + 3 * shards as u64 + listeners as u64 * (shards as u64 + 1)
}

/// The fd limit after raising the soft limit to the hard one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FdLimit {
    /// The soft limit now in force.
    pub soft: u64,
    /// The hard limit (the ceiling for an unprivileged process).
    pub hard: u64,
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit; a connection-heavy server needs it and
/// the default soft limit (often 1024) is far below what the hard limit allows.
pub fn raise_fd_limit() -> std::io::Result<FdLimit> {
    let soft = rlimit::increase_nofile_limit(u64::MAX)?;
    let (_, hard) = rlimit::getrlimit(rlimit::Resource::NOFILE)?;
    Ok(FdLimit { soft, hard })
}

/// `Err` with the figures when `max_connections` plus the reserve does not fit in `soft`.
pub fn check_fd_limit(limit: FdLimit, max_connections: usize, reserved: u64) -> Result<(), String> {
    let needed = max_connections as u64 + reserved;
    if needed <= limit.soft {
        return Ok(());
    }
    let fits = limit.soft.saturating_sub(reserved);
    Err(format!(
        "max_connections = {max_connections} needs {needed} file descriptors ({reserved} kept \
         for listeners and threads), but the limit is {} (hard limit {}); lower max_connections \
         to at most {fits}, or raise the hard limit (ulimit -Hn, LimitNOFILE= in systemd)",
        limit.soft, limit.hard
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_limit_that_fits_passes_and_one_that_does_not_says_what_would() {
        let limit = FdLimit {
            soft: 1000,
            hard: 1000,
        };
        assert!(check_fd_limit(limit, 900, 100).is_ok());
        let error = check_fd_limit(limit, 901, 100).unwrap_err();
        assert!(error.contains("needs 1001 file descriptors"), "{error}");
        assert!(error.contains("at most 900"), "{error}");
    }
}
