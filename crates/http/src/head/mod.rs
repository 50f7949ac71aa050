//! Parsing and validating a request head: request line, header fields and message framing.
//!
//! The request line is read by [`crate::line`]; httparse tokenises the fields (it refuses
//! obs-fold, whitespace before the colon, bare CR and NUL in requests); this module applies
//! RFC 9112's Host and framing rules on top, strictly, because a lenient reading here is how
//! request smuggling starts.

use crate::config::{HttpConfig, HEADER_CAPACITY};
use crate::error::HttpError;
use crate::line::{Line, LineScan, Version};

mod fields;
mod target;

use fields::read_fields;
pub(crate) use fields::trim;
use target::split_target;

/// Request methods the router distinguishes; others are carried as [`Method::Other`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// GET
    Get,
    /// HEAD: answered like GET, without the body.
    Head,
    /// POST
    Post,
    /// PUT
    Put,
    /// DELETE
    Delete,
    /// OPTIONS
    Options,
    /// Any other token.
    Other,
}

impl Method {
    fn from_token(token: &str) -> Self {
        match token {
            "GET" => Self::Get,
            "HEAD" => Self::Head,
            "POST" => Self::Post,
            "PUT" => Self::Put,
            "DELETE" => Self::Delete,
            "OPTIONS" => Self::Options,
            _ => Self::Other,
        }
    }
}

/// How the request body is delimited (RFC 9112 §6.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// No body.
    Empty,
    /// Exactly this many bytes.
    Length(u64),
    /// Chunked transfer coding.
    Chunked,
}

/// A parsed, validated request head, borrowing the input.
#[derive(Debug)]
pub struct Head<'a> {
    /// Bytes of the head, through the empty line.
    pub len: usize,
    /// The head itself, for the rare field that must be read again (`Repeated`).
    pub raw: &'a [u8],
    /// List fields sent on several lines: their field above holds the first line only, and
    /// [`Head::combined`] gives the whole list.
    pub repeated: Repeated,
    /// The method.
    pub method: Method,
    /// The method token as sent.
    pub method_token: &'a str,
    /// The path of the target (still percent-encoded); `*` for asterisk-form.
    pub path: &'a [u8],
    /// The query, without the `?`.
    pub query: &'a [u8],
    /// The path holds a `%`, so routing decodes it first (found in the pass that splits the
    /// target, rather than in another pass over the path).
    pub path_encoded: bool,
    /// The authority the request names (RFC 9112 §3.2.2): an absolute-form target's, which
    /// replaces the Host field, or else the Host field's (empty when neither has one).
    pub host: &'a [u8],
    /// Minor version: 0 or 1 (a higher HTTP/1 minor is answered as 1.1).
    pub minor: u8,
    /// Whether the client wants the connection kept open (RFC 9112 §9.3).
    pub keep_alive: bool,
    /// Body framing.
    pub framing: Framing,
    /// `Expect: 100-continue` was sent.
    pub expect_continue: bool,
    /// Values of the fields handlers use.
    pub content_type: Option<&'a [u8]>,
    /// `If-Match`.
    pub if_match: Option<&'a [u8]>,
    /// `If-Unmodified-Since`.
    pub if_unmodified_since: Option<&'a [u8]>,
    /// `If-None-Match`.
    pub if_none_match: Option<&'a [u8]>,
    /// `If-Modified-Since`.
    pub if_modified_since: Option<&'a [u8]>,
    /// `If-Range`.
    pub if_range: Option<&'a [u8]>,
    /// `Range`.
    pub range: Option<&'a [u8]>,
    /// `Accept` (the metrics route picks its format by it).
    pub accept: Option<&'a [u8]>,
    /// `User-Agent`, for the access log.
    pub user_agent: Option<&'a [u8]>,
    /// `Referer`, for the access log.
    pub referer: Option<&'a [u8]>,
}

/// List-valued fields (RFC 9110 §5.3) seen on more than one line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Repeated {
    /// `If-Match` (§13.1.1).
    pub if_match: bool,
    /// `If-None-Match` (§13.1.2).
    pub if_none_match: bool,
}

