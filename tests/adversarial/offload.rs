//! Stalling offload jobs: `/delay` beyond `[timeouts] offload` answers 504 and only that
//! request fails; the shard and the rest of the pool keep working meanwhile, and the pool's
//! threads come back when the stalled jobs end.

use std::time::{Duration, Instant};

use super::clients::{percentile, timed_gets};
use super::process::poll_until;
use crate::support::{config, scrape, Conn, Server};

/// Jobs that stall; the pool has 4 threads, so 2 stay free.
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
    // The stalled jobs end on their own and free their threads; their late completions reach
    // connections the protocol has already answered, and are discarded there.
    let freed = poll_until(Duration::from_secs(6), || {
        let e = scrape(web);
        e.sum("coreloop_offload_jobs_total", &[("outcome", "completed")]) >= (STALLED + 1) as f64
    });
    assert!(freed, "the stalled jobs never completed");
    let mut all: Vec<Conn> = (0..4).map(|_| Conn::open(web)).collect();
    for conn in &mut all {
        conn.send("GET /delay?ms=50 HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
    }
    for conn in &mut all {
        assert_eq!(
            conn.read_response().unwrap().status,
            200,
            "every pool thread is back"
        );
    }
}
