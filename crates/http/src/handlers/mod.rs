//! Built-in handlers, described by plain values ([`Handler`]) and compiled once ([`Compiled`]).
//!
//! A handler either answers inline on the shard (static, json, echo, health) or runs on the
//! offload pool (files, metrics, custom with `blocking`): it then produces a [`JobReply`] that
//! the connection encodes when the completion comes back. `delay` waits on the connection's
//! deadline and holds no thread.

pub(crate) mod custom;
mod inline;

use std::sync::Arc;
use std::time::Duration;

pub use custom::{CustomFn, Request, Response};
pub(crate) use inline::{write_echo, write_json};

use crate::files::{FileBody, FilesRoot, FilesSpec, OpenFile};
use crate::response::{Prepared, Reply};

/// Produces the metrics exposition text in the format asked for; filled in by the metrics
/// crate. Called on the shard: it must not block (coreloop-metrics reads atomics and figures
/// a server thread refreshed, nothing else).
pub type MetricsHook = Arc<dyn Fn(ExpositionFormat) -> String + Send + Sync>;

/// The two text formats a scraper may ask for in `Accept`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExpositionFormat {
    /// The Prometheus text format 0.0.4: what any scraper reads, and the default.
    Prometheus,
    /// OpenMetrics 1.0.0, which Prometheus asks for first.
    OpenMetrics,
}

impl ExpositionFormat {
    /// The `Content-Type` of a response in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Prometheus => "text/plain; version=0.0.4; charset=utf-8",
            Self::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }

    /// The format an `Accept` field value prefers (RFC 9110 §12.5.1): OpenMetrics when it is
    /// listed with a weight above zero and at least the weight of any `text/plain` or wildcard
    /// range; the 0.0.4 text otherwise, and when there is no `Accept` at all.
    pub fn from_accept(accept: Option<&[u8]>) -> Self {
        let Some(accept) = accept else {
            return Self::Prometheus;
        };
        let (mut openmetrics, mut text) = (0.0f32, 0.0f32);
        for range in accept.split(|&b| b == b',') {
            let mut parts = range.split(|&b| b == b';');
            let media = trim_ascii(parts.next().unwrap_or_default());
            let weight = parts.find_map(weight_of).unwrap_or(1.0);
            if media.eq_ignore_ascii_case(b"application/openmetrics-text") {
                openmetrics = openmetrics.max(weight);
            } else if media.eq_ignore_ascii_case(b"text/plain")
                || media.eq_ignore_ascii_case(b"text/*")
                || media == b"*/*"
            {
                text = text.max(weight);
            }
        }
        if openmetrics > 0.0 && openmetrics >= text {
            Self::OpenMetrics
        } else {
            Self::Prometheus
        }
    }
}

/// `q=0.5` as a weight; anything else is no weight.
fn weight_of(param: &[u8]) -> Option<f32> {
    let param = trim_ascii(param);
    let value = param
        .strip_prefix(b"q=")
        .or_else(|| param.strip_prefix(b"Q="))?;
    let weight: f32 = std::str::from_utf8(value).ok()?.parse().ok()?;
    Some(weight.clamp(0.0, 1.0))
}

fn trim_ascii(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| !b.is_ascii_whitespace());
    let end = bytes.iter().rposition(|b| !b.is_ascii_whitespace());
    match (start, end) {
        (Some(start), Some(end)) => &bytes[start..=end],
        _ => &[],
    }
}

/// A fixed response, encoded once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StaticSpec {
    /// Status code.
    pub status: u16,
    /// `Content-Type`.
    pub content_type: String,
    /// Further headers, e.g. `("Cache-Control", "max-age=60")`.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

/// What answers a route.
#[derive(Clone)]
pub enum Handler {
    /// A fixed response, pre-encoded at config time.
    Static(StaticSpec),
    /// `{"message":"Hello, World!"}`, serialized per request.
    Json,
    /// The request body back, with the request's content type.
    Echo,
    /// A directory, served from the offload pool.
    Files(FilesSpec),
    /// 200 while the process runs (`/healthz`).
    Health,
    /// 200, or 503 once the server drains (`/readyz`).
    Ready,
    /// The metrics exposition, from a hook, rendered on the shard (the hook does not block).
    Metrics(MetricsHook),
    /// Answers 200 after `?ms=N` (at most `max`), on the connection's deadline: no thread is
    /// held. A delay longer than the offload timeout answers 504 at that timeout.
    Delay {
        /// The longest sleep granted.
        max: Duration,
    },
    /// Hands the request to a server of an upstream (`crate::proxy`).
    Proxy(crate::proxy::ProxySpec),
    /// A function of the request; `blocking` ones run on the offload pool.
    Custom {
        /// The function.
        func: CustomFn,
        /// Whether it may block (then it runs on the offload pool).
        blocking: bool,
    },
}

