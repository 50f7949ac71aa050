//! Connection limits: above `max_connections` (global or per shard) accepting stops and the
//! kernel backlog holds the rest until a connection closes; a limit the fd table cannot hold is
//! refused at start.

mod support;

use std::sync::Arc;
use std::time::Duration;

use coreloop_reactor::echo::EchoFactory;
use coreloop_reactor::{Balance, PauseCause, ReactorConfig, StartError};

fn pauses(snapshot: &coreloop_reactor::Snapshot) -> u64 {
    snapshot.accept.paused[PauseCause::ALL
        .iter()
        .position(|c| *c == PauseCause::ConnectionLimit)
        .unwrap()]
}

fn check_limit(balance: Balance, tune: impl FnOnce(&mut ReactorConfig), limit: u64) {
    let reactor = support::start(2, balance, support::loopback(), Arc::new(EchoFactory), tune);
    let addr = support::tcp_addr(&reactor);
    let mut held: Vec<_> = (0..limit)
        .map(|i| {
            let mut client = support::connect(addr);
            let message = format!("held {i}");
            support::write_all(&mut client, message.as_bytes());
            assert_eq!(
                support::read_exact(&mut client, message.len()),
                message.as_bytes()
            );
            client
        })
        .collect();

    // One more connects (the backlog takes it) but is not served while the limit holds.
    let mut waiting = support::connect(addr);
    support::write_all(&mut waiting, b"waiting");
    support::wait_until(
        Duration::from_secs(10),
        "accepting to pause at the limit",
        || pauses(&reactor.snapshot()) >= 1,
    );
    assert_eq!(
        reactor.snapshot().active(),
        limit,
        "{balance:?}: the limit was passed"
    );

    // Closing one makes room, and the waiting client is served without sending again.
    drop(held.remove(0));
    assert_eq!(
        support::read_exact(&mut waiting, 7),
        b"waiting",
        "{balance:?}"
    );
    reactor.shutdown(Duration::from_secs(1));
}

#[test]
fn the_global_limit_holds_in_every_mode() {
    for balance in [
        Balance::LeastLoaded,
        Balance::RoundRobin,
        Balance::ReusePort,
    ] {
        check_limit(balance, |c| c.max_connections = 6, 6);
    }
}

#[test]
fn the_per_shard_limit_holds() {
    check_limit(
        Balance::LeastLoaded,
        |c| c.max_connections_per_shard = Some(3),
        6,
    );
}

#[test]
fn a_limit_beyond_the_fd_table_is_refused_at_start() {
    let mut config = ReactorConfig {
        max_connections: 100_000_000,
        ..ReactorConfig::default()
    };
    config.listeners.push(coreloop_reactor::ListenerSpec {
        name: "big".into(),
        addr: support::loopback(),
        backlog: 16,
        protocol: Arc::new(EchoFactory),
    });
    match coreloop_reactor::start(config) {
        Err(StartError::FdLimit(message)) => {
            assert!(message.contains("max_connections = 100000000"), "{message}");
            assert!(message.contains("lower max_connections"), "{message}");
        }
        Err(other) => panic!("expected an fd-limit refusal, got {other}"),
        Ok(_) => panic!("a limit of 100 million connections was accepted"),
    }
}
