//! Table tests of the protocol through the reactor's `Harness`: bytes in, bytes out, manual clock.

use std::sync::Arc;
use std::time::Duration;

use coreloop_reactor::testing::Harness;
use coreloop_reactor::{ConnInfo, Protocol, ProtocolFactory, Verb};

use crate::{Handler, HttpConfig, HttpFactory, Request, Response, Route};

pub(crate) fn routes() -> Vec<Route> {
    let panics: crate::CustomFn = Arc::new(|_: &Request| -> Response { panic!("handler bug") });
    vec![
        Route::get("/plaintext", Handler::text("Hello, World!")),
        Route::get("/json", Handler::Json),
        Route {
            path: "/echo".into(),
            prefix: false,
            methods: vec!["POST".into()],
            handler: Handler::Echo,
        },
        Route::get("/readyz", Handler::Ready),
        Route::get(
            "/delay",
            Handler::Delay {
                max: Duration::from_secs(1),
            },
        ),
        Route::get(
            "/panic",
            Handler::Custom {
                func: panics.clone(),
                blocking: true,
            },
        ),
        Route::get(
            "/blocking",
            Handler::Custom {
                func: Arc::new(|_: &Request| Response {
                    status: 200,
                    ..Response::default()
                }),
                blocking: true,
            },
        ),
        Route::get(
            "/panic-inline",
            Handler::Custom {
                func: panics,
                blocking: false,
            },
        ),
    ]
}

pub(crate) fn config() -> HttpConfig {
    HttpConfig {
        max_body_bytes: 64,
        max_uri_bytes: 64,
        max_header_bytes: 256,
        max_headers: 8,
        ..HttpConfig::default()
    }
}

pub(crate) fn open_with(config: HttpConfig) -> (Harness, Box<dyn Protocol>) {
    let factory = HttpFactory::new(config, routes()).unwrap();
    let mut conn_factory = factory.for_shard(0);
    let mut protocol = conn_factory.open(&ConnInfo {
        listener: 0,
        peer: None,
        shard: 0,
    });
    let mut harness = Harness::new();
    assert_eq!(harness.open(protocol.as_mut()), Verb::Read);
    (harness, protocol)
}

pub(crate) fn open() -> (Harness, Box<dyn Protocol>) {
    open_with(config())
}

pub(crate) fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

pub(crate) fn statuses(output: &str) -> Vec<u16> {
    output
        .match_indices("HTTP/1.1 ")
        .filter_map(|(at, _)| output[at + 9..at + 12].parse().ok())
        .collect()
}

/// Feeds `request` whole and checks the one final status; refusals must close the connection
/// with `Connection: close` and say nothing more.
pub(crate) fn check(request: &[u8], expected: u16) {
    let (mut harness, mut protocol) = open();
    let verb = harness.push(protocol.as_mut(), request);
    let output = text(&harness.take_output());
    let finals: Vec<u16> = statuses(&output)
        .into_iter()
        .filter(|s| *s >= 200)
        .collect();
    assert_eq!(finals, vec![expected], "{:?}\n{output}", text(request));
    if ![200, 404, 405].contains(&expected) {
        assert!(output.contains("Connection: close\r\n"), "{output}");
        assert_eq!(verb, Verb::CloseAfterFlush, "{output}");
        let again = harness.push(
            protocol.as_mut(),
            b"GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n",
        );
        assert_eq!(
            (again, harness.take_output().len()),
            (Verb::CloseAfterFlush, 0)
        );
    }
}

