//! Waiting for the end of a head in linear time (issue 11 §6, issue 13 §3).
//!
//! A head that arrives in pieces used to be parsed again from its first byte after every
//! read: quadratic, 9 s of CPU for a 256 KiB head sent a byte at a time. Now the first look
//! parses as before (a head that arrives whole, the common case, pays nothing more); after an
//! incomplete look, each later read only looks at the bytes it adds, which the reactor names
//! (`Cx::unseen_from`): the request line is read on from where it stopped (its errors, and a
//! too-long target, are found at once), the field bytes are checked for what no field line
//! may hold (controls, DEL, a CR without its LF), and the head is parsed again only once its
//! end, an empty line (CRLF CRLF, or the bare-LF forms the parser accepts), is there. A field
//! grammar error in a head whose end never comes is then answered as too large (431) or too
//! slow (408) rather than 400.

use crate::config::HttpConfig;
use crate::error::HttpError;
use crate::head::Framing;
use crate::line::LineScan;

/// How far the look for the end of the current head got.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct HeadScan {
    /// The request line, as far as it was read.
    pub line: LineScan,
    /// An earlier look found the head incomplete: every byte it was handed was looked at.
    waiting: bool,
    /// What that look was handed, to check in debug builds that the reactor's "unseen"
    /// offset is exactly where it stopped (release builds keep no count of their own).
    #[cfg(debug_assertions)]
    looked: usize,
}

impl HeadScan {
    /// Whether an earlier look found the head incomplete.
    pub(crate) fn waiting(&self) -> bool {
        self.waiting
    }

    /// Whether anything was recorded for the current head (it must then be forgotten before
    /// the next one).
    pub(crate) fn touched(&self) -> bool {
        self.waiting || !self.line.fresh()
    }

    /// The head was incomplete after a look at all of `input`.
    pub(crate) fn wait(&mut self, input: &[u8]) {
        self.waiting = true;
        #[cfg(debug_assertions)]
        {
            self.looked = input.len();
        }
        #[cfg(not(debug_assertions))]
        let _ = input;
    }

    /// Looks at what `input` adds from `unseen` on (the bytes not handed over before; those
    /// before it were all looked at, since a waiting head starts the input the connection
    /// is handed: everything before it was consumed): `Ok(true)` once the head's end is in
    /// it, so that a parse can complete; an error as soon as the new bytes show one.
    pub(crate) fn look(
        &mut self,
        input: &[u8],
        unseen: usize,
        config: &HttpConfig,
    ) -> Result<bool, HttpError> {
        #[cfg(debug_assertions)]
        {
            debug_assert_eq!(
                unseen, self.looked,
                "unseen bytes start where the look stopped"
            );
            self.looked = input.len();
        }
        let from = unseen.min(input.len());
        if self.line.done().is_none() {
            self.line.advance(input, config.max_uri_bytes)?;
        }
        let Some(fields) = self.line.done() else {
            return within(input, config).map(|()| false);
        };
        // Field bytes before `from` were searched by an earlier look, unless the line
        // ended only now (then none were).
        let found = end_of_head(input, fields, from.max(fields))?;
        if found {
            return Ok(true);
        }
        within(input, config).map(|()| false)
    }
}

/// Bytes looked at by the head parser and the scan, counted in tests only: the proof that a
/// head trickled in a byte at a time costs linear work, not quadratic.
#[cfg(test)]
pub(crate) mod counter {
    use std::cell::Cell;

    thread_local! {
        static SCANNED: Cell<usize> = const { Cell::new(0) };
    }

    pub(crate) fn add(bytes: usize) {
        SCANNED.with(|count| count.set(count.get() + bytes));
    }

    /// The count so far on this thread, reset.
    pub(crate) fn take() -> usize {
        SCANNED.with(|count| count.replace(0))
    }
}

