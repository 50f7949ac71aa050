//! Response encoding: status lines, the cached `Date`, and responses pre-encoded at config time.
//!
//! Everything here appends to the connection's output buffer and allocates nothing once that
//! buffer has grown to its working size.

use std::time::SystemTime;

/// `Date` values are IMF-fixdate, always this long: `Sun, 06 Nov 1994 08:49:37 GMT`.
pub const DATE_LEN: usize = 29;

/// A formatted `Date` value, refreshed once a second by the shard loop (never by reading a clock).
pub type DateBytes = [u8; DATE_LEN];

/// Formats `wall` as an IMF-fixdate (RFC 9110 §5.6.7).
pub fn format_date(wall: SystemTime) -> DateBytes {
    let text = httpdate::fmt_http_date(wall);
    let mut bytes = *b"Thu, 01 Jan 1970 00:00:00 GMT";
    if text.len() == DATE_LEN {
        bytes.copy_from_slice(text.as_bytes());
    }
    bytes
}

/// The reason phrase of `status`: every code RFC 9110 §15 defines, and RFC 6585's 428, 429
/// and 431. Any other code (a `static` route or an upstream may answer one) gets an empty
/// phrase, which RFC 9112 §4 allows (`status-code SP [ reason-phrase ]`): a client must not
/// depend on the phrase, and an invented one would only mislead.
pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        203 => "Non-Authoritative Information",
        204 => "No Content",
        205 => "Reset Content",
        206 => "Partial Content",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        305 => "Use Proxy",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Range Not Satisfiable",
        417 => "Expectation Failed",
        421 => "Misdirected Request",
        422 => "Unprocessable Content",
        426 => "Upgrade Required",
        428 => "Precondition Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "",
    }
}

/// Whether a response with `status` may carry a body (RFC 9110 §6.4.1: 1xx, 204 and 304 never do).
pub fn has_body(status: u16) -> bool {
    !(status < 200 || status == 204 || status == 304)
}

/// Appends the decimal form of `n` without allocating.
pub fn push_decimal(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

/// Appends `HTTP/1.1 <status> <reason>\r\nServer: coreloop\r\n`.
pub fn push_status_line(out: &mut Vec<u8>, status: u16) {
    out.extend_from_slice(b"HTTP/1.1 ");
    push_decimal(out, u64::from(status));
    out.push(b' ');
    out.extend_from_slice(reason(status).as_bytes());
    out.extend_from_slice(b"\r\nServer: coreloop\r\n");
}

/// The parts of a response computed per request.
#[derive(Clone, Copy, Debug)]
pub struct Reply<'a> {
    /// Status code.
    pub status: u16,
    /// `Content-Type` value, if any.
    pub content_type: Option<&'a [u8]>,
    /// Further header lines, each ending in CRLF.
    pub extra: &'a [u8],
    /// The body (left out for HEAD and bodiless statuses; its length is still announced).
    pub body: &'a [u8],
}

/// How the end of a response is written: the per-request facts.
#[derive(Clone, Copy, Debug)]
pub struct Finish<'a> {
    /// The cached date.
    pub date: &'a DateBytes,
    /// Add `Connection: close`.
    pub close: bool,
    /// HEAD: headers only.
    pub head_only: bool,
    /// An HTTP/1.0 exchange the connection outlives: say `Connection: keep-alive`, since a
    /// 1.0 client closes otherwise (RFC 9112 §9.3, Appendix C.2.2). `close` wins.
    pub announce_keep_alive: bool,
}

/// Encodes a whole response.
pub fn write_reply(out: &mut Vec<u8>, reply: &Reply<'_>, finish: Finish<'_>) {
    write_sized(out, reply, reply.body.len() as u64, finish);
}

/// Encodes a response announcing `length` bytes: for HEAD, `reply.body` may be empty while
/// `length` is what GET would send (RFC 9110 §9.3.2).
pub fn write_sized(out: &mut Vec<u8>, reply: &Reply<'_>, length: u64, finish: Finish<'_>) {
    push_status_line(out, reply.status);
    if let Some(content_type) = reply.content_type {
        out.extend_from_slice(b"Content-Type: ");
        out.extend_from_slice(content_type);
        out.extend_from_slice(b"\r\n");
    }
    if has_body(reply.status) {
        out.extend_from_slice(b"Content-Length: ");
        push_decimal(out, length);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(reply.extra);
    let body = if has_body(reply.status) && !finish.head_only {
        reply.body
    } else {
        &[]
    };
    write_tail(out, finish, body);
}

/// `Date`, optional `Connection: close`, the empty line and the body.
pub fn write_tail(out: &mut Vec<u8>, finish: Finish<'_>, body: &[u8]) {
    out.extend_from_slice(b"Date: ");
    out.extend_from_slice(finish.date);
    if finish.close {
        out.extend_from_slice(b"\r\nConnection: close\r\n\r\n");
    } else if finish.announce_keep_alive {
        out.extend_from_slice(b"\r\nConnection: keep-alive\r\n\r\n");
    } else {
        out.extend_from_slice(b"\r\n\r\n");
    }
    out.extend_from_slice(body);
}

/// A response encoded once at config time: serving it copies two slices and the date.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Prepared {
    status: u16,
    head: Vec<u8>,
    body: Vec<u8>,
    /// The whole keep-alive HTTP/1.1 response, the common answer, with a placeholder `Date`
    /// at `date_at`: serving it is one copy and the date patched in (six appends cost 133
    /// instructions per pipelined request in callgrind).
    whole: Vec<u8>,
    date_at: usize,
}

