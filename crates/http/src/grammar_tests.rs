//! Table tests of the request grammar classes through the sans-IO protocol (issue 11 §1, §2):
//! versions and request lines, Host values and absolute-form, chunk extensions, HTTP/1.0
//! keep-alive and 100-continue, and `max_headers` past the old fixed 128.

use coreloop_reactor::Verb;

use crate::protocol_tests::{check, config, open, open_with, statuses, text};
use crate::{parse_head, HttpConfig, HttpError};

/// RFC 9112 §2.3, RFC 9110 §2.5 and §15.6.6: a higher HTTP/1 minor is answered as HTTP/1.1
/// (with 1.1's connection rules); 505 only for a well-formed version of another major.
#[test]
fn versions() {
    for minor in ["1", "2", "9"] {
        let request = format!("GET /plaintext HTTP/1.{minor}\r\nHost: a\r\n\r\n");
        let (mut harness, mut protocol) = open();
        assert_eq!(
            harness.push(protocol.as_mut(), request.as_bytes()),
            Verb::Read
        );
        let output = text(&harness.take_output());
        assert!(output.starts_with("HTTP/1.1 200 OK\r\n"), "{output}");
        assert!(!output.contains("Connection:"), "{output}");
    }
    // Regression: the line read for one HTTP/1.2 request was taken for the next one's.
    let (mut harness, mut protocol) = open();
    let batch = b"GET /plaintext HTTP/1.2\r\nHost: a\r\n\r\nGET /nothing HTTP/1.3\r\nHost: a\r\n\r\nGET /plaintext HTTP/1.1\r\nHost: a\r\n\r\nGET /plaintext HTTP/2.0\r\nHost: a\r\n\r\n";
    assert_eq!(
        harness.push(protocol.as_mut(), batch),
        Verb::CloseAfterFlush
    );
    assert_eq!(
        statuses(&text(&harness.take_output())),
        [200, 404, 200, 505]
    );
    // 1.x above 1.1 needs a Host as 1.1 does.
    check(b"GET /plaintext HTTP/1.2\r\n\r\n", 400);
    for version in ["HTTP/0.9", "HTTP/2.0", "HTTP/3.0", "HTTP/9.9"] {
        let request = format!("GET /plaintext {version}\r\nHost: a\r\n\r\n");
        check(request.as_bytes(), 505);
    }
    check(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505);
}

/// RFC 9112 §3: a missing part, a space inside the target, a bad version token, stray
/// whitespace or bytes outside the grammar are 400 (never 505).
#[test]
fn malformed_request_lines_are_400() {
    for line in [
        &b"GET /a b HTTP/1.1"[..],
        b"GET /plain text HTTP/1.1",
        b"GET /a b c HTTP/1.1",
        b"GET  /plaintext HTTP/1.1",
        b"GET /plaintext  HTTP/1.1",
        b" GET /plaintext HTTP/1.1",
        b"GET /plaintext HTTP/1.1 ",
        b"GET /plaintext HTTP/1.1 extra",
        b"GET /plaintext",
        b"GET HTTP/1.1",
        b"GET",
        b"/plaintext HTTP/1.1",
        b"GET\t/plaintext HTTP/1.1",
        b"GET /plaintext\tHTTP/1.1",
        b"GET /plaintext http/1.1",
        b"GET /plaintext Http/1.1",
        b"GET /plaintext HTTP/1",
        b"GET /plaintext HTTP/1.",
        b"GET /plaintext HTTP/.1",
        b"GET /plaintext HTTP/11",
        b"GET /plaintext HTTP/1.11",
        b"GET /plaintext HTTP/10.0",
        b"GET /plaintext HTTP/x.y",
        b"GET /plaintext HTTP/ 1.1",
        b"GET /plaintext HTTP/1.1/",
        b"GET /plaintext HTTPS/1.1",
        b"GET /plaintext HTTP",
        b"G@T /plaintext HTTP/1.1",
        b"GET /pl\xe4intext HTTP/1.1",
        b"GET /pl\xc3\xa4intext HTTP/1.1",
        b"GET /\xff HTTP/1.1",
        b"GET /a\x7f HTTP/1.1",
        b"GET /a\x0b HTTP/1.1",
    ] {
        let request = [line, b"\r\nHost: a\r\n\r\n"].concat();
        check(&request, 400);
    }
}

