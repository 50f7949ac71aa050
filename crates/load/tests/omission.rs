//! Coordinated omission: a server that stalls for 1 s once. Closed loop
//! stops sending while it waits, so the stall is a handful of samples and
//! p99 hides it; open loop keeps its schedule and measures from the intended
//! send time, so every request due during the stall is late and p99 shows it.

use std::time::Duration;

use crate::support::{config, run, Behaviour, Server};

const STALL: Duration = Duration::from_secs(1);

fn stalling() -> Server {
    Server::start(Behaviour::StallOnce {
        after: 200,
        stall: STALL,
    })
}

#[test]
fn open_loop_shows_the_stall_closed_loop_hides_it() {
    let server = stalling();
    let mut open = config(&server.http_url());
    open.rate = Some(1000.0);
    open.duration = Duration::from_secs(2);
    let r = run(&open);
    // About half the requests were due during the stall.
    assert!(
        r.latency.p99_us > 500_000,
        "open-loop p99 {} us",
        r.latency.p99_us
    );
    assert!(
        r.latency.p90_us > 500_000,
        "open-loop p90 {} us",
        r.latency.p90_us
    );
    drop(server);

    let server = stalling();
    let mut closed = config(&server.http_url());
    closed.duration = Duration::from_secs(2);
    let r = run(&closed);
    // Only the 4 requests in flight during the stall saw it.
    assert!(
        r.latency.max_us > 900_000,
        "closed-loop max {} us",
        r.latency.max_us
    );
    assert!(
        r.latency.p99_us < 100_000,
        "closed-loop p99 {} us",
        r.latency.p99_us
    );
}