impl Prepared {
    /// Encodes the status line and every header but `Date` and `Connection`.
    pub fn new(reply: &Reply<'_>) -> Self {
        let mut head = Vec::new();
        push_status_line(&mut head, reply.status);
        if let Some(content_type) = reply.content_type {
            head.extend_from_slice(b"Content-Type: ");
            head.extend_from_slice(content_type);
            head.extend_from_slice(b"\r\n");
        }
        if has_body(reply.status) {
            head.extend_from_slice(b"Content-Length: ");
            push_decimal(&mut head, reply.body.len() as u64);
            head.extend_from_slice(b"\r\n");
        }
        head.extend_from_slice(reply.extra);
        let body = if has_body(reply.status) {
            reply.body.to_vec()
        } else {
            Vec::new()
        };
        let mut whole = head.clone();
        let keep_alive = Finish {
            date: &[b' '; DATE_LEN],
            close: false,
            head_only: false,
            announce_keep_alive: false,
        };
        write_tail(&mut whole, keep_alive, &body);
        let date_at = head.len() + b"Date: ".len();
        Self {
            status: reply.status,
            head,
            body,
            whole,
            date_at,
        }
    }

    /// The status code.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// Appends the response.
    #[inline]
    pub fn write(&self, out: &mut Vec<u8>, finish: Finish<'_>) {
        if !(finish.close || finish.head_only || finish.announce_keep_alive) {
            let start = out.len();
            out.extend_from_slice(&self.whole);
            out[start + self.date_at..][..DATE_LEN].copy_from_slice(finish.date);
            return;
        }
        out.extend_from_slice(&self.head);
        let body: &[u8] = if finish.head_only { &[] } else { &self.body };
        write_tail(out, finish, body);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_rfc_9110_defines_has_its_phrase_and_others_none() {
        for (status, phrase) in [
            (101, "Switching Protocols"),
            (201, "Created"),
            (301, "Moved Permanently"),
            (302, "Found"),
            (308, "Permanent Redirect"),
            (401, "Unauthorized"),
            (403, "Forbidden"),
            (429, "Too Many Requests"),
            (502, "Bad Gateway"),
            (503, "Service Unavailable"),
            (504, "Gateway Timeout"),
        ] {
            assert_eq!(reason(status), phrase, "{status}");
        }
        // RFC 9110 §15 defines 44 codes; 428, 429 and 431 come from RFC 6585.
        let named = (100..600).filter(|&s| !reason(s).is_empty()).count();
        assert_eq!(named, 47);
        for unregistered in [102, 299, 306, 418, 499, 599] {
            assert_eq!(reason(unregistered), "", "{unregistered}");
        }
    }
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn dates_are_imf_fixdate() {
        let date = format_date(UNIX_EPOCH + Duration::from_secs(784_111_777));
        assert_eq!(&date, b"Sun, 06 Nov 1994 08:49:37 GMT");
    }

    #[test]
    fn prepared_and_direct_encodings_agree() {
        let reply = Reply {
            status: 200,
            content_type: Some(b"text/plain"),
            extra: b"X-A: b\r\n",
            body: b"hi",
        };
        let date = format_date(UNIX_EPOCH);
        for (close, head_only, announce_keep_alive) in [
            (false, false, false),
            (true, false, false),
            (false, true, false),
            (false, false, true),
            (true, false, true),
        ] {
            let finish = Finish {
                date: &date,
                close,
                head_only,
                announce_keep_alive,
            };
            // A bodiless status too: the whole keep-alive answer must match it as well.
            let empty = Reply {
                status: 204,
                ..reply
            };
            for reply in [reply, empty] {
                let (mut direct, mut prepared) = (b"before".to_vec(), b"before".to_vec());
                write_reply(&mut direct, &reply, finish);
                Prepared::new(&reply).write(&mut prepared, finish);
                assert_eq!(direct, prepared);
            }
        }
    }

    #[test]
    fn decimals() {
        for n in [0, 7, 10, 12345, u64::MAX] {
            let mut out = Vec::new();
            push_decimal(&mut out, n);
            assert_eq!(out, n.to_string().as_bytes());
        }
    }
}
