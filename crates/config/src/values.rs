//! Decoders for single values: each reports its own error and returns
//! None, so the caller keeps its default and goes on reading.

use std::time::Duration;

use toml::de::DeValue;

use crate::error::ErrorKind;
use crate::reader::{suggest, type_name, Cx, Value};
use crate::schema::{
    AccessFormat, Balance, Health, LogFormat, LogLevel, Method, Protocol, UpstreamBalance,
};
use crate::units::{parse_duration, parse_size};

pub(crate) fn string<'t>(cx: &mut Cx<'_>, path: &str, v: &'t Value<'_>) -> Option<&'t str> {
    match v.get_ref() {
        DeValue::String(s) => Some(s.as_ref()),
        other => wrong_type(cx, path, v, "a string", other),
    }
}

pub(crate) fn boolean(cx: &mut Cx<'_>, path: &str, v: &Value<'_>) -> Option<bool> {
    match v.get_ref() {
        DeValue::Boolean(b) => Some(*b),
        other => wrong_type(cx, path, v, "true or false", other),
    }
}

/// An integer within `min..=max`.
pub(crate) fn integer(
    cx: &mut Cx<'_>,
    path: &str,
    v: &Value<'_>,
    min: u64,
    max: u64,
) -> Option<u64> {
    let DeValue::Integer(int) = v.get_ref() else {
        return wrong_type(cx, path, v, "an integer", v.get_ref());
    };
    // i128 holds every TOML integer (they are i64), so the range check
    // below sees negatives as negatives rather than as a parse failure.
    let value = i128::from_str_radix(int.as_str(), int.radix()).unwrap_or(i128::MAX);
    if value < i128::from(min) || value > i128::from(max) {
        cx.error(v.span(), path, ErrorKind::OutOfRange { value, min, max });
        return None;
    }
    u64::try_from(value).ok()
}

/// Like [`integer`] for u32 fields.
pub(crate) fn integer32(
    cx: &mut Cx<'_>,
    path: &str,
    v: &Value<'_>,
    min: u32,
    max: u32,
) -> Option<u32> {
    integer(cx, path, v, u64::from(min), u64::from(max)).and_then(|n| u32::try_from(n).ok())
}

/// A duration string such as `"10s"`. Bare integers are refused: is `30`
/// seconds or milliseconds? The unit says.
pub(crate) fn duration(cx: &mut Cx<'_>, path: &str, v: &Value<'_>) -> Option<Duration> {
    let DeValue::String(text) = v.get_ref() else {
        return wrong_type(
            cx,
            path,
            v,
            "a duration string such as \"10s\" or \"250ms\"",
            v.get_ref(),
        );
    };
    match parse_duration(text) {
        Ok(d) => Some(d),
        Err(reason) => {
            cx.error(
                v.span(),
                path,
                ErrorKind::BadDuration {
                    text: text.to_string(),
                    reason,
                },
            );
            None
        }
    }
}

/// A size: an integer (bytes) or a string such as `"8KiB"`.
pub(crate) fn size(cx: &mut Cx<'_>, path: &str, v: &Value<'_>) -> Option<u64> {
    match v.get_ref() {
        DeValue::Integer(_) => integer(cx, path, v, 0, i64::MAX as u64),
        DeValue::String(text) => match parse_size(text) {
            Ok(n) => Some(n),
            Err(reason) => {
                cx.error(
                    v.span(),
                    path,
                    ErrorKind::BadSize {
                        text: text.to_string(),
                        reason,
                    },
                );
                None
            }
        },
        other => wrong_type(cx, path, v, "a size such as 512 or \"8KiB\"", other),
    }
}

/// A word from a closed set, spelled exactly.
pub(crate) fn keyword<K: Keyword>(cx: &mut Cx<'_>, path: &str, v: &Value<'_>) -> Option<K> {
    let text = string(cx, path, v)?;
    match K::from_name(text) {
        Some(k) => Some(k),
        None => {
            let suggestion = suggest(text, K::NAMES).map(str::to_string);
            let kind = ErrorKind::UnknownWord {
                found: text.to_string(),
                allowed: K::NAMES,
                suggestion,
            };
            cx.error(v.span(), path, kind);
            None
        }
    }
}

pub(crate) fn wrong_type<T>(
    cx: &mut Cx<'_>,
    path: &str,
    v: &Value<'_>,
    expected: &'static str,
    found: &DeValue<'_>,
) -> Option<T> {
    let found = type_name(found);
    cx.error(v.span(), path, ErrorKind::WrongType { expected, found });
    None
}

/// An enum written as one of a fixed set of words.
pub trait Keyword: Copy + PartialEq + 'static {
    /// The words, in the order of [`Keyword::VALUES`].
    const NAMES: &'static [&'static str];
    const VALUES: &'static [Self];

    fn from_name(name: &str) -> Option<Self> {
        let i = Self::NAMES.iter().position(|n| *n == name)?;
        Self::VALUES.get(i).copied()
    }

    /// The word for this value, as written in the file.
    fn name(self) -> &'static str {
        let i = Self::VALUES.iter().position(|v| *v == self).unwrap_or(0);
        Self::NAMES.get(i).copied().unwrap_or("")
    }
}

impl Keyword for Balance {
    const NAMES: &'static [&'static str] = &["least-loaded", "round-robin", "reuseport"];
    const VALUES: &'static [Self] = &[
        Balance::LeastLoaded,
        Balance::RoundRobin,
        Balance::ReusePort,
    ];
}

impl Keyword for Protocol {
    const NAMES: &'static [&'static str] = &["http", "echo", "frame", "tcp-proxy"];
    const VALUES: &'static [Self] = &[
        Protocol::Http,
        Protocol::Echo,
        Protocol::Frame,
        Protocol::TcpProxy,
    ];
}

impl Keyword for UpstreamBalance {
    const NAMES: &'static [&'static str] = &["round-robin", "least-requests"];
    const VALUES: &'static [Self] = &[UpstreamBalance::RoundRobin, UpstreamBalance::LeastRequests];
}

impl Keyword for LogLevel {
    const NAMES: &'static [&'static str] = &["trace", "debug", "info", "warn", "error"];
    const VALUES: &'static [Self] = &[
        LogLevel::Trace,
        LogLevel::Debug,
        LogLevel::Info,
        LogLevel::Warn,
        LogLevel::Error,
    ];
}

impl Keyword for LogFormat {
    const NAMES: &'static [&'static str] = &["text", "json"];
    const VALUES: &'static [Self] = &[LogFormat::Text, LogFormat::Json];
}

impl Keyword for AccessFormat {
    const NAMES: &'static [&'static str] = &["auto", "text", "json", "combined"];
    const VALUES: &'static [Self] = &[
        AccessFormat::Auto,
        AccessFormat::Text,
        AccessFormat::Json,
        AccessFormat::Combined,
    ];
}

impl Keyword for Method {
    const NAMES: &'static [&'static str] =
        &["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"];
    const VALUES: &'static [Self] = &[
        Method::Get,
        Method::Head,
        Method::Post,
        Method::Put,
        Method::Delete,
        Method::Patch,
        Method::Options,
    ];
}

impl Keyword for Health {
    const NAMES: &'static [&'static str] = &["live", "ready"];
    const VALUES: &'static [Self] = &[Health::Live, Health::Ready];
}
