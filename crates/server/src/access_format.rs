//! The three access-log line formats, written by the writer thread (never on a shard).
//!
//! - `text`: coreloop's own line, `2024-01-02T03:04:05.678Z shard=1 GET /plaintext 200 152
//!   87us listener=web client=127.0.0.1:50312 agent="curl/8" referer="-"`.
//! - `json`: one object per line with the same fields, the duration in seconds with
//!   microseconds, and `upstream`/`upstream_time` reserved (null until the proxy lands).
//! - `combined`: nginx's `combined` (`$remote_addr - - [$time_local] "$request" $status
//!   $bytes_sent "$http_referer" "$http_user_agent"`) then `$request_time`, so GoAccess,
//!   lnav and other nginx log parsers read it (tests/keys/log.rs feeds it to GoAccess).
//!
//! Every byte that came from the network is escaped: no line can be forged by a request.

use std::io::{self, Write};
use std::net::SocketAddr;
use std::time::SystemTime;

use coreloop_config::AccessFormat;

use crate::access_log::Line;
use crate::time::Civil;

/// A resolved [`AccessFormat`] (no `auto`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Format {
    Text,
    Json,
    Combined,
}

impl Format {
    pub(crate) fn of(format: AccessFormat, log: coreloop_config::LogFormat) -> Self {
        match format.resolve(log) {
            AccessFormat::Json => Self::Json,
            AccessFormat::Combined => Self::Combined,
            AccessFormat::Text | AccessFormat::Auto => Self::Text,
        }
    }
}

/// What a line needs besides the record: when the writer saw it and the listener names.
pub(crate) struct Context<'a> {
    pub now: SystemTime,
    pub listeners: &'a [String],
}

impl Context<'_> {
    fn listener(&self, index: u16) -> String {
        (self.listeners.get(usize::from(index)))
            .cloned()
            .unwrap_or_else(|| index.to_string())
    }
}

pub(crate) fn write(
    format: Format,
    line: &Line,
    cx: &Context<'_>,
    out: &mut impl Write,
) -> io::Result<()> {
    match format {
        Format::Text => text(line, cx, out),
        Format::Json => json(line, cx, out),
        Format::Combined => combined(line, cx, out),
    }
}

/// `12.000345`: seconds with microseconds.
fn seconds(micros: u64) -> String {
    format!("{}.{:06}", micros / 1_000_000, micros % 1_000_000)
}

/// Printable ASCII as is, anything else (and `"`, `\`) escaped: the text and combined forms.
fn escaped(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        return "-".to_owned();
    }
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        match b {
            b'"' => out.push_str("\\x22"),
            b'\\' => out.push_str("\\x5C"),
            0x20..=0x7e => out.push(char::from(b)),
            _ => out.push_str(&format!("\\x{b:02X}")),
        }
    }
    out
}

fn client(peer: Option<SocketAddr>) -> (String, String) {
    match peer {
        Some(addr) => (addr.ip().to_string(), addr.port().to_string()),
        None => ("-".to_owned(), "-".to_owned()),
    }
}

fn text(line: &Line, cx: &Context<'_>, out: &mut impl Write) -> io::Result<()> {
    let client = line.peer.map_or("-".to_owned(), |a| a.to_string());
    writeln!(
        out,
        "{} shard={} {} {} {} {} {}us listener={} client={} agent=\"{}\" referer=\"{}\"",
        Civil::of(cx.now).rfc3339(),
        line.shard,
        escaped(line.method()),
        escaped(line.path()),
        line.status,
        line.bytes,
        line.micros,
        escaped(cx.listener(line.listener).as_bytes()),
        client,
        escaped(line.agent()),
        escaped(line.referer()),
    )
}

fn combined(line: &Line, cx: &Context<'_>, out: &mut impl Write) -> io::Result<()> {
    let (address, _) = client(line.peer);
    let request = match line.method() {
        [] => "-".to_owned(),
        method => format!(
            "{} {} HTTP/1.{}",
            escaped(method),
            escaped(line.path()),
            line.minor
        ),
    };
    writeln!(
        out,
        "{address} - - [{}] \"{request}\" {} {} \"{}\" \"{}\" {}",
        Civil::of(cx.now).common_log(),
        line.status,
        line.bytes,
        escaped(line.referer()),
        escaped(line.agent()),
        seconds(line.micros),
    )
}

