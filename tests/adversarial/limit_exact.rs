//! Regression: `max_connections` was exceeded by one connection per shard now and then.
//! `Shard::drain_inbox` bumped `handoffs_taken` before `adopt` published the new `active`, both
//! `Relaxed`, so the acceptor could see a handoff neither in flight nor active and admit one
//! more. Now `active` is published first and `taken` with `Release`, read with `Acquire` first.
//! It failed about one run in three on 2 cores; five rounds made it near-certain.

use std::time::Duration;

use super::clients::{Peer, Swarm};
use crate::support::{config, Conn, Server};

#[test]
fn max_connections_is_never_exceeded() {
    let limit = 100;
    let server = Server::start(&config(&[
        (
            "max_connections = 2000",
            &format!("max_connections = {limit}"),
        ),
        ("keepalive_grace = \"1s\"", "keepalive_grace = \"1m\""),
    ]));
    let web = server.addr("web");
    for round in 0..5 {
        let mut early = Conn::open(web);
        assert_eq!(early.get("/plaintext").status, 200);
        let mut swarm = Swarm::connect(web, limit + 50);
        swarm.write_each(b"GET /plaintext HTTP/1.1\r\nHost: t\r\n\r\n");
        let answered = |p: &[Peer]| p.iter().filter(|p| p.answered()).count();
        swarm.pump_until(Duration::from_secs(5), |p| answered(p) >= limit - 1);
        swarm.pump_until(Duration::from_millis(300), |p| answered(p) > limit - 1);
        let served = answered(&swarm.peers) + 1;
        assert_eq!(
            served, limit,
            "round {round}: {served} open at once, limit {limit}"
        );
        drop((swarm, early));
        let idle = super::process::poll_until(Duration::from_secs(5), || {
            crate::support::scrape(web).sum("coreloop_connections_active", &[]) <= 1.0
        });
        assert!(idle, "round {round}: connections did not close");
    }
}
