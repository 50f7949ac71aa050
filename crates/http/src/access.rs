//! The access-log hook: one small record per response, handed to a callback the server owns.
//!
//! The record borrows from the connection, so producing it allocates nothing; the callback
//! must not block (the server's copies it into a bounded queue and drops it when full).

use std::sync::Arc;
use std::time::Duration;

/// Path bytes kept per record: enough for a log line, bounded so a 8 KiB target costs nothing.
pub const ACCESS_PATH_MAX: usize = 256;

/// One response as the access log sees it.
#[derive(Debug, Clone, Copy)]
pub struct AccessRecord<'a> {
    /// The shard that answered.
    pub shard: usize,
    /// The method token, empty when the request was refused before its head parsed.
    pub method: &'a [u8],
    /// The raw request target (at most [`ACCESS_PATH_MAX`] bytes), empty as for `method`.
    pub path: &'a [u8],
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
