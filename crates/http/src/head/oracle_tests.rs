//! The one-pass parser against the two passes it replaced (issue 16): httparse's tokens with
//! the strict line scan's verdict where httparse stopped short, then the same field rules.
//! Every head of tests/corpus/ and of a generator of hostile shapes, and every prefix of each,
//! must get the same answer from both: the same `Head` field for field, the same error, or
//! both incomplete. So the new tokeniser and line reader are checked against httparse and
//! `LineScan`; the field rules themselves are shared (moved, not rewritten).

use proptest::prelude::*;

use super::fields::{Field, FieldReader};
use super::target::split_target;
use super::{parse, Head, Method};
use crate::config::{HttpConfig, HEADER_CAPACITY};
use crate::error::HttpError;
use crate::line::{LineScan, Marks, Version};

/// The old `head::parse`: httparse first; the strict line scan when httparse stopped short
/// of a complete, ASCII, short-enough head; HTTP/1.2+ fields read by httparse alone.
fn oracle<'a>(input: &'a [u8], config: &HttpConfig) -> Result<Option<Head<'a>>, HttpError> {
    let mut line = LineScan::default();
    let max = config.max_headers.clamp(1, HEADER_CAPACITY);
    let mut storage = vec![httparse::EMPTY_HEADER; max];
    let mut request = httparse::Request::new(&mut storage);
    match request.parse(input) {
        Ok(httparse::Status::Complete(len)) => {
            let (method, target) = (request.method.unwrap(), request.path.unwrap());
            if target.len() > config.max_uri_bytes || !target.is_ascii() {
                return Err(line
                    .advance(input, config.max_uri_bytes)
                    .err()
                    .unwrap_or(HttpError::MalformedRequestLine));
            }
            let minor = request.version.unwrap();
            finish(
                &input[..len],
                method,
                target,
                minor,
                request.headers,
                config,
            )
        }
        Ok(httparse::Status::Partial) => {
            line.advance(input, config.max_uri_bytes)?;
            partial(input, config)
        }
        Err(error) => {
            let Some(parsed) = line.advance(input, config.max_uri_bytes)? else {
                return partial(input, config);
            };
            match parsed.version()? {
                Version::Http11 if parsed.minor > 1 => {
                    let mut storage = vec![httparse::EMPTY_HEADER; max];
                    match httparse::parse_headers(&input[parsed.len..], &mut storage) {
                        Ok(httparse::Status::Complete((len, fields))) => {
                            let raw = &input[..parsed.len + len];
                            finish(raw, parsed.method, parsed.target, 1, fields, config)
                        }
                        Ok(httparse::Status::Partial) => partial(input, config),
                        Err(error) => Err(fields_error(error)),
                    }
                }
                _ => Err(fields_error(error)),
            }
        }
    }
}

fn finish<'a>(
    raw: &'a [u8],
    method_token: &'a str,
    target: &'a str,
    minor: u8,
    fields: &[httparse::Header<'a>],
    config: &HttpConfig,
) -> Result<Option<Head<'a>>, HttpError> {
    if raw.len() > config.max_header_bytes {
        return Err(HttpError::HeadersTooLarge);
    }
    let method = Method::from_token(method_token);
    let bytes = target.as_bytes();
    let target = split_target(bytes, Marks::of(bytes), method)?;
    let mut head = Head {
        len: raw.len(),
        raw,
        method,
        method_token,
        path: target.path,
        query: target.query,
        path_encoded: target.encoded,
        host: target.authority.unwrap_or_default(),
        minor,
        keep_alive: minor == 1,
        ..Head::empty()
    };
    let mut reader = FieldReader::new(target.authority.is_some(), None);
    for field in fields {
        if let Some(known) = Field::of(field.name.as_bytes()) {
            reader.field(&mut head, known, field.value);
        }
    }
    reader.finish(&mut head).map(|()| Some(head))
}

fn partial<'a>(input: &[u8], config: &HttpConfig) -> Result<Option<Head<'a>>, HttpError> {
    if input.len() > config.max_header_bytes {
        return Err(HttpError::HeadersTooLarge);
    }
    Ok(None)
}

fn fields_error(error: httparse::Error) -> HttpError {
    match error {
        httparse::Error::TooManyHeaders => HttpError::TooManyHeaders,
        _ => HttpError::MalformedHeader,
    }
}

fn configs() -> [HttpConfig; 3] {
    [
        HttpConfig::default(),
        HttpConfig {
            max_uri_bytes: 64,
            max_header_bytes: 256,
            max_headers: 8,
            ..HttpConfig::default()
        },
        HttpConfig {
            max_headers: 1,
            max_header_bytes: 100,
            max_uri_bytes: 8,
            ..HttpConfig::default()
        },
    ]
}

/// Both parsers on `input` and on the prefixes `cuts` gives, under every config.
fn agree(input: &[u8], cuts: impl Iterator<Item = usize> + Clone) {
    for config in configs() {
        for cut in cuts.clone().chain([input.len()]) {
            let bytes = &input[..cut];
            let new = parse(bytes, &config).map(|h| h.map(|h| format!("{h:?}")));
            let old = oracle(bytes, &config).map(|h| h.map(|h| format!("{h:?}")));
            assert_eq!(
                new,
                old,
                "{:?} cut at {cut}, {config:?}",
                String::from_utf8_lossy(bytes)
            );
        }
    }
}