impl Handler {
    /// A 200 `text/plain` static response.
    pub fn text(body: &str) -> Self {
        Self::Static(StaticSpec {
            status: 200,
            content_type: "text/plain".to_owned(),
            headers: Vec::new(),
            body: body.as_bytes().to_vec(),
        })
    }
}

impl std::fmt::Debug for Handler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Static(spec) => f.debug_tuple("Static").field(spec).finish(),
            Self::Files(spec) => f.debug_tuple("Files").field(spec).finish(),
            Self::Delay { max } => f.debug_struct("Delay").field("max", max).finish(),
            Self::Custom { blocking, .. } => f
                .debug_struct("Custom")
                .field("blocking", blocking)
                .finish(),
            Self::Proxy(spec) => f.debug_tuple("Proxy").field(spec).finish(),
            Self::Json => f.write_str("Json"),
            Self::Echo => f.write_str("Echo"),
            Self::Health => f.write_str("Health"),
            Self::Ready => f.write_str("Ready"),
            Self::Metrics(_) => f.write_str("Metrics"),
        }
    }
}

/// A handler ready to serve.
#[derive(Clone)]
pub(crate) enum Compiled {
    Prepared(Arc<Prepared>),
    Json,
    Echo,
    Ready {
        ready: Arc<Prepared>,
        draining: Arc<Prepared>,
    },
    Metrics(MetricsHook),
    Files(Arc<FilesRoot>),
    Delay {
        max: Duration,
    },
    Custom {
        func: CustomFn,
        blocking: bool,
    },
    Proxy(Arc<crate::proxy::ProxySpec>),
}

impl std::fmt::Debug for Compiled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Echo => f.write_str("Echo"),
            _ => f.write_str("Compiled"),
        }
    }
}

impl Compiled {
    /// Whether the handler reads the request body (and so earns a `100 Continue`).
    pub fn reads_body(&self) -> bool {
        matches!(self, Self::Echo | Self::Custom { .. } | Self::Proxy(_))
    }
}

/// A blocking handler's answer, encoded by the connection on completion.
#[derive(Debug, Default)]
pub(crate) struct JobReply {
    pub status: u16,
    pub content_type: Option<Vec<u8>>,
    /// Header lines, each ending in CRLF.
    pub extra: Vec<u8>,
    pub body: Vec<u8>,
    /// What `Content-Length` announces (differs from `body.len()` for HEAD, and for a file
    /// body, which follows in windows).
    pub length: u64,
    /// A file body sent after `body`, one window at a time (`crate::held`).
    pub stream: Option<Box<FileBody>>,
    /// The file a `files` job opened, for the shard's open-file cache (`crate::files`).
    pub open: Option<Box<OpenFile>>,
}

impl JobReply {
    pub fn text(status: u16, body: &str) -> Self {
        Self {
            status,
            content_type: Some(b"text/plain".to_vec()),
            extra: Vec::new(),
            body: body.as_bytes().to_vec(),
            length: body.len() as u64,
            stream: None,
            open: None,
        }
    }
}

pub(crate) fn compile(handler: Handler) -> Result<Compiled, String> {
    Ok(match handler {
        Handler::Static(spec) => Compiled::Prepared(Arc::new(prepare_static(&spec)?)),
        Handler::Json => Compiled::Json,
        Handler::Echo => Compiled::Echo,
        Handler::Health => Compiled::Prepared(Arc::new(plain(200, "ok\n"))),
        Handler::Ready => Compiled::Ready {
            ready: Arc::new(plain(200, "ready\n")),
            draining: Arc::new(plain(503, "draining\n")),
        },
        Handler::Metrics(hook) => Compiled::Metrics(hook),
        Handler::Files(spec) => Compiled::Files(Arc::new(FilesRoot::new(spec)?)),
        Handler::Delay { max } => Compiled::Delay { max },
        Handler::Custom { func, blocking } => Compiled::Custom { func, blocking },
        Handler::Proxy(spec) => Compiled::Proxy(Arc::new(spec)),
    })
}