/// RFC 9112 §3.2, RFC 9110 §7.2, RFC 3986 §3.2.2-3: Host is `uri-host [ ":" port ]`.
#[test]
fn host_values() {
    for host in [
        "a",
        "example.com:8080",
        "example.com:",
        "127.0.0.1:80",
        "[::1]",
        "[::1]:8080",
        "[v1.x]",
        "ex%41mple",
        "",
    ] {
        let request = format!("GET /plaintext HTTP/1.1\r\nHost: {host}\r\n\r\n");
        check(request.as_bytes(), 200);
    }
    for host in [
        "user@a",
        "user:pw@a",
        "a/path",
        "a/",
        "a?q",
        "a#f",
        "a, b",
        "a,b",
        "a b",
        "a:http",
        "a:80:80",
        "a:65536",
        "a:123456",
        "a:-1",
        "[::1",
        "::1]",
        "::1",
        "[::1]x",
        "[::1]:x",
        "[]",
        "[1.2.3.4]",
        "[fe80::1%eth0]",
        "a\"b",
        "a{b",
        "ex%zz",
        "\u{e4}.example",
    ] {
        let bytes: Vec<u8> = format!("GET /plaintext HTTP/1.1\r\nHost: {host}\r\n\r\n")
            .chars()
            .map(|c| c as u32 as u8)
            .collect();
        check(&bytes, 400);
    }
    // Several Host lines are refused whatever the version (RFC 9112 §3.2).
    check(
        b"GET /plaintext HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n",
        400,
    );
    check(b"GET /plaintext HTTP/1.0\r\nHost: a/b\r\n\r\n", 400);
    check(b"GET /plaintext HTTP/1.0\r\n\r\n", 200);
}

/// RFC 9112 §3.2.2: an absolute-form target's authority replaces Host. The Host field must
/// still be there (and valid) in HTTP/1.1, but a different value is not an error: it is
/// ignored, as the RFC says.
#[test]
fn absolute_form_authority_replaces_host() {
    let config = HttpConfig::default();
    let head = parse_head(
        b"GET http://example.com:8080/plaintext?x HTTP/1.1\r\nHost: other\r\n\r\n",
        &config,
    )
    .unwrap()
    .unwrap();
    assert_eq!(
        (head.host, head.path, head.query),
        (&b"example.com:8080"[..], &b"/plaintext"[..], &b"x"[..])
    );
    let head = parse_head(b"GET /p HTTP/1.1\r\nHost:  a:1 \r\n\r\n", &config)
        .unwrap()
        .unwrap();
    assert_eq!(head.host, b"a:1");
    check(b"GET http://a/plaintext HTTP/1.1\r\nHost: b\r\n\r\n", 200);
    check(
        b"GET http://[::1]:80/plaintext HTTP/1.1\r\nHost: b\r\n\r\n",
        200,
    );
    check(b"GET HTTP://a/plaintext HTTP/1.1\r\nHost: a\r\n\r\n", 200);
    check(b"GET http://a HTTP/1.0\r\n\r\n", 404);
    for target in [
        "http://user@a/plaintext",
        "http://u:p@a/plaintext",
        "http:///plaintext",
        "http://:80/plaintext",
        "http://a:x/plaintext",
        "http://a:99999/plaintext",
        "http://[::1/plaintext",
        "http://a,b/plaintext",
        "ftp://a/plaintext",
        "http:/a/plaintext",
    ] {
        let request = format!("GET {target} HTTP/1.1\r\nHost: a\r\n\r\n");
        check(request.as_bytes(), 400);
    }
    // Host is still required in HTTP/1.1, and still checked.
    check(b"GET http://a/plaintext HTTP/1.1\r\n\r\n", 400);
    check(b"GET http://a/plaintext HTTP/1.1\r\nHost: a@b\r\n\r\n", 400);
}

