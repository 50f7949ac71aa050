//! NOT in the suite (left out of mod.rs on purpose, reported): SIGTERM while coreloop-load
//! drives 1,000 connections loses requests. Measured: errors.read 847 of 53,931 sent,
//! requests.retried 0. At the drain every connection with no request *in user space* is
//! closed as idle (`HttpConn::on_drain`: Phase::Idle -> CloseAfterFlush), but on a busy
//! shard most of them have a request already in the kernel's receive buffer, written before
//! the signal; the lingering close discards it and the client sees EOF instead of a response.
//! Fix (not done): at the drain, read what is pending first (reactor), or keep idle
//! connections for a short grace and answer what arrives with `Connection: close` (http).

use std::time::Duration;

use super::signals::{assert_nothing_lost, finish, load};
use crate::support::{config, Server};

#[test]
fn sigterm_under_a_thousand_connections_loses_nothing() {
    let mut server = Server::start(&config(&[("drain = \"30s\"", "drain = \"5s\"")]));
    let child = load(server.addr("web"), 3);
    let web = server.addr("web");
    let loaded = super::process::poll_until(Duration::from_secs(5), || {
        crate::support::scrape(web).sum("coreloop_http_requests_total", &[("code", "2xx")]) >= 5000.0
    });
    assert!(loaded);
    server.signal("TERM");
    assert_eq!(server.wait_exit(Duration::from_secs(8)).code(), Some(0));
    let json = finish(child);
    eprintln!("sigterm under load: {json}");
    assert_nothing_lost(&json);
}
