//! Every way a request can fail, and the one table that maps a failure to its response.
//!
//! Incomplete input is never an error: limits decide when waiting turns into a refusal.

/// Whose fault a failure was, for logs and metric labels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The peer sent something we refuse, or too slowly.
    Client,
    /// We could not serve a valid request.
    Server,
}

/// A request failure. Each variant has a fixed phrase and one row in [`HttpError::refusal`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HttpError {
    /// The request line does not parse (method, target or version token, a missing part, a
    /// space or a non-ASCII byte in the target).
    MalformedRequestLine,
    /// A header line does not parse: whitespace before the colon, obs-fold, bare CR, NUL, ...
    MalformedHeader,
    /// The request target is longer than `max_uri_bytes`.
    UriTooLong,
    /// The head is longer than `max_header_bytes`.
    HeadersTooLarge,
    /// More header fields than `max_headers`.
    TooManyHeaders,
    /// The body is larger than `max_body_bytes`.
    BodyTooLarge,
    /// The head did not arrive within the header timeout.
    HeaderTimeout,
    /// The body did not arrive within the body timeout.
    BodyTimeout,
    /// A transfer coding other than `chunked` (RFC 9112 §6.1: 501).
    UnsupportedTransferEncoding,
    /// A well-formed HTTP version whose major is not 1 (RFC 9110 §15.6.6); a malformed one is
    /// a malformed request line.
    UnsupportedVersion,
    /// HTTP/1.1 without a Host header, several Host lines, or a value that is not
    /// `uri-host [ ":" port ]` (RFC 9112 §3.2, RFC 9110 §7.2, RFC 3986 §3.2.2).
    BadHost,
    /// Content-Length together with Transfer-Encoding (RFC 9112 §6.3 rule 3: smuggling).
    LengthWithTransferEncoding,
    /// Several Content-Length fields, a list, or a value that is not a plain decimal.
    InvalidContentLength,
    /// Transfer-Encoding whose last coding is not `chunked`, or in an HTTP/1.0 request.
    ChunkedNotLast,
    /// A chunk size line that is not `1*HEXDIG [chunk-ext] CRLF` (at most 16 digits, the
    /// extensions to RFC 9112 §7.1.1's grammar), or bad chunk framing.
    InvalidChunk,
    /// A request target that is neither origin-, absolute- nor asterisk-form, or bad escapes.
    InvalidTarget,
    /// A proxied OPTIONS or TRACE whose `Max-Forwards` is not one `1*DIGIT` (RFC 9110 §7.6.2).
    InvalidMaxForwards,
    /// The offload queue was full.
    Overloaded,
    /// An offloaded handler did not finish within the offload timeout.
    HandlerTimeout,
    /// A handler panicked.
    HandlerPanicked,
    /// A proxy route's upstream refused or reset the connection, or sent an invalid response
    /// head (502).
    BadGateway,
    /// A proxy route's upstream did not connect or answer its head in time (504).
    GatewayTimeout,
    /// A proxy route's upstream has no server to try: all ejected (503).
    NoUpstream,
}

/// The response a failure turns into.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// The status code.
    pub status: u16,
    /// Whose fault it was.
    pub fault: Fault,
    /// Whether the connection closes after the response (`Connection: close`).
    pub close: bool,
}

impl HttpError {
    /// The one table: status, fault and whether to close. Every client error closes, since after
    /// a framing error we cannot know where the next request starts.
    pub fn refusal(self) -> Refusal {
        use HttpError::*;
        let (status, fault, close) = match self {
            MalformedRequestLine | MalformedHeader | BadHost | LengthWithTransferEncoding => {
                (400, Fault::Client, true)
            }
            InvalidContentLength | ChunkedNotLast | InvalidChunk | InvalidTarget
            | InvalidMaxForwards => (400, Fault::Client, true),
            UriTooLong => (414, Fault::Client, true),
            HeadersTooLarge | TooManyHeaders => (431, Fault::Client, true),
            BodyTooLarge => (413, Fault::Client, true),
            HeaderTimeout | BodyTimeout => (408, Fault::Client, true),
            UnsupportedTransferEncoding => (501, Fault::Client, true),
            UnsupportedVersion => (505, Fault::Client, true),
            Overloaded => (503, Fault::Server, false),
            // The job still runs and its completion is what lets the reactor feed us again, so
            // after a 504 the connection cannot go on: close it.
            HandlerTimeout => (504, Fault::Server, true),
            HandlerPanicked => (500, Fault::Server, false),
            // Nothing of a response reached the client: it can go on.
            BadGateway => (502, Fault::Server, false),
            GatewayTimeout => (504, Fault::Server, false),
            NoUpstream => (503, Fault::Server, false),
        };
        Refusal {
            status,
            fault,
            close,
        }
    }

    /// A fixed phrase, for logs and as the response body.
    pub fn phrase(self) -> &'static str {
        use HttpError::*;
        match self {
            MalformedRequestLine => "malformed request line",
            MalformedHeader => "malformed header field",
            UriTooLong => "request target too long",
            HeadersTooLarge => "request head too large",
            TooManyHeaders => "too many header fields",
            BodyTooLarge => "request body too large",
            HeaderTimeout => "request head timed out",
            BodyTimeout => "request body timed out",
            UnsupportedTransferEncoding => "unsupported transfer coding",
            UnsupportedVersion => "unsupported HTTP version",
            BadHost => "missing, duplicated or invalid Host",
            LengthWithTransferEncoding => "Content-Length with Transfer-Encoding",
            InvalidContentLength => "invalid Content-Length",
            ChunkedNotLast => "Transfer-Encoding must end in chunked",
            InvalidChunk => "invalid chunked framing",
            InvalidTarget => "invalid request target",
            InvalidMaxForwards => "invalid Max-Forwards",
            Overloaded => "server busy",
            HandlerTimeout => "handler timed out",
            HandlerPanicked => "handler failed",
            BadGateway => "bad gateway",
            GatewayTimeout => "gateway timeout",
            NoUpstream => "no upstream server available",
        }
    }
}

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.phrase())
    }
}

impl std::error::Error for HttpError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_errors_close_and_server_busy_does_not() {
        assert_eq!(HttpError::UriTooLong.refusal().status, 414);
        assert!(HttpError::InvalidChunk.refusal().close);
        let busy = HttpError::Overloaded.refusal();
        assert_eq!(
            (busy.status, busy.fault, busy.close),
            (503, Fault::Server, false)
        );
    }
}
