//! Parsing and validating a request head: request line, header fields and message framing.
//!
//! The request line is read by [`crate::line`]; httparse tokenises the fields (it refuses
//! obs-fold, whitespace before the colon, bare CR and NUL in requests); this module applies
//! RFC 9112's Host and framing rules on top, strictly, because a lenient reading here is how
//! request smuggling starts.

use crate::config::{HttpConfig, HEADER_CAPACITY};
use crate::error::HttpError;
use crate::host;
use crate::line::{Line, LineScan, Version};

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
        repeated: Repeated::default(),
        method,
        method_token,
        path: target.path,
        query: target.query,
        path_encoded: target.encoded,
        host: target.authority.unwrap_or_default(),
        minor,
        keep_alive: minor == 1,
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

/// A request target split into what routing and the Host rules need.
struct Target<'a> {
    path: &'a [u8],
    query: &'a [u8],
    /// The path holds a `%`.
    encoded: bool,
    /// The authority of an absolute-form target.
    authority: Option<&'a [u8]>,
}

/// Origin-form, absolute-form or asterisk-form for OPTIONS (RFC 9112 §3.2.4). For
/// absolute-form (§3.2.2) the authority must be a valid `uri-host [ ":" port ]` with no
/// userinfo and a non-empty host (RFC 9110 §4.2.1, §4.2.4); it replaces the Host field.
fn split_target(target: &str, method: Method) -> Result<Target<'_>, HttpError> {
    let bytes = target.as_bytes();
    let (origin, authority) = if bytes.first() == Some(&b'/') {
        (bytes, None)
    } else if bytes == b"*" {
        return match method {
            Method::Options => Ok(Target {
                path: b"*",
                query: b"",
                encoded: false,
                authority: None,
            }),
            _ => Err(HttpError::InvalidTarget),
        };
    } else {
        let (authority, origin) = absolute_parts(bytes).ok_or(HttpError::InvalidTarget)?;
        (origin, Some(authority))
    };
    let (query_at, encoded) = scan_origin(origin)?;
    let (path, query) = match query_at {
        Some(q) => (&origin[..q], &origin[q + 1..]),
        None => (origin, &b""[..]),
    };
    Ok(Target {
        path: if path.is_empty() { b"/" } else { path },
        query,
        encoded,
        authority,
    })
}

/// One pass over `path [ "?" query ]`: where the query starts, whether the path holds a `%`,
/// and a `#` anywhere refused (a fragment is never sent, RFC 9112 §3.2). Three `memchr`
/// passes over a short target cost about 130 instructions per request in callgrind.
fn scan_origin(origin: &[u8]) -> Result<(Option<usize>, bool), HttpError> {
    let (mut query_at, mut encoded) = (None, false);
    for (at, &byte) in origin.iter().enumerate() {
        if !NOTABLE[usize::from(byte)] {
            continue;
        }
        match byte {
            b'#' => return Err(HttpError::InvalidTarget),
            b'?' if query_at.is_none() => query_at = Some(at),
            b'%' if query_at.is_none() => encoded = true,
            _ => {}
        }
    }
    Ok((query_at, encoded))
}

/// The bytes [`scan_origin`] stops at.
const NOTABLE: [bool; 256] = {
    let mut table = [false; 256];
    table[b'#' as usize] = true;
    table[b'?' as usize] = true;
    table[b'%' as usize] = true;
    table
};

/// `http://authority/path?query`: (authority, path and query).
fn absolute_parts(target: &[u8]) -> Option<(&[u8], &[u8])> {
    let has = |prefix: &[u8]| {
        target.len() > prefix.len() && target[..prefix.len()].eq_ignore_ascii_case(prefix)
    };
    let rest = if has(b"http://") {
        &target[7..]
    } else if has(b"https://") {
        &target[8..]
    } else {
        return None;
    };
    // The authority runs to the first `/`, `?` or `#`; an empty path means `/`.
    let at = rest
        .iter()
        .position(|&b| matches!(b, b'/' | b'?' | b'#'))
        .unwrap_or(rest.len());
    let authority = &rest[..at];
    let named = !authority.is_empty() && !authority.starts_with(b":");
    (named && host::is_valid(authority)).then_some((authority, &rest[at..]))
}

/// The fields the head reads; every other field is passed over.
#[derive(Clone, Copy)]
enum Field {
    Host,
    ContentLength,
    TransferEncoding,
    Connection,
    Expect,
    ContentType,
    IfNoneMatch,
    IfModifiedSince,
    Range,
    IfMatch,
    IfUnmodifiedSince,
    IfRange,
    Accept,
    UserAgent,
    Referer,
}

impl Field {
    /// By length first, so a name is compared with at most two candidates instead of walking
    /// all fifteen in turn.
    fn of(name: &str) -> Option<Self> {
        let is = |candidate: &str| name.eq_ignore_ascii_case(candidate);
        let field = match name.len() {
            4 if is("host") => Self::Host,
            5 if is("range") => Self::Range,
            6 if is("accept") => Self::Accept,
            6 if is("expect") => Self::Expect,
            7 if is("referer") => Self::Referer,
            8 if is("if-match") => Self::IfMatch,
            8 if is("if-range") => Self::IfRange,
            10 if is("connection") => Self::Connection,
            10 if is("user-agent") => Self::UserAgent,
            12 if is("content-type") => Self::ContentType,
            13 if is("if-none-match") => Self::IfNoneMatch,
            14 if is("content-length") => Self::ContentLength,
            17 if is("transfer-encoding") => Self::TransferEncoding,
            17 if is("if-modified-since") => Self::IfModifiedSince,
            19 if is("if-unmodified-since") => Self::IfUnmodifiedSince,
            _ => return None,
        };
        Some(field)
    }
}

