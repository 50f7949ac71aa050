//! The request target (RFC 9112 §3.2): origin-form, absolute-form (whose authority replaces
//! Host) and asterisk-form, split into path and query.
//!
//! The request line's pass over the target already noted where its `?` is, whether a `%`
//! comes before it and whether it holds a `#` ([`Marks`]), so an origin-form target, nearly
//! every one, is split here without looking at its bytes again.

use super::Method;
use crate::error::HttpError;
use crate::host;
use crate::line::Marks;

/// A request target split into what routing and the Host rules need.
pub(super) struct Target<'a> {
    pub path: &'a [u8],
    pub query: &'a [u8],
    /// The path holds a `%`.
    pub encoded: bool,
    /// The authority of an absolute-form target.
    pub authority: Option<&'a [u8]>,
}

/// Origin-form, absolute-form or asterisk-form for OPTIONS (RFC 9112 §3.2.4). For
/// absolute-form (§3.2.2) the authority must be a valid `uri-host [ ":" port ]` with no
/// userinfo and a non-empty host (RFC 9110 §4.2.1, §4.2.4); it replaces the Host field. A
/// `#` anywhere is refused: a fragment is never sent (RFC 9112 §3.2).
#[inline]
pub(super) fn split_target(
    target: &[u8],
    marks: Marks,
    method: Method,
) -> Result<Target<'_>, HttpError> {
    if target.first() == Some(&b'/') {
        return origin(target, marks, None);
    }
    if target == b"*" {
        return match method {
            Method::Options => Ok(Target {
                path: b"*",
                query: b"",
                encoded: false,
                authority: None,
            }),
            _ => Err(HttpError::InvalidTarget),
        };
    }
    let (authority, rest) = absolute_parts(target).ok_or(HttpError::InvalidTarget)?;
    origin(rest, Marks::of(rest), Some(authority))
}

/// `path [ "?" query ]`, by its marks; an empty path means `/`.
#[inline]
fn origin<'a>(
    origin: &'a [u8],
    marks: Marks,
    authority: Option<&'a [u8]>,
) -> Result<Target<'a>, HttpError> {
    if marks.fragment {
        return Err(HttpError::InvalidTarget);
    }
    let (path, query) = match marks.query_at {
        Some(q) => (&origin[..q], &origin[q + 1..]),
        None => (origin, &b""[..]),
    };
    Ok(Target {
        path: if path.is_empty() { b"/" } else { path },
        query,
        encoded: marks.encoded,
        authority,
    })
}

/// `http://authority/path?query`: (authority, path and query).
fn absolute_parts(target: &[u8]) -> Option<(&[u8], &[u8])> {
    let has = |prefix: &[u8]| {
        target.len() > prefix.len() && target[..prefix.len()].eq_ignore_ascii_case(prefix)
    };
    let rest = if has(b"http://") {
        &target[7..]
    } else if has(b"https://") {
        &target[8..]
    } else {
        return None;
    };
    // The authority runs to the first `/`, `?` or `#`; an empty path means `/`.
    let at = rest
        .iter()
        .position(|&b| matches!(b, b'/' | b'?' | b'#'))
        .unwrap_or(rest.len());
    let authority = &rest[..at];
    let named = !authority.is_empty() && !authority.starts_with(b":");
    (named && host::is_valid(authority)).then_some((authority, &rest[at..]))
}
