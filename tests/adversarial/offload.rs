//! Stalling offload jobs: `/delay` beyond `[timeouts] offload` answers 504 and only that
//! request fails; the shard and the rest of the pool keep working meanwhile, and the pool's
//! threads come back when the stalled jobs end.
//!
//! No wall-clock bound: every claim is an ordering seen in the same run. While the stalled
//! jobs still hold their threads (the pool's `completed` count has not moved for them), the
//! 504s have arrived, a burst of fast requests was answered and a job on a free thread ran.

use std::time::Duration;

use super::clients::timed_gets;
use super::process::poll_until;
use crate::support::{config, scrape, Conn, Server};

/// Jobs that stall; the pool has 4 threads, so 2 stay free.
const STALLED: usize = 2;

/// How long a stalled job runs: far beyond the 500 ms offload deadline, and long enough that
/// everything the test checks meanwhile fits before it on a loaded debug build.
const STALL_MS: u64 = 6000;

fn completed(web: std::net::SocketAddr) -> f64 {
    scrape(web).sum("coreloop_offload_jobs_total", &[("outcome", "completed")])
}

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
    // Meanwhile: fast requests on the same shards, and an offloaded one on a free thread.
    let mut normal = Conn::open(web);
    let fast = timed_gets(&mut normal, "/plaintext", 300);
    let mut pooled = Conn::open(web);
    assert_eq!(pooled.get("/delay?ms=10").status, 200);
    for conn in &mut stalled {
        let response = conn.read_response().unwrap();
        assert_eq!(response.status, 504);
        assert_eq!(response.header("connection"), Some("close"));
        assert_eq!(conn.read_eof().unwrap(), 0);
    }
    // Only the pooled job has completed: the 504s came from the deadline, and the fast
    // requests and the pooled job were served beside the stalled jobs, not after them.
    let slowest = fast.iter().max().copied().unwrap_or_default();
    assert_eq!(
        completed(web),
        1.0,
        "the stalled jobs ended before the 504s and the other work (slowest plaintext \
         {slowest:?}): run on a less loaded machine or raise STALL_MS"
    );
    eprintln!("offload: {STALLED} stalled jobs got 504 first; slowest plaintext {slowest:?}");
    // The stalled jobs end on their own and free their threads; their late completions reach
    // connections the protocol has already answered, and are discarded there.
    let within = Duration::from_millis(STALL_MS) + Duration::from_secs(5);
    let freed = poll_until(within, || completed(web) >= (STALLED + 1) as f64);
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
