//! Field lines (RFC 9112 §5, RFC 9110 §5.5), tokenised and checked in one pass:
//!
//! - `field-name ":" OWS field-value OWS` and a line end: CRLF, or a bare LF (RFC 9112 §2.2);
//! - the name is one or more tchars, and the colon follows it at once: whitespace before the
//!   colon is refused (§5.1), and so is a line that starts with whitespace, obs-fold (§5.2);
//! - the value holds HTAB, SP, visible ASCII and obs-text (0x80-0xFF); a control (NUL among
//!   them), DEL, or a CR not followed by LF is refused (RFC 9110 §5.5);
//! - the value is given without the whitespace around it;
//! - an empty line (CRLF or LF) ends the head.
//!
//! The value, the longest part of most lines, is searched a word at a time: eight bytes are
//! checked for "below SP or DEL" with a few integer operations, and only a word that holds
//! such a byte (the line end, a tab, an error) is looked at byte by byte.

use super::fields::{Field, FieldReader};
use super::Head;
use crate::error::HttpError;
use crate::host::REG_NAME;
use crate::line::TCHAR;

/// Reads the field lines from `at` (just after the request line) through the empty line:
/// `Ok(Some(end))` with the head's length, `Ok(None)` while it is incomplete and valid so
/// far, the first syntax error otherwise. More than `max_fields` field lines is refused once
/// the first one too many is whole (as a syntax error in it goes first).
#[inline]
pub(super) fn read_fields<'a>(
    input: &'a [u8],
    mut at: usize,
    max_fields: usize,
    reader: &mut FieldReader,
    head: &mut Head<'a>,
) -> Result<Option<usize>, HttpError> {
    let mut count = 0;
    loop {
        match input.get(at..) {
            None | Some([]) | Some([b'\r']) => return Ok(None),
            Some([b'\n', ..]) => return Ok(Some(at + 1)),
            Some([b'\r', b'\n', ..]) => return Ok(Some(at + 2)),
            Some([b'\r', ..]) => return Err(HttpError::MalformedHeader),
            Some(_) => {}
        }
        let Some((field, after)) = read_name(input, at)? else {
            return Ok(None);
        };
        at = after;
        while let Some(b' ' | b'\t') = input.get(at) {
            at += 1;
        }
        if field == Some(Field::Host) {
            if let Some((end, next)) = plain_authority(input, at) {
                count += 1;
                if count > max_fields {
                    return Err(HttpError::TooManyHeaders);
                }
                reader.valid_host(head, &input[at..end]);
                at = next;
                continue;
            }
        }
        let Some((value_end, next)) = value_end(input, at)? else {
            return Ok(None);
        };
        count += 1;
        if count > max_fields {
            return Err(HttpError::TooManyHeaders);
        }
        if let Some(field) = field {
            reader.field(head, field, trim_end(&input[at..value_end]));
        }
        at = next;
    }
}

/// The name of the field line at `at` and its colon: (the field, if one we read; where its
/// value's whitespace starts), `None` while the name is not all in.
#[inline]
fn read_name(input: &[u8], mut at: usize) -> Result<Option<(Option<Field>, usize)>, HttpError> {
    if is_host(input, at) {
        return Ok(Some((Some(Field::Host), at + HOST.len())));
    }
    let start = at;
    while input.get(at).is_some_and(|&b| TCHAR[usize::from(b)]) {
        at += 1;
    }
    match input.get(at) {
        None => Ok(None),
        Some(b':') if at > start => Ok(Some((Field::of(&input[start..at]), at + 1))),
        Some(_) => Err(HttpError::MalformedHeader),
    }
}

/// `host:` in any case, with its colon: the field every request has, known without the
/// name's byte-by-byte walk and lookup (one compare of a word, letters folded to lower
/// case, the colon exact).
const HOST: &[u8] = b"host:";

#[inline]
fn is_host(input: &[u8], at: usize) -> bool {
    const NAME: u64 = u64::from_le_bytes(*b"host:\0\0\0");
    const FOLD: u64 = 0x2020_2020;
    const KEEP: u64 = 0xff_ffff_ffff;
    input
        .get(at..)
        .and_then(<[u8]>::first_chunk::<8>)
        .is_some_and(|word| (u64::from_le_bytes(*word) | FOLD) & KEEP == NAME)
}

/// A Host value of the common shape, `reg-name [ ":" port ]` with no `%`, brackets or
/// whitespace, right up to its line end: (its end, the next line's start). `None` for any
/// other value (or a line not all in), which the general path then reads and judges with
/// [`crate::host::is_valid`]; this shape is one that function accepts.
#[inline]
fn plain_authority(input: &[u8], at: usize) -> Option<(usize, usize)> {
    let rest = input.get(at..)?;
    let mut end = at + rest.iter().position(|&b| !REG_NAME[usize::from(b)])?;
    if input[end] == b':' {
        // At most five digits, at most 65535, read in the pass that finds their end.
        end += 1;
        let mut number = 0u32;
        for (count, &byte) in input[end..].iter().enumerate() {
            let digit = byte.wrapping_sub(b'0');
            if digit > 9 {
                break;
            }
            number = number * 10 + u32::from(digit);
            if count == 5 || number > 65535 {
                return None;
            }
            end += 1;
        }
    }
    match input[end..] {
        [b'\n', ..] => Some((end, end + 1)),
        [b'\r', b'\n', ..] => Some((end, end + 2)),
        _ => None,
    }
}

