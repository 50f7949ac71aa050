//! The request line (RFC 9112 §3): `method SP request-target SP HTTP-version CRLF`, checked
//! byte by byte from the left so that the first bad byte decides the answer however the input
//! was split.
//!
//! - method: a token (RFC 9110 §5.6.2);
//! - request-target: visible ASCII only (RFC 9112 §3.2 and RFC 3986 allow no space, control
//!   or non-ASCII byte; a UTF-8 path must arrive percent-encoded). The visible-ASCII bytes RFC
//!   3986 does not list (`"<>\^`{|}`) are let through, as real clients send them unescaped;
//! - HTTP-version: `HTTP/` DIGIT `.` DIGIT, case-sensitive (RFC 9112 §2.3). Anything else in
//!   that place is a malformed line (400), not an unsupported version;
//! - exactly one SP between the parts; a bare LF ends the line as CRLF does (RFC 9112 §2.2),
//!   a CR anywhere but before the LF is refused;
//! - empty lines before the request line are skipped (RFC 9112 §2.2 asks for at least one).
//!
//! Two readers apply these rules. [`LineScan`] is the reference: a byte-at-a-time state
//! machine that resumes where it stopped, for a line that arrives in pieces, and that says
//! which error the first bad byte makes. [`read_line`] is the head parser's fast path for a
//! line that is whole and valid (nearly every line): it accepts exactly the lines `LineScan`
//! accepts without leading empty lines, and leaves every other input (incomplete, invalid,
//! too long, leading empty lines) to `LineScan`, so the two can never answer differently.

use crate::error::HttpError;
use crate::head::Method;

mod fast;

pub(crate) use fast::{read_line, Marks, RequestLine};

/// A complete request line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Line<'a> {
    /// Bytes from the start of the input through the line's LF (leading empty lines included).
    pub len: usize,
    pub method: &'a str,
    pub target: &'a str,
    /// The major and minor digits as sent.
    pub major: u8,
    pub minor: u8,
}

/// What the version of a well-formed line means for us (RFC 9110 §2.5, §15.6.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Version {
    /// HTTP/1.0: answered with the 1.0 connection rules.
    Http10,
    /// HTTP/1.1, or HTTP/1.x with a higher minor, which is answered as 1.1.
    Http11,
}

impl<'a> Line<'a> {
    /// The version to follow, or 505 for a well-formed version whose major we do not speak
    /// (HTTP/0.9, HTTP/2.0, HTTP/3.0, ...).
    #[cfg(test)]
    pub(crate) fn version(&self) -> Result<Version, HttpError> {
        version(self.major, self.minor)
    }

    /// The line as the head parser takes it (a rare path: the fast reader declined it).
    pub(crate) fn request(self) -> RequestLine<'a> {
        let target = self.target.as_bytes();
        RequestLine {
            len: self.len,
            method: Method::from_token(self.method),
            method_token: self.method,
            target,
            marks: Marks::of(target),
            major: self.major,
            minor: self.minor,
        }
    }
}

pub(crate) fn version(major: u8, minor: u8) -> Result<Version, HttpError> {
    match (major, minor) {
        (1, 0) => Ok(Version::Http10),
        (1, _) => Ok(Version::Http11),
        _ => Err(HttpError::UnsupportedVersion),
    }
}

/// The request line read so far, resumable: each call looks only at bytes it has not seen,
/// so a line that arrives a byte at a time costs linear time.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct LineScan {
    /// Bytes looked at.
    at: usize,
    part: Part,
    /// Where the method starts (after any empty lines).
    start: usize,
    /// The SP after the method, and the SP after the target.
    method_end: usize,
    target_end: usize,
    major: u8,
    minor: u8,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Part {
    /// Before the method: empty lines are skipped.
    #[default]
    Empty,
    /// The CR of an empty line.
    EmptyCr,
    Method,
    Target,
    /// Inside `HTTP/d.d`.
    Version,
    /// After the version: CR or LF.
    VersionEnd,
    /// The CR that ends the line.
    Cr,
    Done,
}

/// The version token's shape; `0` stands for a digit.
const VERSION: &[u8] = b"HTTP/0.0";