/// Whether `rest`, the input after a head with `framing`, holds the whole head of another
/// request (after a Content-Length body; a chunked body is searched through, which may take
/// body bytes for a head: the drain grace then closes instead of a `Connection: close`).
/// Only asked while draining.
pub(crate) fn request_follows(rest: &[u8], framing: Framing) -> bool {
    let rest = match framing {
        Framing::Length(length) => match usize::try_from(length) {
            Ok(length) if length <= rest.len() => &rest[length..],
            _ => return false,
        },
        Framing::Empty | Framing::Chunked => rest,
    };
    let Some(start) = rest.iter().position(|&b| b != b'\r' && b != b'\n') else {
        return false;
    };
    memchr::memchr_iter(b'\n', &rest[start..])
        .map(|offset| start + offset)
        .any(|at| rest[at - 1] == b'\n' || (rest[at - 1] == b'\r' && rest[at - 2] == b'\n'))
}

fn within(input: &[u8], config: &HttpConfig) -> Result<(), HttpError> {
    if input.len() > config.max_header_bytes {
        return Err(HttpError::HeadersTooLarge);
    }
    Ok(())
}

/// Searches `input[from..]` (field bytes, which start at `fields`) for an LF that ends an
/// empty line, checking the bytes on the way. Vectorised where it matters (a head sent in
/// small pieces is mostly field bytes): one pass for controls, then a memchr for CRs and LFs,
/// each judged by its neighbours. Only the LF that ends an empty line must be new: it is
/// judged by the (up to) two bytes before it, seen or not, so an end whose first three
/// bytes came in an earlier read (`\r\n\r` then `\n`) is found from the unseen offset as
/// if the search had started three bytes earlier.
fn end_of_head(input: &[u8], fields: usize, from: usize) -> Result<bool, HttpError> {
    // A CR that ended the last look is judged by the byte after it, which may be here now.
    let from = if from > fields && input[from - 1] == b'\r' {
        from - 1
    } else {
        from
    };
    #[cfg(test)]
    counter::add(input.len() - from);
    let mut end = None;
    for offset in memchr::memchr2_iter(b'\r', b'\n', &input[from..]) {
        let at = from + offset;
        if input[at] == b'\r' {
            if input.get(at + 1).is_some_and(|&b| b != b'\n') {
                end = Some(Err(at));
                break;
            }
        } else if at == fields
            || input[at - 1] == b'\n'
            || (input[at - 1] == b'\r' && (at - 1 == fields || input[at - 2] == b'\n'))
        {
            end = Some(Ok(at));
            break;
        }
    }
    // Only the head's own bytes are judged: what follows its end (a body, the next request)
    // is not field bytes.
    let head_part = match end {
        Some(Ok(at) | Err(at)) => &input[from..at],
        None => &input[from..],
    };
    if has_control(head_part) || matches!(end, Some(Err(_))) {
        return Err(HttpError::MalformedHeader);
    }
    Ok(end.is_some())
}

