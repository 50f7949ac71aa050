//! Regression: a connection refused for a protocol timeout or bad input was counted as
//! `reason="done"`, though docs/METRICS.md says `aborted`: the reactor named the reason from
//! the verb alone. The protocol now says so with `Cx::refuse`.

use std::time::Duration;

use super::clients::Swarm;
use crate::support::{config, scrape, Server};

#[test]
fn a_header_timeout_and_a_bad_request_count_as_aborted() {
    let server = Server::start(&config(&[("header = \"10s\"", "header = \"1s\"")]));
    let web = server.addr("web");
    let mut silent = Swarm::connect(web, 5);
    let mut bad = Swarm::connect(web, 5);
    bad.write_each(b"GET\x01 / HTTP/1.1\r\nHost: t\r\n\r\n");
    let closed = |p: &[super::clients::Peer]| p.iter().all(|p| p.closed);
    assert!(bad.pump_until(Duration::from_secs(5), closed));
    assert!(silent.pump_until(Duration::from_secs(5), closed));
    // Our sockets close now; the server counts each close when its lingering read ends.
    drop((silent, bad));
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let aborted = scrape(web).sum(
            "coreloop_connections_closed_total",
            &[("reason", "aborted")],
        );
        if aborted >= 10.0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "closed_total{{reason=aborted}} = {aborted}, want >= 10\n{}",
            server.stderr()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