#[test]
fn the_corpus_and_its_prefixes_parse_as_before() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/corpus");
    let mut checked = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "http") {
            continue;
        }
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.extend_from_slice(b"GET /plaintext HTTP/1.1\r\nHost: t\r\n\r\n");
        // Every prefix of a short file; of a long one, every 97th and the last 300.
        let len = bytes.len();
        let step = if len <= 2048 { 1 } else { 97 };
        agree(
            &bytes,
            (0..len).step_by(step).chain(len.saturating_sub(300)..len),
        );
        checked += 1;
    }
    assert!(checked > 250, "{checked} corpus files");
}

#[test]
fn table_heads_parse_as_before() {
    for head in [
        &b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"[..],
        b"\r\n\nGET / HTTP/1.1\nHost: a\n\n",
        b"GET /a?b%41#c HTTP/1.1\r\nHost: a\r\n\r\n",
        b"GET /%41?%42 HTTP/1.2\r\nHost: a\r\n\r\n",
        b"OPTIONS * HTTP/1.0\r\n\r\n",
        b"GET * HTTP/1.1\r\nHost: a\r\n\r\n",
        b"GET HTTPS://h:1?q HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: \t a:1 \t\r\nX:\r\nY: \r\nZ:\t\tz\t\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nX: \x80\xff obs \x7e\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nX: a\x7f\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\n\rX",
        b"GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\n: empty name\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nX : 1\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nX\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a@b\r\nContent-Length: x\r\n\r\n",
        b"GET / HTTP/1.1\r\nContent-Length: x\r\nHost: a@b\r\n\r\n",
        b"GET /#f HTTP/1.1\r\nHost: a@b\r\n\r\n",
        b"GET / HTTP/2.0\r\nX : bad\r\n\r\n",
        b"GET / HTTP/1.0\r\nConnection: keep-alive\r\nExpect: 100-continue\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue \r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
        b"GET / HTTP/1.1\r\nIf-Match: a\r\nHost: a\r\nif-match: b\r\nIf-None-Match: c\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nRange: bytes=0-1\r\nIf-Range: x\r\nAccept: */*\r\nUser-Agent: u\r\nReferer: r\r\nContent-Type: t\r\nIf-Modified-Since: m\r\nIf-Unmodified-Since: n\r\n\r\n",
        b"M-SEARCH /x HTTP/1.1\r\nHost: a\r\n\r\n",
    ] {
        agree(head, 0..head.len());
    }
    // Host values of the plain shape the tokeniser judges itself, and just outside it.
    for host in [
        &b"a"[..],
        b"",
        b"a:",
        b"a:0",
        b"a:65535",
        b"a:65536",
        b"a:99999",
        b"a:000080",
        b"a:123456",
        b"a:01234567890123456789",
        b"a:1:2",
        b"a:1 ",
        b"a ",
        b"A.b-c_d~e!$&'()*+;=:1",
        b"[::1]:80",
        b"ex%41mple",
        b"a,b",
        b"a@b",
        b"\xe4",
        b"a\tb",
    ] {
        for name in ["Host:", "HOST: ", "hOsT:\t", "Hosts: ", "Hos: "] {
            let head = [
                &b"GET / HTTP/1.1\r\n"[..],
                name.as_bytes(),
                host,
                b"\r\n\r\n",
            ]
            .concat();
            agree(&head, 0..head.len());
            let bare = [&b"GET / HTTP/1.0\n"[..], name.as_bytes(), host, b"\n\n"].concat();
            agree(&bare, 0..bare.len());
        }
    }
}

/// Heads built from pieces of every class the grammar names, good and bad.
fn head_shape() -> impl Strategy<Value = Vec<u8>> {
    let empties = prop::sample::select(vec!["", "", "\r\n", "\n", "\r", "\r\n\n"]);
    let method = prop::sample::select(vec!["GET", "POST", "OPTIONS", "M-X", "G@T", "", "HEAD"]);
    let target = prop::sample::select(vec![
        "/",
        "/a?b",
        "/%41",
        "/a#b",
        "*",
        "http://h/p",
        "http://u@h/",
        "x",
        "/\u{e4}",
        "/a b",
        "/loooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooong",
    ]);
    let version = prop::sample::select(vec![
        "HTTP/1.1",
        "HTTP/1.1",
        "HTTP/1.0",
        "HTTP/1.2",
        "HTTP/2.0",
        "HTTP/1",
        "http/1.1",
        "HTTP/1.1 ",
    ]);
    let end = prop::sample::select(vec!["\r\n", "\r\n", "\n", "\r", "\rx"]);
    let name = prop::sample::select(vec![
        "Host",
        "host",
        "Content-Length",
        "Transfer-Encoding",
        "Connection",
        "Expect",
        "If-Match",
        "X-Other",
        "X y",
        " X",
        "",
        "X\u{e4}",
    ]);
    let value_byte = prop::sample::select(vec![
        b'a', b'1', b' ', b'\t', b',', b':', b'@', b'"', 0x00, 0x01, 0x7f, 0x80, 0xff, b'\r', b'\n',
    ]);
    let value = prop::collection::vec(value_byte, 0..12);
    let fields = prop::collection::vec((name, value, end.clone()), 0..10);
    (empties, method, target, version, end.clone(), fields, end).prop_map(
        |(empties, method, target, version, line_end, fields, last)| {
            let mut head = format!("{empties}{method} {target} {version}{line_end}").into_bytes();
            // Latin-1 for a non-ASCII name: bytes as a client would send them.
            for (name, value, end) in fields {
                head.extend(name.chars().map(|c| c as u32 as u8));
                head.extend_from_slice(b": ");
                head.extend_from_slice(&value);
                head.extend_from_slice(end.as_bytes());
            }
            head.extend_from_slice(last.as_bytes());
            head
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn generated_heads_and_their_prefixes_parse_as_before(head in head_shape()) {
        agree(&head, 0..head.len());
    }
}
