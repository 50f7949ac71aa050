//! Micro-benchmarks of the reactor's hot internals: the acceptor-to-shard handoff and the timer
//! wheel. Figures and commands are in docs/BENCHMARKS.md.

use std::sync::Arc;
use std::time::{Duration, Instant};

use coreloop_reactor::inbox::Inbox;
use coreloop_reactor::timer::TimerWheel;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use mio::{Events, Poll, Token, Waker};

const BATCH: u64 = 64;

/// Acceptor to shard: a producer thread pushes batches of 64 handoffs and wakes once per batch;
/// the consumer polls, drains, and counts. Measures the whole cross-thread path, waker included.
fn handoff(c: &mut Criterion) {
    let mut group = c.benchmark_group("handoff");
    group.throughput(Throughput::Elements(BATCH * 100));
    group.bench_function("push_wake_poll_pop_64x100", |b| {
        let mut poll = Poll::new().unwrap();
        let waker = Waker::new(poll.registry(), Token(0)).unwrap();
        let inbox: Arc<Inbox<u64>> = Arc::new(Inbox::new(4096, waker));
        let mut events = Events::with_capacity(8);
        b.iter(|| {
            let producer = {
                let inbox = inbox.clone();
                std::thread::spawn(move || {
                    for batch in 0..100u64 {
                        for i in 0..BATCH {
                            let mut item = batch * BATCH + i;
                            while let Err(back) = inbox.push_handoff(item) {
                                item = back;
                                std::hint::spin_loop();
                            }
                        }
                        inbox.wake();
                    }
                })
            };
            let mut taken = 0u64;
            while taken < BATCH * 100 {
                poll.poll(&mut events, Some(Duration::from_millis(100)))
                    .unwrap();
                inbox.begin_drain();
                while inbox.pop_handoff().is_some() {
                    taken += 1;
                }
            }
            producer.join().unwrap();
            assert_eq!(taken, BATCH * 100);
        });
    });
    group.finish();
}

fn timers(c: &mut Criterion) {
    let mut group = c.benchmark_group("timer_wheel");
    let n = 10_000u64;
    group.throughput(Throughput::Elements(n));
    let start = Instant::now();
    let tick = Duration::from_millis(10);
    group.bench_function("insert_10k", |b| {
        b.iter_batched_ref(
            || TimerWheel::new(start, tick, 4096),
            |wheel| {
                for i in 0..n {
                    wheel.insert(start + Duration::from_millis(i * 7 % 60_000), i);
                }
                assert_eq!(wheel.len(), n as usize);
            },
            BatchSize::SmallInput,
        );
    });
    group.bench_function("insert_cancel_10k", |b| {
        b.iter_batched_ref(
            || TimerWheel::new(start, tick, 4096),
            |wheel| {
                for i in 0..n {
                    let key = wheel.insert(start + Duration::from_millis(i * 7 % 60_000), i);
                    assert_eq!(wheel.cancel(key), Some(i));
                }
            },
            BatchSize::SmallInput,
        );
    });
    group.bench_function("expire_10k", |b| {
        b.iter_batched_ref(
            || {
                let mut wheel = TimerWheel::new(start, tick, 4096);
                for i in 0..n {
                    wheel.insert(start + Duration::from_millis(i % 30_000), i);
                }
                wheel
            },
            |wheel| {
                let mut fired = 0u64;
                wheel.expire(start + Duration::from_secs(31), |_| fired += 1);
                assert_eq!(fired, n);
            },
            BatchSize::SmallInput,
        );
    });
    group.finish();
}

criterion_group!(benches, handoff, timers);
criterion_main!(benches);
