//! Parsing and validating a request head in one pass: request line, header fields and
//! message framing.
//!
//! The request line is read by [`crate::line`] (its fast reader, or the resumable reference
//! scan for what the fast one declines), the field lines by [`tokens`], each field's meaning
//! by [`fields`] as it is tokenised: RFC 9112's grammar, Host and framing rules, strictly,
//! because a lenient reading here is how request smuggling starts. What decides an answer,
//! in order: the first byte that breaks the grammar (wherever the input was cut, the same
//! byte: 400, 414, 505, or 431 for one field too many); then the head's size (431); then the
//! target's form; then the first field whose value is refused; then the framing judgement.

use crate::config::{HttpConfig, HEADER_CAPACITY};
use crate::error::HttpError;
use crate::line::{read_line, LineScan, RequestLine, Version};

mod fields;
#[cfg(test)]
mod oracle_tests;
#[cfg(test)]
mod pass_tests;
mod target;
mod tokens;

pub(crate) use fields::trim;
use fields::FieldReader;
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
    pub(crate) fn from_token(token: &str) -> Self {
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

    /// Whether this is [`Head::empty`]: what [`parse_into`] must be handed, since it sets
    /// only what the head holds (checked in debug builds).
    #[cfg(debug_assertions)]
    fn is_empty(&self) -> bool {
        let unset = [
            self.content_type,
            self.if_match,
            self.if_unmodified_since,
            self.if_none_match,
            self.if_modified_since,
            self.if_range,
            self.range,
            self.accept,
            self.user_agent,
            self.referer,
        ];
        self.len == 0
            && self.raw.is_empty()
            && self.repeated == Repeated::default()
            && self.host.is_empty()
            && !self.expect_continue
            && self.framing == Framing::Empty
            && unset.iter().all(Option::is_none)
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

/// [`parse_resumed`] into a caller's slot, which must hold [`Head::empty`]: `Ok(true)` when
/// `head` now holds a complete head. The serving path parses every request this way: `Head`
/// is about 300 bytes, and returning it through `Result<Option<_>>` copied it twice per
/// request (`memcpy` was 116 instructions of a pipelined request's 2,880 in callgrind).
///
/// One pass from the first byte: the line, then each field line, tokenised, checked and read
/// for its meaning at once (httparse and a second walk over its fields before; issue 16).
/// When the head is incomplete, `line` is left where the line's reading got, so that a later
/// look ([`crate::scan`]) goes on from there.
pub(crate) fn parse_into<'a>(
    input: &'a [u8],
    line: &mut LineScan,
    config: &HttpConfig,
    head: &mut Head<'a>,
) -> Result<bool, HttpError> {
    #[cfg(test)]
    crate::scan::counter::add(input.len());
    #[cfg(debug_assertions)]
    debug_assert!(head.is_empty(), "parse_into needs an empty slot");
    let fast = read_line(input, config.max_uri_bytes);
    let scanned;
    let request = match &fast {
        Some(request) => request,
        None => match line.advance(input, config.max_uri_bytes)? {
            Some(parsed) => {
                scanned = parsed.request();
                &scanned
            }
            None => return within(input, config).map(|()| false),
        },
    };
    let mut reader = start(request, head)?;
    let max = config.max_headers.clamp(1, HEADER_CAPACITY);
    match tokens::read_fields(input, request.len, max, &mut reader, head)? {
        Some(len) => {
            if len > config.max_header_bytes {
                return Err(HttpError::HeadersTooLarge);
            }
            head.len = len;
            head.raw = &input[..len];
            reader.finish(head).map(|()| true)
        }
        None => {
            if fast.is_some() && line.fresh() {
                *line = LineScan::read_whole(request);
            }
            within(input, config).map(|()| false)
        }
    }
}

/// What the request line puts in the head; the reader for its fields, holding the target's
/// refusal if there is one (judged after the head's grammar and size).
#[inline]
fn start<'a>(request: &RequestLine<'a>, head: &mut Head<'a>) -> Result<FieldReader, HttpError> {
    head.minor = match request.version()? {
        Version::Http10 => 0,
        Version::Http11 => 1,
    };
    head.keep_alive = head.minor == 1;
    head.method = request.method;
    head.method_token = request.method_token;
    Ok(
        match split_target(request.target, request.marks, request.method) {
            Ok(target) => {
                head.path = target.path;
                head.query = target.query;
                head.path_encoded = target.encoded;
                head.host = target.authority.unwrap_or_default();
                FieldReader::new(target.authority.is_some(), None)
            }
            Err(error) => FieldReader::new(false, Some(error)),
        },
    )
}

/// An incomplete head becomes an error once it is longer than any valid one could be (the
/// request line checks its own target length as it goes).
fn within(input: &[u8], config: &HttpConfig) -> Result<(), HttpError> {
    if input.len() > config.max_header_bytes {
        return Err(HttpError::HeadersTooLarge);
    }
    Ok(())
}
