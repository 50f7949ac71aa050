//! Conditional requests against a file (RFC 9110 §13), evaluated in the order of §13.2.2, then
//! the Range (§14) with its If-Range (§13.1.5).
//!
//! Decisions where the RFC leaves room:
//! - an entity-tag list that does not parse (`"a", b`) makes its field ignored, like a date that
//!   does not parse (§13.1.3, §13.1.4 say so for dates);
//! - dates compare at one-second resolution, the resolution of `Last-Modified`;
//! - a `Last-Modified` later than now is sent (and compared) as now (§8.8.2.1);
//! - Range is evaluated for GET only (§14.2: HEAD ignores it and answers as for 200).

use crate::head::{trim, Method};

use super::range::{parse_range, RangeAsk};

/// The request fields that make a request conditional (raw field values).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Conditions<'a> {
    pub if_match: Option<&'a [u8]>,
    pub if_unmodified_since: Option<&'a [u8]>,
    pub if_none_match: Option<&'a [u8]>,
    pub if_modified_since: Option<&'a [u8]>,
    pub if_range: Option<&'a [u8]>,
    pub range: Option<&'a [u8]>,
}

/// What the server knows of the selected representation.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Validators<'a> {
    /// The strong entity-tag, quotes included: `"1f-5a3c"`.
    pub etag: &'a [u8],
    /// `Last-Modified`, in seconds since the epoch (already clamped to now).
    pub modified: u64,
    /// The response's date, in seconds since the epoch.
    pub now: u64,
    /// Bytes of the representation.
    pub len: u64,
}

/// The answer the conditions lead to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// 200 with the whole representation.
    Whole,
    /// 206 with bytes `first..=last`.
    Partial(u64, u64),
    /// 304.
    NotModified,
    /// 412.
    Failed,
    /// 416.
    Unsatisfiable,
}

/// RFC 9110 §13.2.2, steps 1 to 6.
pub(crate) fn evaluate(method: Method, c: &Conditions<'_>, v: &Validators<'_>) -> Outcome {
    let safe = matches!(method, Method::Get | Method::Head);
    // Step 1, else step 2 (If-Unmodified-Since only counts without If-Match).
    if let Some(list) = c.if_match.and_then(parse_tags) {
        if !list.matches(v.etag, Compare::Strong) {
            return Outcome::Failed;
        }
    } else if let Some(since) = c.if_unmodified_since.and_then(parse_date) {
        if v.modified > since {
            return Outcome::Failed;
        }
    }
    // Step 3, else step 4 (If-Modified-Since only without If-None-Match, only GET/HEAD).
    if let Some(list) = c.if_none_match.and_then(parse_tags) {
        if list.matches(v.etag, Compare::Weak) {
            return if safe {
                Outcome::NotModified
            } else {
                Outcome::Failed
            };
        }
    } else if let Some(since) = c.if_modified_since.and_then(parse_date) {
        if safe && v.modified <= since {
            return Outcome::NotModified;
        }
    }
    // Step 5: Range, for GET, when If-Range (if any) holds.
    let Some(range) = c.range.filter(|_| method == Method::Get) else {
        return Outcome::Whole;
    };
    if c.if_range.is_some_and(|value| !if_range_holds(value, v)) {
        return Outcome::Whole;
    }
    match parse_range(range, v.len) {
        RangeAsk::Whole => Outcome::Whole,
        RangeAsk::Unsatisfiable => Outcome::Unsatisfiable,
        RangeAsk::Bytes(first, last) => Outcome::Partial(first, last),
    }
}

/// §13.1.5: an entity-tag matches by strong comparison (a weak tag never does); a date matches
/// only when it equals `Last-Modified` exactly and that date is strong, i.e. at least a second
/// older than the response (§8.8.2.2). Anything else is false: the Range is ignored.
fn if_range_holds(value: &[u8], v: &Validators<'_>) -> bool {
    let value = trim(value);
    if value.starts_with(b"\"") || value.starts_with(b"W/") {
        let (tag, rest) = match split_tag(value) {
            Some(split) => split,
            None => return false,
        };
        return trim(rest).is_empty() && !tag.weak && tag.opaque == v.etag;
    }
    match parse_date(value) {
        Some(date) => date == v.modified && v.modified < v.now,
        None => false,
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Compare {
    Strong,
    Weak,
}

/// A parsed `"*" / #entity-tag` field value.
#[derive(Debug)]
enum TagList<'a> {
    Any,
    /// The raw value, known to parse as a list of entity-tags.
    Tags(&'a [u8]),
}

impl TagList<'_> {
    fn matches(&self, etag: &[u8], compare: Compare) -> bool {
        let TagList::Tags(mut rest) = self else {
            // `*` matches any current representation, and a file we serve exists.
            return true;
        };
        while let Some((tag, after)) = next_tag(rest) {
            let weak_ok = compare == Compare::Weak || !tag.weak;
            if weak_ok && tag.opaque == etag {
                return true;
            }
            rest = after;
        }
        false
    }
}

/// One entity-tag: `opaque` keeps its quotes so it compares with our tag as sent.
#[derive(Debug, Clone, Copy)]
struct Tag<'a> {
    weak: bool,
    opaque: &'a [u8],
}

