//! Listeners added and removed while the reactor runs (what a config reload does): the new one
//! serves at once with its own protocol, a removed one refuses new connections, and the
//! connections it already had carry on.

mod support;

use std::sync::Arc;
use std::time::Duration;

use coreloop_reactor::echo::EchoFactory;
use coreloop_reactor::frame::FrameEchoFactory;
use coreloop_reactor::{Balance, ListenAddr, ListenerSpec};

fn tcp(addr: &ListenAddr) -> std::net::SocketAddr {
    match addr {
        ListenAddr::Tcp(addr) => *addr,
        other => panic!("not TCP: {other}"),
    }
}

fn add_and_remove(balance: Balance) {
    let mut reactor = support::start(
        2,
        balance,
        support::loopback(),
        Arc::new(EchoFactory),
        |_| {},
    );
    let first = support::tcp_addr(&reactor);
    let mut old_client = support::connect(first);
    support::write_all(&mut old_client, b"before");
    assert_eq!(support::read_exact(&mut old_client, 6), b"before");

    let (id, added) = reactor
        .add_listener(
            ListenerSpec::new(
                "frames",
                support::loopback(),
                Arc::new(FrameEchoFactory { max: 16 }),
            )
            .with_backlog(64),
        )
        .expect("the new listener binds");
    assert_eq!(id, 1);
    for _ in 0..4 {
        let mut client = support::connect(tcp(&added));
        support::write_all(&mut client, &[0, 0, 0, 2, b'o', b'k']);
        assert_eq!(
            support::read_exact(&mut client, 6),
            [0, 0, 0, 2, b'o', b'k'],
            "{balance:?}"
        );
    }

    assert!(reactor.remove_listener(0));
    assert!(!reactor.remove_listener(0), "a listener is removed once");
    support::wait_until(Duration::from_secs(5), "the old address to refuse", || {
        std::net::TcpStream::connect(first).is_err()
    });
    support::write_all(&mut old_client, b"after");
    assert_eq!(
        support::read_exact(&mut old_client, 5),
        b"after",
        "{balance:?}: the old connection lives on"
    );

    let snapshot = reactor.snapshot();
    let accepted = |l: usize| {
        snapshot
            .shards
            .iter()
            .map(|s| s.listeners[l].accepted)
            .sum::<u64>()
    };
    assert_eq!((accepted(0), accepted(1)), (1, 4), "{balance:?}");
    reactor.shutdown(Duration::from_secs(1));
}

#[test]
fn listeners_come_and_go_in_every_mode() {
    for balance in [
        Balance::LeastLoaded,
        Balance::RoundRobin,
        Balance::ReusePort,
    ] {
        add_and_remove(balance);
    }
}

#[test]
fn an_address_in_use_is_refused_and_changes_nothing() {
    let mut reactor = support::start(
        1,
        Balance::LeastLoaded,
        support::loopback(),
        Arc::new(EchoFactory),
        |_| {},
    );
    let taken = support::tcp_addr(&reactor);
    let error = reactor
        .add_listener(
            ListenerSpec::new("clash", ListenAddr::Tcp(taken), Arc::new(EchoFactory))
                .with_backlog(16),
        )
        .expect_err("the port is taken");
    let message = error.to_string();
    assert!(
        message.contains("`clash`") && message.contains(&taken.to_string()),
        "{message}"
    );
    assert_eq!(reactor.listener_names(), ["test"]);
    reactor.shutdown(Duration::from_secs(1));
}
