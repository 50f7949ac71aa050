//! Slow body (a huge Content-Length sent a byte at a time) and slow readers (pipelined
//! requests for a large response, never read): the body and write timeouts close them, and
//! the server's memory per slow reader stays under a documented bound.

use std::time::{Duration, Instant};

use super::clients::Swarm;
use super::process::{poll_until, rss_bytes};
use crate::support::{config, scrape, Conn, Server};

const SLOW_BODIES: usize = 20;
/// Slow readers: 100 in the suite; `CORELOOP_SLOW_READERS=N` for a larger run
/// (benches/adversaries.sh).
fn slow_readers() -> usize {
    std::env::var("CORELOOP_SLOW_READERS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(100)
}
/// The large static response the readers ask for.
const BIG: usize = 64 * 1024;
/// Resident memory one slow reader may cost the server: `write_high_water` (64 KiB) plus the
/// one response that crosses it (64 KiB), a read buffer (4 KiB) and slack. Measured: see
/// docs/BENCHMARKS.md "Adversaries".
const RSS_PER_READER: u64 = 256 * 1024;

/// The default config with `/big`: a 64 KiB static body.
fn with_big_route(edits: &[(&str, &str)]) -> String {
    let route = format!(
        "[[listener.route]]\npath = \"/big\"\nstatic = {{ body = \"{}\" }}\n\n[[listener.route]]\npath = \"/json\"",
        "x".repeat(BIG)
    );
    let mut all = vec![("[[listener.route]]\npath = \"/json\"", route.as_str())];
    all.extend_from_slice(edits);
    config(&all)
}

fn closed(server: &Server, reason: &str) -> f64 {
    let e = scrape(server.addr("web"));
    e.sum("coreloop_connections_closed_total", &[("reason", reason)])
}

#[test]
fn a_body_sent_a_byte_at_a_time_is_closed_at_the_body_deadline() {
    let server = Server::start(&config(&[("body = \"30s\"", "body = \"1s\"")]));
    let web = server.addr("web");
    let mut slow = Swarm::connect(web, SLOW_BODIES);
    slow.write_each(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1000000\r\n\r\n");
    let began = Instant::now();
    while slow.count(|p| p.closed) < SLOW_BODIES && began.elapsed() < Duration::from_secs(6) {
        slow.write_each(b"x");
        slow.pump_until(Duration::from_millis(100), |_| false);
    }
    let took = began.elapsed();
    eprintln!("slow body x{SLOW_BODIES}: all closed after {took:?}");
    assert_eq!(slow.count(|p| p.closed), SLOW_BODIES, "open after {took:?}");
    assert!(
        took >= Duration::from_millis(900),
        "closed before the deadline: {took:?}"
    );
    for peer in &slow.peers {
        assert_eq!(peer.statuses(), [408], "a slow body's answer");
    }
    // The shard that held them answers at once.
    assert_eq!(Conn::open(web).get("/plaintext").status, 200);
}

#[test]
fn slow_readers_cost_bounded_memory_and_are_closed_at_the_write_deadline() {
    let readers_wanted = slow_readers();
    let limit = format!("max_connections = {}", readers_wanted + 200);
    let server = Server::start(&with_big_route(&[
        ("write = \"30s\"", "write = \"2s\""),
        ("max_connections = 2000", &limit),
    ]));
    let (web, pid) = (server.addr("web"), server.pid());
    // Warm up: pools, the big route's first copy, a scrape.
    let mut warm = Conn::open(web);
    for _ in 0..20 {
        assert_eq!(warm.get("/big").body.len(), BIG);
    }
    drop(warm);
    let timeouts_before = closed(&server, "write_timeout");
    let rss_before = rss_bytes(pid);
    let mut readers = Swarm::connect(web, readers_wanted);
    let requests = "GET /big HTTP/1.1\r\nHost: t\r\n\r\n".repeat(200);
    let began = Instant::now();
    // Write until no reader takes more (their send and the server's receive buffers full,
    // because the server stopped reading above its high-water mark).
    for _ in 0..20 {
        readers.write_each(requests.as_bytes());
    }
    let mut rss_peak = rss_bytes(pid);
    let mut last = -1.0;
    // Stable output counter: the server has written all the kernel will take.
    let settled = poll_until(Duration::from_secs(5), || {
        rss_peak = rss_peak.max(rss_bytes(pid));
        let sent = scrape(web).sum("coreloop_sent_bytes_total", &[]);
        let stable = (sent - last).abs() < 64.0 * 1024.0;
        last = sent;
        stable
    });
    let growth = rss_peak.saturating_sub(rss_before);
    let per_reader = growth / readers_wanted as u64;
    eprintln!(
        "slow readers x{readers_wanted}: RSS {} KiB -> {} KiB, {} KiB per reader (settled {settled} after {:?})",
        rss_before / 1024,
        rss_peak / 1024,
        per_reader / 1024,
        began.elapsed()
    );
    assert!(
        per_reader < RSS_PER_READER,
        "{per_reader} bytes of RSS per slow reader (bound {RSS_PER_READER})"
    );
    // The write deadline closes every one of them; the server keeps serving meanwhile.
    assert_eq!(Conn::open(web).get("/plaintext").status, 200);
    let all_closed = poll_until(Duration::from_secs(8), || {
        closed(&server, "write_timeout") - timeouts_before >= readers_wanted as f64
    });
    let moved = closed(&server, "write_timeout") - timeouts_before;
    eprintln!(
        "slow readers: {moved} write timeouts after {:?}",
        began.elapsed()
    );
    assert!(
        all_closed,
        "only {moved} of {readers_wanted} closed by the write timeout"
    );
    readers.pump();
}
