//! The latency histogram of a pipelined batch (`stamp::Untimed`): every response counted
//! once, and timed to the end of the `on_input` call that answered it, when its batch is
//! written.

use std::sync::Arc;
use std::time::{Duration, Instant};

use coreloop_reactor::testing::Harness;
use coreloop_reactor::{ConnInfo, Protocol, ProtocolFactory, Verb};

use crate::protocol_tests::{config, statuses, text};
use crate::{Handler, HttpFactory, Request, Response, Route, SeriesSnapshot, LATENCY_BUCKETS};

/// How long the `/slow` route's inline handler runs (a bounded spin on the clock).
const SLOW: Duration = Duration::from_millis(3);

fn factory() -> Arc<HttpFactory> {
    let slow = Arc::new(|_: &Request| {
        let start = Instant::now();
        while start.elapsed() < SLOW {
            std::hint::spin_loop();
        }
        Response {
            status: 200,
            ..Response::default()
        }
    });
    let mut routes: Vec<Route> = ["/a", "/b", "/c", "/d", "/e"]
        .into_iter()
        .map(|path| Route::get(path, Handler::text("x")))
        .collect();
    routes.push(Route::get(
        "/slow",
        Handler::Custom {
            func: slow,
            blocking: false,
        },
    ));
    HttpFactory::new(config(), routes).unwrap()
}

/// One connection of shard 0, opened.
fn open(factory: &HttpFactory) -> (Harness, Box<dyn Protocol>) {
    let info = ConnInfo {
        listener: 0,
        peer: None,
        shard: 0,
    };
    let mut protocol = factory.for_shard(0).open(&info);
    let mut harness = Harness::new();
    assert_eq!(harness.open(protocol.as_mut()), Verb::Read);
    (harness, protocol)
}

fn get(paths: &[&str]) -> Vec<u8> {
    let heads = paths
        .iter()
        .map(|p| format!("GET {p} HTTP/1.1\r\nHost: a\r\n\r\n"));
    heads.collect::<String>().into_bytes()
}

/// The series of `route` (`none` for no route), with the GET method.
fn series(factory: &HttpFactory, route: &str) -> SeriesSnapshot {
    let stats = factory.stats();
    let names = stats.route_names();
    let found = stats.snapshot()[0]
        .series
        .iter()
        .find(|s| names[s.route] == route && crate::METHOD_LABELS[s.method] == "GET")
        .cloned();
    found.unwrap_or_else(|| panic!("no series for {route}"))
}

fn responses(series: &SeriesSnapshot) -> u64 {
    series.codes.iter().map(|(_, n)| n).sum()
}

/// Responses timed at or under `seconds` (a bucket bound).
fn within(series: &SeriesSnapshot, seconds: f64) -> u64 {
    let bucket = LATENCY_BUCKETS.iter().position(|&b| b == seconds).unwrap();
    series.latency_cumulative[bucket]
}

#[test]
fn responses_of_a_batch_are_timed_when_the_batch_is_written() {
    let factory = factory();
    let (mut harness, mut protocol) = open(&factory);

    // The slow answer is the third of five: the two before it leave only when it is done.
    let verb = harness.push(protocol.as_mut(), &get(&["/a", "/a", "/slow", "/b", "/c"]));
    assert_eq!(verb, Verb::Read);
    assert_eq!(statuses(&text(&harness.take_output())), [200; 5]);
    for (route, n) in [("/a", 2), ("/slow", 1), ("/b", 1), ("/c", 1)] {
        let series = series(&factory, route);
        assert_eq!(responses(&series), n, "{route}");
        assert_eq!(
            series.latency_count, n,
            "{route}: every response timed once"
        );
        assert_eq!(
            within(&series, 0.0025),
            0,
            "{route}: waited for the slow answer in its batch ({:?})",
            series.latency_cumulative
        );
        assert!(series.latency_sum_seconds >= SLOW.as_secs_f64() * n as f64);
    }
}

/// More kinds of response in one batch than are held untimed, a refusal that closes in the
/// middle of one, and a batch that ends inside a request: each response is still counted
/// and timed exactly once.
#[test]
fn every_response_of_a_mixed_batch_is_timed_once() {
    let factory = factory();
    let (mut harness, mut protocol) = open(&factory);

    let paths = ["/a", "/b", "/c", "/d", "/e", "/nope", "/a", "/e", "/nope"];
    let mut input = get(&paths);
    input.extend_from_slice(b"GET /b HT");
    assert_eq!(harness.push(protocol.as_mut(), &input), Verb::Read);
    let output = text(&harness.take_output());
    assert_eq!(statuses(&output).len(), paths.len(), "{output}");
    let expected = [
        ("/a", 2),
        ("/b", 1),
        ("/c", 1),
        ("/d", 1),
        ("/e", 2),
        ("none", 2),
    ];
    for (route, n) in expected {
        let series = series(&factory, route);
        assert_eq!(
            (responses(&series), series.latency_count),
            (n, n),
            "{route}"
        );
    }

    // The rest of the split request, then one the server refuses and closes on.
    let verb = harness.push(
        protocol.as_mut(),
        b"TP/1.1\r\nHost: a\r\n\r\nGET / HTTP/9.9\r\n\r\n",
    );
    assert_eq!(verb, Verb::CloseAfterFlush);
    assert_eq!(statuses(&text(&harness.take_output())).len(), 2);
    let b = series(&factory, "/b");
    assert_eq!((responses(&b), b.latency_count), (2, 2));
    let all = factory.stats().snapshot()[0].series.clone();
    let counted: u64 = all.iter().map(responses).sum();
    let timed: u64 = all.iter().map(|s| s.latency_count).sum();
    assert_eq!((counted, timed), (11, 11));
}
