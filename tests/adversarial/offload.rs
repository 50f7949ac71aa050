//! Stalling handlers: `/delay` beyond `[timeouts] offload` answers 504 and only that request
//! fails; the shard keeps serving meanwhile. `/delay` waits on the connection's deadline and
//! holds no pool thread; jobs that really stall a thread (files on a FIFO) are in
//! `tests/files.rs`, which also shows their queue drained of void work.
//!
//! No wall-clock bound: the stalled delays ask for a minute, far beyond the connection's read
//! timeout, so a 504 that arrives at all came from the 500 ms offload deadline; everything else
//! is an ordering seen in the same run.

use super::clients::timed_gets;
use crate::support::{config, Conn, Server};

/// Requests that stall.
const STALLED: usize = 2;

/// Far beyond both the offload deadline and the test client's read timeout.
const STALL_MS: u64 = 60_000;

#[test]
fn a_stalled_offload_job_fails_alone_with_504() {
    let server = Server::start(&config(&[("offload = \"10s\"", "offload = \"500ms\"")]));
    let web = server.addr("web");
    let mut stalled: Vec<Conn> = (0..STALLED).map(|_| Conn::open(web)).collect();
    for conn in &mut stalled {
        conn.send(&format!(
            "GET /delay?ms={STALL_MS} HTTP/1.1\r\nHost: t\r\n\r\n"
        ))
        .unwrap();
    }
    // Meanwhile: fast requests on the same shards and a short delay, all answered while the
    // stalled requests are still outstanding.
    let mut normal = Conn::open(web);
    let fast = timed_gets(&mut normal, "/plaintext", 300);
    let mut short = Conn::open(web);
    assert_eq!(short.get("/delay?ms=10").status, 200);
    for conn in &mut stalled {
        let response = conn.read_response().unwrap();
        assert_eq!(response.status, 504);
        assert_eq!(response.header("connection"), Some("close"));
        assert_eq!(conn.read_eof().unwrap(), 0);
    }
    let slowest = fast.iter().max().copied().unwrap_or_default();
    eprintln!("offload: {STALLED} stalled delays got 504; slowest plaintext {slowest:?}");
    let mut after: Vec<Conn> = (0..4).map(|_| Conn::open(web)).collect();
    for conn in &mut after {
        conn.send("GET /delay?ms=50 HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
    }
    for conn in &mut after {
        assert_eq!(
            conn.read_response().unwrap().status,
            200,
            "the delays after the 504s are served"
        );
    }
}
