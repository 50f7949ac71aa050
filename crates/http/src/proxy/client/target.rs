//! The request target a proxy route forwards: the client's, as it sent it, without the
//! route's `strip_prefix`.

use std::borrow::Cow;

/// `target` without `prefix` in front, when it is there as whole segments.
pub(super) fn strip<'a>(target: Cow<'a, [u8]>, prefix: &[u8]) -> Cow<'a, [u8]> {
    let Some(rest) = target.strip_prefix(prefix) else {
        return target;
    };
    match rest.first() {
        None => Cow::Borrowed(b"/"),
        Some(b'/') => Cow::Owned(rest.to_vec()),
        Some(b'?') => Cow::Owned([b"/", rest].concat()),
        Some(_) => target,
    }
}

#[cfg(test)]
#[test]
fn a_prefix_is_stripped_by_whole_segments() {
    let cases: &[(&str, &str)] = &[
        ("/app/x?q=1", "/x?q=1"),
        ("/app", "/"),
        ("/app?q", "/?q"),
        ("/apple", "/apple"),
        ("/other/app", "/other/app"),
    ];
    for (from, to) in cases {
        let got = strip(Cow::Borrowed(from.as_bytes()), b"/app");
        assert_eq!(String::from_utf8(got.into_owned()).unwrap(), *to, "{from}");
    }
}

/// The request target as the client sent it (origin form passes as is; an absolute form's
/// path and query, RFC 9112 §3.2.2). Borrowed from the head but for an absolute form with
/// a query and no path, which gains a `/`.
pub(super) fn raw_target(raw: &[u8]) -> Cow<'_, [u8]> {
    // The method and the target hold no SP, CR or LF (the parser took the line): the scan
    // stops at the target's end, not the line's or the head's.
    let mut parts = raw.splitn(3, |&b| b == b' ' || b == b'\r' || b == b'\n');
    let _method = parts.next();
    let target = parts.next().unwrap_or(b"/");
    if let Some(rest) = target
        .strip_prefix(b"http://")
        .or_else(|| target.strip_prefix(b"https://"))
    {
        let path = rest
            .iter()
            .position(|&b| b == b'/' || b == b'?')
            .map_or(&b"/"[..], |i| &rest[i..]);
        if path.first() == Some(&b'?') {
            let mut with_slash = b"/".to_vec();
            with_slash.extend_from_slice(path);
            return Cow::Owned(with_slash);
        }
        return Cow::Borrowed(path);
    }
    Cow::Borrowed(target)
}

#[cfg(test)]
#[test]
fn the_target_is_the_origin_form_or_an_absolute_forms_path_and_query() {
    let cases: &[(&str, &str)] = &[
        ("GET /x?q=1 HTTP/1.1\r\nHost: a\r\n\r\n", "/x?q=1"),
        ("GET / HTTP/1.1\r\n\r\n", "/"),
        ("GET http://a.example/p/q?r HTTP/1.1\r\n\r\n", "/p/q?r"),
        ("GET https://a.example HTTP/1.1\r\n\r\n", "/"),
        ("GET http://a.example?x=1 HTTP/1.1\r\n\r\n", "/?x=1"),
        ("OPTIONS * HTTP/1.1\r\n\r\n", "*"),
    ];
    for (raw, want) in cases {
        let got = raw_target(raw.as_bytes()).into_owned();
        assert_eq!(String::from_utf8(got).unwrap(), *want, "{raw:?}");
    }
}
