//! What timing a request with real clock reads costs (issue 17 §1), measured in one process
//! beside the whole sans-IO request cycle it is part of, so the ratio holds on a noisy machine
//! where absolute figures drift.
//!
//! - `loop_clock`: the accounting as it was before, the latency taken from two loop-turn clock
//!   values the shard already had (no clock read of its own).
//! - `clock_reads`: the accounting as it is, an `Instant::now()` when the request's first
//!   byte is read and one when its response is handed over, then the same `record`.
//! - `cycle`: one keep-alive `/plaintext` request through the reactor's `Harness` (parse,
//!   route, respond, account), which includes `clock_reads`.
//!
//! docs/BENCHMARKS.md ("S1 keep-alive throughput with the latency clock") puts the difference
//! of the first two against the cycle and against S1's server CPU per request.

use std::hint::black_box;
use std::time::Instant;

use coreloop_http::{Handler, HttpConfig, HttpFactory, Route, ShardHttpStats};
use coreloop_reactor::testing::Harness;
use coreloop_reactor::{ConnInfo, ProtocolFactory, Verb};
use criterion::{criterion_group, criterion_main, Criterion};

const REQUEST: &[u8] = b"GET /plaintext HTTP/1.1\r\nHost: server\r\nUser-Agent: bench\r\n\r\n";

fn accounting(c: &mut Criterion) {
    let stats = ShardHttpStats::default();
    let mut group = c.benchmark_group("accounting");
    let turn = Instant::now();
    group.bench_function("loop_clock", |b| {
        b.iter(|| {
            let started = black_box(turn);
            let finished = black_box(turn);
            stats.record(1, 0, 200, finished.saturating_duration_since(started));
        })
    });
    group.bench_function("clock_reads", |b| {
        b.iter(|| {
            let started = black_box(Instant::now());
            let finished = black_box(Instant::now());
            stats.record(1, 0, 200, finished.saturating_duration_since(started));
        })
    });

    let routes = vec![Route::get("/plaintext", Handler::text("Hello, World!"))];
    let factory = HttpFactory::new(HttpConfig::default(), routes).expect("a valid route");
    let mut protocol = factory.for_shard(0).open(&ConnInfo {
        listener: 0,
        peer: None,
        shard: 0,
    });
    let mut harness = Harness::new();
    harness.open(protocol.as_mut());
    group.bench_function("cycle", |b| {
        b.iter(|| {
            assert_eq!(
                harness.push(protocol.as_mut(), black_box(REQUEST)),
                Verb::Read
            );
            assert!(!harness.take_output().is_empty());
        })
    });
    group.finish();
}

criterion_group!(benches, accounting);
criterion_main!(benches);