/// The one pass over the target (issue 16): query split at the first `?`, `%` noted in the
/// path only, `#` refused anywhere, in origin-form and absolute-form alike.
#[test]
fn the_target_splits_in_one_pass() {
    let config = HttpConfig::default();
    for (target, path, query, encoded) in [
        ("/a", "/a", "", false),
        ("/a?", "/a", "", false),
        ("/a?b?c", "/a", "b?c", false),
        ("/%41", "/%41", "", true),
        ("/a?%41", "/a", "%41", false),
        ("/?x", "/", "x", false),
        ("http://h/%7e?q", "/%7e", "q", true),
        ("http://h?q", "/", "q", false),
        ("http://h", "/", "", false),
    ] {
        let request = format!("GET {target} HTTP/1.1\r\nHost: h\r\n\r\n");
        let head = parse_head(request.as_bytes(), &config).unwrap().unwrap();
        assert_eq!(
            (head.path, head.query, head.path_encoded),
            (path.as_bytes(), query.as_bytes(), encoded),
            "{target}"
        );
    }
    for target in ["/a#f", "/a?b#f", "/#", "http://h/a#f", "http://h/?#"] {
        let request = format!("GET {target} HTTP/1.1\r\nHost: h\r\n\r\n");
        assert!(parse_head(request.as_bytes(), &config).is_err(), "{target}");
    }
}

/// RFC 9112 §7.1.1 through the protocol: valid extensions are dropped, anything else in a
/// chunk-size line is 400 and a close.
#[test]
fn chunk_extensions_through_the_protocol() {
    let head = "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
    for ext in [";a", ";a=b", " ; a = \"b \\\" c\"", ";a;b=c"] {
        let request = format!("{head}2{ext}\r\nhi\r\n0{ext}\r\n\r\n");
        check(request.as_bytes(), 200);
    }
    for ext in [";", ";a=", ";a b", ";a=\"b", " ", ";a=b c", ";a@b", ";=b"] {
        let request = format!("{head}2{ext}\r\nhi\r\n0\r\n\r\n");
        check(request.as_bytes(), 400);
    }
    let zeros = format!("{head}{}2\r\nhi\r\n0\r\n\r\n", "0".repeat(17));
    check(zeros.as_bytes(), 400);
}

/// RFC 9110 §10.1.1 and §15.2: no 1xx to an HTTP/1.0 client; its Expect is ignored and the
/// body read as usual.
#[test]
fn no_100_continue_to_http10() {
    let (mut harness, mut protocol) = open();
    let head = b"POST /echo HTTP/1.0\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n";
    assert_eq!(harness.push(protocol.as_mut(), head), Verb::Read);
    assert!(harness.take_output().is_empty());
    assert_eq!(
        harness.push(protocol.as_mut(), b"hi"),
        Verb::CloseAfterFlush
    );
    let output = text(&harness.take_output());
    assert_eq!(statuses(&output), [200], "{output}");
    assert!(output.ends_with("\r\n\r\nhi"), "{output}");

    // The same to a handler that does not read the body: not refused as 1.1 would be (its
    // expectation is ignored), the body is read and dropped.
    let (mut harness, mut protocol) = open();
    let head = b"POST /plaintext HTTP/1.0\r\nContent-Length: 2\r\nExpect: 100-continue\r\nConnection: keep-alive\r\n\r\n";
    assert_eq!(harness.push(protocol.as_mut(), head), Verb::Read);
    assert!(harness.take_output().is_empty());
    assert_eq!(harness.push(protocol.as_mut(), b"hi"), Verb::Read);
    let output = text(&harness.take_output());
    assert_eq!(statuses(&output), [405], "{output}");
    assert!(output.contains("Connection: keep-alive\r\n"), "{output}");
}

