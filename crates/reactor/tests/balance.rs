//! Least-loaded balancing, observed from outside: each connection is told which shard took it.

mod support;

use std::io::Read;
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use coreloop_reactor::{Balance, ConnFactory, ConnInfo, Cx, Protocol, ProtocolFactory, Step, Verb};

/// Writes the shard's number as one byte when a connection opens, then stays quiet.
struct ShardTeller;

impl Protocol for ShardTeller {
    fn on_open(&mut self, cx: &mut Cx<'_>) -> Verb {
        let shard = cx.shard() as u8;
        cx.out().push(shard);
        Verb::Read
    }

    fn on_input(&mut self, input: &[u8], _cx: &mut Cx<'_>) -> Step {
        Step::new(input.len(), Verb::Read)
    }
}

impl ProtocolFactory for ShardTeller {
    fn for_shard(&self, _shard: usize) -> Box<dyn ConnFactory> {
        Box::new(ShardTeller)
    }
}

impl ConnFactory for ShardTeller {
    fn open(&mut self, _info: &ConnInfo) -> Box<dyn Protocol> {
        Box::new(ShardTeller)
    }
}

fn open(addr: std::net::SocketAddr) -> (TcpStream, usize) {
    let mut stream = support::connect(addr);
    let mut shard = [0u8];
    stream.read_exact(&mut shard).expect("the shard number");
    (stream, shard[0] as usize)
}

#[test]
fn least_loaded_spreads_evenly_and_refills_the_shard_that_lost_connections() {
    let reactor = support::start(
        4,
        Balance::LeastLoaded,
        support::loopback(),
        Arc::new(ShardTeller),
        |_| {},
    );
    let addr = support::tcp_addr(&reactor);
    let mut held: Vec<(TcpStream, usize)> = (0..400).map(|_| open(addr)).collect();
    let mut per_shard = [0usize; 4];
    for (_, shard) in &held {
        per_shard[*shard] += 1;
    }
    assert!(
        per_shard.iter().all(|n| n.abs_diff(100) <= 2),
        "400 connections over 4 shards: {per_shard:?}"
    );

    let emptied = 2;
    let mut dropped = 0;
    held.retain(|(_, shard)| {
        let keep = *shard != emptied || dropped == 50;
        dropped += usize::from(!keep);
        keep
    });
    let expect = per_shard[emptied] as u64 - 50;
    support::wait_until(
        Duration::from_secs(10),
        "the shard to see 50 closes",
        || reactor.snapshot().shards[emptied].active == expect,
    );

    let refill: Vec<usize> = (0..50)
        .map(|_| open(addr))
        .map(|(s, shard)| {
            held.push((s, shard));
            shard
        })
        .collect();
    assert!(
        refill.iter().all(|shard| *shard == emptied),
        "the 50 new connections should all go to shard {emptied}: {refill:?}"
    );
    reactor.shutdown(Duration::from_secs(2));
}

#[test]
fn round_robin_rotates_regardless_of_load() {
    let reactor = support::start(
        3,
        Balance::RoundRobin,
        support::loopback(),
        Arc::new(ShardTeller),
        |_| {},
    );
    let addr = support::tcp_addr(&reactor);
    let shards: Vec<usize> = (0..9).map(|_| open(addr).1).collect();
    assert_eq!(shards, [0, 1, 2, 0, 1, 2, 0, 1, 2]);
    reactor.shutdown(Duration::from_secs(2));
}
