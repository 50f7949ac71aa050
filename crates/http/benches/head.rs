//! A 64 KiB request head delivered whole, in 64-byte and in 1-byte segments, through the
//! protocol (the reactor's `Harness`): issue 11 §6 wants the segmented cost within 3x of the
//! whole. And the one-pass head parser alone (issue 16) on the load generator's request and
//! on a browser's. Each iteration checks its result, so a broken path cannot look fast.
//!
//! `cargo bench -p coreloop-http --bench head -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;

use coreloop_http::{parse_head, Handler, HttpConfig, HttpFactory, Method, Route};
use coreloop_reactor::testing::Harness;
use coreloop_reactor::{ConnInfo, Protocol, ProtocolFactory, Verb};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const HEAD_BYTES: usize = 64 * 1024;

/// About a thousand realistic field lines, `\r\n\r\n` at exactly 64 KiB.
fn head() -> Vec<u8> {
    let mut head = b"GET /plaintext HTTP/1.1\r\nHost: bench\r\n".to_vec();
    let mut i = 0;
    while head.len() + 80 < HEAD_BYTES {
        let line = format!("X-Field-{i:04}: {}\r\n", "v".repeat(56));
        head.extend_from_slice(line.as_bytes());
        i += 1;
    }
    let pad = HEAD_BYTES - head.len() - "X-Pad: \r\n\r\n".len();
    head.extend_from_slice(format!("X-Pad: {}\r\n\r\n", "p".repeat(pad)).as_bytes());
    assert_eq!(head.len(), HEAD_BYTES);
    head
}

fn open(factory: &HttpFactory) -> (Harness, Box<dyn Protocol>) {
    let mut protocol = factory.for_shard(0).open(&ConnInfo {
        listener: 0,
        peer: None,
        shard: 0,
    });
    let mut harness = Harness::new();
    harness.open(protocol.as_mut());
    (harness, protocol)
}

fn segmented(c: &mut Criterion) {
    let config = HttpConfig {
        max_header_bytes: 2 * HEAD_BYTES,
        max_headers: 1024,
        ..HttpConfig::default()
    };
    let routes = vec![Route::get("/plaintext", Handler::text("Hello, World!"))];
    let factory = HttpFactory::new(config, routes).unwrap();
    let head = head();
    let mut group = c.benchmark_group("head_64KiB");
    group.throughput(Throughput::Bytes(HEAD_BYTES as u64));
    for (name, segment) in [
        ("whole", HEAD_BYTES),
        ("segments_64B", 64),
        ("segments_1B", 1),
    ] {
        let (mut harness, mut protocol) = open(&factory);
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut verb = Verb::Read;
                for part in head.chunks(segment) {
                    verb = harness.push(protocol.as_mut(), black_box(part));
                }
                assert_eq!(
                    verb,
                    Verb::Read,
                    "{}",
                    String::from_utf8_lossy(&harness.take_output())
                );
                let out = harness.take_output();
                assert!(out.starts_with(b"HTTP/1.1 200 OK\r\n"));
                assert_eq!(harness.buffered(), 0);
            })
        });
    }
    group.finish();
}

/// What `coreloop-load` sends (benches/compare/instructions.sh's S1 and S2).
const LOAD_REQUEST: &[u8] = b"GET /plaintext HTTP/1.1\r\nHost: 127.0.0.1:18095\r\n\r\n";

/// A browser's request: long values, several fields the head reads and several it passes over.
const BROWSER_REQUEST: &[u8] = b"GET /plaintext HTTP/1.1\r\nHost: server\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64) Gecko/20130501 Firefox/30.0 AppleWebKit/600.00 Chrome/30.0.0000.0 Trident/10.0 Safari/600.00\r\nCookie: uid=12345678901234567890; __utma=1.1234567890.1234567890.1234567890.1234567890.12; wd=2560x1600\r\nAccept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\nAccept-Language: en-US,en;q=0.5\r\nConnection: keep-alive\r\n\r\n";

fn parse(c: &mut Criterion) {
    let config = HttpConfig::default();
    let mut group = c.benchmark_group("head_parse");
    for (name, request) in [("load", LOAD_REQUEST), ("browser", BROWSER_REQUEST)] {
        group.throughput(Throughput::Bytes(request.len() as u64));
        group.bench_function(name, |b| {
            b.iter(|| {
                let head = parse_head(black_box(request), &config).unwrap().unwrap();
                assert!(head.len == request.len() && head.method == Method::Get);
                black_box(head.host);
            })
        });
    }
    group.finish();
}

criterion_group!(benches, segmented, parse);
criterion_main!(benches);
