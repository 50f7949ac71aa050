//! The `Range` field of a GET (RFC 9110 §14.1.2, §14.2), against a representation of `len` bytes.
//!
//! Policy, where the RFC leaves a choice:
//! - an invalid ranges-specifier (unknown unit, bad syntax, `last-pos < first-pos`) is ignored:
//!   the whole file is sent with 200 (§14.2 allows ignoring);
//! - a valid set with no satisfiable range is 416 (§15.5.17);
//! - exactly one satisfiable range is 206 with that range, clamped to the file (§14.1.3);
//! - several satisfiable ranges are ignored (200, the whole file): no `multipart/byteranges`.
//!   Several ranges that overlap or touch are still several ranges here: a client asking for
//!   `0-9,5-20` gets the whole file, which is always a correct answer.

use crate::head::trim;

/// What a Range field asks of a representation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RangeAsk {
    /// Send the whole representation (no Range, or one we ignore).
    Whole,
    /// 416: nothing the client asked for exists.
    Unsatisfiable,
    /// 206: first and last byte, inclusive, both within the representation.
    Bytes(u64, u64),
}

/// One `range-spec` of a range-set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Spec {
    /// `first-pos "-" [ last-pos ]`; `None` is an open range.
    From(u64, Option<u64>),
    /// `"-" suffix-length`.
    Suffix(u64),
}

pub(crate) fn parse_range(value: &[u8], len: u64) -> RangeAsk {
    let value = trim(value);
    let Some(eq) = value.iter().position(|&b| b == b'=') else {
        return RangeAsk::Whole;
    };
    // Range units are case-insensitive (§14.1); we understand only `bytes`.
    if !value[..eq].eq_ignore_ascii_case(b"bytes") {
        return RangeAsk::Whole;
    }
    let mut chosen = None;
    let mut satisfiable = 0usize;
    let mut specs = 0usize;
    // `1#range-spec`: empty list elements are allowed (§5.6.1) but one element is required.
    for element in value[eq + 1..].split(|&b| b == b',').map(trim) {
        if element.is_empty() {
            continue;
        }
        let Some(spec) = parse_spec(element) else {
            return RangeAsk::Whole;
        };
        specs += 1;
        if let Some(bytes) = select(spec, len) {
            satisfiable += 1;
            chosen.get_or_insert(bytes);
        }
    }
    match (specs, satisfiable, chosen) {
        (0, _, _) => RangeAsk::Whole,
        (_, 0, _) => RangeAsk::Unsatisfiable,
        (_, 1, Some((first, last))) => RangeAsk::Bytes(first, last),
        _ => RangeAsk::Whole,
    }
}

fn parse_spec(element: &[u8]) -> Option<Spec> {
    let dash = element.iter().position(|&b| b == b'-')?;
    let (first, last) = (&element[..dash], &element[dash + 1..]);
    if first.is_empty() {
        return Some(Spec::Suffix(digits(last)?));
    }
    let first = digits(first)?;
    if last.is_empty() {
        return Some(Spec::From(first, None));
    }
    let last = digits(last)?;
    // §14.1.1: an int-range with last-pos < first-pos makes the whole set invalid.
    (last >= first).then_some(Spec::From(first, Some(last)))
}

/// `1*DIGIT`, saturating: a position past `u64::MAX` is past any file, which is what it means.
fn digits(text: &[u8]) -> Option<u64> {
    if text.is_empty() || !text.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(text.iter().fold(0u64, |n, &d| {
        n.saturating_mul(10).saturating_add(u64::from(d - b'0'))
    }))
}

/// The bytes a satisfiable spec selects (§14.1.3), or `None` when it is unsatisfiable. An empty
/// file has no byte to select: a suffix range of it is satisfiable but selects nothing, so it
/// is treated as asking for the (empty) whole.
fn select(spec: Spec, len: u64) -> Option<(u64, u64)> {
    match spec {
        Spec::From(first, _) if first >= len => None,
        Spec::From(first, last) => Some((first, last.map_or(len - 1, |l| l.min(len - 1)))),
        Spec::Suffix(0) => None,
        Spec::Suffix(_) if len == 0 => None,
        Spec::Suffix(n) => Some((len.saturating_sub(n), len - 1)),
    }
}

#[cfg(test)]
mod tests {
    use super::RangeAsk::{Bytes, Unsatisfiable, Whole};
    use super::*;

    fn check(value: &str, len: u64, expected: RangeAsk) {
        assert_eq!(
            parse_range(value.as_bytes(), len),
            expected,
            "{value:?} of {len}"
        );
    }

    #[test]
    fn int_ranges() {
        check("bytes=0-4", 10, Bytes(0, 4));
        check("bytes=0-0", 10, Bytes(0, 0));
        check("bytes=9-9", 10, Bytes(9, 9));
        check("bytes=2-100", 10, Bytes(2, 9));
        check("bytes=0-18446744073709551616", 10, Bytes(0, 9));
        check("bytes=10-20", 10, Unsatisfiable);
        check("bytes=18446744073709551616-", 10, Unsatisfiable);
    }

    #[test]
    fn open_and_suffix_ranges() {
        check("bytes=5-", 10, Bytes(5, 9));
        check("bytes=0-", 10, Bytes(0, 9));
        check("bytes=10-", 10, Unsatisfiable);
        check("bytes=-3", 10, Bytes(7, 9));
        check("bytes=-10", 10, Bytes(0, 9));
        check("bytes=-30", 10, Bytes(0, 9));
        check("bytes=-0", 10, Unsatisfiable);
    }

    #[test]
    fn empty_representation() {
        check("bytes=0-", 0, Unsatisfiable);
        check("bytes=0-0", 0, Unsatisfiable);
        check("bytes=-5", 0, Unsatisfiable);
    }

    #[test]
    fn several_ranges() {
        check("bytes=0-1,3-4", 10, Whole);
        check("bytes=0-4,2-6", 10, Whole);
        check("bytes=0-4,5-9", 10, Whole);
        check("bytes=0-1,-2", 10, Whole);
        // Only one of them is satisfiable: that one is served.
        check("bytes=0-1,20-30", 10, Bytes(0, 1));
        check("bytes=20-30,-2", 10, Bytes(8, 9));
        check("bytes=20-30,40-", 10, Unsatisfiable);
        // Empty list elements and OWS around commas (§5.6.1).
        check("bytes=0-1, ,", 10, Bytes(0, 1));
        check("bytes= 0-1 , 20-", 10, Bytes(0, 1));
    }

    #[test]
    fn invalid_specifiers_are_ignored() {
        for value in [
            "bytes=4-2",
            "bytes=0-1,4-2",
            "bytes=",
            "bytes=,",
            "bytes=-",
            "bytes=a-b",
            "bytes=1-2-3",
            "bytes=+1-2",
            "bytes=1 -2",
            "bytes=0x1-2",
            "bytes 0-1",
            "items=0-1",
            "bytes=0-1;q=1",
            "",
        ] {
            check(value, 10, Whole);
        }
    }

    #[test]
    fn the_unit_is_case_insensitive() {
        check("BYTES=0-1", 10, Bytes(0, 1));
        check("Bytes=-1", 10, Bytes(9, 9));
    }
}
