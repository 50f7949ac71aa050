use super::*;
use proptest::prelude::*;

/// Feeds `input` in pieces of `split` bytes; returns every response and the
/// error, if any, after also signalling EOF when `eof` is set.
fn frame(input: &[u8], split: usize, eof: bool) -> (Vec<Response>, Option<FrameError>) {
    let mut f = Framer::new(true);
    let mut out = Vec::new();
    for piece in input.chunks(split.max(1)) {
        let mut rest = piece;
        while !rest.is_empty() {
            match f.feed(rest) {
                Ok((used, done)) => {
                    out.extend(done);
                    rest = &rest[used..];
                }
                Err(e) => return (out, Some(e)),
            }
        }
    }
    if eof {
        match f.finish() {
            Ok(done) => out.extend(done),
            Err(e) => return (out, Some(e)),
        }
    }
    (out, None)
}

fn ok(status: u16) -> Response {
    Response {
        status,
        close: false,
    }
}

fn closing(status: u16) -> Response {
    Response {
        status,
        close: true,
    }
}

/// One check per case, at every split size from 1 byte to the whole input.
fn check(input: &str, eof: bool, expected: &[Response], err: Option<FrameError>) {
    for split in 1..=input.len() {
        let (got, e) = frame(input.as_bytes(), split, eof);
        assert_eq!(got, expected, "split {split} of {input:?}");
        assert_eq!(e, err, "split {split} of {input:?}");
    }
}

const CHUNKED: &str = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
    5\r\nHello\r\n1;ext=\"x\"\r\n,\r\n7\r\n World!\r\n0\r\nTrailer: t\r\n\r\n";

#[test]
fn content_length() {
    check(
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
        false,
        &[ok(200)],
        None,
    );
}

#[test]
fn zero_length_and_no_reason() {
    check(
        "HTTP/1.1 404\r\ncontent-length:0\r\n\r\n",
        false,
        &[ok(404)],
        None,
    );
}

#[test]
fn chunked_with_extension_and_trailer() {
    check(CHUNKED, false, &[ok(200)], None);
}

#[test]
fn pipelined_mix() {
    let input = format!(
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi{CHUNKED}HTTP/1.1 204 No Content\r\n\r\n\
         HTTP/1.1 500 Oops\r\nContent-Length: 1\r\n\r\nx"
    );
    check(&input, false, &[ok(200), ok(200), ok(204), ok(500)], None);
}

#[test]
fn connection_close_and_http10() {
    check(
        "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\nx",
        false,
        &[closing(200)],
        None,
    );
    check(
        "HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx",
        false,
        &[closing(200)],
        None,
    );
    check(
        "HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 1\r\n\r\nx",
        false,
        &[ok(200)],
        None,
    );
}

#[test]
fn body_until_close() {
    check(
        "HTTP/1.1 200 OK\r\n\r\nall of this",
        true,
        &[closing(200)],
        None,
    );
}

#[test]
fn interim_100_is_skipped() {
    check(
        "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n",
        false,
        &[ok(201)],
        None,
    );
}

#[test]
fn bare_lf_line_endings() {
    check(
        "HTTP/1.1 200 OK\nContent-Length: 2\n\nok",
        false,
        &[ok(200)],
        None,
    );
}

#[test]
fn truncated_is_an_error_at_eof() {
    check(
        "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
        true,
        &[],
        Some(FrameError::Truncated),
    );
    check(
        "HTTP/1.1 200 OK\r\nContent-",
        true,
        &[],
        Some(FrameError::Truncated),
    );
    let cut = &CHUNKED[..CHUNKED.len() - 4];
    check(cut, true, &[], Some(FrameError::Truncated));
}

#[test]
fn eof_between_responses_is_clean() {
    check(
        "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
        true,
        &[ok(200)],
        None,
    );
}