/// HTTP/1.0 keep-alive, pipelined: every response that keeps the connection says so; the
/// last one, without keep-alive, closes.
#[test]
fn http10_keep_alive_is_announced_on_each_response() {
    let (mut harness, mut protocol) = open();
    let kept = b"GET /plaintext HTTP/1.0\r\nConnection: keep-alive\r\n\r\n";
    let last = b"GET /plaintext HTTP/1.0\r\n\r\n";
    let batch = [&kept[..], kept, last].concat();
    assert_eq!(
        harness.push(protocol.as_mut(), &batch),
        Verb::CloseAfterFlush
    );
    let output = text(&harness.take_output());
    assert_eq!(output.matches("Connection: keep-alive\r\n").count(), 2);
    assert_eq!(output.matches("Connection: close\r\n").count(), 1);
    // 1.1 responses never carry it.
    let (mut harness, mut protocol) = open();
    harness.push(
        protocol.as_mut(),
        b"GET /plaintext HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\n\r\n",
    );
    assert!(!text(&harness.take_output()).contains("Connection:"));
}

/// `max_headers` is honoured up to the configured number (the config accepts 1024), not
/// capped at the parser's old fixed array of 128.
#[test]
fn header_count_up_to_the_configured_max() {
    for (max, sent, status) in [
        (200, 200, 200),
        (200, 201, 431),
        (1024, 1024, 200),
        (1024, 1025, 431),
        (128, 128, 200),
        (128, 129, 431),
        (8, 8, 200),
        (8, 9, 431),
    ] {
        let config = HttpConfig {
            max_headers: max,
            max_header_bytes: 64 * 1024,
            ..config()
        };
        let fields: String = (1..sent).map(|i| format!("X-{i}: v\r\n")).collect();
        let request = format!("GET /plaintext HTTP/1.1\r\nHost: a\r\n{fields}\r\n");
        let (mut harness, mut protocol) = open_with(config);
        harness.push(protocol.as_mut(), request.as_bytes());
        let output = text(&harness.take_output());
        assert_eq!(statuses(&output), [status], "max {max}, sent {sent}");
    }
    let config = HttpConfig {
        max_headers: 1024,
        ..HttpConfig::default()
    };
    let fields: String = (0..1100).map(|i| format!("X-{i}: v\r\n")).collect();
    let request = format!("GET / HTTP/1.2\r\nHost: a\r\n{fields}\r\n");
    let config = HttpConfig {
        max_header_bytes: 64 * 1024,
        ..config
    };
    assert_eq!(
        parse_head(request.as_bytes(), &config).map(|h| h.is_some()),
        Err(HttpError::TooManyHeaders)
    );
}

