//! Zero allocations per request for a static route in steady state, keep-alive and pipelined.
//!
//! A counting global allocator (stats_alloc's, this test binary only) counts allocations while
//! the protocol is driven through the reactor's `Harness`. There is one test in this binary,
//! so no other test thread allocates during a counted region.

use std::alloc::System;

use coreloop_http::{Handler, HttpConfig, HttpFactory, Route};
use coreloop_reactor::testing::Harness;
use coreloop_reactor::{ConnInfo, Protocol, ProtocolFactory, Verb};
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const REQUEST: &[u8] =
    b"GET /plaintext HTTP/1.1\r\nHost: bench\r\nUser-Agent: test\r\nAccept: */*\r\n\r\n";

/// Drives `rounds` rounds of: one uncounted request (the harness hands the protocol a fresh
/// 4 KiB output buffer after each `take_output`; the reactor's pool recycles it instead), then
/// `batches` counted writes of `per_batch` requests that fit in that buffer, then an uncounted
/// `take_output`. Returns requests counted and allocations seen.
fn run(
    protocol: &mut dyn Protocol,
    harness: &mut Harness,
    per_batch: usize,
    batches: usize,
    rounds: usize,
) -> (usize, usize) {
    let batch = REQUEST.repeat(per_batch);
    let mut allocations = 0;
    for _ in 0..rounds {
        assert_eq!(harness.push(protocol, REQUEST), Verb::Read);
        let region = Region::new(GLOBAL);
        for _ in 0..batches {
            assert_eq!(harness.push(protocol, &batch), Verb::Read);
        }
        let change = region.change();
        allocations += change.allocations + change.reallocations;
        let output = harness.take_output();
        assert_eq!(output.matches_count(), 1 + per_batch * batches);
    }
    (per_batch * batches * rounds, allocations)
}

trait CountResponses {
    fn matches_count(&self) -> usize;
}

impl CountResponses for Vec<u8> {
    fn matches_count(&self) -> usize {
        self.windows(15).filter(|w| w == b"HTTP/1.1 200 OK").count()
    }
}

/// One test, so that no other test thread allocates while the global counter runs.
#[test]
fn static_route_requests_allocate_nothing_in_steady_state() {
    let routes = vec![Route::get("/plaintext", Handler::text("Hello, World!"))];
    let factory = HttpFactory::new(HttpConfig::default(), routes).unwrap();
    let mut protocol = factory.for_shard(0).open(&ConnInfo {
        listener: 0,
        peer: None,
        shard: 0,
    });
    let mut harness = Harness::new();
    harness.open(protocol.as_mut());
    let region = Region::new(GLOBAL);
    let probe = std::hint::black_box(vec![1u8; 10]);
    assert!(
        region.change().allocations > 0,
        "the counting allocator counts"
    );
    drop(probe);
    // Warm-up: grows the harness's input buffer and anything lazily made.
    run(protocol.as_mut(), &mut harness, 16, 1, 4);

    let (requests, allocations) = run(protocol.as_mut(), &mut harness, 1, 25, 40);
    println!("keep-alive: {allocations} allocations for {requests} requests");
    assert_eq!(
        allocations, 0,
        "keep-alive: {allocations} allocations for {requests} requests"
    );

    let (requests, allocations) = run(protocol.as_mut(), &mut harness, 16, 1, 100);
    println!("pipelined x16: {allocations} allocations for {requests} requests");
    assert_eq!(
        allocations, 0,
        "pipelined: {allocations} allocations for {requests} requests"
    );
}
