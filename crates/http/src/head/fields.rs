//! The header fields a head reads, and the framing and persistence they decide (RFC 9112
//! §3.2 Host, §6.3 message body length, §9.3 persistence; RFC 9110 §10.1.1 Expect).

use super::{Framing, Head};
use crate::error::HttpError;
use crate::host;

/// The fields the head reads; every other field is passed over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Field {
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
    #[inline]
    pub(super) fn of(name: &[u8]) -> Option<Self> {
        let is = |candidate: &[u8]| name.eq_ignore_ascii_case(candidate);
        let field = match name.len() {
            4 if is(b"host") => Self::Host,
            5 if is(b"range") => Self::Range,
            6 if is(b"accept") => Self::Accept,
            6 if is(b"expect") => Self::Expect,
            7 if is(b"referer") => Self::Referer,
            8 if is(b"if-match") => Self::IfMatch,
            8 if is(b"if-range") => Self::IfRange,
            10 if is(b"connection") => Self::Connection,
            10 if is(b"user-agent") => Self::UserAgent,
            12 if is(b"content-type") => Self::ContentType,
            13 if is(b"if-none-match") => Self::IfNoneMatch,
            14 if is(b"content-length") => Self::ContentLength,
            17 if is(b"transfer-encoding") => Self::TransferEncoding,
            17 if is(b"if-modified-since") => Self::IfModifiedSince,
            19 if is(b"if-unmodified-since") => Self::IfUnmodifiedSince,
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

/// Reads each field line as the tokeniser finds it. A field's own error (a bad Host value,
/// a bad Content-Length) is kept rather than returned: the head's grammar (every line) and
/// its size are judged first, as a whole head is, and then the first such error in field
/// order, then the framing rules over all fields ([`judge`]).
pub(super) struct FieldReader {
    fields: Fields,
    /// The target has an authority (absolute-form): it, not Host, names the host.
    absolute: bool,
    error: Option<HttpError>,
}

impl FieldReader {
    /// A reader for a head whose target is absolute-form or not, and whose target was
    /// already refused with `error` (it goes before any field's).
    pub(super) fn new(absolute: bool, error: Option<HttpError>) -> Self {
        FieldReader {
            fields: Fields::default(),
            absolute,
            error,
        }
    }

    /// One field line of a field we read: `value` without its surrounding whitespace
    /// (RFC 9112 §5.1).
    #[inline]
    pub(super) fn field<'a>(&mut self, head: &mut Head<'a>, field: Field, value: &'a [u8]) {
        if self.error.is_none() {
            if let Err(error) = self.read(head, field, value) {
                self.error = Some(error);
            }
        }
    }

    /// A Host line whose value the tokeniser already found to be a plain `reg-name [ ":"
    /// port ]` (the common shape), so [`host::is_valid`] need not read it again.
    #[inline]
    pub(super) fn valid_host<'a>(&mut self, head: &mut Head<'a>, value: &'a [u8]) {
        self.fields.hosts += 1;
        if !self.absolute && self.error.is_none() {
            head.host = value;
        }
    }

    /// After the last field: the first error kept, else the framing judgement.
    pub(super) fn finish(self, head: &mut Head<'_>) -> Result<(), HttpError> {
        match self.error {
            Some(error) => Err(error),
            None => judge(head, &self.fields),
        }
    }

    #[inline]
    fn read<'a>(
        &mut self,
        head: &mut Head<'a>,
        field: Field,
        value: &'a [u8],
    ) -> Result<(), HttpError> {
        let fields = &mut self.fields;
        match field {
            Field::Host => {
                fields.hosts += 1;
                if !host::is_valid(value) {
                    return Err(HttpError::BadHost);
                }
                if !self.absolute {
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
            Field::Connection => connection_tokens(value, fields),
            Field::Expect => {
                // RFC 9110 §10.1.1: an HTTP/1.0 request's 100-continue is ignored (no 1xx
                // to 1.0).
                head.expect_continue =
                    head.minor == 1 && value.eq_ignore_ascii_case(b"100-continue");
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
        Ok(())
    }
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

fn parse_length(digits: &[u8]) -> Result<u64, HttpError> {
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
    // The one-token values nearly every client sends, without the list walk (which cost
    // about 380 instructions for `keep-alive` in callgrind).
    if value.eq_ignore_ascii_case(b"keep-alive") {
        fields.keep_alive = true;
        return;
    }
    if value.eq_ignore_ascii_case(b"close") {
        fields.close = true;
        return;
    }
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