impl LineScan {
    /// Continues over `input` (the same bytes as before, perhaps more of them): `Ok(None)`
    /// while the line is incomplete and valid so far. A target longer than `max_uri` is
    /// refused as soon as it is seen, so that a long target answers 414 whether or not a bad
    /// byte follows later.
    pub(crate) fn advance<'a>(
        &mut self,
        input: &'a [u8],
        max_uri: usize,
    ) -> Result<Option<Line<'a>>, HttpError> {
        while self.part != Part::Done {
            let Some(&byte) = input.get(self.at) else {
                return Ok(None);
            };
            self.part = self.step(byte, max_uri)?;
            self.at += 1;
            #[cfg(test)]
            crate::scan::counter::add(1);
        }
        let target_start = self.method_end + 1;
        Ok(Some(Line {
            len: self.at,
            method: ascii(&input[self.start..self.method_end]),
            target: ascii(&input[target_start..self.target_end]),
            major: self.major,
            minor: self.minor,
        }))
    }

    /// The scan of a line [`read_line`] read whole (it reads none with leading empty lines):
    /// done, as if it had stepped over every byte, so that a head whose fields are not all
    /// in yet is not read again from its first byte.
    pub(crate) fn read_whole(line: &RequestLine<'_>) -> Self {
        let method_end = line.method_token.len();
        Self {
            at: line.len,
            part: Part::Done,
            start: 0,
            method_end,
            target_end: method_end + 1 + line.target.len(),
            major: line.major,
            minor: line.minor,
        }
    }

    /// Whether nothing has been read yet.
    pub(crate) fn fresh(&self) -> bool {
        self.at == 0
    }

    /// Whether the whole line is in.
    pub(crate) fn done(&self) -> Option<usize> {
        (self.part == Part::Done).then_some(self.at)
    }

    fn step(&mut self, byte: u8, max_uri: usize) -> Result<Part, HttpError> {
        let at = self.at;
        let next = match (self.part, byte) {
            (Part::Empty, b'\n') => Part::Empty,
            (Part::Empty, b'\r') => Part::EmptyCr,
            (Part::EmptyCr, b'\n') => Part::Empty,
            (Part::Empty, _) if is_tchar(byte) => {
                self.start = at;
                Part::Method
            }
            (Part::Method, b' ') => {
                self.method_end = at;
                Part::Target
            }
            (Part::Method, _) if is_tchar(byte) => Part::Method,
            (Part::Target, b' ') if at > self.method_end + 1 => {
                self.target_end = at;
                Part::Version
            }
            (Part::Target, b'!'..=b'~') if at - self.method_end > max_uri => {
                return Err(HttpError::UriTooLong)
            }
            (Part::Target, b'!'..=b'~') => Part::Target,
            (Part::Version, _) => return self.version_byte(byte),
            (Part::VersionEnd | Part::Cr, b'\n') => Part::Done,
            (Part::VersionEnd, b'\r') => Part::Cr,
            _ => return Err(HttpError::MalformedRequestLine),
        };
        Ok(next)
    }

    fn version_byte(&mut self, byte: u8) -> Result<Part, HttpError> {
        let index = self.at - self.target_end - 1;
        let fits = match VERSION[index] {
            b'0' => byte.is_ascii_digit(),
            expected => byte == expected,
        };
        if !fits {
            return Err(HttpError::MalformedRequestLine);
        }
        match index {
            5 => self.major = byte - b'0',
            7 => self.minor = byte - b'0',
            _ => {}
        }
        Ok(if index + 1 == VERSION.len() {
            Part::VersionEnd
        } else {
            Part::Version
        })
    }
}

fn ascii(bytes: &[u8]) -> &str {
    // Only ever called on bytes checked to be visible ASCII.
    std::str::from_utf8(bytes).unwrap_or_default()
}

/// A `tchar` of RFC 9110 §5.6.2.
pub(crate) fn is_tchar(byte: u8) -> bool {
    TCHAR[usize::from(byte)]
}