impl<'a> Head<'a> {
    /// A head with nothing in it: the slot [`parse_into`] fills.
    pub(crate) const fn empty() -> Self {
        Head {
            len: 0,
            raw: b"",
            repeated: Repeated {
                if_match: false,
                if_none_match: false,
            },
            method: Method::Other,
            method_token: "",
            path: b"",
            query: b"",
            path_encoded: false,
            host: b"",
            minor: 1,
            keep_alive: false,
            framing: Framing::Empty,
            expect_continue: false,
            content_type: None,
            if_match: None,
            if_unmodified_since: None,
            if_none_match: None,
            if_modified_since: None,
            if_range: None,
            accept: None,
            user_agent: None,
            referer: None,
            range: None,
        }
    }

    /// Every line of the field `name` combined into one list, in order, as RFC 9110 §5.3 has
    /// a recipient do: their values joined by ", " (empty values dropped, §5.6.1). Reads the
    /// head again, so it is for fields seen on several lines only, off the common path.
    pub fn combined(&self, name: &str) -> Vec<u8> {
        let mut list = Vec::new();
        // The request line goes first; a line that is not `name: value` is none of ours.
        for line in self.raw.split(|&b| b == b'\n').skip(1) {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let Some(colon) = line.iter().position(|&b| b == b':') else {
                continue;
            };
            if !line[..colon].eq_ignore_ascii_case(name.as_bytes()) {
                continue;
            }
            let value = trim(&line[colon + 1..]);
            if value.is_empty() {
                continue;
            }
            if !list.is_empty() {
                list.extend_from_slice(b", ");
            }
            list.extend_from_slice(value);
        }
        list
    }
}

/// Parses a head from the start of `input`: `Ok(None)` while it is incomplete and within limits.
pub fn parse<'a>(input: &'a [u8], config: &HttpConfig) -> Result<Option<Head<'a>>, HttpError> {
    parse_resumed(input, &mut LineScan::default(), config)
}

/// [`parse`], with the request line read on from where `line` stopped.
pub(crate) fn parse_resumed<'a>(
    input: &'a [u8],
    line: &mut LineScan,
    config: &HttpConfig,
) -> Result<Option<Head<'a>>, HttpError> {
    let mut head = Head::empty();
    Ok(parse_into(input, line, config, &mut head)?.then_some(head))
}

/// [`parse_resumed`] into a caller's slot: `Ok(true)` when `head` now holds a complete head.
/// The serving path parses every request this way: `Head` is about 300 bytes, and returning
/// it through `Result<Option<_>>` copied it twice per request (`memcpy` was 116 instructions
/// of a pipelined request's 2,880 in callgrind).
///
/// httparse reads the head first, as it always did (its request line is a superset of ours
/// only in letting non-ASCII into the target and in speaking no HTTP/1.2); the strict line
/// parser runs when httparse stops short of a complete, ASCII, short-enough head, and says
/// what the answer is. So a head that arrives whole pays for one more `is_ascii` only.
pub(crate) fn parse_into<'a>(
    input: &'a [u8],
    line: &mut LineScan,
    config: &HttpConfig,
    head: &mut Head<'a>,
) -> Result<bool, HttpError> {
    let max = config.max_headers.clamp(1, HEADER_CAPACITY);
    // Two sizes of stack array, so that the common limit does not pay for the largest.
    if max <= SMALL_HEADERS {
        parse_with::<SMALL_HEADERS>(input, line, max, config, head)
    } else {
        parse_with::<HEADER_CAPACITY>(input, line, max, config, head)
    }
}

/// Header arrays up to this size are the cheap case.
const SMALL_HEADERS: usize = 128;

