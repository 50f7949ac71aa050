use std::sync::Arc;
use std::time::Duration;

use coreloop_config::{Address, Upstream, UpstreamBalance};
use coreloop_metrics::upstream::UpstreamStats;
use coreloop_reactor::testing::Harness;
use coreloop_reactor::token::ConnToken;
use coreloop_reactor::{ConnAddr, ConnInfo, ConnectError, ListenAddr, ProtocolFactory, Verb};

use super::TcpProxyFactory;

const IDLE: Duration = Duration::from_secs(60);

fn factory(servers: usize, max_fails: u32) -> (TcpProxyFactory, Arc<UpstreamStats>) {
    let upstream = Upstream {
        name: "app".into(),
        servers: (0..servers)
            .map(|i| Address::Tcp(([127, 0, 0, 1], 9000 + i as u16).into()))
            .collect(),
        balance: UpstreamBalance::RoundRobin,
        connect_timeout: Duration::from_millis(500),
        max_fails,
        fail_timeout: Duration::from_secs(10),
        response_timeout: Duration::from_secs(30),
        keepalive: 32,
        idle_timeout: Duration::from_secs(60),
    };
    let names: Vec<String> = upstream.servers.iter().map(ToString::to_string).collect();
    let stats = Arc::new(UpstreamStats::new("app", &names, 1));
    let factory = TcpProxyFactory {
        upstream,
        idle: IDLE,
        stats: stats.clone(),
    };
    (factory, stats)
}

fn info() -> ConnInfo {
    ConnInfo {
        listener: 0,
        peer: None,
        shard: 0,
    }
}

fn server(port: u16) -> ListenAddr {
    ListenAddr::Tcp(([127, 0, 0, 1], port).into())
}

fn peer() -> ConnAddr {
    ConnAddr {
        shard: 0,
        token: ConnToken::new(9, 0),
    }
}

#[test]
fn a_failed_connect_tries_the_next_server_with_the_bytes_kept() {
    let (factory, stats) = factory(2, 3);
    let mut shard = factory.for_shard(0);
    let mut client = shard.open(&info());
    let mut h = Harness::new();
    assert_eq!(h.open(&mut *client), Verb::AwaitCompletion);
    let (id, addr, _) = h.take_connects().remove(0);
    assert_eq!(addr, server(9000));
    h.push(&mut *client, b"early");
    assert_eq!(
        h.connect_failed(&mut *client, id, ConnectError::Refused),
        Verb::AwaitCompletion
    );
    let (id, addr, _) = h.take_connects().remove(0);
    assert_eq!(addr, server(9001));
    assert_eq!(h.connected(&mut *client, id, peer()), Verb::Read);
    assert_eq!(h.take_links(), [peer()]);
    h.link_to(peer());
    h.push(&mut *client, b"");
    assert_eq!(h.take_peer_output(), b"early");
    let snap = stats.snapshot();
    assert_eq!(snap.servers[0].connect_errors, [1, 0, 0]);
    assert_eq!((snap.servers[1].retries, snap.servers[1].active), (1, 1));
    assert_eq!(snap.servers[0].active, 0);
    drop(client);
    assert_eq!(stats.snapshot().servers[1].active, 0);
}

#[test]
fn every_server_failing_closes_the_client_counted_as_no_server() {
    let (factory, stats) = factory(2, 3);
    let mut shard = factory.for_shard(0);
    let mut client = shard.open(&info());
    let mut h = Harness::new();
    h.open(&mut *client);
    for error in [ConnectError::TimedOut, ConnectError::Refused] {
        let (id, _, _) = h.take_connects().remove(0);
        let verb = h.connect_failed(&mut *client, id, error);
        if error == ConnectError::Refused {
            assert_eq!(verb, Verb::CloseNow);
        }
    }
    assert!(h.refused());
    let snap = stats.snapshot();
    assert_eq!(snap.no_server, 1);
    assert_eq!(snap.servers[0].connect_errors, [0, 1, 0]);
}

#[test]
fn no_room_is_not_the_servers_fault() {
    let (factory, stats) = factory(2, 1);
    let mut shard = factory.for_shard(0);
    let mut client = shard.open(&info());
    let mut h = Harness::new();
    h.open(&mut *client);
    let (id, _, _) = h.take_connects().remove(0);
    assert_eq!(
        h.connect_failed(&mut *client, id, ConnectError::NoRoom),
        Verb::CloseNow
    );
    assert!(h.take_connects().is_empty());
    assert_eq!(stats.snapshot().servers[0].ejected, 0);
}

#[test]
fn ejected_servers_are_skipped_by_later_connections() {
    let (factory, stats) = factory(2, 1);
    let mut shard = factory.for_shard(0);
    let mut h = Harness::new();
    let mut first = shard.open(&info());
    h.open(&mut *first);
    let (id, _, _) = h.take_connects().remove(0);
    h.connect_failed(&mut *first, id, ConnectError::Refused);
    assert_eq!(stats.snapshot().servers[0].ejected, 1);
    h.take_connects();
    for _ in 0..3 {
        let mut next = shard.open(&info());
        h.open(&mut *next);
        let (_, addr, _) = h.take_connects().remove(0);
        assert_eq!(addr, server(9001));
    }
}

#[test]
fn idle_in_both_directions_closes_and_traffic_either_way_defers_it() {
    let (factory, _) = factory(1, 3);
    let mut shard = factory.for_shard(0);
    let mut client = shard.open(&info());
    let mut h = Harness::new();
    h.open(&mut *client);
    let (id, _, mut upstream_side) = h.take_connects().remove(0);
    h.connected(&mut *client, id, peer());
    h.link_to(peer());
    assert!(h.deadline().is_some());
    // Bytes from the server side, 50s in: the client's deadline moves past them.
    h.advance(Duration::from_secs(50));
    let mut other = Harness::new();
    other.link_to(peer());
    other.push(&mut *upstream_side, b"down");
    h.advance(Duration::from_secs(10));
    assert_eq!(h.fire_due_deadline(&mut *client), Some(Verb::Read));
    h.advance(Duration::from_secs(50));
    assert_eq!(
        h.fire_due_deadline(&mut *client),
        Some(Verb::CloseAfterFlush)
    );
}