/// A JSON string of arbitrary bytes: UTF-8 kept, other bytes as `\u00XX` (read as Latin-1),
/// controls, `"` and `\` escaped.
fn json_string(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() + 2);
    out.push('"');
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                c if u32::from(c) < 0x20 || c == '\u{7f}' => {
                    out.push_str(&format!("\\u{:04x}", u32::from(c)))
                }
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\u{:04x}", b));
        }
    }
    out.push('"');
    out
}

fn json(line: &Line, cx: &Context<'_>, out: &mut impl Write) -> io::Result<()> {
    let (address, port) = match line.peer {
        Some(addr) => (
            json_string(addr.ip().to_string().as_bytes()),
            addr.port().to_string(),
        ),
        None => ("null".to_owned(), "null".to_owned()),
    };
    let or_null = |bytes: &[u8]| match bytes {
        [] => "null".to_owned(),
        bytes => json_string(bytes),
    };
    writeln!(
        out,
        "{{\"time\":\"{}\",\"shard\":{},\"listener\":{},\"client\":{address},\"client_port\":{port},\
         \"method\":{},\"target\":{},\"protocol\":\"HTTP/1.{}\",\"status\":{},\"bytes\":{},\
         \"duration\":{},\"user_agent\":{},\"referer\":{},\"upstream\":null,\"upstream_time\":null}}",
        Civil::of(cx.now).rfc3339(),
        line.shard,
        json_string(cx.listener(line.listener).as_bytes()),
        or_null(line.method()),
        or_null(line.path()),
        line.minor,
        line.status,
        line.bytes,
        seconds(line.micros),
        or_null(line.agent()),
        or_null(line.referer()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use coreloop_http::AccessRecord;
    use std::time::{Duration, UNIX_EPOCH};

    fn line(path: &[u8], agent: &[u8]) -> Line {
        Line::copy(&AccessRecord {
            shard: 3,
            listener: 0,
            peer: Some("127.0.0.1:5000".parse().unwrap()),
            method: b"GET",
            path,
            user_agent: agent,
            referer: b"",
            minor: 1,
            status: 200,
            bytes: 10,
            duration: Duration::from_micros(1_000_042),
        })
    }

    fn render(format: Format, line: &Line) -> String {
        let names = ["web".to_owned()];
        let cx = Context {
            now: UNIX_EPOCH + Duration::from_secs(1_700_000_000),
            listeners: &names,
        };
        let mut out = Vec::new();
        write(format, line, &cx, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn combined_is_nginx_combined_then_request_time() {
        let text = render(Format::Combined, &line(b"/a?b=1", b"curl/8"));
        assert_eq!(
            text,
            "127.0.0.1 - - [14/Nov/2023:22:13:20 +0000] \"GET /a?b=1 HTTP/1.1\" 200 10 \"-\" \"curl/8\" 1.000042\n"
        );
    }

    #[test]
    fn json_escapes_what_the_network_sent() {
        let text = render(Format::Json, &line(b"/\"x\n\xff", b"a\\b"));
        assert!(
            text.contains("\"target\":\"/\\\"x\\u000a\\u00ff\""),
            "{text}"
        );
        assert!(text.contains("\"user_agent\":\"a\\\\b\""), "{text}");
        assert!(
            text.contains("\"referer\":null,\"upstream\":null"),
            "{text}"
        );
        assert!(
            text.contains("\"client\":\"127.0.0.1\",\"client_port\":5000"),
            "{text}"
        );
        assert!(text.contains("\"duration\":1.000042,"), "{text}");
    }

    #[test]
    fn text_and_combined_escape_quotes_and_controls() {
        let text = render(Format::Text, &line(b"/a\nb", b"x\"y"));
        assert!(
            text.contains(" GET /a\\x0Ab 200 10 1000042us listener=web"),
            "{text}"
        );
        assert!(text.contains("agent=\"x\\x22y\""), "{text}");
        assert_eq!(text.lines().count(), 1);
        let combined = render(Format::Combined, &line(b"/a\"b", b""));
        assert!(combined.contains("\"GET /a\\x22b HTTP/1.1\""), "{combined}");
    }
}
