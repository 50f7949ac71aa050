//! Handlers written as functions of an owned request: for the server's own endpoints and tests.
//! They allocate per request; the built-in handlers are the fast path.

use std::sync::Arc;

use super::{push_headers, JobReply};

/// A request handed to a [`CustomFn`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Request {
    /// The method token.
    pub method: String,
    /// The percent-decoded path (lossy UTF-8).
    pub path: String,
    /// The raw query, without `?`.
    pub query: String,
    /// The `Content-Type`, if any.
    pub content_type: Option<String>,
    /// The decoded body.
    pub body: Vec<u8>,
}

/// What a [`CustomFn`] answers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Response {
    /// Status code (200..=599).
    pub status: u16,
    /// `Content-Type`, if any.
    pub content_type: Option<String>,
    /// Further headers; protocol-owned ones (Content-Length, Connection, ...) are refused (500).
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

/// A custom handler. A panic inside it fails that request alone (500).
pub type CustomFn = Arc<dyn Fn(&Request) -> Response + Send + Sync>;

/// Runs `func` and turns its response into a [`JobReply`]; a response we cannot encode safely
/// becomes a 500 rather than a malformed message.
pub(crate) fn run(func: &CustomFn, request: &Request, head_only: bool) -> JobReply {
    let response = func(request);
    let mut extra = Vec::new();
    let content_type = response.content_type.as_deref().unwrap_or("");
    let valid = (200..=599).contains(&response.status)
        && !content_type
            .bytes()
            .any(|b| b == b'\r' || b == b'\n' || b == 0)
        && push_headers(&mut extra, &response.headers).is_ok();
    if !valid {
        return JobReply::text(500, "handler produced an invalid response\n");
    }
    let length = response.body.len() as u64;
    JobReply {
        status: response.status,
        content_type: response.content_type.map(String::into_bytes),
        extra,
        body: if head_only { Vec::new() } else { response.body },
        length,
        stream: None,
        open: None,
    }
}
