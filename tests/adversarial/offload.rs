//! Stalling handlers: `/delay` beyond `[timeouts] offload` answers 504 and only that request
//! fails; the shard and the pool keep working meanwhile. `/delay` waits on the connection's
//! deadline and holds no pool thread; jobs that really stall a thread (files on a FIFO) are in
//! `tests/files.rs`, which also shows their queue drained of void work.

use std::time::{Duration, Instant};

use super::clients::{percentile, timed_gets};
use crate::support::{config, Conn, Server};

/// Requests that stall.
const STALLED: usize = 2;

#[test]
fn a_stalled_offload_job_fails_alone_with_504() {
    let server = Server::start(&config(&[("offload = \"10s\"", "offload = \"500ms\"")]));
    let web = server.addr("web");
    let began = Instant::now();
    let mut stalled: Vec<Conn> = (0..STALLED).map(|_| Conn::open(web)).collect();
    for conn in &mut stalled {
        conn.send("GET /delay?ms=2500 HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
    }
    // Meanwhile: fast requests on the same shards, and offloaded ones on the free threads.
    let mut normal = Conn::open(web);
    let mut fast = timed_gets(&mut normal, "/plaintext", 300);
    let p99 = percentile(&mut fast, 99.0);
    let mut pooled = Conn::open(web);
    let sent = Instant::now();
    assert_eq!(pooled.get("/delay?ms=10").status, 200);
    let pooled_took = sent.elapsed();
    for conn in &mut stalled {
        let response = conn.read_response().unwrap();
        assert_eq!(response.status, 504);
        assert_eq!(response.header("connection"), Some("close"));
        assert_eq!(conn.read_eof().unwrap(), 0);
    }
    let timed_out = began.elapsed();
    eprintln!(
        "offload: {STALLED} stalled jobs got 504 after {timed_out:?}; plaintext p99 {p99:?}, \
         a pooled job meanwhile {pooled_took:?}"
    );
    assert!(
        timed_out < Duration::from_millis(2000),
        "504 came after {timed_out:?}"
    );
    assert!(
        p99 < Duration::from_millis(200),
        "plaintext p99 {p99:?} beside stalled jobs"
    );
    assert!(
        pooled_took < Duration::from_millis(400),
        "a free pool thread took {pooled_took:?}"
    );
    let mut all: Vec<Conn> = (0..4).map(|_| Conn::open(web)).collect();
    for conn in &mut all {
        conn.send("GET /delay?ms=50 HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
    }
    for conn in &mut all {
        assert_eq!(
            conn.read_response().unwrap().status,
            200,
            "the delays after the 504s are served"
        );
    }
}