#[test]
fn valid_requests() {
    check(b"GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n", 200);
    check(b"GET /plaintext HTTP/1.0\r\n\r\n", 200);
    check(
        b"GET http://example.com/plaintext?x=1 HTTP/1.1\r\nHost: a\r\n\r\n",
        200,
    );
    check(b"GET /pl%61intext HTTP/1.1\r\nHost: a\r\n\r\n", 200);
    check(b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", 200);
    check(b"GET /nothing HTTP/1.1\r\nHost: a\r\n\r\n", 404);
    check(
        b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi",
        200,
    );
    check(b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2;x=y\r\nhi\r\n0\r\nT: 1\r\n\r\n", 200);
    check(b"GET /plaintext HTTP/1.1\nHost: a\n\n", 200);
}

#[test]
fn wrong_method_is_405_with_allow() {
    let (mut harness, mut protocol) = open();
    harness.push(
        protocol.as_mut(),
        b"DELETE /plaintext HTTP/1.1\r\nHost: a\r\n\r\n",
    );
    let output = text(&harness.take_output());
    assert!(output.starts_with("HTTP/1.1 405 "), "{output}");
    assert!(output.contains("Allow: GET, HEAD\r\n"), "{output}");
    assert!(!output.contains("Connection: close"), "{output}");
}

#[test]
fn refusals() {
    let long = format!("GET /{} HTTP/1.1\r\nHost: a\r\n\r\n", "a".repeat(100));
    let big_header = format!(
        "GET / HTTP/1.1\r\nHost: a\r\nX: {}\r\n\r\n",
        "a".repeat(300)
    );
    let many = format!("GET / HTTP/1.1\r\nHost: a\r\n{}\r\n", "X: 1\r\n".repeat(9));
    for (request, status) in [
        (&b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 65\r\n\r\n"[..], 413),
        (b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n41\r\n", 413),
        (long.as_bytes(), 414),
        (big_header.as_bytes(), 431),
        (many.as_bytes(), 431),
        (b"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501),
        (b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505),
        (b"GET / HTTP/1.1\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1, 1\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: +1\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x1\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
        (b"GET / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
        (b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n", 400),
        (b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n", 400),
        (b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1 \r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n folded\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: a\r\nX : 1\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n", 400),
        (b"GET / HTTP/1.1\rHost: a\r\n\r\n", 400),
        (b"GET /a\0 HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        (b"GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        (b"GET * HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        (b"GET /%zz HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        (b"GET example.com HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    ] {
        check(request, status);
    }
}

#[test]
fn pipelined_requests_answer_in_order_and_wait_for_flush_at_depth() {
    let config = HttpConfig {
        max_pipeline_depth: 3,
        ..config()
    };
    let (mut harness, mut protocol) = open_with(config);
    let one = b"GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n";
    let nf = b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n";
    let batch = [&one[..], nf, one, nf, one].concat();
    assert_eq!(harness.push(protocol.as_mut(), &batch), Verb::WaitFlush);
    assert_eq!(statuses(&text(&harness.take_output())), [200, 404, 200]);
    let step = harness.feed(protocol.as_mut());
    assert_eq!(step.verb, Verb::Read);
    assert_eq!(statuses(&text(&harness.take_output())), [404, 200]);
    assert_eq!(harness.buffered(), 0);
}

#[test]
fn keep_alive_rules() {
    let cases: [(&[u8], bool); 6] = [
        (b"GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n", false),
        (
            b"GET /plaintext HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
            true,
        ),
        (b"GET /plaintext HTTP/1.0\r\n\r\n", true),
        (
            b"GET /plaintext HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
            false,
        ),
        (
            b"GET /plaintext HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n",
            false,
        ),
        (
            b"GET /plaintext HTTP/1.0\r\nConnection: Keep-Alive, close\r\n\r\n",
            true,
        ),
    ];
    for (request, closes) in cases {
        let (mut harness, mut protocol) = open();
        let verb = harness.push(protocol.as_mut(), request);
        let output = text(&harness.take_output());
        assert_eq!(output.contains("Connection: close"), closes, "{output}");
        assert_eq!(verb == Verb::CloseAfterFlush, closes);
        // A 1.0 client that keeps the connection must be told, or it waits for the close.
        let http10 = request.starts_with(b"GET /plaintext HTTP/1.0");
        let announced = output.contains("Connection: keep-alive\r\n");
        assert_eq!(announced, http10 && !closes, "{output}");
    }
}

#[test]
fn request_and_age_limits_close_politely() {
    let config = HttpConfig {
        max_requests_per_connection: 2,
        ..config()
    };
    let (mut harness, mut protocol) = open_with(config);
    let one = b"GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n";
    assert_eq!(
        harness.push(protocol.as_mut(), &[&one[..], one, one].concat()),
        Verb::CloseAfterFlush
    );
    let output = text(&harness.take_output());
    assert_eq!(statuses(&output), [200, 200]);
    assert_eq!(output.matches("Connection: close").count(), 1);

    let (mut harness, mut protocol) = open_with(HttpConfig {
        max_connection_age: Some(Duration::from_secs(5)),
        ..self::config()
    });
    assert_eq!(harness.push(protocol.as_mut(), one), Verb::Read);
    harness.advance(Duration::from_secs(5));
    assert_eq!(harness.push(protocol.as_mut(), one), Verb::CloseAfterFlush);
    assert!(text(&harness.take_output()).ends_with("Connection: close\r\n\r\nHello, World!"));
}

#[test]
fn head_gets_the_length_without_the_body() {
    let (mut harness, mut protocol) = open();
    harness.push(
        protocol.as_mut(),
        b"HEAD /plaintext HTTP/1.1\r\nHost: a\r\n\r\n",
    );
    let output = text(&harness.take_output());
    assert!(
        output.contains("Content-Length: 13\r\n") && output.ends_with("\r\n\r\n"),
        "{output}"
    );
}

#[test]
fn expect_continue_only_when_the_body_is_read() {
    let (mut harness, mut protocol) = open();
    let head =
        b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n";
    assert_eq!(harness.push(protocol.as_mut(), head), Verb::Read);
    assert_eq!(
        text(&harness.take_output()),
        "HTTP/1.1 100 Continue\r\n\r\n"
    );
    harness.push(protocol.as_mut(), b"hi");
    assert!(text(&harness.take_output()).ends_with("\r\n\r\nhi"));

    let (mut harness, mut protocol) = open();
    let head =
        b"POST /plaintext HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n";
    assert_eq!(harness.push(protocol.as_mut(), head), Verb::CloseAfterFlush);
    let output = text(&harness.take_output());
    assert_eq!(statuses(&output), [405]);
    assert!(output.contains("Connection: close"));
}

#[test]
fn a_body_one_byte_at_a_time_echoes_whole() {
    let (mut harness, mut protocol) = open();
    let request = b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Type: text/x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
    for byte in request {
        harness.push(protocol.as_mut(), &[*byte]);
    }
    let output = text(&harness.take_output());
    assert!(
        output.contains("Content-Type: text/x\r\nContent-Length: 5\r\n"),
        "{output}"
    );
    assert!(output.ends_with("abcde"));
}

#[test]
fn timeouts() {
    // Nothing sent after connecting: 408.
    let (mut harness, mut protocol) = open();
    harness.advance(Duration::from_secs(10));
    assert_eq!(
        harness.fire_due_deadline(protocol.as_mut()),
        Some(Verb::CloseAfterFlush)
    );
    assert_eq!(statuses(&text(&harness.take_output())), [408]);
    // Idle after a response: closed without a response.
    let (mut harness, mut protocol) = open();
    harness.push(
        protocol.as_mut(),
        b"GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n",
    );
    harness.take_output();
    harness.advance(Duration::from_secs(59));
    assert_eq!(harness.fire_due_deadline(protocol.as_mut()), None);
    harness.advance(Duration::from_secs(1));
    assert_eq!(
        harness.fire_due_deadline(protocol.as_mut()),
        Some(Verb::CloseAfterFlush)
    );
    assert!(harness.take_output().is_empty());
    // A body that stalls: 408.
    let (mut harness, mut protocol) = open();
    harness.push(
        protocol.as_mut(),
        b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nab",
    );
    harness.advance(Duration::from_secs(30));
    assert_eq!(
        harness.fire_due_deadline(protocol.as_mut()),
        Some(Verb::CloseAfterFlush)
    );
    assert_eq!(statuses(&text(&harness.take_output())), [408]);
}

#[test]
fn offload_refused_timed_out_and_panicking() {
    // `/delay` holds no job (crate::held); a blocking custom handler does.
    let delay = b"GET /blocking HTTP/1.1\r\nHost: a\r\n\r\n";
    let (mut harness, mut protocol) = open();
    harness.refuse_jobs(true);
    assert_eq!(harness.push(protocol.as_mut(), delay), Verb::Read);
    let output = text(&harness.take_output());
    assert!(
        output.starts_with("HTTP/1.1 503 ") && output.contains("Retry-After: 1\r\n"),
        "{output}"
    );

    let (mut harness, mut protocol) = open();
    assert_eq!(
        harness.push(protocol.as_mut(), delay),
        Verb::AwaitCompletion
    );
    harness.advance(Duration::from_secs(30));
    assert_eq!(
        harness.fire_due_deadline(protocol.as_mut()),
        Some(Verb::CloseAfterFlush)
    );
    assert_eq!(statuses(&text(&harness.take_output())), [504]);
    let late = harness.run_jobs().remove(0);
    assert_eq!(
        harness.complete(protocol.as_mut(), late),
        Verb::CloseAfterFlush
    );
    assert!(harness.take_output().is_empty());

    let (mut harness, mut protocol) = open();
    let two = b"GET /panic HTTP/1.1\r\nHost: a\r\n\r\nGET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n";
    assert_eq!(harness.push(protocol.as_mut(), two), Verb::AwaitCompletion);
    let failed = harness.run_jobs().remove(0);
    assert_eq!(harness.complete(protocol.as_mut(), failed), Verb::Read);
    assert_eq!(harness.feed(protocol.as_mut()).verb, Verb::Read);
    assert_eq!(statuses(&text(&harness.take_output())), [500, 200]);

    let (mut harness, mut protocol) = open();
    assert_eq!(
        harness.push(
            protocol.as_mut(),
            b"GET /panic-inline HTTP/1.1\r\nHost: a\r\n\r\n"
        ),
        Verb::Read
    );
    assert_eq!(statuses(&text(&harness.take_output())), [500]);
}

#[test]
fn drain_closes_idle_and_finishes_in_flight() {
    // Idle: kept for the drain grace, then closed without a word.
    let (mut harness, mut protocol) = open();
    assert_eq!(harness.drain(protocol.as_mut()), Verb::Read);
    let grace = harness.deadline().expect("the drain grace") - harness.now;
    assert!(grace <= HttpConfig::default().drain_grace, "{grace:?}");
    harness.advance(grace);
    assert_eq!(
        harness.fire_due_deadline(protocol.as_mut()),
        Some(Verb::CloseAfterFlush)
    );
    assert!(harness.take_output().is_empty());

    // Idle, and a request arrives within the grace: answered, with Connection: close.
    let (mut harness, mut protocol) = open();
    assert_eq!(harness.drain(protocol.as_mut()), Verb::Read);
    let verb = harness.push(
        protocol.as_mut(),
        b"GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n",
    );
    assert_eq!(verb, Verb::CloseAfterFlush);
    let output = text(&harness.take_output());
    assert!(
        output.starts_with("HTTP/1.1 200 ") && output.contains("Connection: close"),
        "{output}"
    );

    let (mut harness, mut protocol) = open();
    harness.push(protocol.as_mut(), b"GET /readyz HTTP/1.1\r\n");
    assert_eq!(harness.drain(protocol.as_mut()), Verb::Read);
    assert_eq!(
        harness.push(protocol.as_mut(), b"Host: a\r\n\r\n"),
        Verb::CloseAfterFlush
    );
    let output = text(&harness.take_output());
    assert!(
        output.starts_with("HTTP/1.1 503 ") && output.contains("Connection: close"),
        "{output}"
    );
}

#[test]
fn a_reload_reaches_open_connections_at_their_next_request() {
    let factory = HttpFactory::new(config(), routes()).unwrap();
    let mut shard = factory.for_shard(0);
    let mut protocol = shard.open(&ConnInfo {
        listener: 0,
        peer: None,
        shard: 0,
    });
    let mut harness = Harness::new();
    harness.open(protocol.as_mut());
    let request = b"GET /new HTTP/1.1\r\nHost: a\r\n\r\n";
    harness.push(protocol.as_mut(), request);
    assert_eq!(statuses(&text(&harness.take_output())), [404]);
    let bad = factory.reload(config(), vec![Route::get("no-slash", Handler::Json)]);
    assert!(bad.is_err());
    let message = factory
        .reload(config(), vec![Route::get("/new", Handler::Json)])
        .unwrap();
    shard.on_message(message.as_ref());
    assert_eq!(harness.push(protocol.as_mut(), request), Verb::Read);
    let output = text(&harness.take_output());
    assert!(
        output.ends_with("{\"message\":\"Hello, World!\"}"),
        "{output}"
    );
    let stats = factory.stats();
    let names = stats.route_names();
    let labelled: Vec<(&str, &str, &str, u64)> = stats.snapshot()[0]
        .series
        .iter()
        .flat_map(|s| {
            let (route, method) = (names[s.route].as_str(), crate::METHOD_LABELS[s.method]);
            (s.codes.iter()).map(move |(c, n)| (route, method, crate::CODE_LABELS[*c], *n))
        })
        .collect();
    // The 404 before the reload has no route; the reloaded route counts under its pattern.
    assert_eq!(
        labelled,
        [("none", "GET", "404", 1), ("/new", "GET", "200", 1)]
    );
}

#[test]
fn the_date_comes_from_the_shard_clock() {
    let factory = HttpFactory::new(config(), routes()).unwrap();
    let mut shard = factory.for_shard(0);
    shard.on_clock(std::time::UNIX_EPOCH + Duration::from_secs(784_111_777));
    let mut protocol = shard.open(&ConnInfo {
        listener: 0,
        peer: None,
        shard: 0,
    });
    let mut harness = Harness::new();
    harness.push(protocol.as_mut(), b"GET /json HTTP/1.1\r\nHost: a\r\n\r\n");
    assert!(text(&harness.take_output()).contains("Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n"));
}

/// Regression (fuzz/regressions/http_protocol/eof-then-header-deadline-writes-408): EOF in the
/// middle of a second request left the header deadline armed, and its 408 was written after
/// the protocol had already said close.
#[test]
fn eof_mid_request_disarms_the_header_deadline() {
    let (mut harness, mut protocol) = open();
    let verb = harness.push(
        protocol.as_mut(),
        b"GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\nGE",
    );
    assert_eq!(verb, Verb::Read);
    assert_eq!(statuses(&text(&harness.take_output())), vec![200]);
    assert_eq!(harness.eof(protocol.as_mut()), Verb::CloseAfterFlush);
    harness.advance(Duration::from_secs(3600));
    assert_eq!(harness.fire_due_deadline(protocol.as_mut()), None);
    assert!(
        harness.take_output().is_empty(),
        "nothing may follow the close"
    );
}

/// Regression (fuzz/regressions/http_head/long-method-split-gets-414): a partial head was
/// refused as "URI too long" by its length alone, though the long part was the method, so the
/// answer depended on where the bytes were split.
#[test]
fn a_long_method_gets_the_same_answer_whole_and_split() {
    let mut request = b"H".to_vec();
    request.extend(std::iter::repeat_n(b'Q', 80));
    request.extend_from_slice(b"D /plaintext HTTP/1.1\r\nHost: a\r\n\r\n");
    let whole = {
        let (mut harness, mut protocol) = open();
        harness.push(protocol.as_mut(), &request);
        statuses(&text(&harness.take_output()))
    };
    for split in 1..request.len() {
        let (mut harness, mut protocol) = open();
        harness.push(protocol.as_mut(), &request[..split]);
        harness.push(protocol.as_mut(), &request[split..]);
        let output = statuses(&text(&harness.take_output()));
        assert_eq!(output, whole, "split at {split}");
    }
}

/// A pipelined batch idles once, at its end, as a lone answer does (`conn::Batch`): the idle
/// deadline, the idle mark and the scratch back in the pool; a batch that ends inside a
/// request leaves that request's header deadline and its scratch.
#[test]
fn a_pipelined_batch_idles_at_its_end_as_one_answer_does() {
    use crate::factory::{Settings, Shared};
    use crate::stats::HttpStats;
    let settings = Settings {
        config: config(),
        routes: crate::RouteTable::new(routes()).unwrap(),
    };
    let shared = std::rc::Rc::new(Shared::new(
        settings,
        HttpStats::default().for_shard(0),
        None,
    ));
    let mut conn = crate::HttpConn::new(shared.clone());
    let mut harness = Harness::new();
    assert_eq!(harness.open(&mut conn), Verb::Read);
    let one = b"GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n";
    let idle = |harness: &Harness| harness.deadline() == Some(harness.now + config().idle_timeout);

    assert_eq!(harness.push(&mut conn, &one.repeat(3)), Verb::Read);
    assert_eq!(statuses(&text(&harness.take_output())), [200, 200, 200]);
    assert!(idle(&harness));
    assert_eq!(harness.idle_marks(), 1);
    assert!(conn.scratch.is_none());
    assert_eq!(shared.scratch_pool.borrow().len(), 1);

    harness.advance(Duration::from_secs(1));
    let mut two_and_a_half = one.repeat(2);
    two_and_a_half.extend_from_slice(b"GET /plain");
    assert_eq!(harness.push(&mut conn, &two_and_a_half), Verb::Read);
    assert_eq!(statuses(&text(&harness.take_output())), [200, 200]);
    let header = harness.now + config().header_timeout;
    assert_eq!(harness.deadline(), Some(header));
    assert_eq!(
        harness.idle_marks(),
        2,
        "answers in the call marked it idle, as before"
    );
    assert!(conn.scratch.as_ref().is_some_and(|s| s.started.is_some()));

    harness.advance(Duration::from_secs(1));
    assert_eq!(
        harness.push(&mut conn, b"text HTTP/1.1\r\nHost: a\r\n\r\n"),
        Verb::Read
    );
    assert_eq!(statuses(&text(&harness.take_output())), [200]);
    assert!(idle(&harness));
    assert!(conn.scratch.is_none());
    assert_eq!(shared.scratch_pool.borrow().len(), 1);
}
