//! Echo correctness over real sockets: 1,000 concurrent clients, payloads from 1 B to 1 MiB in
//! random chunks, in every balancing mode, over TCP and a Unix socket.

mod support;

use std::sync::Arc;
use std::time::Duration;

use coreloop_reactor::echo::EchoFactory;
use coreloop_reactor::{Balance, ListenAddr};
use support::{swarm, Rng};

const CLIENTS: usize = 1000;
const BIG_CLIENTS: usize = 60;
const MAX_PAYLOAD: usize = 1 << 20;

/// 1 B and 1 MiB exactly, a few dozen large ones log-uniform up to 1 MiB, the rest small.
fn payloads(seed: u64) -> Vec<Vec<u8>> {
    let mut rng = Rng::new(seed);
    (0..CLIENTS)
        .map(|i| {
            let size = match i {
                0 => 1,
                1 => MAX_PAYLOAD,
                i if i < BIG_CLIENTS => rng.log_size(MAX_PAYLOAD),
                _ => rng.log_size(16 * 1024),
            };
            rng.bytes(size)
        })
        .collect()
}

fn run(balance: Balance, addr: ListenAddr, seed: u64) {
    let reactor = support::start(2, balance, addr, Arc::new(EchoFactory), |_| {});
    let bound = reactor.local_addrs()[0].clone();
    let outcome = swarm::echo_all(&bound, payloads(seed), seed, Duration::from_secs(60));
    assert!(
        outcome.mismatched.is_empty() && outcome.unfinished.is_empty(),
        "{balance:?} on {bound}: {outcome:?}"
    );
    let snapshot = reactor.snapshot();
    assert_eq!(
        snapshot.shards.iter().map(|s| s.accepted).sum::<u64>(),
        CLIENTS as u64
    );
    assert!(
        snapshot.shards.iter().all(|s| s.accepted > 0),
        "{balance:?}: a shard got no connection: {snapshot:?}"
    );
    reactor.shutdown(Duration::from_secs(5));
}

#[test]
fn echo_over_tcp_in_every_balancing_mode() {
    for (seed, balance) in [
        (1, Balance::LeastLoaded),
        (2, Balance::RoundRobin),
        (3, Balance::ReusePort),
    ] {
        run(balance, support::loopback(), seed);
    }
}

#[test]
fn echo_over_ipv6_loopback() {
    let addr = ListenAddr::parse("[::1]:0").expect("an IPv6 address");
    // Some sandboxes have no IPv6 loopback at all; there is nothing to test then.
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        eprintln!("no ::1 on this machine; skipping the IPv6 run");
        return;
    }
    run(Balance::LeastLoaded, addr, 4);
}

#[test]
fn echo_over_a_unix_socket_in_every_balancing_mode() {
    for (seed, balance) in [
        (5, Balance::LeastLoaded),
        (6, Balance::RoundRobin),
        (7, Balance::ReusePort),
    ] {
        run(balance, support::unix_addr(&format!("echo-{seed}")), seed);
    }
}

#[test]
fn several_listeners_with_their_own_protocols_share_the_shards() {
    use coreloop_reactor::frame::FrameEchoFactory;
    use coreloop_reactor::ListenerSpec;
    let mut reactor = support::start(
        2,
        Balance::LeastLoaded,
        support::loopback(),
        Arc::new(EchoFactory),
        |c| {
            c.listeners.push(
                ListenerSpec::new(
                    "frames",
                    support::unix_addr("frames"),
                    Arc::new(FrameEchoFactory { max: 64 }),
                )
                .with_backlog(64),
            );
        },
    );
    let addrs = reactor.local_addrs().to_vec();
    let echo = swarm::echo_all(
        &addrs[0],
        vec![b"plain bytes".to_vec(); 20],
        9,
        Duration::from_secs(10),
    );
    assert!(
        echo.mismatched.is_empty() && echo.unfinished.is_empty(),
        "{echo:?}"
    );
    let frame = [0, 0, 0, 3, b'a', b'b', b'c'];
    let frames = swarm::echo_all(
        &addrs[1],
        vec![frame.to_vec(); 20],
        10,
        Duration::from_secs(10),
    );
    assert!(
        frames.mismatched.is_empty() && frames.unfinished.is_empty(),
        "{frames:?}"
    );
    let snapshot = reactor.snapshot();
    let per_listener = |l: usize| {
        snapshot
            .shards
            .iter()
            .map(|s| s.listeners[l].accepted)
            .sum::<u64>()
    };
    assert_eq!((per_listener(0), per_listener(1)), (20, 20));
    reactor.begin_drain(std::time::Instant::now() + Duration::from_secs(2));
    reactor.wait();
}