#[test]
fn malformed() {
    check(
        "HTTX/1.1 200 OK\r\n\r\n",
        false,
        &[],
        Some(FrameError::StatusLine),
    );
    check(
        "HTTP/1.1 2x0 OK\r\n\r\n",
        false,
        &[],
        Some(FrameError::StatusLine),
    );
    check(
        "HTTP/1.1 200 OK\r\nBad Header: x\r\n\r\n",
        false,
        &[],
        Some(FrameError::HeaderLine),
    );
    check(
        "HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n",
        false,
        &[],
        Some(FrameError::ContentLength),
    );
    check(
        "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        false,
        &[],
        Some(FrameError::ContentLength),
    );
    check(
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        false,
        &[],
        Some(FrameError::ChunkSize),
    );
}

#[test]
fn head_request_has_no_body() {
    let mut f = Framer::new(false);
    let input = b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n";
    assert_eq!(f.feed(input), Ok((input.len(), Some(ok(200)))));
    assert!(f.is_idle());
}

#[test]
fn oversized_head_is_refused() {
    let mut input = b"HTTP/1.1 200 OK\r\nX: ".to_vec();
    input.resize(MAX_HEAD + 10, b'a');
    let (_, e) = frame(&input, 4096, false);
    assert_eq!(e, Some(FrameError::HeadTooLarge));
}

#[test]
fn many_chunks_do_not_hit_the_head_budget() {
    let mut input = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..20_000 {
        input.extend_from_slice(b"1\r\nx\r\n");
    }
    input.extend_from_slice(b"0\r\n\r\n");
    assert_eq!(frame(&input, 1000, false), (vec![ok(200)], None));
}

