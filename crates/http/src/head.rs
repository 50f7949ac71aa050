//! Parsing and validating a request head: request line, header fields and message framing.
//!
//! httparse does the tokenising (it refuses obs-fold, whitespace before the colon, bare CR and
//! NUL in requests); this module applies RFC 9112's framing rules on top, strictly, because a
//! lenient reading here is how request smuggling starts.

use crate::config::{HttpConfig, HEADER_CAPACITY};
use crate::error::HttpError;

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
    /// The method.
    pub method: Method,
    /// The method token as sent.
    pub method_token: &'a str,
    /// The path of the target (still percent-encoded); `*` for asterisk-form.
    pub path: &'a [u8],
    /// The query, without the `?`.
    pub query: &'a [u8],
    /// Minor version: 0 or 1.
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
}

/// Parses a head from the start of `input`: `Ok(None)` while it is incomplete and within limits.
pub fn parse<'a>(input: &'a [u8], config: &HttpConfig) -> Result<Option<Head<'a>>, HttpError> {
    // Left uninitialised: filling 128 empty headers (4 KiB) for every request cost more than
    // parsing the request itself (15% of a pipelined run's CPU in a profile).
    let mut storage =
        [const { std::mem::MaybeUninit::<httparse::Header<'a>>::uninit() }; HEADER_CAPACITY];
    let max = config.max_headers.clamp(1, HEADER_CAPACITY);
    let mut request = httparse::Request::new(&mut []);
    let len = match request.parse_with_uninit_headers(input, &mut storage[..max]) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return check_partial(input, config).map(|()| None),
        Err(error) => return Err(map_parse_error(error, input)),
    };
    if len > config.max_header_bytes {
        return Err(HttpError::HeadersTooLarge);
    }
    let (Some(method_token), Some(target), Some(minor)) =
        (request.method, request.path, request.version)
    else {
        return Err(HttpError::MalformedRequestLine);
    };
    if target.len() > config.max_uri_bytes {
        return Err(HttpError::UriTooLong);
    }
    let method = Method::from_token(method_token);
    let (path, query) = split_target(target, method)?;
    let mut head = Head {
        len,
        method,
        method_token,
        path,
        query,
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
        range: None,
    };
    read_fields(&mut head, request.headers)?;
    Ok(Some(head))
}

/// An incomplete head becomes an error once it is longer than any valid one could be. Only
/// what the complete head would be refused for counts, so the answer never depends on how the
/// bytes were split (a method token may be of any length: measure the target itself).
fn check_partial(input: &[u8], config: &HttpConfig) -> Result<(), HttpError> {
    let line = first_line(input);
    if let Some(space) = line.iter().position(|&b| b == b' ') {
        let rest = &line[space + 1..];
        let target = rest
            .iter()
            .position(|&b| b == b' ')
            .map_or(rest, |end| &rest[..end]);
        if target.len() > config.max_uri_bytes {
            return Err(HttpError::UriTooLong);
        }
    }
    if input.len() > config.max_header_bytes {
        return Err(HttpError::HeadersTooLarge);
    }
    Ok(())
}

fn map_parse_error(error: httparse::Error, input: &[u8]) -> HttpError {
    match error {
        httparse::Error::TooManyHeaders => HttpError::TooManyHeaders,
        httparse::Error::HeaderName | httparse::Error::HeaderValue => HttpError::MalformedHeader,
        // A well-formed `HTTP/x.y` we do not speak is 505; anything else is garbage (400).
        httparse::Error::Version if names_a_version(input) => HttpError::UnsupportedVersion,
        httparse::Error::NewLine if !first_line(input).contains(&b'\r') => {
            HttpError::MalformedHeader
        }
        _ => HttpError::MalformedRequestLine,
    }
}

fn first_line(input: &[u8]) -> &[u8] {
    let end = input
        .iter()
        .position(|&b| b == b'\n')
        .unwrap_or(input.len());
    &input[..end]
}

