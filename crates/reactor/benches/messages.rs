//! Messages into connections: cross-shard throughput through the inbox (a batch of sends from
//! another thread, one wake per batch) and the cost of one same-shard delivery (a protocol
//! sending to itself through the shard's local queue).
//!
//! `cargo bench -p coreloop-reactor --bench messages`; docs/BENCHMARKS.md has the figures.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use coreloop_reactor::token::ConnToken;
use coreloop_reactor::{
    ConnAddr, ConnInfo, Cx, ListenAddr, ListenerSpec, Message, Protocol, ReactorConfig,
    ReactorHandle, Step, Verb,
};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const BATCH: u64 = 10_000;

/// Tells the peer its address; on a byte, sends itself `BATCH` messages; on the last of
/// them (or of a batch from outside, `u64::MAX` marks the last) writes one byte.
struct Counter {
    got: u64,
}

impl Protocol for Counter {
    fn on_open(&mut self, cx: &mut Cx<'_>) -> Verb {
        let addr = cx.addr();
        let line = format!(
            "{} {} {}\n",
            addr.shard,
            addr.token.index(),
            addr.token.generation()
        );
        cx.out().extend_from_slice(line.as_bytes());
        Verb::Read
    }

    fn on_input(&mut self, input: &[u8], cx: &mut Cx<'_>) -> Step {
        let me = cx.addr();
        for i in 0..BATCH {
            let last = if i + 1 == BATCH { u64::MAX } else { i };
            cx.send(me, Box::new(last)).expect("room for a batch");
        }
        Step::new(input.len(), Verb::Read)
    }

    fn on_message(&mut self, message: Message, cx: &mut Cx<'_>) -> Verb {
        self.got += 1;
        if message.downcast_ref::<u64>() == Some(&u64::MAX) {
            cx.out().push(b'd');
        }
        Verb::Read
    }
}

fn start(shards: usize) -> (ReactorHandle, TcpStream, ConnAddr) {
    let mut config = ReactorConfig::default();
    config.shards = shards;
    let config = config.with_listener(ListenerSpec::new(
        "bench",
        ListenAddr::parse("127.0.0.1:0").unwrap(),
        Arc::new(|_: &ConnInfo| Counter { got: 0 }),
    ));
    let reactor = coreloop_reactor::start(config).expect("reactor starts");
    let ListenAddr::Tcp(bound) = reactor.local_addrs()[0].clone() else {
        unreachable!()
    };
    let mut client = TcpStream::connect(bound).unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut line = Vec::new();
    let mut byte = [0];
    while byte[0] != b'\n' {
        client.read_exact(&mut byte).unwrap();
        line.push(byte[0]);
    }
    let words: Vec<usize> = String::from_utf8(line)
        .unwrap()
        .split_whitespace()
        .map(|w| w.parse().unwrap())
        .collect();
    let addr = ConnAddr {
        shard: words[0],
        token: ConnToken::new(words[1], words[2] as u32),
    };
    (reactor, client, addr)
}

fn cross_shard(c: &mut Criterion) {
    let (reactor, mut client, addr) = start(2);
    let messenger = reactor.messenger();
    let mut group = c.benchmark_group("messages");
    group.throughput(Throughput::Elements(BATCH));
    group.bench_function("cross_thread_batch_10k", |b| {
        b.iter_custom(|iters| {
            let started = Instant::now();
            for _ in 0..iters {
                let mut batch = messenger.batch();
                for i in 0..BATCH {
                    let last = if i + 1 == BATCH { u64::MAX } else { i };
                    batch.send(addr, Box::new(last)).expect("room");
                }
                batch.finish();
                let mut done = [0];
                client.read_exact(&mut done).unwrap();
            }
            started.elapsed()
        })
    });
    let shard = &reactor.snapshot().shards[addr.shard];
    eprintln!(
        "cross-thread: messages={} wakes={} ({:.0} messages per wake)",
        shard.messages_delivered,
        shard.wakes,
        shard.messages_delivered as f64 / shard.wakes.max(1) as f64
    );
    group.bench_function("same_shard_batch_10k", |b| {
        b.iter_custom(|iters| {
            let started = Instant::now();
            for _ in 0..iters {
                client.write_all(b"g").unwrap();
                let mut done = [0];
                client.read_exact(&mut done).unwrap();
            }
            started.elapsed()
        })
    });
    group.finish();
    drop(client);
    reactor.shutdown(Duration::from_secs(1));
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1));
    targets = cross_shard
}
criterion_main!(benches);