#[inline]
fn parse_with<'a, const N: usize>(
    input: &'a [u8],
    line: &mut LineScan,
    max: usize,
    config: &HttpConfig,
    head: &mut Head<'a>,
) -> Result<bool, HttpError> {
    // Left uninitialised: filling 128 empty headers (4 KiB) for every request cost more than
    // parsing the request itself (15% of a pipelined run's CPU in a profile).
    let mut storage = [const { std::mem::MaybeUninit::<httparse::Header<'a>>::uninit() }; N];
    let mut request = httparse::Request::new(&mut []);
    match request.parse_with_uninit_headers(input, &mut storage[..max]) {
        Ok(httparse::Status::Complete(len)) => {
            let (Some(method), Some(target), Some(minor)) =
                (request.method, request.path, request.version)
            else {
                return Err(HttpError::MalformedRequestLine);
            };
            if target.len() > config.max_uri_bytes || !target.is_ascii() {
                return Err(line_error(input, line, config));
            }
            let version = match minor {
                0 => Version::Http10,
                _ => Version::Http11,
            };
            finish(
                &input[..len],
                method,
                target,
                version,
                request.headers,
                config,
                head,
            )
            .map(|()| true)
        }
        Ok(httparse::Status::Partial) => {
            // The line's own errors (and a too-long target) now, not when the head ends.
            line.advance(input, config.max_uri_bytes)?;
            check_partial(input, config).map(|()| false)
        }
        Err(error) => {
            let Some(parsed) = line.advance(input, config.max_uri_bytes)? else {
                // httparse refuses `HTTP/1.2` at its digit, before the line ends: the line
                // is valid so far and simply not complete.
                return check_partial(input, config).map(|()| false);
            };
            match parsed.version()? {
                // httparse knows no HTTP/1.2: the fields are read alone (a rare path).
                Version::Http11 if parsed.minor > 1 => {
                    parse_fields_after_line::<N>(input, &parsed, max, config, head)
                }
                // The line is valid: what httparse refused is in the fields.
                _ => Err(map_parse_error(error)),
            }
        }
    }
}

/// What the strict line parser says of a line httparse let through: it must refuse it.
#[cold]
fn line_error(input: &[u8], line: &mut LineScan, config: &HttpConfig) -> HttpError {
    match line.advance(input, config.max_uri_bytes) {
        Err(error) => error,
        Ok(_) => HttpError::MalformedRequestLine,
    }
}

#[inline(never)]
fn parse_fields_after_line<'a, const N: usize>(
    input: &'a [u8],
    line: &Line<'a>,
    max: usize,
    config: &HttpConfig,
    head: &mut Head<'a>,
) -> Result<bool, HttpError> {
    let mut headers = [httparse::EMPTY_HEADER; N];
    match httparse::parse_headers(&input[line.len..], &mut headers[..max]) {
        Ok(httparse::Status::Complete((len, fields))) => {
            let (method, target) = (line.method, line.target);
            finish(
                &input[..line.len + len],
                method,
                target,
                Version::Http11,
                fields,
                config,
                head,
            )
            .map(|()| true)
        }
        Ok(httparse::Status::Partial) => check_partial(input, config).map(|()| false),
        Err(error) => Err(map_parse_error(error)),
    }
}

#[inline]
fn finish<'a>(
    raw: &'a [u8],
    method_token: &'a str,
    target: &'a str,
    version: Version,
    fields: &[httparse::Header<'a>],
    config: &HttpConfig,
    head: &mut Head<'a>,
) -> Result<(), HttpError> {
    let len = raw.len();
    if len > config.max_header_bytes {
        return Err(HttpError::HeadersTooLarge);
    }
    let method = Method::from_token(method_token);
    let target = split_target(target, method)?;
    let minor = match version {
        Version::Http10 => 0,
        Version::Http11 => 1,
    };
    *head = Head {
        len,
        raw,
        method,
        method_token,
        path: target.path,
        query: target.query,
        path_encoded: target.encoded,
        host: target.authority.unwrap_or_default(),
        minor,
        keep_alive: minor == 1,
        ..Head::empty()
    };
    read_fields(head, fields, target.authority.is_some())
}

/// An incomplete head becomes an error once it is longer than any valid one could be (the
/// request line checks its own target length as it goes).
fn check_partial(input: &[u8], config: &HttpConfig) -> Result<(), HttpError> {
    if input.len() > config.max_header_bytes {
        return Err(HttpError::HeadersTooLarge);
    }
    Ok(())
}

/// The request line is already checked: what httparse refuses now is in the fields.
fn map_parse_error(error: httparse::Error) -> HttpError {
    match error {
        httparse::Error::TooManyHeaders => HttpError::TooManyHeaders,
        _ => HttpError::MalformedHeader,
    }
}
