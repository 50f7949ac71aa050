//! Limits and timeouts of the HTTP protocol. Plain values; the server maps its config onto them.

use std::time::Duration;

/// Header fields parsed at most, whatever `max_headers` says: the largest `header_count` the
/// config accepts. The parser's array lives on the stack, uninitialised (no allocation, no
/// fill); limits up to 128 use a 128-entry array, larger ones one of this size.
pub const HEADER_CAPACITY: usize = 1024;

/// Limits and timeouts. [`Default`] gives values fit for the internet.
#[derive(Clone, Debug, PartialEq)]
pub struct HttpConfig {
    /// Bytes of the request head (request line and header fields); more is 431.
    pub max_header_bytes: usize,
    /// Header fields; more is 431. Capped at [`HEADER_CAPACITY`].
    pub max_headers: usize,
    /// Bytes of the request target; more is 414.
    pub max_uri_bytes: usize,
    /// Bytes of a request body (decoded); more is 413.
    pub max_body_bytes: u64,
    /// Responses one `on_input` may produce before waiting for them to be written.
    pub max_pipeline_depth: usize,
    /// Pending output above which no more pipelined requests are answered until it is written.
    pub max_pending_output: usize,
    /// Requests served on one connection; the last one carries `Connection: close`. 0 = no limit.
    pub max_requests_per_connection: u64,
    /// Age after which a connection's next response carries `Connection: close`.
    pub max_connection_age: Option<Duration>,
    /// From accept, or from the first byte of a request, to the end of its head: 408 after.
    pub header_timeout: Duration,
    /// From the end of the head to the end of the body: 408 after.
    pub body_timeout: Duration,
    /// A keep-alive connection with no request in progress is closed (silently) after this.
    pub idle_timeout: Duration,
    /// An offloaded handler answers 504 after this.
    pub offload_timeout: Duration,
    /// While the server drains, an idle keep-alive connection stays open this long, so that a
    /// request already on its way is answered (with `Connection: close`) instead of meeting
    /// a closed socket.
    pub drain_grace: Duration,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            max_header_bytes: 16 * 1024,
            max_headers: 64,
            max_uri_bytes: 8 * 1024,
            max_body_bytes: 1024 * 1024,
            max_pipeline_depth: 64,
            max_pending_output: 256 * 1024,
            max_requests_per_connection: 0,
            max_connection_age: None,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            drain_grace: Duration::from_millis(500),
            offload_timeout: Duration::from_secs(30),
        }
    }
}
