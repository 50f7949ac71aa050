//! Zero allocations per request for a static route in steady state, keep-alive and pipelined.
//!
//! allocation-counter's global allocator (this test binary only) counts the allocations of the
//! measuring thread alone while the protocol is driven through the reactor's `Harness`: a
//! process-wide count also saw the test runner's own threads and failed a third of the runs.

use coreloop_http::{Handler, HttpConfig, HttpFactory, Route};
use coreloop_reactor::testing::Harness;
use coreloop_reactor::{ConnInfo, Protocol, ProtocolFactory, Verb};

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
) -> (usize, u64) {
    let batch = REQUEST.repeat(per_batch);
    let mut allocations = 0;
    for _ in 0..rounds {
        assert_eq!(harness.push(protocol, REQUEST), Verb::Read);
        let counted = allocation_counter::measure(|| {
            for _ in 0..batches {
                assert_eq!(harness.push(protocol, &batch), Verb::Read);
            }
        });
        allocations += counted.count_total;
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
    let probe = allocation_counter::measure(|| drop(std::hint::black_box(vec![1u8; 10])));
    assert!(probe.count_total > 0, "the counting allocator counts");
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

/// The count belongs to the measuring thread: another thread allocating all the while (as the
/// test runner's threads do) adds nothing to it.
#[test]
fn other_threads_do_not_count() {
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let busy = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut made = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                made += std::hint::black_box(vec![0u8; 64]).len() as u64;
            }
            made
        })
    };
    let mut spins = 0u64;
    let counted = allocation_counter::measure(|| {
        while spins < 5_000_000 {
            spins = std::hint::black_box(spins + 1);
        }
    });
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(busy.join().unwrap() > 0);
    assert_eq!(counted.count_total, 0);
}