/// From the start of a value: (its end, the start of the next line), `None` while the line
/// is not all in.
#[inline]
fn value_end(input: &[u8], mut at: usize) -> Result<Option<(usize, usize)>, HttpError> {
    loop {
        let Some(stop) = next_stop(input, at) else {
            return Ok(None);
        };
        match input[stop..] {
            [b'\t', ..] => at = stop + 1,
            [b'\n', ..] => return Ok(Some((stop, stop + 1))),
            [b'\r', b'\n', ..] => return Ok(Some((stop, stop + 2))),
            [b'\r'] => return Ok(None),
            _ => return Err(HttpError::MalformedHeader),
        }
    }
}

/// The first byte from `at` on that is below SP or DEL (a line end, a tab or an error).
///
/// Not inlined on purpose: inside the parser's body the loop reloaded its four 64-bit
/// constants for every word (17 instructions a word); alone it keeps them in registers (13),
/// which more than pays for the call (callgrind: a 390-byte browser head 2,980 -> 2,903
/// instructions, the load generator's 908 -> 901).
#[inline(never)]
fn next_stop(input: &[u8], at: usize) -> Option<usize> {
    let rest = input.get(at..)?;
    // Two words a turn: one test and branch for sixteen bytes of a long value.
    let mut pairs = rest.chunks_exact(16);
    let mut offset = at;
    for pair in &mut pairs {
        let (Ok(low), Ok(high)) = (
            <[u8; 8]>::try_from(&pair[..8]),
            <[u8; 8]>::try_from(&pair[8..]),
        ) else {
            break;
        };
        let (low, high) = (
            stops(u64::from_le_bytes(low)),
            stops(u64::from_le_bytes(high)),
        );
        if low | high != 0 {
            let first = if low != 0 {
                low.trailing_zeros()
            } else {
                64 + high.trailing_zeros()
            };
            return Some(offset + (first / 8) as usize);
        }
        offset += 16;
    }
    let mut words = pairs.remainder().chunks_exact(8);
    for word in &mut words {
        let Ok(word) = <[u8; 8]>::try_from(word) else {
            break;
        };
        let stops = stops(u64::from_le_bytes(word));
        if stops != 0 {
            return Some(offset + (stops.trailing_zeros() / 8) as usize);
        }
        offset += 8;
    }
    let tail = words.remainder();
    tail.iter()
        .position(|&b| b < b' ' || b == 0x7f)
        .map(|found| offset + found)
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH_BITS: u64 = 0x8080_8080_8080_8080;

/// The high bit of each byte of `word` that is below SP or is DEL. Exact for the lowest
/// such byte, which is all [`next_stop`] reads: a borrow can only mark bytes above a marked
/// one. Bytes from 0x80 (obs-text) are never marked (`& !word`).
#[inline]
fn stops(word: u64) -> u64 {
    let below_space = word.wrapping_sub(ONES * 0x20) & !word;
    let del = word ^ (ONES * 0x7f);
    let del = del.wrapping_sub(ONES) & !del;
    (below_space | del) & HIGH_BITS
}

/// Without trailing SP and HTAB (RFC 9110 §5.5: not part of the value).
#[inline]
fn trim_end(mut value: &[u8]) -> &[u8] {
    while let [rest @ .., b' ' | b'\t'] = value {
        value = rest;
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_stop_is_found_at_every_offset_and_length() {
        let stop_bytes = (0u8..0x20).chain([0x7f]);
        for len in 0..40 {
            assert_eq!(next_stop(&vec![b'a'; len], 0), None, "{len}");
            let high = vec![0x80u8; len];
            assert_eq!(next_stop(&high, 0), None, "obs-text {len}");
            for at in 0..len {
                for byte in stop_bytes.clone() {
                    // Other stop bytes after the first must not hide it.
                    let mut bytes = vec![b'a'; len];
                    bytes[at] = byte;
                    for later in bytes.iter_mut().skip(at + 1).step_by(3) {
                        *later = 0x00;
                    }
                    assert_eq!(next_stop(&bytes, 0), Some(at), "{len} {at} {byte:#x}");
                }
                let mut bytes = vec![0xffu8; len];
                bytes[at] = b'\r';
                assert_eq!(next_stop(&bytes, 0), Some(at), "after 0xff, {len} {at}");
            }
        }
        // Every byte alone, at every position of a word.
        for byte in 0..=255u8 {
            let stop = byte < b' ' || byte == 0x7f;
            for at in 0..8 {
                let mut bytes = [b'x'; 8];
                bytes[at] = byte;
                assert_eq!(
                    next_stop(&bytes, 0),
                    stop.then_some(at),
                    "{byte:#x} at {at}"
                );
            }
        }
    }
}
