//! Slowloris: hundreds of connections that trickle a head one byte at a time, or send
//! nothing, are closed at the header deadline while a normal client keeps normal latency,
//! and the server's fd count returns to its baseline.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::clients::{percentile, timed_gets, Swarm};
use super::process::{open_fds, wait_fds_back};
use crate::support::{config, scrape, Conn, Server};

/// Slow connections, half trickling and half silent. The CI machine has 2 cores and a 20,000
/// fd limit; `benches/adversaries.sh` runs more.
/// Slowloris connections: 600 in the suite; `CORELOOP_SLOWLORIS=N` for a larger run
/// (benches/adversaries.sh).
fn slow_count() -> usize {
    std::env::var("CORELOOP_SLOWLORIS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(600)
}
/// A generous bound for a normal client's p99 on a shared 2-core machine.
const P99_BOUND: Duration = Duration::from_millis(200);
/// The header timeout of this test's config.
const HEADER: Duration = Duration::from_secs(1);
const TRICKLE: &[u8] = b"GET /plaintext HTTP/1.1\r\nHost: t\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaa";

/// (4xx responses, connections closed after their last response). A 408 close is counted as
/// `aborted`: HTTP marks its refusals with `Cx::refuse` (see close_reason.rs).
fn refusals(server: &Server) -> (f64, f64) {
    let e = scrape(server.addr("web"));
    (
        e.sum("coreloop_http_requests_total", &[("code", "408")]),
        e.sum(
            "coreloop_connections_closed_total",
            &[("reason", "aborted")],
        ),
    )
}

/// A normal keep-alive client in its own thread, timing requests until `stop`.
fn normal_client(mut conn: Conn, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<Vec<Duration>> {
    std::thread::spawn(move || {
        let mut samples = Vec::new();
        while !stop.load(Ordering::Relaxed) && samples.len() < 50_000 {
            samples.extend(timed_gets(&mut conn, "/plaintext", 10));
        }
        samples
    })
}

#[test]
fn slowloris_is_closed_at_the_header_deadline_and_others_keep_their_latency() {
    let slow = slow_count();
    let limit = format!("max_connections = {}", slow + 200);
    let server = Server::start(&config(&[
        ("header = \"10s\"", "header = \"1s\""),
        ("linger = \"5s\"", "linger = \"1s\""),
        ("max_connections = 2000", &limit),
    ]));
    let (web, pid) = (server.addr("web"), server.pid());
    let baseline = open_fds(pid);
    let mut normal = Conn::open(web);
    let mut quiet = timed_gets(&mut normal, "/plaintext", 1000);
    let quiet_p99 = percentile(&mut quiet, 99.0);
    let before = refusals(&server);

    // The header clock of each connection starts at its accept; at a large scale connecting
    // them all takes a while, so the early-close check counts from before the first connect.
    let connecting = Instant::now();
    let mut tricklers = Swarm::connect(web, slow / 2);
    let mut silent = Swarm::connect(web, slow - slow / 2);
    let began = Instant::now();
    let connect_time = began - connecting;
    let stop = Arc::new(AtomicBool::new(false));
    let client = normal_client(normal, stop.clone());
    let (mut sent, mut next) = (0, began);
    let mut first_close = None;
    while began.elapsed() < HEADER * 8 {
        if Instant::now() >= next && sent < TRICKLE.len() {
            tricklers.write_each(&TRICKLE[sent..sent + 1]);
            (sent, next) = (sent + 1, next + Duration::from_millis(100));
        }
        tricklers.pump();
        silent.pump();
        let closed = tricklers.count(|p| p.closed) + silent.count(|p| p.closed);
        if closed > 0 && first_close.is_none() {
            first_close = Some(connecting.elapsed());
        }
        if closed == slow {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let all_closed = began.elapsed();
    stop.store(true, Ordering::Relaxed);
    let mut loaded = client.join().unwrap();
    let loaded_p99 = percentile(&mut loaded, 99.0);
    eprintln!(
        "slowloris x{slow}: normal p99 {quiet_p99:?} alone, {loaded_p99:?} during ({} requests); \
         connecting took {connect_time:?}; first close {first_close:?} after the first connect, \
         all closed {all_closed:?} after the last",
        loaded.len()
    );
    let open = slow - tricklers.count(|p| p.closed) - silent.count(|p| p.closed);
    assert_eq!(open, 0, "slow connections still open after {all_closed:?}");
    let first_close = first_close.unwrap();
    assert!(
        first_close >= HEADER - Duration::from_millis(100),
        "closed early: {first_close:?}"
    );
    for peer in tricklers.peers.iter().chain(&silent.peers) {
        let statuses = peer.statuses();
        assert_eq!(statuses, [408], "a slow connection's answer");
    }
    assert!(
        loaded_p99 < P99_BOUND,
        "normal p99 {loaded_p99:?} under slowloris"
    );
    drop((tricklers, silent));
    let fds = wait_fds_back(pid, baseline, Duration::from_secs(5));
    assert!(
        fds <= baseline,
        "{fds} fds open, {baseline} before the slow connections"
    );
    let after = refusals(&server);
    let (answered, closed) = (after.0 - before.0, after.1 - before.1);
    assert!(
        answered >= slow as f64,
        "{answered} 4xx counted, not {slow} (408)"
    );
    assert!(
        closed >= slow as f64,
        "closed_total{{reason=aborted}} moved by {closed}, not {slow}"
    );
}