fn parse_tags(value: &[u8]) -> Option<TagList<'_>> {
    let value = trim(value);
    if value == b"*" {
        return Some(TagList::Any);
    }
    let mut rest = value;
    let mut count = 0;
    loop {
        rest = skip_separators(rest);
        if rest.is_empty() {
            break;
        }
        let (_, after) = split_tag(rest)?;
        let after = trim(after);
        if !(after.is_empty() || after.starts_with(b",")) {
            return None;
        }
        count += 1;
        rest = after;
    }
    (count > 0).then_some(TagList::Tags(value))
}

fn next_tag(rest: &[u8]) -> Option<(Tag<'_>, &[u8])> {
    let rest = skip_separators(rest);
    if rest.is_empty() {
        return None;
    }
    split_tag(rest)
}

fn skip_separators(mut rest: &[u8]) -> &[u8] {
    while let [b' ' | b'\t' | b',', tail @ ..] = rest {
        rest = tail;
    }
    rest
}

/// `entity-tag = [ "W/" ] DQUOTE *etagc DQUOTE`, `etagc = %x21 / %x23-7E / obs-text`: a comma
/// may sit inside the quotes, so a list is split by tags, never on commas.
fn split_tag(value: &[u8]) -> Option<(Tag<'_>, &[u8])> {
    let (weak, quoted) = match value.strip_prefix(b"W/") {
        Some(rest) => (true, rest),
        None => (false, value),
    };
    let body = quoted.strip_prefix(b"\"")?;
    let close = body.iter().position(|&b| b == b'"')?;
    let etagc = |b: &u8| *b == 0x21 || (0x23..=0x7e).contains(b) || *b >= 0x80;
    if !body[..close].iter().all(etagc) {
        return None;
    }
    let opaque = &quoted[..close + 2];
    Some((Tag { weak, opaque }, &body[close + 1..]))
}

