//! fd exhaustion: the server runs under `prlimit --nofile=256:256` and is offered far more
//! connections than it has fds. Accepting pauses (no busy loop: the process uses almost no
//! CPU while saturated), and it recovers as soon as connections close.
//!
//! With 256 fds, the config check and the reactor reserve 76 fds for 2 shards and 2
//! listeners (`64 + 3 * shards + listeners * (shards + 1)`), so `max_connections` may be at
//! most 180; at 170 the connection limit is what stops accepting, a few fds before EMFILE
//! would (the reserve is larger than what the process really holds, about 20 fds).

use std::time::Duration;

use super::floods::{held_past_the_limit, release_and_serve_the_rest, scrape_on};
use super::process::{cpu_ticks, open_fds};
use crate::support::{config, Server};

const FDS: usize = 256;
const LIMIT: usize = 170;
/// Offered beyond the limit: together more than the process has fds.
const EXTRA: usize = 230;
/// CPU ticks (1/100 s) the saturated server may use in one second: near idle.
const IDLE_TICKS: u64 = 10;
const _: () = assert!(LIMIT + EXTRA > FDS, "offer more connections than fds");

#[test]
fn saturated_past_its_fd_limit_the_server_idles_and_recovers() {
    let nofile = format!("--nofile={FDS}:{FDS}");
    let server = Server::start_under(
        &["prlimit", &nofile],
        &config(&[
            (
                "max_connections = 2000",
                &format!("max_connections = {LIMIT}"),
            ),
            ("keepalive_grace = \"1s\"", "keepalive_grace = \"1m\""),
        ]),
    );
    let (web, pid) = (server.addr("web"), server.pid());
    let (mut swarm, mut early) = held_past_the_limit(web, LIMIT, EXTRA);
    let before = cpu_ticks(pid);
    let window = std::time::Instant::now();
    // A bounded observation window: the server must not spin while the backlog waits.
    swarm.pump_until(Duration::from_secs(1), |_| false);
    let used = cpu_ticks(pid) - before;
    let fds = open_fds(pid);
    eprintln!(
        "fd limit {FDS}: {} fds open, {used} CPU ticks in {:?} while {EXTRA} wait",
        fds,
        window.elapsed()
    );
    assert!(
        used <= IDLE_TICKS,
        "{used} ticks of CPU in 1 s while saturated: a busy loop?"
    );
    let e = scrape_on(&mut early);
    let paused = e.sum("coreloop_accept_paused_total", &[]);
    assert!(paused >= 1.0, "accepting never paused");
    eprintln!(
        "fd limit: paused by connection_limit {}, fd_limit {}; accept errors fd_limit {}",
        e.sum(
            "coreloop_accept_paused_total",
            &[("cause", "connection_limit")]
        ),
        e.sum("coreloop_accept_paused_total", &[("cause", "fd_limit")]),
        e.sum("coreloop_accept_errors_total", &[("kind", "fd_limit")]),
    );
    let served_in = release_and_serve_the_rest(&mut swarm);
    eprintln!("fd limit: the {EXTRA} waiting served {served_in:?} after release");
}