/// Builds a pipelined stream of responses with bodies in both framings.
fn stream(bodies: &[(Vec<u8>, bool)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (body, chunked) in bodies {
        if *chunked {
            out.extend_from_slice(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
            for piece in body.chunks(7) {
                out.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
                out.extend_from_slice(piece);
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(b"0\r\n\r\n");
        } else {
            out.extend_from_slice(
                format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len()).as_bytes(),
            );
            out.extend_from_slice(body);
        }
    }
    out
}

/// Feeds `input` cut at the given offsets.
fn frame_at(input: &[u8], cuts: &[usize]) -> Vec<Response> {
    let mut f = Framer::new(true);
    let mut out = Vec::new();
    let mut bounds: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
    bounds.push(0);
    bounds.push(input.len());
    bounds.sort_unstable();
    for w in bounds.windows(2) {
        let mut rest = &input[w[0]..w[1]];
        while !rest.is_empty() {
            let (used, done) = f.feed(rest).expect("valid stream");
            out.extend(done);
            rest = &rest[used..];
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn random_splits_frame_every_response(
        bodies in prop::collection::vec((prop::collection::vec(any::<u8>(), 0..40), any::<bool>()), 1..8),
        cuts in prop::collection::vec(any::<usize>(), 0..20),
    ) {
        let input = stream(&bodies);
        let got = frame_at(&input, &cuts);
        prop_assert_eq!(got.len(), bodies.len());
        prop_assert!(got.iter().all(|r| *r == ok(200)));
    }
}

/// nginx's answer to the benchmark's request, the head the fast path is for.
const NGINX: &str =
    "HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Mon, 23 Nov 2026 12:04:35 GMT\r\n\
    Content-Type: text/plain\r\nContent-Length: 13\r\nConnection: keep-alive\r\n\r\nHello, World!";

#[test]
fn whole_head_takes_the_fast_path() {
    let mut f = Framer::new(true);
    let head = NGINX.len() - "Hello, World!".len();
    assert_eq!(f.whole_head(NGINX.as_bytes()), Some(head));
    assert_eq!(f.state, State::Body(13));
    // A head cut short, a bare LF and an interim response are left to the byte path.
    for input in [
        &NGINX[..head - 1],
        "HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n",
        "HTTP/1.1 100 Continue\r\n\r\n",
    ] {
        let mut f = Framer::new(true);
        assert_eq!(f.whole_head(input.as_bytes()), None, "{input:?}");
        assert!(f.is_idle(), "{input:?}");
    }
}

#[test]
fn pipelined_nginx_split_at_every_boundary() {
    let input = NGINX.repeat(3);
    let expected = [ok(200); 3];
    check(&input, false, &expected, None);
    for cut in 0..=input.len() {
        let got = frame_at(input.as_bytes(), &[cut]);
        assert_eq!(got, expected, "cut at {cut}");
    }
    for a in 0..=NGINX.len() {
        for b in a..=NGINX.len() + 20 {
            let got = frame_at(input.as_bytes(), &[a, b]);
            assert_eq!(got, expected, "cuts at {a} and {b}");
        }
    }
}

/// Status lines, field lines, head ends and bodies, valid and not, for
/// comparing the fast path with the byte path.
const STATUS: &[&str] = &[
    "HTTP/1.1 200 OK\r\n",
    "HTTP/1.0 200 OK\r\n",
    "HTTP/1.1 204 No Content\r\n",
    "HTTP/1.1 304\r\n",
    "HTTP/1.1 101 Switching\r\n",
    "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n",
    "HTTP/1.1 2x0 OK\r\n",
    "HTTP/1.1 200 O\rK\r\n",
    "HTTP/1.1 200 OK\n",
    "HTTP/1.1 200 \u{e9}t\u{e9}\r\n",
    "HTTP/1.1 200\tOK\r\n",
    "HTTP/2.0 200 OK\r\n",
];
const FIELDS: &[&str] = &[
    "Content-Length: 5\r\n",
    "content-length:5\r\n",
    "CONTENT-LENGTH: 5 \r\n",
    "Content-Length: 1 2\r\n",
    "Content-Length: 6\r\n",
    "Content-Length: x\r\n",
    "Content-Length:\r\n",
    "Content-Length: 99999999999999999999999\r\n",
    "Transfer-Encoding: chunked\r\n",
    "Transfer-Encoding: gzip, CHUNKED \r\n",
    "Transfer-Encoding: chunked, gzip\r\n",
    "Connection: close\r\n",
    "Connection: Keep-Alive\r\n",
    "Connection:                              close\r\n",
    "X-A: b\tc\r\n",
    "X-Bad: a\x01b\r\n",
    "Bad Header: x\r\n",
    ": empty\r\n",
    "Server: nginx\n",
    "X: a\rb\r\n",
    "X-Del: \x7f\r\n",
    "Content-Length-Not: 3\r\n",
    "A-Very-Long-Header-Name-Over-Twenty: 1\r\n",
];
const ENDS: &[&str] = &["\r\n", "\n", "\r\r\n", ""];
const BODIES: &[&str] = &["", "hello", "hellohello12", "5\r\nhello\r\n0\r\n\r\n", "x"];

fn response_from(parts: &(usize, Vec<usize>, usize, usize)) -> String {
    let (status, fields, end, body) = parts;
    let mut s = STATUS[*status].to_string();
    for &i in fields {
        s.push_str(FIELDS[i]);
    }
    s.push_str(ENDS[*end]);
    s.push_str(BODIES[*body]);
    s
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Fed whole, heads go through the fast path; fed a byte at a time,
    /// never. Both must give the same responses and the same error.
    #[test]
    fn fast_path_agrees_with_byte_path(
        responses in prop::collection::vec(
            (0..STATUS.len(), prop::collection::vec(0..FIELDS.len(), 0..5), 0..ENDS.len(), 0..BODIES.len()),
            1..4,
        ),
        eof in any::<bool>(),
    ) {
        let input: String = responses.iter().map(response_from).collect();
        let whole = frame(input.as_bytes(), input.len(), eof);
        let bytes = frame(input.as_bytes(), 1, eof);
        prop_assert_eq!(whole, bytes, "input {:?}", input);
    }
}
