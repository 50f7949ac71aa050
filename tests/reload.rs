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
    // The acceptor closes the removed socket after the reload is logged: wait for it
    // (bounded), rather than race it.
    let closed = crate::support::eventually(|| std::net::TcpStream::connect(old_echo).is_err());
    assert!(closed, "the removed listener still accepts");
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

/// Issue 10: a reload that changed `frame_max` on a frame listener logged "configuration
/// reloaded" and silently kept the old limit. Now the warning names the key and the listener,
/// and the old limit is what still holds.
#[test]
fn a_frame_max_change_is_named_not_silently_skipped() {
    use std::io::{Read, Write};
    let frames = [
        ("protocol = \"echo\"", "protocol = \"frame\""),
        ("frame_max = \"1MiB\"", "frame_max = \"64\""),
    ];
    let server = Server::start(&config(&frames));
    let bigger = config(&[frames[0], ("frame_max = \"1MiB\"", "frame_max = \"1KiB\"")]);
    std::fs::write(&server.config, bigger).unwrap();
    server.signal("HUP");
    server.wait_for("configuration reloaded", 1);
    assert!(
        server
            .stderr()
            .contains("reload: `limits.frame_max` of listener `echo` needs a restart; not applied"),
        "{}",
        server.stderr()
    );
    // A 100-byte frame is over the limit still in force: the connection is closed.
    let mut conn = std::net::TcpStream::connect(server.addr("echo")).unwrap();
    conn.set_read_timeout(Some(crate::support::WAIT)).unwrap();
    let mut frame = 100u32.to_be_bytes().to_vec();
    frame.extend([b'x'; 100]);
    conn.write_all(&frame).unwrap();
    let mut rest = Vec::new();
    let _ = conn.read_to_end(&mut rest);
    assert!(rest.is_empty(), "a frame over the old limit was echoed");
}

/// A live key (by the key table) takes effect at the reload, with no restart: here the
/// header field limit of a listener, on a connection opened before the reload.
#[test]
fn an_http_limit_changes_live() {
    let fields = |n: usize| {
        let extra: String = (1..n).map(|i| format!("X-F{i}: v\r\n")).collect();
        format!("GET /plaintext HTTP/1.1\r\nHost: t\r\n{extra}\r\n")
    };
    let limit = |n: u32| {
        config(&[(
            "[listener.limits]\n",
            &format!("[listener.limits]\nheader_count = {n}\n"),
        )])
    };
    let server = Server::start(&limit(4));
    let mut conn = Conn::open(server.addr("web"));
    assert_eq!(conn.get("/plaintext").status, 200);
    std::fs::write(&server.config, limit(8)).unwrap();
    server.signal("HUP");
    server.wait_for("configuration reloaded", 1);
    assert!(
        !server.stderr().contains("needs a restart"),
        "{}",
        server.stderr()
    );
    conn.send(&fields(8)).unwrap();
    assert_eq!(conn.read_response().unwrap().status, 200);
    let mut fresh = Conn::open(server.addr("web"));
    fresh.send(&fields(9)).unwrap();
    assert_eq!(fresh.read_response().unwrap().status, 431);
}

/// A changed backlog is a remove plus an add on the same address; the add raced the
/// acceptor's close of the old socket and lost the listener 4 times in 20 ("address in
/// use"). Ten changes in a row must each leave the listener serving on its address.
#[test]
fn a_backlog_change_rebinds_the_same_address_every_time() {
    use std::io::{Read, Write};
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let with_backlog = |n: u32| {
        let text = config(&[]);
        let at = text.rfind("address = \"127.0.0.1:0\"").unwrap();
        let text = format!(
            "{}address = \"127.0.0.1:{port}\"{}",
            &text[..at],
            &text[at + 23..]
        );
        let at = text.rfind("backlog = 1024").unwrap();
        format!("{}backlog = {n}{}", &text[..at], &text[at + 14..])
    };
    let server = Server::start(&with_backlog(1024));
    for round in 1..=10 {
        std::fs::write(&server.config, with_backlog(100 + round)).unwrap();
        server.signal("HUP");
        server.wait_for("configuration reloaded", round as usize);
        assert!(
            !server.stderr().contains("did not start"),
            "{}",
            server.stderr()
        );
        let mut conn = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        conn.set_read_timeout(Some(crate::support::WAIT)).unwrap();
        conn.write_all(b"still here").unwrap();
        let mut back = [0u8; 10];
        conn.read_exact(&mut back).unwrap();
        assert_eq!(&back, b"still here");
    }
}

/// `log.level` is live: a reload to `warn` silences its own info line at once.
#[test]
fn the_log_level_changes_live() {
    let server = Server::start(&config(&[]));
    let quiet = config(&[("level = \"info\"", "level = \"warn\"")]);
    std::fs::write(&server.config, &quiet).unwrap();
    server.signal("HUP");
    let applied = || {
        let metrics = scrape(server.addr("web"));
        metrics.sum("coreloop_config_reloads_total", &[("result", "success")])
    };
    assert!(crate::support::eventually(|| applied() == 1.0));
    // A refused reload logs at error level, after the first reload was done.
    let broken = quiet.replace("balance = \"least-loaded\"", "balance = \"x\"");
    std::fs::write(&server.config, broken).unwrap();
    server.signal("HUP");
    server.wait_for("reload refused", 1);
    assert!(
        !server.stderr().contains("configuration reloaded"),
        "{}",
        server.stderr()
    );
    let metrics = scrape(server.addr("web"));
    let applied = metrics.sum("coreloop_config_reloads_total", &[("result", "success")]);
    assert_eq!(applied, 1.0);
}
