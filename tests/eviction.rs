//! Issue 10, §2: at `max_connections`, idle keep-alive connections used to hold every slot
//! and new clients hung in the backlog. Near the limit a shard now closes its oldest idle
//! keep-alive connections, cleanly, but only those idle at least `keepalive_grace`.

use std::io::{ErrorKind, Read};
use std::time::Duration;

use crate::support::{config, scrape, Conn, Server};

const LIMIT: usize = 200;

fn server(grace: &str) -> Server {
    Server::start(&config(&[
        (
            "max_connections = 2000",
            &format!("max_connections = {LIMIT}"),
        ),
        (
            "keepalive_grace = \"1s\"",
            &format!("keepalive_grace = \"{grace}\""),
        ),
        // Evicted clients here do not close on the FIN; the linger deadline frees the slot.
        ("linger = \"5s\"", "linger = \"100ms\""),
    ]))
}

/// `n` keep-alive clients, each answered once and now idle.
fn idle_clients(server: &Server, n: usize) -> Vec<Conn> {
    (0..n)
        .map(|_| {
            let mut conn = Conn::open(server.addr("web"));
            assert_eq!(conn.get("/plaintext").status, 200);
            conn
        })
        .collect()
}

/// What a client sees without blocking: `Some(true)` a clean end of stream, `Some(false)` a
/// reset, `None` still open.
fn ended(conn: &mut Conn) -> Option<bool> {
    conn.stream.set_nonblocking(true).unwrap();
    let mut byte = [0u8; 1];
    let seen = match conn.stream.read(&mut byte) {
        Ok(0) => Some(true),
        Ok(_) => panic!("an idle connection got unasked-for bytes"),
        Err(e) if e.kind() == ErrorKind::WouldBlock => None,
        Err(_) => Some(false),
    };
    conn.stream.set_nonblocking(false).unwrap();
    seen
}

#[test]
fn idle_keepalive_connections_past_the_grace_make_room_for_a_new_client() {
    let server = server("200ms");
    let mut old = idle_clients(&server, LIMIT - 1);
    // The grace is the subject here: let it pass for the old clients (not a synchronisation).
    std::thread::sleep(Duration::from_millis(300));
    let mut young = idle_clients(&server, 1).pop().unwrap();

    // Every slot is taken; the newcomer is served (the read timeout bounds the wait).
    let mut newcomer = Conn::open(server.addr("web"));
    assert_eq!(newcomer.get("/plaintext").status, 200);

    assert_eq!(
        ended(&mut young),
        None,
        "the young idle connection was closed"
    );
    let (mut clean, mut reset) = (0, 0);
    for conn in &mut old {
        match ended(conn) {
            Some(true) => clean += 1,
            Some(false) => reset += 1,
            None => {}
        }
    }
    assert!(clean >= 1, "no old idle connection was closed");
    assert_eq!(reset, 0, "an eviction reset its client");
    assert!(
        clean <= LIMIT / 8,
        "{clean} evicted: eviction should stop near 1/16 of the limit free"
    );
    assert_eq!(young.get("/plaintext").status, 200);
    drop(old);
    let metrics = scrape(server.addr("web"));
    let evicted = metrics.sum(
        "coreloop_connections_closed_total",
        &[("reason", "evicted")],
    );
    assert!(
        evicted >= clean as f64,
        "evicted={evicted}, clean closes seen {clean}"
    );
    server.wait_for(
        "connection limit reached, closing idle keep-alive connections",
        1,
    );
}

#[test]
fn connections_idle_for_less_than_the_grace_are_never_evicted() {
    let server = server("60s");
    let mut clients = idle_clients(&server, LIMIT);
    let mut newcomer = Conn::open(server.addr("web"));
    newcomer
        .send("GET /plaintext HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    server.wait_for("max_connections reached; accepting paused", 1);
    // Every young idle connection is still served; none was closed to make room.
    for conn in &mut clients {
        assert_eq!(conn.get("/plaintext").status, 200);
    }
    assert!(
        !server
            .stderr()
            .contains("closing idle keep-alive connections"),
        "{}",
        server.stderr()
    );
    // Room made by a client that leaves lets the newcomer in, without sending again.
    drop(clients.pop());
    assert_eq!(newcomer.read_response().unwrap().status, 200);
    drop(clients);
    let metrics = scrape(server.addr("web"));
    let evicted = metrics.sum(
        "coreloop_connections_closed_total",
        &[("reason", "evicted")],
    );
    assert_eq!(evicted, 0.0);
}