fn plain(status: u16, body: &str) -> Prepared {
    Prepared::new(&Reply {
        status,
        content_type: Some(b"text/plain"),
        extra: b"",
        body: body.as_bytes(),
    })
}

fn prepare_static(spec: &StaticSpec) -> Result<Prepared, String> {
    if !(200..=599).contains(&spec.status) {
        return Err(format!("status {} is not a final status", spec.status));
    }
    let mut extra = Vec::new();
    push_headers(&mut extra, &spec.headers)?;
    check_value(&spec.content_type)?;
    Ok(Prepared::new(&Reply {
        status: spec.status,
        content_type: Some(spec.content_type.as_bytes()),
        extra: &extra,
        body: &spec.body,
    }))
}

/// Encodes configured headers, refusing the ones the protocol owns and any CR/LF injection.
pub(crate) fn push_headers(out: &mut Vec<u8>, headers: &[(String, String)]) -> Result<(), String> {
    const OWNED: [&str; 6] = [
        "content-length",
        "transfer-encoding",
        "connection",
        "date",
        "server",
        "content-type",
    ];
    for (name, value) in headers {
        let token = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
        if !token || OWNED.contains(&name.to_ascii_lowercase().as_str()) {
            return Err(format!("header name `{name}` is not allowed"));
        }
        check_value(value)?;
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    Ok(())
}

fn check_value(value: &str) -> Result<(), String> {
    match value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
        true => Err(format!(
            "header value `{}` has a control character",
            value.escape_debug()
        )),
        false => Ok(()),
    }
}

/// The delay `/delay?ms=N` asks for, capped at `max`.
pub(crate) fn delay_of(query: &[u8], max: Duration) -> Duration {
    let asked = query
        .split(|&b| b == b'&')
        .find_map(|pair| pair.strip_prefix(b"ms="))
        .and_then(|n| std::str::from_utf8(n).ok()?.parse::<u64>().ok())
        .unwrap_or(0);
    Duration::from_millis(asked).min(max)
}

/// The metrics exposition, rendered on the shard: the hook only reads atomics and figures a
/// server thread refreshes, so a scrape never waits behind file jobs on the offload pool.
pub(crate) fn metrics_reply(
    hook: &MetricsHook,
    format: ExpositionFormat,
    head_only: bool,
) -> JobReply {
    let text = hook(format);
    JobReply {
        status: 200,
        content_type: Some(format.content_type().as_bytes().to_vec()),
        extra: Vec::new(),
        length: text.len() as u64,
        body: if head_only {
            Vec::new()
        } else {
            text.into_bytes()
        },
        stream: None,
        open: None,
    }
}

#[cfg(test)]
mod accept_tests {
    use super::ExpositionFormat::{self, OpenMetrics, Prometheus};

    #[test]
    fn accept_picks_the_format() {
        let prometheus_3 = "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;\
                            q=0.6,application/openmetrics-text;version=0.0.1;q=0.5,\
                            text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,\
                            text/plain;version=0.0.4;q=0.3,*/*;q=0.2";
        let prometheus_2 = "application/openmetrics-text;version=1.0.0,\
                            application/openmetrics-text;version=0.0.1;q=0.75,\
                            text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        let cases: &[(Option<&str>, ExpositionFormat)] = &[
            (None, Prometheus),
            (Some(""), Prometheus),
            (Some("*/*"), Prometheus),
            (Some("text/plain"), Prometheus),
            (Some("application/openmetrics-text"), OpenMetrics),
            (Some("Application/OpenMetrics-Text ; q=0.9"), OpenMetrics),
            (Some("application/openmetrics-text;q=0"), Prometheus),
            (
                Some("application/openmetrics-text;q=0.4, text/plain"),
                Prometheus,
            ),
            (
                Some("text/plain;q=0.4, application/openmetrics-text"),
                OpenMetrics,
            ),
            (Some("application/openmetrics-text;q=junk"), OpenMetrics),
            (Some(prometheus_2), OpenMetrics),
            (Some(prometheus_3), OpenMetrics),
            (Some("application/json"), Prometheus),
        ];
        for (accept, want) in cases {
            let got = ExpositionFormat::from_accept(accept.map(str::as_bytes));
            assert_eq!(got, *want, "{accept:?}");
        }
    }
}
