//! Exit statuses (documented in docs/LOAD.md) and SIGINT handling.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use crate::report::Report;
use crate::run::RunError;

/// The run completed and every measured request got a response (any status).
pub const OK: i32 = 0;
/// The run could not start (threads, poller) or its report not be written.
pub const FAILURE: i32 = 1;
/// Bad command line: unknown flag, bad value, malformed `-H`, bad target.
pub const USAGE: i32 = 2;
/// No connection could be made: refused or unanswered before the run, or
/// not one connect succeeded during it.
pub const UNREACHABLE: i32 = 3;
/// Connections were made but not one measured request completed.
pub const NOTHING_COMPLETED: i32 = 4;
/// The run completed, but some measured requests failed (read, write,
/// timeout, malformed) or were unfinished. Non-2xx responses are answers,
/// not errors: they are reported, and do not change the status.
pub const ERRORS: i32 = 5;
/// A second SIGINT: the process quit at once, without a report.
pub const INTERRUPTED: i32 = 130;

const SIGINT: i32 = 2;

/// The status a finished run exits with.
pub fn for_report(r: &Report) -> i32 {
    if r.connections.opened == 0 {
        UNREACHABLE
    } else if r.requests.completed == 0 {
        NOTHING_COMPLETED
    } else if r.requests.failed + r.requests.unfinished > 0 {
        ERRORS
    } else {
        OK
    }
}

pub fn for_error(e: &RunError) -> i32 {
    match e {
        RunError::Config(_) => USAGE,
        RunError::Unreachable(_) => UNREACHABLE,
        RunError::Setup(_) | RunError::Worker(_) => FAILURE,
    }
}

/// The first SIGINT sets `stop`; the next one exits with `INTERRUPTED`.
pub fn on_interrupt(stop: &Arc<AtomicBool>) -> std::io::Result<()> {
    // Registered first so it sees the flag before the second handler sets it:
    // signal-hook runs a signal's actions in registration order.
    signal_hook::flag::register_conditional_shutdown(SIGINT, INTERRUPTED, Arc::clone(stop))?;
    signal_hook::flag::register(SIGINT, Arc::clone(stop))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_by_outcome() {
        let mut r = Report::default();
        assert_eq!(for_report(&r), UNREACHABLE);
        r.connections.opened = 2;
        assert_eq!(for_report(&r), NOTHING_COMPLETED);
        r.requests.completed = 5;
        r.errors.status = 5;
        assert_eq!(for_report(&r), OK, "non-2xx answers are not errors");
        r.requests.unfinished = 1;
        assert_eq!(for_report(&r), ERRORS);
        r.requests.unfinished = 0;
        r.requests.failed = 1;
        assert_eq!(for_report(&r), ERRORS);
    }
}