fn names_a_version(input: &[u8]) -> bool {
    let line = first_line(input);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let Some(space) = line.iter().rposition(|&b| b == b' ') else {
        return false;
    };
    match &line[space + 1..] {
        [b'H', b'T', b'T', b'P', b'/', major, b'.', minor] => {
            major.is_ascii_digit() && minor.is_ascii_digit()
        }
        [b'H', b'T', b'T', b'P', b'/', major] => major.is_ascii_digit(),
        _ => false,
    }
}

/// Origin-form, absolute-form (the authority is dropped: RFC 9112 §3.2.2 says it overrides
/// Host, and we route on the path only) or asterisk-form for OPTIONS (RFC 9112 §3.2.4).
fn split_target(target: &str, method: Method) -> Result<(&[u8], &[u8]), HttpError> {
    let bytes = target.as_bytes();
    let origin = if bytes.first() == Some(&b'/') {
        bytes
    } else if bytes == b"*" {
        return match method {
            Method::Options => Ok((b"*", b"")),
            _ => Err(HttpError::InvalidTarget),
        };
    } else {
        absolute_path(bytes).ok_or(HttpError::InvalidTarget)?
    };
    if origin.contains(&b'#') {
        return Err(HttpError::InvalidTarget);
    }
    let (path, query) = match origin.iter().position(|&b| b == b'?') {
        Some(q) => (&origin[..q], &origin[q + 1..]),
        None => (origin, &b""[..]),
    };
    Ok((if path.is_empty() { b"/" } else { path }, query))
}

fn absolute_path(target: &[u8]) -> Option<&[u8]> {
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
    // The authority runs to the first `/` or `?`; an empty path means `/`.
    let at = rest
        .iter()
        .position(|&b| b == b'/' || b == b'?')
        .unwrap_or(rest.len());
    (at > 0).then(|| &rest[at..])
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

fn read_fields<'a>(head: &mut Head<'a>, headers: &[httparse::Header<'a>]) -> Result<(), HttpError> {
    let mut fields = Fields::default();
    for header in headers {
        let name = header.name;
        let value = header.value;
        if name.eq_ignore_ascii_case("host") {
            fields.hosts += 1;
        } else if name.eq_ignore_ascii_case("content-length") {
            fields.lengths += 1;
            fields.length = Some(parse_length(value)?);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            fields.codings = Some(fields.codings.unwrap_or_default().add(value));
        } else if name.eq_ignore_ascii_case("connection") {
            connection_tokens(value, &mut fields);
        } else if name.eq_ignore_ascii_case("expect") {
            head.expect_continue = trim(value).eq_ignore_ascii_case(b"100-continue");
        } else if name.eq_ignore_ascii_case("content-type") {
            head.content_type = Some(value);
        } else if name.eq_ignore_ascii_case("if-none-match") {
            head.if_none_match = Some(value);
        } else if name.eq_ignore_ascii_case("if-modified-since") {
            head.if_modified_since = Some(value);
        } else if name.eq_ignore_ascii_case("range") {
            head.range = Some(value);
        } else if name.eq_ignore_ascii_case("if-match") {
            head.if_match = Some(value);
        } else if name.eq_ignore_ascii_case("if-unmodified-since") {
            head.if_unmodified_since = Some(value);
        } else if name.eq_ignore_ascii_case("if-range") {
            head.if_range = Some(value);
        }
    }
    judge(head, &fields)
}

/// RFC 9112 §6.3, in the order it gives:
/// 1. Transfer-Encoding with Content-Length is refused outright (the smuggling shape);
/// 2. Transfer-Encoding must end in `chunked`, and is not valid in HTTP/1.0 at all (§6.1);
/// 3. Content-Length must be one plain decimal;
/// 4. otherwise the request has no body.
fn judge(head: &mut Head<'_>, fields: &Fields) -> Result<(), HttpError> {
    if head.minor == 1 && fields.hosts != 1 {
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
