//! SIGHUP: routes change live on open connections; a broken file changes nothing.

use crate::support::{config, scrape, Conn, Server};

#[test]
fn a_route_changes_live_and_a_broken_file_keeps_the_old_config() {
    let server = Server::start(&config(&[]));
    let web = server.addr("web");
    let mut conn = Conn::open(web);
    assert_eq!(conn.get("/plaintext").text(), "Hello, World!");

    let changed = config(&[("body = \"Hello, World!\"", "body = \"Hello, reload!\"")]);
    std::fs::write(&server.config, changed).unwrap();
    server.signal("HUP");
    server.wait_for("configuration reloaded", 1);
    // The same keep-alive connection, opened before the reload, sees the new body.
    let after = conn.get("/plaintext");
    assert_eq!(after.text(), "Hello, reload!");
    assert_eq!(after.header("connection"), None);

    let broken = config(&[("balance = \"least-loaded\"", "balance = \"fastest\"")]);
    std::fs::write(&server.config, broken).unwrap();
    server.signal("HUP");
    server.wait_for("reload refused", 1);
    assert!(server
        .stderr()
        .contains("server.balance: unknown value \"fastest\""));
    assert_eq!(conn.get("/plaintext").text(), "Hello, reload!");

    let metrics = scrape(web);
    let reloads = |result| metrics.sum("coreloop_config_reloads_total", &[("result", result)]);
    assert_eq!((reloads("success"), reloads("failure")), (1.0, 1.0));
}

#[test]
fn a_change_that_needs_a_restart_is_named() {
    let server = Server::start(&config(&[]));
    let more = config(&[("shards = 2", "shards = 3")]);
    std::fs::write(&server.config, more).unwrap();
    server.signal("HUP");
    server.wait_for("configuration reloaded", 1);
    assert!(server
        .stderr()
        .contains("reload: `server.shards` needs a restart; not applied"));
}

#[test]
fn listeners_are_added_and_removed_live() {
    use std::io::{Read, Write};
    let server = Server::start(&config(&[]));
    let old_echo = server.addr("echo");
    let mut kept = std::net::TcpStream::connect(old_echo).unwrap();
    kept.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();

    // The echo listener is renamed: the old one goes, a new one comes on a new port.
    let renamed = config(&[("name = \"echo\"", "name = \"echo2\"")]);
    std::fs::write(&server.config, renamed).unwrap();
    server.signal("HUP");
    server.wait_for("configuration reloaded", 1);
    let addrs = crate::support::parse_listening(&server.stderr());
    let new_echo = addrs["echo2"];
    assert_ne!(new_echo, old_echo);

    let mut fresh = std::net::TcpStream::connect(new_echo).unwrap();
    fresh
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    fresh.write_all(b"new").unwrap();
    let mut buf = [0u8; 3];
    fresh.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"new");
    assert!(
        std::net::TcpStream::connect(old_echo).is_err(),
        "the removed listener still accepts"
    );
    // A connection the removed listener had accepted carries on.
    kept.write_all(b"old").unwrap();
    kept.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"old");

    let metrics = scrape(server.addr("web"));
    assert_eq!(
        metrics.sum(
            "coreloop_connections_accepted_total",
            &[("listener", "echo2")]
        ),
        1.0
    );
}
