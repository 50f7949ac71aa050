//! The request line's fast reader: a whole, valid line in one pass (see the parent module for
//! the rules and for why this reader can never answer differently from [`LineScan`](super::LineScan)).

use super::{version, Version, TCHAR};
use crate::error::HttpError;
use crate::head::Method;

/// A request line read in one pass, with what the target's pass found on the way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RequestLine<'a> {
    /// Bytes from the start of the input through the line's LF.
    pub len: usize,
    pub method: Method,
    pub method_token: &'a str,
    pub target: &'a [u8],
    /// What the target holds, for an origin-form target (the only form that uses it).
    pub marks: Marks,
    pub major: u8,
    pub minor: u8,
}

/// Where a target's `?` is, whether a `%` comes before it and whether it holds a `#`: what
/// splitting an origin-form target needs, found while its bytes are checked anyway.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Marks {
    pub query_at: Option<usize>,
    pub encoded: bool,
    pub fragment: bool,
}

impl Marks {
    /// The marks of `target`, in a pass of its own (for lines [`read_line`] left to
    /// [`LineScan`](super::LineScan), and the path of an absolute-form target).
    pub(crate) fn of(target: &[u8]) -> Self {
        let mut marks = Marks::default();
        for (at, &byte) in target.iter().enumerate() {
            marks.note(TARGET[usize::from(byte)], at);
        }
        marks
    }

    #[inline]
    fn note(&mut self, class: u8, at: usize) {
        match class {
            QUERY if self.query_at.is_none() => self.query_at = Some(at),
            PERCENT if self.query_at.is_none() => self.encoded = true,
            HASH => self.fragment = true,
            _ => {}
        }
    }
}

/// Target byte classes: [`PLAIN`] needs nothing; the marks are noted; [`SPACE`] ends the
/// target; anything else (a control, DEL, non-ASCII) is not a target byte.
const PLAIN: u8 = 0;
const QUERY: u8 = 1;
const PERCENT: u8 = 2;
const HASH: u8 = 3;
const SPACE: u8 = 4;
const NOT_TARGET: u8 = 5;

const TARGET: [u8; 256] = {
    let mut table = [NOT_TARGET; 256];
    let mut byte = b'!';
    while byte <= b'~' {
        table[byte as usize] = PLAIN;
        byte += 1;
    }
    table[b'?' as usize] = QUERY;
    table[b'%' as usize] = PERCENT;
    table[b'#' as usize] = HASH;
    table[b' ' as usize] = SPACE;
    table
};

/// The fast path: the request line at the very start of `input` if it is whole, valid and
/// its target at most `max_uri` bytes; `None` for anything else, which [`LineScan`](super::LineScan) then
/// reads (and refuses, or waits for). One pass: the method's tchars, the target's bytes
/// (its marks noted on the way), the version as one 8-byte compare, the line end.
#[inline]
pub(crate) fn read_line(input: &[u8], max_uri: usize) -> Option<RequestLine<'_>> {
    let (method, method_token) = if input.starts_with(b"GET ") {
        (Method::Get, "GET")
    } else {
        let method_len = input.iter().position(|&b| !TCHAR[usize::from(b)])?;
        if method_len == 0 || input[method_len] != b' ' {
            return None;
        }
        method_of(&input[..method_len])?
    };
    let start = method_token.len() + 1;
    let mut marks = Marks::default();
    let mut at = start;
    loop {
        at = target_stop(input, at)?;
        let class = TARGET[usize::from(input[at])];
        if class == SPACE {
            break;
        }
        if class == NOT_TARGET {
            return None;
        }
        marks.note(class, at - start);
        at += 1;
    }
    let target = &input[start..at];
    if target.is_empty() || target.len() > max_uri {
        return None;
    }
    let (major, minor) = version_digits(input.get(at + 1..)?.first_chunk()?)?;
    let end = at + 9;
    let len = match input.get(end..)? {
        [b'\n', ..] => end + 1,
        [b'\r', b'\n', ..] => end + 2,
        _ => return None,
    };
    Some(RequestLine {
        len,
        method,
        method_token,
        target,
        marks,
        major,
        minor,
    })
}