/// What the fields say about framing and the connection, collected before judging them.
#[derive(Default)]
struct Fields {
    hosts: u32,
    lengths: u32,
    length: Option<u64>,
    codings: Option<Codings>,
    close: bool,
    keep_alive: bool,
}

fn read_fields<'a>(
    head: &mut Head<'a>,
    headers: &[httparse::Header<'a>],
    absolute: bool,
) -> Result<(), HttpError> {
    let mut fields = Fields::default();
    for header in headers {
        let Some(field) = Field::of(header.name) else {
            continue;
        };
        let value = header.value;
        match field {
            Field::Host => {
                fields.hosts += 1;
                let value = trim(value);
                if !host::is_valid(value) {
                    return Err(HttpError::BadHost);
                }
                if !absolute {
                    head.host = value;
                }
            }
            Field::ContentLength => {
                fields.lengths += 1;
                fields.length = Some(parse_length(value)?);
            }
            Field::TransferEncoding => {
                fields.codings = Some(fields.codings.unwrap_or_default().add(value));
            }
            Field::Connection => connection_tokens(value, &mut fields),
            Field::Expect => {
                // RFC 9110 §10.1.1: an HTTP/1.0 request's 100-continue is ignored (no 1xx
                // to 1.0).
                head.expect_continue =
                    head.minor == 1 && trim(value).eq_ignore_ascii_case(b"100-continue");
            }
            Field::ContentType => head.content_type = Some(value),
            Field::IfNoneMatch => {
                head.repeated.if_none_match |= head.if_none_match.is_some();
                head.if_none_match = head.if_none_match.or(Some(value));
            }
            Field::IfModifiedSince => head.if_modified_since = Some(value),
            Field::Range => head.range = Some(value),
            Field::IfMatch => {
                head.repeated.if_match |= head.if_match.is_some();
                head.if_match = head.if_match.or(Some(value));
            }
            Field::IfUnmodifiedSince => head.if_unmodified_since = Some(value),
            Field::IfRange => head.if_range = Some(value),
            Field::Accept => head.accept = Some(value),
            Field::UserAgent => head.user_agent = Some(value),
            Field::Referer => head.referer = Some(value),
        }
    }
    judge(head, &fields)
}

/// Host (RFC 9112 §3.2): exactly one in HTTP/1.1, at most one in HTTP/1.0, each checked
/// above. Then RFC 9112 §6.3, in the order it gives:
/// 1. Transfer-Encoding with Content-Length is refused outright (the smuggling shape);
/// 2. Transfer-Encoding must end in `chunked`, and is not valid in HTTP/1.0 at all (§6.1);
/// 3. Content-Length must be one plain decimal;
/// 4. otherwise the request has no body.
fn judge(head: &mut Head<'_>, fields: &Fields) -> Result<(), HttpError> {
    if fields.hosts > 1 || (head.minor == 1 && fields.hosts != 1) {
        return Err(HttpError::BadHost);
    }
    if fields.codings.is_some() && fields.lengths > 0 {
        return Err(HttpError::LengthWithTransferEncoding);
    }
    if fields.lengths > 1 {
        return Err(HttpError::InvalidContentLength);
    }
    head.framing = match (fields.codings, fields.length) {
        (Some(_), _) if head.minor == 0 => return Err(HttpError::ChunkedNotLast),
        (Some(codings), _) => codings.judge().map(|()| Framing::Chunked)?,
        (None, Some(0) | None) => Framing::Empty,
        (None, Some(length)) => Framing::Length(length),
    };
    head.keep_alive = !fields.close && (head.minor == 1 || fields.keep_alive);
    Ok(())
}

fn parse_length(value: &[u8]) -> Result<u64, HttpError> {
    let digits = trim(value);
    if digits.is_empty() || digits.len() > 18 || !digits.iter().all(u8::is_ascii_digit) {
        return Err(HttpError::InvalidContentLength);
    }
    Ok(digits.iter().fold(0, |n, d| n * 10 + u64::from(d - b'0')))
}

/// The transfer codings of every Transfer-Encoding field, in order.
#[derive(Clone, Copy, Default)]
struct Codings {
    chunked: u32,
    other: u32,
    last_chunked: bool,
}

impl Codings {
    fn add(mut self, value: &[u8]) -> Self {
        for coding in value
            .split(|&b| b == b',')
            .map(trim)
            .filter(|c| !c.is_empty())
        {
            let chunked = coding.eq_ignore_ascii_case(b"chunked");
            self.chunked += u32::from(chunked);
            self.other += u32::from(!chunked);
            self.last_chunked = chunked;
        }
        self
    }

    /// RFC 9112 §6.3 rule 4: a request whose final coding is not chunked is 400 (its length
    /// cannot be known); chunked twice is invalid; any other coding we cannot decode is 501.
    fn judge(self) -> Result<(), HttpError> {
        if !self.last_chunked || self.chunked > 1 {
            Err(HttpError::ChunkedNotLast)
        } else if self.other > 0 {
            Err(HttpError::UnsupportedTransferEncoding)
        } else {
            Ok(())
        }
    }
}

fn connection_tokens(value: &[u8], fields: &mut Fields) {
    for token in value.split(|&b| b == b',').map(trim) {
        if token.eq_ignore_ascii_case(b"close") {
            fields.close = true;
        } else if token.eq_ignore_ascii_case(b"keep-alive") {
            fields.keep_alive = true;
        }
    }
}

/// Strips optional whitespace (RFC 9110 §5.6.3: SP / HTAB).
pub(crate) fn trim(mut bytes: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = bytes {
        bytes = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = bytes {
        bytes = rest;
    }
    bytes
}
