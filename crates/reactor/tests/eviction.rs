//! Eviction near the per-shard connection limit, in-process: a protocol that marks its
//! connection idle after each answer gets its oldest idle connections closed, cleanly, once
//! they are past `keepalive_grace`, so that a new client is served. (tests/eviction.rs in the
//! workspace root covers the global limit with the real server and HTTP.)

mod support;

use std::io::Read;
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use coreloop_reactor::{Balance, CloseReason};

fn acked(addr: std::net::SocketAddr) -> TcpStream {
    let mut client = support::connect(addr);
    support::write_all(&mut client, b"?");
    assert_eq!(support::read_exact(&mut client, 2), b"ok");
    client
}

#[test]
fn at_the_per_shard_limit_the_oldest_idle_connections_make_room() {
    const PER_SHARD: usize = 16;
    let reactor = support::start(
        2,
        Balance::LeastLoaded,
        support::loopback(),
        Arc::new(support::Ack),
        |c| {
            c.max_connections_per_shard = Some(PER_SHARD);
            c.keepalive_grace = Duration::from_millis(100);
            c.linger = Duration::from_millis(100);
        },
    );
    let addr = support::tcp_addr(&reactor);
    let mut old: Vec<TcpStream> = (0..2 * PER_SHARD).map(|_| acked(addr)).collect();
    // The grace is the subject: let it pass for the old clients (not a synchronisation).
    std::thread::sleep(Duration::from_millis(150));
    let _newcomer = acked(addr);
    let evicted: u64 = reactor
        .snapshot()
        .shards
        .iter()
        .map(|s| s.closed_for(CloseReason::Evicted))
        .sum();
    assert!(evicted >= 1, "served without an eviction?");
    let mut clean = 0;
    for client in &mut old {
        client.set_nonblocking(true).unwrap();
        match client.read(&mut [0u8; 1]) {
            Ok(0) => clean += 1,
            Ok(_) => panic!("unasked-for bytes"),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => panic!("an evicted client saw {e}, not a clean end"),
        }
    }
    assert!(clean >= 1);
    reactor.shutdown(Duration::from_secs(1));
}
