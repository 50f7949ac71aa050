//! NOT in the suite (left out of mod.rs on purpose, see the report to the lead): a connection
//! refused for a protocol timeout or bad input is counted as `reason="done"` in
//! `coreloop_connections_closed_total`, though docs/METRICS.md says `aborted` ("bad input or a
//! protocol timeout"). The reactor names the reason from the verb alone, and an HTTP refusal
//! is `Verb::CloseAfterFlush` (the 408/400 must be flushed), the same verb as an ordinary
//! `Connection: close`. A fix needs the protocol to say why it closes (reactor-owned).

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
    let e = scrape(web);
    let aborted = e.sum("coreloop_connections_closed_total", &[("reason", "aborted")]);
    assert!(aborted >= 10.0, "closed_total{{reason=aborted}} = {aborted}, want >= 10");
}