/// An HTTP-date (IMF-fixdate, or the obsolete forms §5.6.7 requires recipients to accept), in
/// seconds since the epoch; `None` for anything else, which makes its field ignored.
pub(crate) fn parse_date(value: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(trim(value)).ok()?;
    let time = httpdate::parse_http_date(text).ok()?;
    time.duration_since(std::time::UNIX_EPOCH)
        .ok()
        .map(|d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::Outcome::{Failed, NotModified, Partial, Unsatisfiable, Whole};
    use super::*;

    const ETAG: &str = "\"a-1\"";
    /// Sun, 06 Nov 1994 08:49:37 GMT
    const MODIFIED: u64 = 784_111_777;
    const AT: &str = "Sun, 06 Nov 1994 08:49:37 GMT";
    const BEFORE: &str = "Sun, 06 Nov 1994 08:49:36 GMT";
    const AFTER: &str = "Sun, 06 Nov 1994 08:49:38 GMT";

    /// A file of 10 bytes, tag `"a-1"`, modified at `MODIFIED`, asked for at `now`.
    fn check_at(method: Method, now: u64, fields: &[(&str, &str)], expected: Outcome) {
        let field = |name: &str| {
            fields
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_bytes())
        };
        let conditions = Conditions {
            if_match: field("if-match"),
            if_unmodified_since: field("if-unmodified-since"),
            if_none_match: field("if-none-match"),
            if_modified_since: field("if-modified-since"),
            if_range: field("if-range"),
            range: field("range"),
        };
        let validators = Validators {
            etag: ETAG.as_bytes(),
            modified: MODIFIED,
            now,
            len: 10,
        };
        let got = evaluate(method, &conditions, &validators);
        assert_eq!(got, expected, "{method:?} {fields:?}");
    }

    fn check(fields: &[(&str, &str)], expected: Outcome) {
        check_at(Method::Get, MODIFIED + 60, fields, expected);
    }

    #[test]
    fn if_match_is_strong_and_fails_with_412() {
        check(&[("If-Match", ETAG)], Whole);
        check(&[("If-Match", "*")], Whole);
        check(&[("If-Match", "\"x\", \"a-1\"")], Whole);
        check(&[("If-Match", "\"x\"")], Failed);
        check(&[("If-Match", "W/\"a-1\"")], Failed);
        check(&[("If-Match", "\"a-1\"x")], Whole); // unparseable: ignored
        check_at(
            Method::Head,
            MODIFIED + 60,
            &[("If-Match", "\"x\"")],
            Failed,
        );
        check_at(
            Method::Post,
            MODIFIED + 60,
            &[("If-Match", "\"x\"")],
            Failed,
        );
    }

    #[test]
    fn if_unmodified_since_counts_only_without_if_match() {
        check(&[("If-Unmodified-Since", AT)], Whole);
        check(&[("If-Unmodified-Since", AFTER)], Whole);
        check(&[("If-Unmodified-Since", BEFORE)], Failed);
        check(&[("If-Unmodified-Since", "yesterday")], Whole);
        check(
            &[("If-Match", ETAG), ("If-Unmodified-Since", BEFORE)],
            Whole,
        );
        check(
            &[("If-Match", "\"x\""), ("If-Unmodified-Since", AFTER)],
            Failed,
        );
    }

    #[test]
    fn if_none_match_is_weak_304_for_get_and_head_412_otherwise() {
        check(&[("If-None-Match", ETAG)], NotModified);
        check(&[("If-None-Match", "W/\"a-1\"")], NotModified);
        check(&[("If-None-Match", "*")], NotModified);
        check(&[("If-None-Match", "\"x\", W/\"a-1\"")], NotModified);
        check(&[("If-None-Match", "\"x\"")], Whole);
        check(&[("If-None-Match", "\"a-1\" \"x\"")], Whole); // unparseable: ignored
        check_at(
            Method::Head,
            MODIFIED + 60,
            &[("If-None-Match", ETAG)],
            NotModified,
        );
        check_at(
            Method::Post,
            MODIFIED + 60,
            &[("If-None-Match", ETAG)],
            Failed,
        );
        check_at(
            Method::Put,
            MODIFIED + 60,
            &[("If-None-Match", "*")],
            Failed,
        );
    }

    #[test]
    fn a_comma_inside_an_entity_tag_is_part_of_it() {
        let weird = "\"a,b\", \"a-1\"";
        check(&[("If-None-Match", weird)], NotModified);
        check(&[("If-None-Match", "\"a,b\"")], Whole);
    }

    #[test]
    fn if_modified_since_only_without_if_none_match_and_only_for_get_head() {
        check(&[("If-Modified-Since", AT)], NotModified);
        check(&[("If-Modified-Since", AFTER)], NotModified);
        check(&[("If-Modified-Since", BEFORE)], Whole);
        check(
            &[("If-Modified-Since", "Sunday, 06-Nov-94 08:49:37 GMT")],
            NotModified,
        );
        check(
            &[("If-Modified-Since", "Sun Nov  6 08:49:37 1994")],
            NotModified,
        );
        check(&[("If-Modified-Since", "not a date")], Whole);
        check(
            &[("If-None-Match", "\"x\""), ("If-Modified-Since", AT)],
            Whole,
        );
        check_at(
            Method::Post,
            MODIFIED + 60,
            &[("If-Modified-Since", AT)],
            Whole,
        );
    }

    #[test]
    fn the_order_of_section_13_2_2() {
        // If-Match fails before If-None-Match could give 304.
        check(&[("If-Match", "\"x\""), ("If-None-Match", ETAG)], Failed);
        // If-Unmodified-Since fails before If-Modified-Since could give 304.
        check(
            &[("If-Unmodified-Since", BEFORE), ("If-Modified-Since", AT)],
            Failed,
        );
        // A 304 wins over a Range.
        check(
            &[("If-None-Match", ETAG), ("Range", "bytes=0-1")],
            NotModified,
        );
        // A 412 wins over an unsatisfiable Range.
        check(&[("If-Match", "\"x\""), ("Range", "bytes=50-")], Failed);
        // Preconditions that hold lead to the Range.
        check(&[("If-Match", ETAG), ("Range", "bytes=0-1")], Partial(0, 1));
    }

    #[test]
    fn ranges_apply_to_get_only() {
        check(&[("Range", "bytes=0-1")], Partial(0, 1));
        check(&[("Range", "bytes=20-")], Unsatisfiable);
        check(&[("Range", "bytes=0-1,4-5")], Whole);
        check_at(
            Method::Head,
            MODIFIED + 60,
            &[("Range", "bytes=0-1")],
            Whole,
        );
    }

    #[test]
    fn if_range_with_an_entity_tag_is_a_strong_comparison() {
        check(&[("If-Range", ETAG), ("Range", "bytes=0-1")], Partial(0, 1));
        check(&[("If-Range", "\"x\""), ("Range", "bytes=0-1")], Whole);
        check(&[("If-Range", "W/\"a-1\""), ("Range", "bytes=0-1")], Whole);
        check(
            &[("If-Range", "\"a-1\", \"x\""), ("Range", "bytes=0-1")],
            Whole,
        );
        check(&[("If-Range", "\"a-1"), ("Range", "bytes=0-1")], Whole);
        // A mismatched If-Range also lifts an unsatisfiable range: the whole file, 200.
        check(&[("If-Range", "\"x\""), ("Range", "bytes=50-")], Whole);
        // If-Range without Range is ignored.
        check(&[("If-Range", "\"x\"")], Whole);
    }

    #[test]
    fn if_range_with_a_date_must_match_exactly_and_be_strong() {
        check(&[("If-Range", AT), ("Range", "bytes=0-1")], Partial(0, 1));
        check(&[("If-Range", AFTER), ("Range", "bytes=0-1")], Whole);
        check(&[("If-Range", BEFORE), ("Range", "bytes=0-1")], Whole);
        check(&[("If-Range", "garbage"), ("Range", "bytes=0-1")], Whole);
        // Modified within the second of the response: the date is weak, the range ignored.
        let within = &[("If-Range", AT), ("Range", "bytes=0-1")];
        check_at(Method::Get, MODIFIED, within, Whole);
        check_at(Method::Get, MODIFIED + 1, within, Partial(0, 1));
    }
}