/// Requests pipelined on one connection get the answers each gets alone on a fresh one: no
/// state of one head (the strict line parser's, the scan's) leaks into the next.
#[test]
fn pipelined_heads_are_answered_as_if_alone() {
    let requests: [&[u8]; 7] = [
        b"GET /plaintext HTTP/1.2\r\nHost: a\r\n\r\n",
        b"GET /nothing HTTP/1.1\r\nHost: a\r\n\r\n",
        b"GET /json HTTP/1.9\r\nHost: a\r\n\r\n",
        b"HEAD /plaintext HTTP/1.1\r\nHost: a\r\n\r\n",
        b"OPTIONS * HTTP/1.2\r\nHost: a\r\n\r\n",
        b"DELETE /plaintext HTTP/1.3\r\nHost: a\r\n\r\n",
        b"GET /pl%61intext HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    ];
    let alone: Vec<Vec<u16>> = requests
        .iter()
        .map(|request| {
            let (mut harness, mut protocol) = open();
            harness.push(protocol.as_mut(), request);
            statuses(&text(&harness.take_output()))
        })
        .collect();
    for first in 0..requests.len() {
        for second in 0..requests.len() {
            let batch = [requests[first], requests[second]].concat();
            for split in [batch.len(), requests[first].len() + 3, 5] {
                let (mut harness, mut protocol) = open();
                harness.push(protocol.as_mut(), &batch[..split]);
                harness.push(protocol.as_mut(), &batch[split..]);
                let got = statuses(&text(&harness.take_output()));
                let want = [alone[first].clone(), alone[second].clone()].concat();
                assert_eq!(got, want, "{first} then {second}, split at {split}");
            }
        }
    }
}

/// Every hostile request of tests/corpus/ (with the valid request the black-box run appends)
/// gets the same bytes back whether it arrives whole or in small pieces: the resumed line
/// parser and the end-of-head scan decide as the whole parse does. `414_431` files are left
/// out: which limit a target that long meets first depends on the split, and either is
/// right.
#[test]
fn the_corpus_answers_the_same_whole_and_in_pieces() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/corpus");
    let config = HttpConfig {
        max_header_bytes: 8 * 1024,
        max_headers: 64,
        max_uri_bytes: 4 * 1024,
        max_body_bytes: 64 * 1024,
        ..HttpConfig::default()
    };
    let mut checked = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.ends_with(".http") || name.starts_with("414_431") {
            continue;
        }
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.extend_from_slice(b"GET /plaintext HTTP/1.1\r\nHost: t\r\n\r\n");
        let feed = |piece: usize| {
            let (mut harness, mut protocol) = open_with(config.clone());
            let mut verb = Verb::Read;
            for part in bytes.chunks(piece) {
                verb = harness.push(protocol.as_mut(), part);
                if verb == Verb::CloseAfterFlush {
                    break;
                }
            }
            (text(&harness.take_output()), verb)
        };
        let whole = feed(bytes.len());
        let piece = if bytes.len() <= 4096 { 1 } else { 61 };
        assert_eq!(feed(piece), whole, "{name} in {piece}-byte pieces");
        assert_eq!(feed(7), whole, "{name} in 7-byte pieces");
        checked += 1;
    }
    assert!(checked > 200, "{checked} corpus files");
}

/// RFC 9110 §5.3, §13.1.1, §13.1.2: If-Match and If-None-Match are lists, so several lines of
/// one are a single list, in order, whatever lies between them; a field on one line is kept as
/// sent, and other fields never join the list.
#[test]
fn list_fields_on_several_lines_are_combined() {
    let config = HttpConfig::default();
    // Field lines of the head, expected (repeated, combined If-Match, combined If-None-Match).
    let rows: [(&str, bool, &str, bool, &str); 7] = [
        ("If-Match: \"a\"\r\n", false, "\"a\"", false, ""),
        (
            "If-Match: \"a\"\r\nIf-Match: \"b\"\r\n",
            true,
            "\"a\", \"b\"",
            false,
            "",
        ),
        (
            "if-match: \"a\"\r\nX-Other: \"z\"\r\nIF-MATCH:  W/\"b\" , \"c\"\r\n",
            true,
            "\"a\", W/\"b\" , \"c\"",
            false,
            "",
        ),
        (
            "If-None-Match: \"a\"\r\nIf-None-Match:\r\nIf-None-Match: \"b\"\r\n",
            false,
            "",
            true,
            "\"a\", \"b\"",
        ),
        (
            "If-None-Match: *\r\nIf-Match: \"m\"\r\nIf-None-Match: \"b\"\r\n",
            false,
            "\"m\"",
            true,
            "*, \"b\"",
        ),
        // A name that only starts like ours is another field.
        (
            "If-Match-X: \"q\"\r\nIf-Match: \"a\"\r\nIf-Match: \"b\"\r\n",
            true,
            "\"a\", \"b\"",
            false,
            "",
        ),
        ("X: 1\r\n", false, "", false, ""),
    ];
    for (fields, match_rep, match_list, none_rep, none_list) in rows {
        let request = format!("GET /files/a HTTP/1.1\r\nHost: a\r\n{fields}\r\n");
        let head = parse_head(request.as_bytes(), &config).unwrap().unwrap();
        assert_eq!(head.repeated.if_match, match_rep, "{fields:?}");
        assert_eq!(head.repeated.if_none_match, none_rep, "{fields:?}");
        assert_eq!(text(&head.combined("if-match")), match_list, "{fields:?}");
        assert_eq!(
            text(&head.combined("if-none-match")),
            none_list,
            "{fields:?}"
        );
    }
}
