//! Shutdown drains: echo traffic in flight when the drain starts completes before the reactor
//! exits, new connections are refused, and quiet connections are closed without a reset.

mod support;

use std::io::{Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use coreloop_reactor::echo::EchoFactory;
use coreloop_reactor::frame::FrameEchoFactory;
use coreloop_reactor::{Balance, CloseReason};
use support::Rng;

const CLIENTS: usize = 50;
const PAYLOAD: usize = 256 * 1024;

#[test]
fn echo_traffic_in_flight_at_drain_completes_before_exit() {
    let mut reactor = support::start(
        2,
        Balance::LeastLoaded,
        support::loopback(),
        Arc::new(EchoFactory),
        |_| {},
    );
    let addr = support::tcp_addr(&reactor);
    let (halfway_tx, halfway_rx) = crossbeam_channel::unbounded();
    let (go_tx, go_rx) = crossbeam_channel::unbounded::<()>();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let halfway = halfway_tx.clone();
            let go = go_rx.clone();
            std::thread::spawn(move || {
                let payload = Rng::new(i as u64 + 1).bytes(PAYLOAD);
                let mut stream = support::connect(addr);
                let mut reader = stream.try_clone().unwrap();
                let expected = payload.clone();
                let read = std::thread::spawn(move || {
                    support::read_exact(&mut reader, expected.len()) == expected
                });
                stream.write_all(&payload[..PAYLOAD / 2]).unwrap();
                halfway.send(()).unwrap();
                go.recv_timeout(Duration::from_secs(20))
                    .expect("the drain to start");
                stream.write_all(&payload[PAYLOAD / 2..]).unwrap();
                let intact = read.join().unwrap();
                stream.shutdown(std::net::Shutdown::Write).unwrap();
                let mut rest = Vec::new();
                let end = stream.read_to_end(&mut rest);
                (intact, end.is_ok() && rest.is_empty())
            })
        })
        .collect();
    for _ in 0..CLIENTS {
        halfway_rx
            .recv_timeout(Duration::from_secs(20))
            .expect("every client halfway");
    }

    let started = Instant::now();
    let deadline = started + Duration::from_secs(20);
    reactor.begin_drain(deadline);
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "a draining server must refuse new connections"
    );
    for _ in 0..CLIENTS {
        go_tx.send(()).unwrap();
    }
    let stats = reactor.stats_reader();
    reactor.wait();
    let took = started.elapsed();
    for (i, client) in clients.into_iter().enumerate() {
        let (intact, clean_end) = client.join().unwrap();
        assert!(intact, "client {i} got its echo back damaged or short");
        assert!(clean_end, "client {i} saw a reset instead of a clean end");
    }
    assert!(
        took < Duration::from_secs(15),
        "the drain waited for its deadline: {took:?}"
    );
    let snapshot = stats.snapshot();
    let forced: u64 = snapshot
        .shards
        .iter()
        .map(|s| s.closed_for(CloseReason::Drain))
        .sum();
    assert_eq!(forced, 0, "no connection should have needed force-closing");
}

#[test]
fn the_drain_deadline_force_closes_what_is_left() {
    let mut reactor = support::start(
        1,
        Balance::ReusePort,
        support::loopback(),
        Arc::new(EchoFactory),
        |_| {},
    );
    let addr = support::tcp_addr(&reactor);
    let mut idle = support::connect(addr);
    support::write_all(&mut idle, b"hi");
    assert_eq!(support::read_exact(&mut idle, 2), b"hi");
    let stats = reactor.stats_reader();
    let started = Instant::now();
    reactor.begin_drain(started + Duration::from_millis(300));
    reactor.wait();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(stats.snapshot().shards[0].closed_for(CloseReason::Drain), 1);
}

#[test]
fn frame_connections_close_at_a_frame_boundary_when_draining() {
    let mut reactor = support::start(
        1,
        Balance::LeastLoaded,
        support::loopback(),
        Arc::new(FrameEchoFactory { max: 1024 }),
        |_| {},
    );
    let addr = support::tcp_addr(&reactor);
    let mut client = support::connect(addr);
    // Half a frame is in flight when the drain starts.
    support::write_all(&mut client, &[0, 0, 0, 5, b'h', b'e']);
    support::wait_until(
        Duration::from_secs(5),
        "the server to read the half frame",
        || reactor.snapshot().shards[0].bytes_in == 6,
    );
    reactor.begin_drain(Instant::now() + Duration::from_secs(10));
    support::write_all(&mut client, b"llo");
    let answer = support::read_to_end(&mut client).expect("a clean end after the frame");
    assert_eq!(answer, [0, 0, 0, 5, b'h', b'e', b'l', b'l', b'o']);
    reactor.wait();
}

/// Issue 10, §4: the drain says what it did: connections that closed before the deadline,
/// and those it cut there.
#[test]
fn the_drain_report_counts_clean_closes_and_cuts() {
    let mut reactor = support::start(
        1,
        Balance::LeastLoaded,
        support::loopback(),
        Arc::new(EchoFactory),
        |_| {},
    );
    let addr = support::tcp_addr(&reactor);
    let leaving = support::echoed(addr, "leaving");
    let _stay_one = support::echoed(addr, "staying");
    let _stay_two = support::echoed(addr, "staying");
    // Echo keeps a connection through a drain until its peer closes: two are cut.
    reactor.begin_drain(Instant::now() + Duration::from_secs(3));
    drop(leaving);
    support::wait_until(Duration::from_secs(3), "the leaving client's close", || {
        reactor.snapshot().shards[0].closed_for(CloseReason::Peer) == 1
    });
    let report = reactor.wait();
    assert_eq!(
        report,
        coreloop_reactor::DrainReport {
            closed_cleanly: 1,
            cut: 2
        }
    );
    assert!(report.lost_work());
}
