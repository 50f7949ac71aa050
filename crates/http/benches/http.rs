//! Parse-and-respond throughput through the reactor's `Harness`, and chunked decoding.
//! Each measured closure checks its result, so a broken fast path cannot look fast.

use std::hint::black_box;

use coreloop_http::{BodyDecoder, Framing, Handler, HttpConfig, HttpFactory, Route};
use coreloop_reactor::testing::Harness;
use coreloop_reactor::{ConnInfo, ProtocolFactory, Verb};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const PLAINTEXT: &[u8] = b"GET /plaintext HTTP/1.1\r\nHost: server\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64) Gecko/20130501 Firefox/30.0 AppleWebKit/600.00 Chrome/30.0.0000.0 Trident/10.0 Safari/600.00\r\nCookie: uid=12345678901234567890; __utma=1.1234567890.1234567890.1234567890.1234567890.12; wd=2560x1600\r\nAccept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\nAccept-Language: en-US,en;q=0.5\r\nConnection: keep-alive\r\n\r\n";

fn respond(c: &mut Criterion) {
    let routes = vec![Route::get("/plaintext", Handler::text("Hello, World!"))];
    let config = HttpConfig {
        max_pipeline_depth: 64,
        ..HttpConfig::default()
    };
    let factory = HttpFactory::new(config, routes).unwrap();
    let mut group = c.benchmark_group("respond");
    for depth in [1usize, 16] {
        let batch = PLAINTEXT.repeat(depth);
        let mut protocol = factory.for_shard(0).open(&ConnInfo {
            listener: 0,
            peer: None,
            shard: 0,
        });
        let mut harness = Harness::new();
        harness.open(protocol.as_mut());
        group.throughput(Throughput::Elements(depth as u64));
        group.bench_function(format!("plaintext_x{depth}"), |b| {
            b.iter(|| {
                assert_eq!(
                    harness.push(protocol.as_mut(), black_box(&batch)),
                    Verb::Read
                );
                let out = harness.take_output();
                assert_eq!(out.len(), depth * 133);
                assert_eq!(harness.buffered(), 0);
            })
        });
    }
    group.finish();
}

fn chunked(c: &mut Criterion) {
    let mut body = Vec::new();
    for _ in 0..64 {
        body.extend_from_slice(b"400;ext=1\r\n");
        body.extend_from_slice(&[b'x'; 1024]);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(b"0\r\n\r\n");
    let mut group = c.benchmark_group("chunked");
    group.throughput(Throughput::Bytes(body.len() as u64));
    let mut sink = Vec::with_capacity(64 * 1024);
    group.bench_function("decode_64x1KiB", |b| {
        b.iter(|| {
            sink.clear();
            let mut decoder = BodyDecoder::new(Framing::Chunked).unwrap();
            let mut received = 0;
            let progress = decoder
                .decode(
                    black_box(&body),
                    &mut Some(&mut sink),
                    &mut received,
                    u64::MAX,
                )
                .unwrap();
            assert!(progress.done && progress.consumed == body.len() && sink.len() == 64 * 1024);
        })
    });
    group.finish();
}

criterion_group!(benches, respond, chunked);
criterion_main!(benches);
