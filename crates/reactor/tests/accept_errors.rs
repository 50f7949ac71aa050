//! Issue 10, §1: an accept error that is about the listening socket itself (here EINVAL: the
//! socket was shut down and no longer listens) used to loop at once without polling, pinning
//! a core, and the drain, which joins the acceptor, never returned. Now that listener backs
//! off on a timer, counted; the other listeners serve on; a drain returns.
//!
//! One test in this binary: it offers a socket through the process-wide activation table, and
//! any other reactor started in the same process meanwhile would find it untaken.

mod support;

use std::sync::Arc;
use std::time::Duration;

use coreloop_reactor::echo::EchoFactory;
use coreloop_reactor::{activation, Balance, ListenAddr, ListenerSpec};
use socket2::{Domain, Socket, Type};

/// User plus system CPU seconds of this process, from /proc/self/stat (fields 14 and 15).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    let after_name = &stat[stat.rfind(')').expect("a stat line") + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    ticks as f64 / 100.0
}

/// A listening socket offered as `name`, and a second handle on it to break it with.
fn offered_listener(name: &str) -> Socket {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    socket
        .bind(
            &"127.0.0.1:0"
                .parse::<std::net::SocketAddr>()
                .unwrap()
                .into(),
        )
        .unwrap();
    socket.listen(16).unwrap();
    let handle = socket.try_clone().unwrap();
    assert!(activation::offer(name, socket.into()).is_ok());
    handle
}

fn check(balance: Balance) {
    let broken = offered_listener("broken");
    let mut reactor = support::start(
        2,
        balance,
        support::loopback(),
        Arc::new(EchoFactory),
        |c| {
            c.accept_backoff = Duration::from_millis(50);
            c.listeners.push(
                ListenerSpec::new(
                    "broken",
                    ListenAddr::Inherited("broken".into()),
                    Arc::new(EchoFactory),
                )
                .with_backlog(16),
            );
        },
    );
    let addr = support::tcp_addr(&reactor);
    // shutdown(SHUT_RD) on a listening TCP socket takes it out of LISTEN: epoll reports it
    // readable once, and every accept on it fails with EINVAL from then on.
    broken.shutdown(std::net::Shutdown::Read).unwrap();
    support::wait_until(
        Duration::from_secs(10),
        "accept errors on the broken listener, retried on a timer",
        || reactor.snapshot().accept.accept_errors >= 3,
    );
    let before = cpu_seconds();
    std::thread::sleep(Duration::from_secs(1));
    let spent = cpu_seconds() - before;
    assert!(
        spent < 0.3,
        "{balance:?}: {spent}s of CPU in 1s with one broken listener: a busy loop"
    );
    let snapshot = reactor.snapshot();
    assert!(
        snapshot.accept.listener_errors >= 3,
        "{:?}",
        snapshot.accept
    );
    drop(support::echoed(addr, "the other listener still serves"));

    let (done_tx, done_rx) = crossbeam_channel::bounded(1);
    std::thread::spawn(move || {
        reactor.begin_drain(std::time::Instant::now() + Duration::from_secs(1));
        reactor.wait();
        let _ = done_tx.send(());
    });
    done_rx
        .recv_timeout(Duration::from_secs(10))
        .unwrap_or_else(|_| panic!("{balance:?}: the drain hangs on the accept loop"));
}

#[test]
fn a_listener_whose_accept_keeps_failing_backs_off_and_never_hangs_a_drain() {
    check(Balance::LeastLoaded);
    check(Balance::ReusePort);
}
