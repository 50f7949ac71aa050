//! The files handler: serves a directory from the offload pool (every call here may block),
//! except [`serve_cached`], which answers on the shard from its open files and touches no path.
//! Conditional requests are in [`preconditions`], ranges in [`range`], the windowed body in
//! [`body`], the shard's open files in [`cache`].
//!
//! Containment: the request path is split on `/` *before* decoding, each segment is decoded on
//! its own (so `%2F` never becomes a separator), `.`/`..` segments (also `%2e%2e`) are 404, and
//! the joined path is canonicalized and must still lie under the canonical root — which also
//! catches symlinks that point out of it.

mod body;
mod cache;
mod preconditions;
mod range;

use std::fs::{self, File};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

pub(crate) use body::FileBody;
pub(crate) use cache::{OpenFile, OpenFiles};

use crate::handlers::JobReply;
use crate::head::Method;
use crate::percent::decode_segment;
use cache::Opened;
use preconditions::{evaluate, Conditions, Outcome, Validators};

/// Where and how to serve files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FilesSpec {
    /// The directory served.
    pub root: PathBuf,
    /// File served for a directory, e.g. `index.html`.
    pub index: Option<String>,
    /// List directories without an index (off by default: listing leaks names).
    pub listing: bool,
}

/// A [`FilesSpec`] with its root canonicalized once at config time.
#[derive(Debug)]
pub(crate) struct FilesRoot {
    root: PathBuf,
    index: Option<String>,
    listing: bool,
}

impl FilesRoot {
    pub fn new(spec: FilesSpec) -> Result<Self, String> {
        let root = fs::canonicalize(&spec.root)
            .map_err(|e| format!("files root {}: {e}", spec.root.display()))?;
        if !root.is_dir() {
            return Err(format!("files root {} is not a directory", root.display()));
        }
        Ok(Self {
            root,
            index: spec.index,
            listing: spec.listing,
        })
    }
}

/// One file request, owned so that it can move to the offload pool.
#[derive(Debug)]
pub(crate) struct FileAsk {
    pub root: Arc<FilesRoot>,
    /// The raw (still encoded) path below the route prefix.
    pub rest: Vec<u8>,
    pub method: Method,
    pub fields: ConditionFields,
    /// The connection's transport takes `sendfile`: a body in the page cache then goes out
    /// from the shard with no window read here.
    pub send_file: bool,
}

/// The conditional fields of the request, copied out of its head.
#[derive(Debug, Default)]
pub(crate) struct ConditionFields {
    pub if_match: Option<Vec<u8>>,
    pub if_unmodified_since: Option<Vec<u8>>,
    pub if_none_match: Option<Vec<u8>>,
    pub if_modified_since: Option<Vec<u8>>,
    pub if_range: Option<Vec<u8>>,
    pub range: Option<Vec<u8>>,
}

impl ConditionFields {
    fn view(&self) -> Conditions<'_> {
        Conditions {
            if_match: self.if_match.as_deref(),
            if_unmodified_since: self.if_unmodified_since.as_deref(),
            if_none_match: self.if_none_match.as_deref(),
            if_modified_since: self.if_modified_since.as_deref(),
            if_range: self.if_range.as_deref(),
            range: self.range.as_deref(),
        }
    }
}

/// Serves `ask`: 200, 206, 304, 404, 412, 416, or 500 when the disk fails us. The body is not
/// read here beyond its first window (none when it goes by `sendfile`): the reply carries the
/// open file, and the connection sends on as the client drains (see `crate::held`).
pub(crate) fn serve(ask: &FileAsk) -> JobReply {
    let Some(path) = resolve(&ask.root, &ask.rest) else {
        return JobReply::text(404, "not found\n");
    };
    let Ok(meta) = fs::metadata(&path) else {
        return JobReply::text(404, "not found\n");
    };
    if meta.is_dir() {
        return serve_dir(ask, &path);
    }
    serve_file(ask, &path)
}

fn resolve(root: &FilesRoot, rest: &[u8]) -> Option<PathBuf> {
    let mut path = root.root.clone();
    for raw in rest.split(|&b| b == b'/').filter(|s| !s.is_empty()) {
        let segment = decode_segment(raw)?;
        if segment == b"." || segment == b".." {
            return None;
        }
        path.push(std::ffi::OsStr::from_bytes(&segment));
    }
    contained(&root.root, &path)
}

fn contained(root: &Path, path: &Path) -> Option<PathBuf> {
    let real = fs::canonicalize(path).ok()?;
    real.starts_with(root).then_some(real)
}

fn serve_dir(ask: &FileAsk, dir: &Path) -> JobReply {
    if let Some(index) = &ask.root.index {
        let file = contained(&ask.root.root, &dir.join(index)).filter(|p| p.is_file());
        return match file {
            Some(path) => serve_file(ask, &path),
            None if ask.root.listing => listing(dir),
            None => JobReply::text(404, "not found\n"),
        };
    }
    match ask.root.listing {
        true => listing(dir),
        false => JobReply::text(404, "not found\n"),
    }
}

