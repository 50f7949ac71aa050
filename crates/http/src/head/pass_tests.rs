//! The one-pass head parser through the protocol (issue 16, issue 13 §3): the order in which
//! refusals are decided, every split of every field shape, and the linear work of a head that
//! arrives a byte at a time.

use coreloop_reactor::Verb;

use crate::protocol_tests::{config, open, open_with, statuses, text};
use crate::{parse_head, HttpConfig, HttpError};

/// Issue 13 §3: a head trickled in a byte at a time through the harness is looked at in
/// linear work, as counted by the parser and the scan themselves: each look starts where
/// the reactor's unseen bytes do (`Cx::unseen_from`), the line is read on from where it
/// stopped, and the head is parsed whole once, when its end is in. Parsing it again on
/// every byte would count about len²/2 (8 M for the 4 KiB head).
#[test]
fn a_trickled_head_costs_linear_work() {
    let config = HttpConfig {
        max_header_bytes: 64 * 1024,
        max_headers: 1024,
        ..config()
    };
    let mut per_byte = Vec::new();
    for fields in [8, 64, 512] {
        let lines: String = (0..fields).map(|i| format!("X-{i}: v\tw\r\n")).collect();
        let head = format!("GET /plaintext HTTP/1.1\r\nHost: a\r\n{lines}\r\n");
        let (mut harness, mut protocol) = open_with(config.clone());
        crate::scan::counter::take();
        for byte in head.as_bytes() {
            harness.push(protocol.as_mut(), std::slice::from_ref(byte));
        }
        let scanned = crate::scan::counter::take();
        assert_eq!(statuses(&text(&harness.take_output())), [200]);
        assert!(
            scanned <= 4 * head.len(),
            "{scanned} for {} bytes",
            head.len()
        );
        per_byte.push(scanned as f64 / head.len() as f64);
    }
    // The same work per byte whatever the length (quadratic work would grow 64-fold).
    assert!(per_byte[2] < per_byte[0] * 1.5, "{per_byte:?}");
}

/// Issue 16: the one pass answers in the order the two passes did. The first byte that
/// breaks the grammar decides; then the head's size; then the target; then the first field
/// whose value is refused, in field order; then the framing rules over all fields.
#[test]
fn the_first_refusal_in_the_heads_order_decides() {
    use HttpError::*;
    let config = HttpConfig {
        max_header_bytes: 120,
        max_headers: 4,
        ..HttpConfig::default()
    };
    let big = "X: ".to_owned() + &"v".repeat(100) + "\r\n";
    let rows: [(String, HttpError); 12] = [
        // A field's refusal waits for the grammar of the lines after it.
        (
            "GET / HTTP/1.1\r\nContent-Length: x\r\nX : y\r\n\r\n".into(),
            MalformedHeader,
        ),
        // ... and for the size.
        (
            format!("GET / HTTP/1.1\r\nHost: a@b\r\n{big}\r\n"),
            HeadersTooLarge,
        ),
        // A syntax error beyond the size limit is still a syntax error.
        (
            format!("GET / HTTP/1.1\r\n{big}X : y\r\n\r\n"),
            MalformedHeader,
        ),
        // The target before the fields.
        (
            "GET /#f HTTP/1.1\r\nHost: a@b\r\n\r\n".into(),
            InvalidTarget,
        ),
        // Fields in order.
        (
            "GET / HTTP/1.1\r\nHost: a@b\r\nContent-Length: x\r\n\r\n".into(),
            BadHost,
        ),
        (
            "GET / HTTP/1.1\r\nContent-Length: x\r\nHost: a@b\r\n\r\n".into(),
            InvalidContentLength,
        ),
        // The framing judgement after every field.
        (
            "GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 1\r\n\r\n"
                .into(),
            LengthWithTransferEncoding,
        ),
        (
            "GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n".into(),
            BadHost,
        ),
        // A well-formed unsupported version as soon as the line is whole.
        ("GET / HTTP/2.0\r\nX : y\r\n\r\n".into(), UnsupportedVersion),
        ("GET / HTTP/2.0\r\nX".into(), UnsupportedVersion),
        // One field too many once it is whole; a syntax error in it goes first.
        (
            "GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\nE: 5\r\n".into(),
            TooManyHeaders,
        ),
        (
            "GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\nE : 5\r\n".into(),
            MalformedHeader,
        ),
    ];
    for (head, error) in rows {
        assert_eq!(
            parse_head(head.as_bytes(), &config).map(|h| h.is_some()),
            Err(error),
            "{head:?}"
        );
    }
    let short = "GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\nE: 5";
    assert_eq!(
        parse_head(short.as_bytes(), &config).map(|h| h.is_some()),
        Ok(false)
    );
}

/// Heads of every field shape the one pass reads, split at every byte boundary (two pieces)
/// and fed a byte at a time, two pipelined, get exactly the bytes they get whole.
#[test]
fn every_split_of_every_field_shape_answers_as_whole() {
    let heads: [&[u8]; 8] = [
        b"GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n",
        b"\r\nGET /pl%61intext?x=%41 HTTP/1.1\nHost:\t a:80 \t\nAccept: */*\n\n",
        b"GET http://h/plaintext HTTP/1.2\r\nHost: x\r\nX: \x80\xff\tv \r\nY:\r\n\r\n",
        // (No Expect: whether 100 Continue is sent depends on whether the body came along.)
        b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nContent-Type: t\r\n\r\nhi",
        b"POST /echo HTTP/1.1\r\nhost: a\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n",
        b"GET /plaintext HTTP/1.0\r\nConnection: keep-alive, x\r\nUser-Agent: u\r\n\r\n",
        b"GET /plaintext HTTP/1.1\r\nHost: a\r\nX : bad\r\n\r\n",
        b"GET /plaintext HTTP/1.1\r\nHost: a\r\nX: a\x7fb\r\n\r\n",
    ];
    let answer = |parts: &[&[u8]]| {
        let (mut harness, mut protocol) = open();
        let mut verb = Verb::Read;
        for part in parts {
            verb = harness.push(protocol.as_mut(), part);
        }
        (text(&harness.take_output()), verb)
    };
    for first in heads {
        for second in heads {
            let both = [first, second].concat();
            let whole = answer(&[&both]);
            assert!(!whole.0.is_empty());
            for cut in 0..both.len() {
                assert_eq!(
                    answer(&[&both[..cut], &both[cut..]]),
                    whole,
                    "{:?} cut at {cut}",
                    text(&both)
                );
            }
            let bytes: Vec<&[u8]> = both.chunks(1).collect();
            assert_eq!(answer(&bytes), whole, "{:?} a byte at a time", text(&both));
        }
    }
}
