//! The fast path for a response head that arrived whole, with CRLF line
//! ends: a line at a time instead of a state per byte.
//!
//! It accepts only heads the byte path accepts, with the same outcome.
//! Anything else (bare LF, a lone CR, control bytes, an interim 1xx, a head
//! cut by the read, any doubt) returns `None` before touching the framer,
//! and the byte path takes the same bytes from the start, so every error
//! still has one source. Profiled against nginx with 16-deep pipelining the
//! byte path cost ~60 steps per 161-byte head, 15% of the client's CPU.

use super::{is_token, FrameError, Framer, VALUE_CAP, VERSION};

/// Heads longer than this take the byte path, which enforces `MAX_HEAD`.
const WHOLE_MAX: usize = 8 * 1024;

/// Bytes that end the scan of a line: the C0 controls and DEL.
const CTL: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = i < 0x20 || i == 0x7f;
        i += 1;
    }
    t
};

/// What the header fields of one head say about framing.
#[derive(Default)]
struct Fields {
    content_length: Option<u64>,
    chunked: bool,
    close: bool,
    keep_alive: bool,
}

impl Framer {
    /// Frames a complete head at the start of `input` if the framer is
    /// between responses; returns the bytes of the head it consumed.
    pub(super) fn whole_head(&mut self, input: &[u8]) -> Option<usize> {
        let (minor, status, mut at) = status_line(input)?;
        if (100..200).contains(&status) && status != 101 {
            // Interim responses are rare; the byte path resets for them.
            return None;
        }
        let mut fields = Fields::default();
        loop {
            let end = line_end(input, at)?;
            if end == at {
                at += 2;
                break;
            }
            field(&input[at..end], &mut fields)?;
            at = end + 2;
            if at > WHOLE_MAX {
                return None;
            }
        }
        self.minor = minor;
        self.status = status;
        self.content_length = fields.content_length;
        self.chunked = fields.chunked;
        self.conn_close = fields.close;
        self.conn_keep_alive = fields.keep_alive;
        self.head_bytes = at;
        self.end_head().ok()?;
        Some(at)
    }
}

/// `HTTP/1.x SSS[ reason]CRLF`: the minor version, the status and where the
/// first field line starts.
fn status_line(input: &[u8]) -> Option<(u8, u16, usize)> {
    let head = input.get(..13)?;
    if !head.starts_with(VERSION) || head[8] != b' ' {
        return None;
    }
    let digit = |b: u8| b.is_ascii_digit().then(|| b - b'0');
    let minor = digit(head[7])?;
    let mut status = 0u16;
    for &b in &head[9..12] {
        status = status * 10 + u16::from(digit(b)?);
    }
    let end = match head[12] {
        b' ' => line_end(input, 13)?,
        b'\r' => line_end(input, 12)?,
        _ => return None,
    };
    Some((minor, status, end + 2))
}