/// The first byte from `at` on that is not a [`PLAIN`] target byte, eight at a time: a word
/// is tested for bytes below `!` or above `~` and for `?`, `%` and `#` with a few integer
/// operations each (each test exact for its lowest marked byte, which is the one read).
#[inline]
fn target_stop(input: &[u8], mut at: usize) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH_BITS: u64 = 0x8080_8080_8080_8080;
    let zero_at = |word: u64| word.wrapping_sub(ONES) & !word;
    while let Some(word) = input.get(at..).and_then(<[u8]>::first_chunk::<8>) {
        let word = u64::from_le_bytes(*word);
        let outside = (word.wrapping_sub(ONES * 0x21) & !word) | word.wrapping_add(ONES) | word;
        let marks = zero_at(word ^ (ONES * u64::from(b'?')))
            | zero_at(word ^ (ONES * u64::from(b'%')))
            | zero_at(word ^ (ONES * u64::from(b'#')));
        let stops = (outside | marks) & HIGH_BITS;
        if stops != 0 {
            return Some(at + (stops.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    let tail = input.get(at..)?;
    tail.iter()
        .position(|&b| TARGET[usize::from(b)] != PLAIN)
        .map(|offset| at + offset)
}

/// The methods the router names, with their tokens as static strings (no UTF-8 check of
/// the bytes needed); any other token is checked once.
#[inline]
fn method_of(token: &[u8]) -> Option<(Method, &str)> {
    let known = match token {
        b"GET" => (Method::Get, "GET"),
        b"HEAD" => (Method::Head, "HEAD"),
        b"POST" => (Method::Post, "POST"),
        b"PUT" => (Method::Put, "PUT"),
        b"DELETE" => (Method::Delete, "DELETE"),
        b"OPTIONS" => (Method::Options, "OPTIONS"),
        _ => return std::str::from_utf8(token).ok().map(|t| (Method::Other, t)),
    };
    Some(known)
}

/// `HTTP/` DIGIT `.` DIGIT as one compare of a little-endian word with the digits masked out.
#[inline]
fn version_digits(version: &[u8; 8]) -> Option<(u8, u8)> {
    const SHAPE: u64 = u64::from_le_bytes(*b"HTTP/\0.\0");
    const DIGITS_OUT: u64 = 0x00ff_00ff_ffff_ffff;
    if u64::from_le_bytes(*version) & DIGITS_OUT != SHAPE {
        return None;
    }
    let (major, minor) = (version[5].wrapping_sub(b'0'), version[7].wrapping_sub(b'0'));
    (major < 10 && minor < 10).then_some((major, minor))
}

impl RequestLine<'_> {
    /// See [`Line::version`](super::Line).
    pub(crate) fn version(&self) -> Result<Version, HttpError> {
        version(self.major, self.minor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::line::{Line, LineScan};

    fn parse(input: &[u8], max_uri: usize) -> Result<Option<Line<'_>>, HttpError> {
        LineScan::default().advance(input, max_uri)
    }

    /// `read_line` accepts exactly what `LineScan` accepts (without leading empty lines and
    /// within the target limit), with the same parts, and declines everything else.
    fn same_as_the_scan(input: &[u8], max_uri: usize) {
        let fast = read_line(input, max_uri);
        let scan = parse(input, max_uri);
        match (fast, scan) {
            (Some(fast), Ok(Some(line))) => {
                assert_eq!(fast, line.request(), "{input:?}");
                let whole = LineScan::read_whole(&fast);
                let mut resumed = LineScan::default();
                resumed.advance(input, max_uri).unwrap();
                assert_eq!(format!("{whole:?}"), format!("{resumed:?}"), "{input:?}");
            }
            (None, Ok(Some(line))) => assert!(
                matches!(input.first(), Some(b'\r' | b'\n')),
                "{input:?} declined though {line:?}"
            ),
            (Some(fast), scan) => panic!("{input:?}: fast {fast:?}, scan {scan:?}"),
            (None, _) => {}
        }
    }

    #[test]
    fn the_fast_reader_agrees_with_the_scan() {
        for line in [
            &b"GET / HTTP/1.1\r\n"[..],
            b"GET / HTTP/1.1\n",
            b"GET /a?b%c#d HTTP/1.0\r\nHost",
            b"M-SEARCH * HTTP/9.9\r\n",
            b"\r\nGET / HTTP/1.1\r\n",
            b"GET /\xe4 HTTP/1.1\r\n",
            b"GET / HTTP/1.1\rX",
            b"GET / HTTP/1.1 \r\n",
            b"GET  / HTTP/1.1\r\n",
            b"GET / HTTP/x.1\r\n",
        ] {
            for cut in 0..=line.len() {
                for max_uri in [1, 4, 64] {
                    same_as_the_scan(&line[..cut], max_uri);
                }
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig {
            cases: 2048, ..proptest::prelude::ProptestConfig::default()
        })]

        #[test]
        fn lines_of_line_bytes_read_alike(
            bytes in proptest::collection::vec(proptest::sample::select(
                b"GET /?%#*HTP1.029 \r\n\t\x00\x7f\x80a".to_vec()), 0..24),
            max_uri in 1usize..8,
        ) {
            // Mostly a valid start, so the later parts are reached.
            let input = [&b"GET / HTTP/1.1\r\n"[..cut_of(&bytes)], &bytes].concat();
            same_as_the_scan(&input, max_uri);
        }
    }

    fn cut_of(bytes: &[u8]) -> usize {
        bytes.len() % 17
    }

    #[test]
    fn the_target_stops_at_its_first_byte_that_is_not_plain() {
        for len in [8, 12, 16, 19] {
            assert_eq!(target_stop(&vec![b'a'; len], 0), None);
            for byte in 0..=255u8 {
                let stop = TARGET[usize::from(byte)] != PLAIN;
                for at in 0..len {
                    // Stop bytes after the first must not hide it.
                    let mut bytes = vec![b'a'; len];
                    bytes[at] = byte;
                    for later in bytes.iter_mut().skip(at + 1).step_by(2) {
                        *later = 0xff;
                    }
                    let first = if stop { at } else { at + 1 };
                    let want = (first < len).then_some(first);
                    assert_eq!(target_stop(&bytes, 0), want, "{byte:#x} at {at} of {len}");
                }
            }
        }
    }
}
