//! A 64 KiB request head delivered whole, in 64-byte and in 1-byte segments, through the
//! protocol (the reactor's `Harness`): issue 11 §6 wants the segmented cost within 3x of the
//! whole. Each iteration checks its response, so a broken path cannot look fast.
//!
//! `cargo bench -p coreloop-http --bench head -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;

use coreloop_http::{Handler, HttpConfig, HttpFactory, Route};
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

criterion_group!(benches, segmented);
criterion_main!(benches);