/// Index of the CR of the CRLF ending the line that starts at `from`. `None`
/// if the line is cut off or holds a control byte other than HTAB.
fn line_end(input: &[u8], from: usize) -> Option<usize> {
    let mut at = from;
    loop {
        let i = at + first_ctl(input.get(at..)?)?;
        match input[i] {
            b'\r' => return (input.get(i + 1) == Some(&b'\n')).then_some(i),
            b'\t' => at = i + 1,
            _ => return None,
        }
    }
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// Index of the first C0 control byte or DEL in `s`, eight bytes at a time:
/// a byte-at-a-time scan was a third of the client's instructions per
/// keep-alive request (docs/BENCHMARKS.md, coreloop-load CPU per request).
fn first_ctl(s: &[u8]) -> Option<usize> {
    let mut words = s.chunks_exact(8);
    let mut base = 0;
    for w in &mut words {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(w);
        let m = ctl_mask(u64::from_le_bytes(bytes));
        if m != 0 {
            return Some(base + (m.trailing_zeros() / 8) as usize);
        }
        base += 8;
    }
    let rest = words.remainder();
    rest.iter().position(|&b| CTL[b as usize]).map(|i| base + i)
}

/// The high bit of each byte of `w` below 0x20 or equal to 0x7f. A borrow
/// only runs upwards from a byte that is itself flagged, so the lowest
/// flag is exact (higher ones may not be, and are never used).
fn ctl_mask(w: u64) -> u64 {
    let below_space = w.wrapping_sub(ONES * 0x20) & !w & HIGHS;
    let x = w ^ (ONES * 0x7f);
    let del = x.wrapping_sub(ONES) & !x & HIGHS;
    below_space | del
}

/// One field line without its CRLF: `token ":" value`.
fn field(line: &[u8], f: &mut Fields) -> Option<()> {
    let colon = line.iter().position(|&b| !is_token(b))?;
    if colon == 0 || line[colon] != b':' {
        return None;
    }
    let (name, value) = (&line[..colon], &line[colon + 1..]);
    if eq_lower(name, b"content-length") {
        let n = content_length(value).ok()?;
        if f.content_length.is_some_and(|old| old != n) {
            return None;
        }
        f.content_length = Some(n);
        return Some(());
    }
    // The byte path keeps the first VALUE_CAP bytes of these values.
    let kept = &value[..value.len().min(VALUE_CAP)];
    if eq_lower(name, b"transfer-encoding") {
        f.chunked = ends_with_ignore_case(super::trim(kept), b"chunked");
    } else if eq_lower(name, b"connection") {
        f.close |= contains_ignore_case(kept, b"close");
        f.keep_alive |= contains_ignore_case(kept, b"keep-alive");
    }
    Some(())
}

/// Digits with SP and HTAB ignored, as the byte path reads them.
fn content_length(value: &[u8]) -> Result<u64, FrameError> {
    let mut n: Option<u64> = None;
    for &b in value {
        if b == b' ' || b == b'\t' {
            continue;
        }
        if !b.is_ascii_digit() {
            return Err(FrameError::ContentLength);
        }
        n = n
            .unwrap_or(0)
            .checked_mul(10)
            .and_then(|n| n.checked_add(u64::from(b - b'0')));
        if n.is_none() {
            return Err(FrameError::ContentLength);
        }
    }
    n.ok_or(FrameError::ContentLength)
}

fn ends_with_ignore_case(hay: &[u8], needle: &[u8]) -> bool {
    hay.len() >= needle.len() && eq_lower(&hay[hay.len() - needle.len()..], needle)
}

/// `needle` is lower case; a window is compared only where its first byte
/// matches, which makes `Connection: keep-alive` a handful of compares.
fn contains_ignore_case(hay: &[u8], needle: &[u8]) -> bool {
    let first = needle[0];
    hay.windows(needle.len())
        .any(|w| w[0] | 0x20 == first && eq_lower(w, needle))
}

/// `a` equals `lower` (lower-case letters and '-') ignoring ASCII case,
/// eight bytes at a time. Setting the 0x20 bit is exact here: the only other
/// byte it maps onto a letter is that letter's capital, and onto '-' only CR,
/// which a line holds nowhere (`line_end` stops at it).
fn eq_lower(a: &[u8], lower: &[u8]) -> bool {
    if a.len() != lower.len() {
        return false;
    }
    if a.len() < 8 {
        return a.iter().zip(lower).all(|(x, y)| x | 0x20 == *y);
    }
    let last = a.len() - 8;
    let mut i = 0;
    while i < last {
        if word(a, i) | (ONES * 0x20) != word(lower, i) {
            return false;
        }
        i += 8;
    }
    word(a, last) | (ONES * 0x20) == word(lower, last)
}

fn word(s: &[u8], at: usize) -> u64 {
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&s[at..at + 8]);
    u64::from_le_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every single-byte change (any value but CR, which no line holds) at
    /// every offset of every name and value the fast path compares.
    #[test]
    fn eq_lower_matches_eq_ignore_ascii_case() {
        let needles: [&[u8]; 6] = [
            b"content-length",
            b"transfer-encoding",
            b"connection",
            b"chunked",
            b"close",
            b"keep-alive",
        ];
        for needle in needles {
            let upper = needle.to_ascii_uppercase();
            for base in [needle, &upper[..]] {
                assert!(eq_lower(base, needle));
                for at in 0..base.len() {
                    for b in (0..=255u8).filter(|&b| b != b'\r') {
                        let mut s = base.to_vec();
                        s[at] = b;
                        assert_eq!(
                            eq_lower(&s, needle),
                            s.eq_ignore_ascii_case(needle),
                            "{s:?}"
                        );
                    }
                }
                assert!(!eq_lower(&base[1..], needle));
            }
        }
    }

    /// Every byte value at every offset of a word and of the tail, with
    /// every kind of byte before it: the first control byte is found exactly.
    #[test]
    fn first_ctl_matches_a_byte_scan() {
        let scan = |s: &[u8]| s.iter().position(|&b| CTL[b as usize]);
        let fillers = [b'a', b' ', 0x80, 0xff, 0x7e, 0x21, 0x20];
        for len in 0..20 {
            for at in 0..len {
                for b in 0..=255u8 {
                    for &fill in &fillers {
                        let mut s = vec![fill; len];
                        s[at] = b;
                        assert_eq!(first_ctl(&s), scan(&s), "{s:?}");
                        // A second control byte after the first changes nothing.
                        if at + 1 < len {
                            s[at + 1] = 0;
                            assert_eq!(first_ctl(&s), scan(&s), "{s:?}");
                        }
                    }
                }
            }
        }
    }
}