/// Whether `bytes` hold what no field line may other than a bare CR: a control but HTAB, CR
/// and LF, or DEL (RFC 9110 §5.5). Folded over fixed-size blocks without early exits inside
/// them, so that it compiles to vector code.
fn has_control(bytes: &[u8]) -> bool {
    const LANES: usize = 32;
    let control = |b: u8| {
        u8::from(b < 0x20) & u8::from(b != b'\t') & u8::from(b != b'\r') & u8::from(b != b'\n')
            | u8::from(b == 0x7f)
    };
    let blocks = bytes.chunks_exact(LANES);
    let tail = blocks.remainder();
    for block in blocks {
        if block.iter().fold(0u8, |bad, &b| bad | control(b)) != 0 {
            return true;
        }
    }
    tail.iter().fold(0u8, |bad, &b| bad | control(b)) != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> HttpConfig {
        HttpConfig {
            max_header_bytes: 256,
            max_uri_bytes: 64,
            ..HttpConfig::default()
        }
    }

    /// Fed a byte at a time after a first incomplete look: where the end is found.
    fn first_ready(head: &[u8]) -> Result<Option<usize>, HttpError> {
        let mut scan = HeadScan::default();
        scan.wait(&head[..1]);
        for end in 2..=head.len() {
            if scan.look(&head[..end], end - 1, &config())? {
                return Ok(Some(end));
            }
        }
        Ok(None)
    }

    #[test]
    fn the_end_is_found_at_the_empty_line_in_every_form() {
        for head in [
            &b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"[..],
            b"GET / HTTP/1.1\nHost: a\n\n",
            b"GET / HTTP/1.1\r\nHost: a\n\r\n",
            b"GET / HTTP/1.1\nHost: a\r\n\n",
            b"GET / HTTP/1.0\r\n\r\n",
            b"GET / HTTP/1.0\n\n",
            b"\r\n\n\r\nGET / HTTP/1.0\r\n\r\n",
        ] {
            assert_eq!(first_ready(head), Ok(Some(head.len())), "{head:?}");
        }
        assert_eq!(first_ready(b"\n\n\n\n\n\n"), Ok(None));
        assert_eq!(first_ready(b"GET / HTTP/1.1\r\nHost: a\r\n"), Ok(None));
    }

    #[test]
    fn a_following_request_is_seen_only_when_whole() {
        let next = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";
        assert!(request_follows(next, Framing::Empty));
        assert!(request_follows(b"GET / HTTP/1.0\n\n", Framing::Empty));
        assert!(!request_follows(&next[..next.len() - 1], Framing::Empty));
        assert!(!request_follows(b"\r\n\r\n", Framing::Empty));
        assert!(!request_follows(b"", Framing::Empty));
        let body = [&b"hello"[..], next].concat();
        assert!(request_follows(&body, Framing::Length(5)));
        assert!(!request_follows(&body, Framing::Length(500)));
        assert!(!request_follows(b"\r\n\r\n\r\n", Framing::Length(2)));
    }

    /// Regression: bytes after the end (a body, the next request) were judged as field bytes.
    #[test]
    fn bytes_after_the_end_are_not_judged() {
        let mut scan = HeadScan::default();
        let input = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n\x00\x01\r\x7f";
        scan.wait(&input[..16]);
        assert_eq!(scan.look(input, 16, &config()), Ok(true));
    }

    #[test]
    fn controls_are_found_at_every_offset_of_a_block() {
        for len in [1, 2, 31, 32, 33, 64, 65, 100] {
            assert!(!has_control(&vec![b'a'; len]), "{len}");
            for at in 0..len {
                for (byte, bad) in [(0u8, true), (0x01, true), (0x1f, true), (0x7f, true)]
                    .into_iter()
                    .chain([
                        (b'\t', false),
                        (b'\r', false),
                        (b'\n', false),
                        (0x80, false),
                    ])
                {
                    let mut bytes = vec![b'a'; len];
                    bytes[at] = byte;
                    assert_eq!(has_control(&bytes), bad, "{len} {at} {byte}");
                }
            }
        }
    }

    #[test]
    fn bytes_no_field_may_hold_are_refused_at_once() {
        for head in [
            &b"GET / HTTP/1.1\r\nX: a\0"[..],
            b"GET / HTTP/1.1\r\nX: a\x01",
            b"GET / HTTP/1.1\r\nX: a\x7f",
            b"GET / HTTP/1.1\r\nX: a\rb",
            b"GET / HTTP/1.1\r\n\rX",
        ] {
            assert_eq!(
                first_ready(head),
                Err(HttpError::MalformedHeader),
                "{head:?}"
            );
        }
        assert_eq!(
            first_ready(b"GET /a b HTTP/1.1"),
            Err(HttpError::MalformedRequestLine)
        );
        let long = format!("GET /{}", "a".repeat(80));
        assert_eq!(first_ready(long.as_bytes()), Err(HttpError::UriTooLong));
        let big = format!("GET / HTTP/1.1\r\nX: {}", "a".repeat(300));
        assert_eq!(first_ready(big.as_bytes()), Err(HttpError::HeadersTooLarge));
    }
}
