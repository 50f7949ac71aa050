//! The access-log hook: one small record per response, handed to a callback the server owns.
//!
//! The record borrows from the connection, so producing it allocates nothing; the callback
//! must not block (the server's copies it into a bounded queue and drops it when full).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// Target bytes (path and query) kept per record: enough for a log line, bounded so an 8 KiB
/// target costs nothing.
pub const ACCESS_PATH_MAX: usize = 256;
/// `User-Agent` and `Referer` bytes kept per record.
pub const ACCESS_FIELD_MAX: usize = 128;

/// One response as the access log sees it.
#[derive(Debug, Clone, Copy)]
pub struct AccessRecord<'a> {
    /// The shard that answered.
    pub shard: usize,
    /// The listener (its index in the reactor's listener table).
    pub listener: usize,
    /// The client's address and port; `None` on a Unix socket.
    pub peer: Option<SocketAddr>,
    /// The method token, empty when the request was refused before its head parsed.
    pub method: &'a [u8],
    /// The raw request target with its query (at most [`ACCESS_PATH_MAX`] bytes), empty as
    /// for `method`.
    pub path: &'a [u8],
    /// `User-Agent` (at most [`ACCESS_FIELD_MAX`] bytes), empty if absent.
    pub user_agent: &'a [u8],
    /// `Referer`, bounded and empty the same way.
    pub referer: &'a [u8],
    /// The request's HTTP/1 minor version (0 or 1).
    pub minor: u8,
    /// The response status.
    pub status: u16,
    /// Response bytes queued (status line, headers and body).
    pub bytes: u64,
    /// From the first byte of the request to its response being queued.
    pub duration: Duration,
}

/// Receives every response's record, on the shard thread: it must be quick and never block.
pub type AccessLogHook = Arc<dyn Fn(&AccessRecord<'_>) + Send + Sync>;

/// The hook, made printable for the `Debug` of the structs that hold it.
#[derive(Clone)]
pub(crate) struct AccessLog(pub AccessLogHook);

impl std::fmt::Debug for AccessLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AccessLog")
    }
}