/// Opens first and takes the validators from the open file, so that what is compared and what
/// is sent are the same file even if the path is replaced meanwhile.
fn serve_file(ask: &FileAsk, path: &Path) -> JobReply {
    let Ok(file) = File::open(path) else {
        return JobReply::text(404, "not found\n");
    };
    let Ok(meta) = file.metadata() else {
        return JobReply::text(500, "read failed\n");
    };
    let opened = Opened {
        file: Arc::new(file),
        len: meta.len(),
        modified: meta.modified().unwrap_or(UNIX_EPOCH),
        content_type: content_type(path),
    };
    let start = |file, first, count| match FileBody::open(file, first, count, ask.send_file) {
        Ok(body) => Start::Body(body),
        Err(_) => Start::Failed,
    };
    let Some(mut reply) = respond(ask.method, &ask.fields.view(), &opened, start) else {
        return JobReply::text(500, "read failed\n");
    };
    // Only a listener that takes `sendfile` can answer from the cache on the shard.
    if ask.send_file {
        let entry = OpenFile::new(ask.root.clone(), ask.rest.clone(), opened, Instant::now());
        reply.open = Some(Box::new(entry));
    }
    reply
}

/// Answers on the shard from `cache` when it holds the file, fresh, and the body's first
/// segment is in the page cache; `None`: ask the pool ([`serve`]) instead.
pub(crate) fn serve_cached(
    cache: &mut OpenFiles,
    root: &Arc<FilesRoot>,
    rest: &[u8],
    method: Method,
    fields: &ConditionFields,
) -> Option<JobReply> {
    let now = Instant::now();
    let entry = cache.lookup(root, rest, now)?;
    let trust = match method {
        Method::Head => None,
        _ => entry.trust(now),
    };
    let start = |file, first, count| match FileBody::resident(file, first, count, trust) {
        Some(body) => Start::Body(body),
        None => Start::NotHere,
    };
    respond(method, &fields.view(), entry.opened(), start)
}

/// How a response's body begins: made, failed (500), or not possible on this thread.
enum Start {
    Body(FileBody),
    Failed,
    NotHere,
}

/// The response to a request for `opened`; `start(file, first, count)` begins its body.
/// `None` when `start` answers [`Start::NotHere`]; a failed start is a 500.
fn respond(
    method: Method,
    conditions: &Conditions<'_>,
    opened: &Opened,
    start: impl FnOnce(Arc<File>, u64, u64) -> Start,
) -> Option<JobReply> {
    let len = opened.len;
    let now = SystemTime::now();
    // §8.8.2.1: never a Last-Modified later than the response's date.
    let modified = opened.modified.min(now);
    let stamp = modified.duration_since(UNIX_EPOCH).unwrap_or_default();
    let etag = format!("\"{len:x}-{:x}\"", stamp.as_nanos());
    let secs = |t: SystemTime| t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let validators = Validators {
        etag: etag.as_bytes(),
        modified: stamp.as_secs(),
        now: secs(now),
        len,
    };
    let mut extra = format!("ETag: {etag}\r\n").into_bytes();
    let (status, first, count) = match evaluate(method, conditions, &validators) {
        // §15.4.5: a 304 carries the ETag, and no other representation metadata.
        Outcome::NotModified => return Some(bodiless(304, extra)),
        Outcome::Failed => return Some(JobReply::text(412, "precondition failed\n")),
        Outcome::Unsatisfiable => return Some(unsatisfiable(len)),
        Outcome::Whole => (200, 0, len),
        Outcome::Partial(first, last) => {
            let range = format!("Content-Range: bytes {first}-{last}/{len}\r\n");
            extra.extend_from_slice(range.as_bytes());
            (206, first, last - first + 1)
        }
    };
    let modified = httpdate::fmt_http_date(modified);
    extra.extend_from_slice(
        format!("Last-Modified: {modified}\r\nAccept-Ranges: bytes\r\n").as_bytes(),
    );
    let stream = match method {
        Method::Head => None,
        _ => match start(opened.file.clone(), first, count) {
            Start::Body(body) => Some(Box::new(body)),
            Start::Failed => return Some(JobReply::text(500, "read failed\n")),
            Start::NotHere => return None,
        },
    };
    Some(JobReply {
        status,
        content_type: Some(opened.content_type.to_vec()),
        extra,
        body: Vec::new(),
        length: count,
        stream,
        open: None,
    })
}

fn bodiless(status: u16, extra: Vec<u8>) -> JobReply {
    JobReply {
        status,
        extra,
        ..JobReply::default()
    }
}

fn unsatisfiable(len: u64) -> JobReply {
    JobReply {
        extra: format!("Content-Range: bytes */{len}\r\n").into_bytes(),
        ..JobReply::text(416, "range not satisfiable\n")
    }
}

fn listing(dir: &Path) -> JobReply {
    let Ok(entries) = fs::read_dir(dir) else {
        return JobReply::text(500, "listing failed\n");
    };
    let mut names: Vec<String> = entries
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mut html = String::from("<!doctype html>\n<ul>\n");
    for name in names {
        let escaped = escape_html(&name);
        html.push_str(&format!("<li><a href=\"{escaped}\">{escaped}</a></li>\n"));
    }
    html.push_str("</ul>\n");
    let length = html.len() as u64;
    JobReply {
        status: 200,
        content_type: Some(b"text/html; charset=utf-8".to_vec()),
        extra: Vec::new(),
        body: html.into_bytes(),
        length,
        stream: None,
        open: None,
    }
}

fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A small extension table; unknown types are served as bytes.
fn content_type(path: &Path) -> &'static [u8] {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let kind: &str = match ext.as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "json" => "application/json",
        "txt" => "text/plain; charset=utf-8",
        "xml" => "application/xml",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "ico" => "image/x-icon",
        "wasm" => "application/wasm",
        "pdf" => "application/pdf",
        "woff2" => "font/woff2",
        "woff" => "font/woff",
        "mp4" => "video/mp4",
        _ => "application/octet-stream",
    };
    kind.as_bytes()
}
