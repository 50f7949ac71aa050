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
        .map(|i| support::echoed(addr, &format!("held {i}")))
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
    let mut config = {
        let mut config = ReactorConfig::default();
        config.max_connections = 100_000_000;
        config
    };
    config.listeners.push(
        coreloop_reactor::ListenerSpec::new("big", support::loopback(), Arc::new(EchoFactory))
            .with_backlog(16),
    );
    match coreloop_reactor::start(config) {
        Err(StartError::FdLimit(message)) => {
            assert!(message.contains("max_connections = 100000000"), "{message}");
            assert!(message.contains("lower max_connections"), "{message}");
        }
        Err(other) => panic!("expected an fd-limit refusal, got {other}"),
        Ok(_) => panic!("a limit of 100 million connections was accepted"),
    }
}

/// Consumes nothing: every byte stays buffered, as a protocol waiting for a message that
/// never ends would leave it.
struct Hoarder;

impl coreloop_reactor::Protocol for Hoarder {
    fn on_input(
        &mut self,
        _input: &[u8],
        _cx: &mut coreloop_reactor::Cx<'_>,
    ) -> coreloop_reactor::Step {
        coreloop_reactor::Step::new(0, coreloop_reactor::Verb::Read)
    }
}

impl coreloop_reactor::ProtocolFactory for Hoarder {
    fn for_shard(&self, _shard: usize) -> Box<dyn coreloop_reactor::ConnFactory> {
        Box::new(Hoarder)
    }
}

impl coreloop_reactor::ConnFactory for Hoarder {
    fn open(&mut self, _info: &coreloop_reactor::ConnInfo) -> Box<dyn coreloop_reactor::Protocol> {
        Box::new(Hoarder)
    }
}

#[test]
fn unconsumed_input_past_max_input_closes_the_connection() {
    use std::io::Write;
    let reactor = support::start(
        1,
        Balance::LeastLoaded,
        support::loopback(),
        Arc::new(Hoarder),
        |c| {
            c.read_buffer = 4096;
            c.max_input = 64 * 1024;
        },
    );
    let addr = support::tcp_addr(&reactor);
    let mut client = support::connect(addr);
    client
        .set_write_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let chunk = vec![b'z'; 16 * 1024];
    // The server holds 64 KiB and then closes; writing on eventually fails (or fills the
    // kernel buffers, which also ends the loop).
    for _ in 0..64 {
        if client.write_all(&chunk).is_err() {
            break;
        }
    }
    support::wait_until(Duration::from_secs(10), "the overflow close", || {
        reactor.snapshot().shards[0].closed_for(coreloop_reactor::CloseReason::InputOverflow) == 1
    });
    reactor.shutdown(Duration::from_secs(1));
}

/// Issue 10, §1: reuseport shards accept concurrently, each checking the published total;
/// two shards at `limit - 1` could both accept. Several threads connect at once and the total
/// is sampled throughout: it never passes the limit, and ends exactly at it.
#[test]
fn the_global_limit_holds_exactly_under_concurrent_connects_in_reuseport_mode() {
    const LIMIT: u64 = 24;
    const THREADS: usize = 8;
    const PER_THREAD: usize = 12;
    let reactor = support::start(
        4,
        Balance::ReusePort,
        support::loopback(),
        Arc::new(EchoFactory),
        |c| c.max_connections = LIMIT as usize,
    );
    let addr = support::tcp_addr(&reactor);
    let (go_tx, go_rx) = crossbeam_channel::bounded::<()>(0);
    let clients: Vec<_> = (0..THREADS)
        .map(|_| {
            let go = go_rx.clone();
            std::thread::spawn(move || {
                let _ = go.recv_timeout(Duration::from_secs(10));
                (0..PER_THREAD)
                    .map(|_| support::connect(addr))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    for _ in 0..THREADS {
        go_tx.send(()).unwrap();
    }
    let mut most = 0;
    support::wait_until(Duration::from_secs(10), "the limit to fill", || {
        let active = reactor.snapshot().active();
        most = most.max(active);
        active == LIMIT
    });
    let held: Vec<_> = clients
        .into_iter()
        .flat_map(|c| c.join().unwrap())
        .collect();
    for _ in 0..50 {
        most = most.max(reactor.snapshot().active());
    }
    assert!(
        most <= LIMIT,
        "{most} connections open at once, limit {LIMIT}"
    );
    assert_eq!(reactor.snapshot().active(), LIMIT);
    assert_eq!(held.len(), THREADS * PER_THREAD);
    drop(held);
    reactor.shutdown(Duration::from_secs(1));
}

/// A paused accept loop re-checks for room on a timer (or when woken), never in a loop: a
/// re-check that took "some inbox has room" for "room under the connection limit" once ended
/// every pause at once, half a million times a second. Counted, not timed: pauses per second.
#[test]
fn a_pause_at_the_limit_is_rechecked_on_a_timer_not_in_a_loop() {
    for balance in [Balance::LeastLoaded, Balance::ReusePort] {
        let reactor = support::start(
            2,
            balance,
            support::loopback(),
            Arc::new(EchoFactory),
            |c| c.max_connections = 4,
        );
        let addr = support::tcp_addr(&reactor);
        let _held: Vec<_> = (0..4)
            .map(|i| support::echoed(addr, &format!("held {i}")))
            .collect();
        let _waiting: Vec<_> = (0..4).map(|_| support::connect(addr)).collect();
        support::wait_until(Duration::from_secs(10), "a pause at the limit", || {
            pauses(&reactor.snapshot()) >= 1
        });
        let before = pauses(&reactor.snapshot());
        // An observation window, not a synchronisation.
        std::thread::sleep(Duration::from_secs(1));
        let per_second = pauses(&reactor.snapshot()) - before;
        assert!(
            per_second <= 1,
            "{balance:?}: {per_second} new pauses in 1 s while one pause should last"
        );
        reactor.shutdown(Duration::from_secs(1));
    }
}