/// [`is_tchar`] as a table: method and field-name bytes are looked up one by one.
pub(crate) const TCHAR: [bool; 256] = {
    let mut table = [false; 256];
    let mut byte = 0;
    while byte < 256 {
        let b = byte as u8;
        table[byte] = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'!' | b'#'
                    | b'$'
                    | b'%'
                    | b'&'
                    | b'\''
                    | b'*'
                    | b'+'
                    | b'-'
                    | b'.'
                    | b'^'
                    | b'_'
                    | b'`'
                    | b'|'
                    | b'~'
            );
        byte += 1;
    }
    table
};

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(input: &[u8], max_uri: usize) -> Result<Option<Line<'_>>, HttpError> {
        LineScan::default().advance(input, max_uri)
    }

    #[test]
    fn every_prefix_of_a_valid_line_is_incomplete() {
        let line = b"\r\nGET /a?b HTTP/1.1\r\n";
        for cut in 0..line.len() {
            assert_eq!(parse(&line[..cut], 64), Ok(None), "cut {cut}");
        }
        let whole = parse(line, 64).unwrap().unwrap();
        assert_eq!(
            (
                whole.len,
                whole.method,
                whole.target,
                whole.major,
                whole.minor
            ),
            (line.len(), "GET", "/a?b", 1, 1)
        );
    }

    #[test]
    fn versions() {
        for (version, expected) in [
            ("HTTP/1.0", Ok(Version::Http10)),
            ("HTTP/1.1", Ok(Version::Http11)),
            ("HTTP/1.2", Ok(Version::Http11)),
            ("HTTP/1.9", Ok(Version::Http11)),
            ("HTTP/0.9", Err(HttpError::UnsupportedVersion)),
            ("HTTP/2.0", Err(HttpError::UnsupportedVersion)),
            ("HTTP/3.0", Err(HttpError::UnsupportedVersion)),
            ("HTTP/9.9", Err(HttpError::UnsupportedVersion)),
        ] {
            let line = format!("GET / {version}\r\n");
            let parsed = parse(line.as_bytes(), 64).unwrap().unwrap();
            assert_eq!(parsed.version(), expected, "{version}");
        }
    }

    #[test]
    fn malformed_lines() {
        for line in [
            &b"GET /a b HTTP/1.1\r\n"[..],
            b"GET  / HTTP/1.1\r\n",
            b" GET / HTTP/1.1\r\n",
            b"GET / HTTP/1.1 \r\n",
            b"GET / HTTP/1.1 x\r\n",
            b"GET /\r\n",
            b"GET HTTP/1.1\r\n",
            b"GET\r\n",
            b"GET\t/ HTTP/1.1\r\n",
            b"GET /\tHTTP/1.1\r\n",
            b"GET / http/1.1\r\n",
            b"GET / HTTP/1\r\n",
            b"GET / HTTP/1.\r\n",
            b"GET / HTTP/11\r\n",
            b"GET / HTTP/1.11\r\n",
            b"GET / HTTP/x.y\r\n",
            b"GET / HTTP/ 1.1\r\n",
            b"GET / HTTPS/1.1\r\n",
            b"GET / HTTP/1.1\rX",
            b"\rGET / HTTP/1.1\r\n",
            b"G@T / HTTP/1.1\r\n",
            b"G\xc3\x89T / HTTP/1.1\r\n",
            b"GET /\xc3\xa4 HTTP/1.1\r\n",
            b"GET /\xe4 HTTP/1.1\r\n",
            b"GET /\x7f HTTP/1.1\r\n",
            b"GET /\x00 HTTP/1.1\r\n",
            b"GET /\x01 HTTP/1.1\r\n",
            b"GET /a\rb HTTP/1.1\r\n",
        ] {
            assert_eq!(
                parse(line, 64),
                Err(HttpError::MalformedRequestLine),
                "{:?}",
                String::from_utf8_lossy(line)
            );
        }
    }

    #[test]
    fn resumed_a_byte_at_a_time_it_reads_the_same_line() {
        let line = b"\n\r\nOPTIONS * HTTP/1.0\r\nHost: a\r\n";
        let mut scan = LineScan::default();
        for end in 0..line.len() {
            let got = scan.advance(&line[..end], 64).unwrap();
            if end < 23 {
                assert_eq!(got, None, "end {end}");
            } else {
                assert_eq!(got, parse(line, 64).unwrap(), "end {end}");
            }
        }
        assert_eq!(scan.done(), Some(23));
    }

    #[test]
    fn a_long_target_is_414_as_soon_as_it_is_seen() {
        let long = format!("GET /{} HTTP/1.1\r\n", "a".repeat(64));
        assert_eq!(parse(long.as_bytes(), 64), Err(HttpError::UriTooLong));
        assert_eq!(
            parse(&long.as_bytes()[..70], 64),
            Err(HttpError::UriTooLong)
        );
        let exact = format!("GET /{} HTTP/1.1\r\n", "a".repeat(63));
        assert!(parse(exact.as_bytes(), 64).unwrap().is_some());
    }
}
