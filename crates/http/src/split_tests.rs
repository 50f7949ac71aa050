//! Framing does not depend on how the bytes arrive: two pipelined requests of real shapes
//! (proptest), split at every byte boundary and fed a byte at a time, give the output of the
//! whole.

use coreloop_reactor::Verb;
use proptest::prelude::*;

use crate::protocol_tests::{config, open_with};
use crate::HttpConfig;

/// Requests of real shapes: methods, targets, header sets, length and chunked bodies.
fn request_shape() -> impl Strategy<Value = Vec<u8>> {
    let target = prop::sample::select(vec![
        "/plaintext",
        "/json",
        "/echo",
        "/nothing",
        "/pl%61intext?x=1",
        "*",
    ]);
    let method = prop::sample::select(vec!["GET", "HEAD", "POST", "OPTIONS"]);
    let body = prop::collection::vec(any::<u8>(), 0..20);
    let chunks = prop::collection::vec(1usize..7, 0..4);
    // Higher minors take the strict line parser's path (httparse knows no HTTP/1.2).
    let minor = prop::sample::select(vec![1u8, 1, 2, 9]);
    (
        method,
        target,
        body,
        any::<bool>(),
        chunks,
        (any::<bool>(), minor),
    )
        .prop_map(|(method, target, body, chunked, sizes, (close, minor))| {
            let mut head =
                format!("{method} {target} HTTP/1.{minor}\r\nHost: a\r\nContent-Type: text/x\r\n");
            if close {
                head.push_str("Connection: close\r\n");
            }
            let mut bytes;
            if chunked {
                head.push_str("Transfer-Encoding: chunked\r\n\r\n");
                bytes = head.into_bytes();
                let mut rest = &body[..];
                for size in sizes.into_iter().chain(std::iter::once(usize::MAX)) {
                    let take = size.min(rest.len());
                    bytes.extend_from_slice(format!("{take:x};e=1\r\n").as_bytes());
                    bytes.extend_from_slice(&rest[..take]);
                    bytes.extend_from_slice(b"\r\n");
                    rest = &rest[take..];
                }
                bytes.extend_from_slice(b"0\r\nTrailer: x\r\n\r\n");
            } else {
                head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
                bytes = head.into_bytes();
                bytes.extend_from_slice(&body);
            }
            bytes
        })
}

/// Feeds `parts` in order as the reactor would and returns the output and last verb.
fn feed_parts(parts: &[&[u8]]) -> (Vec<u8>, Verb) {
    let (mut harness, mut protocol) = open_with(HttpConfig {
        max_body_bytes: 1024,
        ..config()
    });
    let mut verb = Verb::Read;
    let mut output = Vec::new();
    for part in parts {
        verb = harness.push(protocol.as_mut(), part);
        while verb == Verb::WaitFlush {
            output.extend(harness.take_output());
            verb = harness.feed(protocol.as_mut()).verb;
        }
        output.extend(harness.take_output());
        if verb == Verb::CloseAfterFlush {
            break;
        }
    }
    (output, verb)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Split at every byte boundary, two requests pipelined, the result is the one of the whole.
    #[test]
    fn any_split_parses_as_the_whole(first in request_shape(), second in request_shape()) {
        let whole = [first, second].concat();
        let expected = feed_parts(&[&whole]);
        prop_assert!(!expected.0.is_empty());
        for split in 0..=whole.len() {
            let got = feed_parts(&[&whole[..split], &whole[split..]]);
            prop_assert_eq!(&got, &expected, "split at {}", split);
        }
        let bytes: Vec<&[u8]> = whole.chunks(1).collect();
        prop_assert_eq!(feed_parts(&bytes), expected);
    }
}
