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

use crate::error::HttpError;

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

impl Line<'_> {
    /// The version to follow, or 505 for a well-formed version whose major we do not speak
    /// (HTTP/0.9, HTTP/2.0, HTTP/3.0, ...).
    pub(crate) fn version(&self) -> Result<Version, HttpError> {
        match (self.major, self.minor) {
            (1, 0) => Ok(Version::Http10),
            (1, _) => Ok(Version::Http11),
            _ => Err(HttpError::UnsupportedVersion),
        }
    }
}

/// Parses the request line at the start of `input`: `Ok(None)` while it is incomplete and
/// valid so far. A target longer than `max_uri` is refused as soon as it is seen, so that a
/// long target answers 414 whether or not a bad byte follows later.
pub(crate) fn parse(input: &[u8], max_uri: usize) -> Result<Option<Line<'_>>, HttpError> {
    let Some(start) = skip_empty_lines(input)? else {
        return Ok(None);
    };
    let rest = &input[start..];
    let Some(method_len) = token(rest)? else {
        return Ok(None);
    };
    let rest = &rest[method_len + 1..];
    let Some(target_len) = target(rest, max_uri)? else {
        return Ok(None);
    };
    let rest = &rest[target_len + 1..];
    let Some((major, minor, version_len)) = version(rest)? else {
        return Ok(None);
    };
    let method = ascii(&input[start..start + method_len]);
    let target = ascii(&input[start + method_len + 1..start + method_len + 1 + target_len]);
    Ok(Some(Line {
        len: start + method_len + 1 + target_len + 1 + version_len,
        method,
        target,
        major,
        minor,
    }))
}

fn ascii(bytes: &[u8]) -> &str {
    // Only ever called on bytes checked to be visible ASCII.
    std::str::from_utf8(bytes).unwrap_or_default()
}

fn skip_empty_lines(input: &[u8]) -> Result<Option<usize>, HttpError> {
    let mut at = 0;
    loop {
        match input.get(at..) {
            Some([b'\n', ..]) => at += 1,
            Some([b'\r', b'\n', ..]) => at += 2,
            Some([b'\r']) | Some([]) | None => return Ok(None),
            Some([b'\r', ..]) => return Err(HttpError::MalformedRequestLine),
            Some(_) => return Ok(Some(at)),
        }
    }
}

/// The method token, up to its SP: its length.
fn token(input: &[u8]) -> Result<Option<usize>, HttpError> {
    for (at, &byte) in input.iter().enumerate() {
        match byte {
            b' ' if at > 0 => return Ok(Some(at)),
            _ if is_tchar(byte) => {}
            _ => return Err(HttpError::MalformedRequestLine),
        }
    }
    Ok(None)
}

/// The target, up to its SP: its length.
fn target(input: &[u8], max_uri: usize) -> Result<Option<usize>, HttpError> {
    for (at, &byte) in input.iter().enumerate() {
        match byte {
            b' ' if at > 0 => return Ok(Some(at)),
            b'!'..=b'~' if at < max_uri => {}
            b'!'..=b'~' => return Err(HttpError::UriTooLong),
            _ => return Err(HttpError::MalformedRequestLine),
        }
    }
    if input.len() > max_uri {
        return Err(HttpError::UriTooLong);
    }
    Ok(None)
}

/// `HTTP/d.d` and the line end: (major, minor, bytes through the LF).
fn version(input: &[u8]) -> Result<Option<(u8, u8, usize)>, HttpError> {
    const SHAPE: &[u8] = b"HTTP/0.0";
    for (at, &byte) in input.iter().enumerate().take(SHAPE.len()) {
        let fits = match SHAPE[at] {
            b'0' => byte.is_ascii_digit(),
            expected => byte == expected,
        };
        if !fits {
            return Err(HttpError::MalformedRequestLine);
        }
    }
    let (major, minor) = match input {
        [_, _, _, _, _, major, _, minor, ..] => (major - b'0', minor - b'0'),
        _ => return Ok(None),
    };
    match &input[SHAPE.len()..] {
        [] | [b'\r'] => Ok(None),
        [b'\n', ..] => Ok(Some((major, minor, SHAPE.len() + 1))),
        [b'\r', b'\n', ..] => Ok(Some((major, minor, SHAPE.len() + 2))),
        _ => Err(HttpError::MalformedRequestLine),
    }
}

/// A `tchar` of RFC 9110 §5.6.2.
pub(crate) fn is_tchar(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte)
}

#[cfg(test)]
mod tests {
    use super::*;

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
