//! The files handler: serves a directory from the offload pool (every call here may block).
//!
//! Containment: the request path is split on `/` *before* decoding, each segment is decoded on
//! its own (so `%2F` never becomes a separator), `.`/`..` segments (also `%2e%2e`) are 404, and
//! the joined path is canonicalized and must still lie under the canonical root — which also
//! catches symlinks that point out of it.

use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::handlers::JobReply;
use crate::head::trim;
use crate::percent::decode_segment;

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
    pub head_only: bool,
    pub if_none_match: Option<Vec<u8>>,
    pub if_modified_since: Option<Vec<u8>>,
    pub range: Option<Vec<u8>>,
    pub max_bytes: u64,
}

/// Serves `ask`: 200, 206, 304, 404, 416, or 500 when the disk fails us.
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
    serve_file(ask, &path, &meta)
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
        return match file.and_then(|p| Some((fs::metadata(&p).ok()?, p))) {
            Some((meta, path)) => serve_file(ask, &path, &meta),
            None if ask.root.listing => listing(dir),
            None => JobReply::text(404, "not found\n"),
        };
    }
    match ask.root.listing {
        true => listing(dir),
        false => JobReply::text(404, "not found\n"),
    }
}

fn serve_file(ask: &FileAsk, path: &Path, meta: &fs::Metadata) -> JobReply {
    let len = meta.len();
    let modified = meta.modified().unwrap_or(UNIX_EPOCH);
    let stamp = modified.duration_since(UNIX_EPOCH).unwrap_or_default();
    let etag = format!("\"{len:x}-{:x}\"", stamp.as_nanos());
    let mut extra = format!(
        "ETag: {etag}\r\nLast-Modified: {}\r\nAccept-Ranges: bytes\r\n",
        httpdate::fmt_http_date(modified)
    )
    .into_bytes();
    if not_modified(ask, &etag, modified) {
        return JobReply {
            status: 304,
            extra,
            ..JobReply::default()
        };
    }
    let (status, start, count) = match ask.range.as_deref().map(|r| parse_range(r, len)) {
        None | Some(RangeAsk::Ignore) => (200, 0, len),
        Some(RangeAsk::Unsatisfiable) => return unsatisfiable(extra, len),
        Some(RangeAsk::Bytes(start, end)) => {
            extra.extend_from_slice(
                format!("Content-Range: bytes {start}-{end}/{len}\r\n").as_bytes(),
            );
            (206, start, end - start + 1)
        }
    };
    if count > ask.max_bytes {
        return JobReply::text(500, "file too large to serve\n");
    }
    let body = if ask.head_only {
        Ok(Vec::new())
    } else {
        read_range(path, start, count)
    };
    match body {
        Ok(body) => JobReply {
            status,
            content_type: Some(content_type(path).to_vec()),
            extra,
            body,
            length: count,
        },
        Err(_) => JobReply::text(500, "read failed\n"),
    }
}

/// RFC 9110 §13.2.2: If-None-Match wins over If-Modified-Since; weak comparison for the former.
fn not_modified(ask: &FileAsk, etag: &str, modified: SystemTime) -> bool {
    if let Some(tags) = &ask.if_none_match {
        let strip = |t: &[u8]| t.strip_prefix(b"W/").unwrap_or(t).to_vec();
        let ours = strip(etag.as_bytes());
        return tags
            .split(|&b| b == b',')
            .map(trim)
            .any(|t| t == b"*" || strip(t) == ours);
    }
    let Some(since) = ask.if_modified_since.as_deref() else {
        return false;
    };
    let since = std::str::from_utf8(since)
        .ok()
        .and_then(|s| httpdate::parse_http_date(s.trim()).ok());
    let secs = |t: SystemTime| t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    since.is_some_and(|since| secs(modified) <= secs(since))
}

/// A single byte range (RFC 9110 §14.1.2); anything else is ignored and the whole file sent.
#[derive(Debug, PartialEq, Eq)]
enum RangeAsk {
    Ignore,
    Unsatisfiable,
    /// First and last byte, inclusive.
    Bytes(u64, u64),
}

fn parse_range(value: &[u8], len: u64) -> RangeAsk {
    let Some(spec) = trim(value).strip_prefix(b"bytes=") else {
        return RangeAsk::Ignore;
    };
    let Some(dash) = spec.iter().position(|&b| b == b'-') else {
        return RangeAsk::Ignore;
    };
    let number = |s: &[u8]| std::str::from_utf8(s).ok()?.parse::<u64>().ok();
    let (first, last) = (&spec[..dash], &spec[dash + 1..]);
    if spec.contains(&b',') {
        return RangeAsk::Ignore;
    }
    match (number(first), number(last)) {
        (Some(start), _) if start >= len => RangeAsk::Unsatisfiable,
        (Some(start), None) if last.is_empty() => RangeAsk::Bytes(start, len - 1),
        (Some(start), Some(end)) if start <= end => RangeAsk::Bytes(start, end.min(len - 1)),
        (None, Some(suffix)) if first.is_empty() && suffix > 0 && len > 0 => {
            RangeAsk::Bytes(len.saturating_sub(suffix), len - 1)
        }
        (None, Some(_)) if first.is_empty() => RangeAsk::Unsatisfiable,
        _ => RangeAsk::Ignore,
    }
}

fn unsatisfiable(mut extra: Vec<u8>, len: u64) -> JobReply {
    extra.extend_from_slice(format!("Content-Range: bytes */{len}\r\n").as_bytes());
    JobReply {
        extra,
        ..JobReply::text(416, "range not satisfiable\n")
    }
}

fn read_range(path: &Path, start: u64, count: u64) -> std::io::Result<Vec<u8>> {
    let mut file = File::open(path)?;
    file.seek(SeekFrom::Start(start))?;
    let mut body = Vec::with_capacity(usize::try_from(count).unwrap_or(0));
    file.take(count).read_to_end(&mut body)?;
    if (body.len() as u64) < count {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    Ok(body)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        let check = |value: &str, expected: RangeAsk| {
            assert_eq!(parse_range(value.as_bytes(), 10), expected, "{value}")
        };
        check("bytes=0-4", RangeAsk::Bytes(0, 4));
        check("bytes=5-", RangeAsk::Bytes(5, 9));
        check("bytes=-3", RangeAsk::Bytes(7, 9));
        check("bytes=-30", RangeAsk::Bytes(0, 9));
        check("bytes=2-100", RangeAsk::Bytes(2, 9));
        check("bytes=10-", RangeAsk::Unsatisfiable);
        check("bytes=-0", RangeAsk::Unsatisfiable);
        check("bytes=4-2", RangeAsk::Ignore);
        check("bytes=0-1,3-4", RangeAsk::Ignore);
        check("items=0-1", RangeAsk::Ignore);
    }
}
