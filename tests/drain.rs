//! SIGTERM drains: requests sent before it are answered whole, nothing is reset, exit 0; a
//! second signal exits at once.

use std::io::ErrorKind;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use crate::support::{config, eventually, scrape, Conn, Server};

const CLIENTS: usize = 200;

/// One client: requests in a loop until told the signal is coming, then waits for the server
/// to close. Returns the failures it saw.
fn client(conn: &mut Conn, signalled: &AtomicBool, started: &Barrier) -> Vec<String> {
    let mut failures = Vec::new();
    let mut first = true;
    loop {
        if signalled.load(Ordering::SeqCst) {
            break;
        }
        if conn
            .send("GET /plaintext HTTP/1.1\r\nHost: t\r\n\r\n")
            .is_err()
        {
            break; // Written after the drain closed us: not a request sent before the signal.
        }
        // Written in full before the signal was sent, so it must be answered.
        let before = !signalled.load(Ordering::SeqCst);
        let response = conn.read_response();
        if first {
            first = false;
            started.wait();
        }
        match response {
            Ok(r) if r.status == 200 && r.body == b"Hello, World!" => {
                if r.header("connection") == Some("close") {
                    break;
                }
            }
            Ok(r) => failures.push(format!("bad response {} {:?}", r.status, r.text())),
            Err(e) if before => failures.push(format!("request sent before the signal: {e}")),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => {
                failures.push(format!("reset: {e}"))
            }
            Err(_) => return failures, // EOF after the signal: the drain closed us.
        }
    }
    match conn.read_eof() {
        Ok(0) => {}
        Ok(n) => failures.push(format!("{n} unexpected bytes before close")),
        Err(e) => failures.push(format!("closing: {e}")),
    }
    failures
}

#[test]
fn sigterm_finishes_in_flight_requests_and_exits_0() {
    let mut server = Server::start(&config(&[("drain = \"30s\"", "drain = \"5s\"")]));
    let web = server.addr("web");
    let signalled = Arc::new(AtomicBool::new(false));
    let started = Arc::new(Barrier::new(CLIENTS + 1));
    let failures = Arc::new(Mutex::new(Vec::new()));
    let done = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (signalled, started) = (signalled.clone(), started.clone());
            let (failures, done) = (failures.clone(), done.clone());
            std::thread::Builder::new()
                .stack_size(128 * 1024)
                .spawn(move || {
                    let mut conn = Conn::open(web);
                    let seen = client(&mut conn, &signalled, &started);
                    failures.lock().unwrap().extend(seen);
                    done.fetch_add(1, Ordering::SeqCst);
                })
                .unwrap()
        })
        .collect();
    started.wait();
    signalled.store(true, Ordering::SeqCst);
    let signalled_at = Instant::now();
    server.signal("TERM");
    let status = server.wait_exit(Duration::from_secs(8));
    assert_eq!(status.code(), Some(0));
    assert!(
        signalled_at.elapsed() < Duration::from_secs(6),
        "exit past the drain deadline"
    );
    for thread in threads {
        thread.join().unwrap();
    }
    assert_eq!(done.load(Ordering::SeqCst), CLIENTS);
    let failures = failures.lock().unwrap();
    assert!(
        failures.is_empty(),
        "{} failures: {:?}",
        failures.len(),
        &failures[..failures.len().min(10)]
    );
    server.wait_for("drained; exiting", 1);
}

#[test]
fn readyz_is_503_on_a_connection_open_during_the_drain() {
    let mut server = Server::start(&config(&[("shards = 2", "shards = 1")]));
    let web = server.addr("web");
    let mut idle = Conn::open(web);
    assert_eq!(idle.get("/plaintext").status, 200);
    let mut probe = Conn::open(web);
    assert_eq!(probe.get("/readyz").status, 200);
    // Half a request: the connection is mid-request, so the drain lets it finish.
    probe.send("GET /readyz HTTP/1.1\r\nHost: t\r\n").unwrap();
    server.signal("TERM");
    // The idle connection's close proves the drain has reached the (only) shard.
    assert_eq!(idle.read_eof().unwrap(), 0);
    probe.send("\r\n").unwrap();
    let response = probe.read_response().unwrap();
    assert_eq!(response.status, 503);
    assert_eq!(response.header("connection"), Some("close"));
    // Close our side too, or the server's lingering close waits out its linger time.
    assert_eq!(probe.read_eof().unwrap(), 0);
    drop((probe, idle));
    assert_eq!(server.wait_exit(Duration::from_secs(8)).code(), Some(0));
}

#[test]
fn a_second_signal_exits_at_once() {
    let mut server = Server::start(&config(&[]));
    let mut slow = Conn::open(server.addr("web"));
    slow.send("GET /delay?ms=8000 HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    // The drain must find the delay's connection accepted (its pending request is then read
    // and held): a connection still in the backlog when the drain stops accepting is just
    // closed, and the drain, with nothing to wait for, ends before the second signal (exit 0,
    // seen under load). Accepts are in backlog order, so once the n-th scrape's connection
    // is counted, so is the delay's, which connected first.
    let web = server.addr("web");
    let mut scrapes = 0.0;
    assert!(eventually(|| {
        scrapes += 1.0;
        let accepted = scrape(web).sum(
            "coreloop_connections_accepted_total",
            &[("listener", "web")],
        );
        accepted > scrapes
    }));
    server.signal("INT");
    server.wait_for("draining", 1);
    let at = Instant::now();
    server.signal("INT");
    let status = server.wait_exit(Duration::from_secs(3));
    assert_eq!(status.code(), Some(1));
    assert!(at.elapsed() < Duration::from_secs(3));
    server.wait_for("exiting without finishing the drain", 1);
}
