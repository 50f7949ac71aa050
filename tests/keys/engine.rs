//! Effect tests of the keys the engine applies: per-listener `[listener.timeouts] write /
//! linger / drain` and `[listener.limits] read_buffer / write_high_water`,
//! `timeouts.keepalive_grace` (idle keep-alive eviction near `max_connections`), and
//! `header_count` up to the 1024 the config accepts.
//!
//! Each sets the key on one listener only, with a global value that would make the test fail,
//! so it proves the per-listener value is the one in force.

use std::net::TcpStream;

use super::io::{largest_read, linger_ends_before_idle, taken_of_64_mib, write_without_reading};
use super::protocol::with_fields;
use super::{closed_now, connect, echoed, eventually, metric};
use crate::support::{config, Conn, Server, WAIT};

const ECHO_LIMITS: &str = "protocol = \"echo\"\nbacklog = 1024\n";

/// The default config with `[listener.TABLE]` lines written for the echo listener.
fn echo_with(edits: &[(&str, &str)], table: &str, lines: &str) -> String {
    let text = config(edits);
    let at = text.rfind(ECHO_LIMITS).unwrap() + ECHO_LIMITS.len();
    format!(
        "{}\n[listener.{table}]\n{lines}\n{}",
        &text[..at],
        &text[at..]
    )
}

#[test]
pub fn write_timeout_per_listener() {
    let text = echo_with(&[], "timeouts", "write = \"300ms\"");
    let server = Server::start(&text.replace("write = \"30s\"", "write = \"1h\""));
    let (web, echo) = (server.addr("web"), server.addr("echo"));
    let writer = std::thread::spawn(move || write_without_reading(echo, 256 << 20, WAIT));
    let closed = || {
        metric(
            web,
            "coreloop_connections_closed_total",
            &[("reason", "write_timeout")],
        )
    };
    assert!(
        eventually(|| closed() >= 1.0),
        "the echo listener's write timeout never fired"
    );
    writer.join().unwrap();
}

#[test]
pub fn drain_deadline_per_listener() {
    let text = echo_with(
        &[("drain = \"30s\"", "drain = \"1h\"")],
        "timeouts",
        "drain = \"300ms\"",
    );
    let mut server = Server::start(&text);
    let mut held = connect(server.addr("echo"));
    echoed(&mut held, b"held");
    server.signal("TERM");
    server.wait_exit(WAIT);
    assert!(closed_now(&held));
}

#[test]
pub fn linger_per_listener() {
    let header = "[listener.timeouts]\n";
    let server = Server::start(&config(&[
        ("linger = \"5s\"", "linger = \"1h\""),
        ("idle = \"60s\"", "idle = \"5s\""),
        (header, "[listener.timeouts]\nlinger = \"300ms\"\n"),
    ]));
    linger_ends_before_idle(&server);
}

#[test]
pub fn read_buffer_per_listener() {
    let text = echo_with(&[], "limits", "read_buffer = 512");
    let server = Server::start(&text);
    assert_eq!(largest_read(&server, "echo"), 512);
}

#[test]
pub fn write_high_water_per_listener() {
    let global = (
        "write_high_water = \"64KiB\"",
        "write_high_water = \"1GiB\"",
    );
    let text = echo_with(&[global], "limits", "write_high_water = \"64KiB\"");
    let server = Server::start(&text);
    assert!(taken_of_64_mib(&server) < 48 << 20);
}

#[test]
pub fn header_count_holds_up_to_the_configured_maximum() {
    let header = "[listener.limits]\n";
    let server = Server::start(&config(&[(
        header,
        "[listener.limits]\nheader_count = 1024\nheader_bytes = \"64KiB\"\n",
    )]));
    for n in [200, 1024] {
        let mut conn = Conn::open(server.addr("web"));
        conn.send(&with_fields(n)).unwrap();
        assert_eq!(conn.read_response().unwrap().status, 200, "{n} fields");
    }
}

/// Fills `max_connections` with idle keep-alive connections and asks for one more.
fn one_more_at_the_limit(grace: &str) -> (Server, Vec<Conn>, TcpStream) {
    let server = Server::start(&config(&[
        ("max_connections = 2000", "max_connections = 20"),
        ("keepalive_grace = \"1s\"", grace),
    ]));
    let web = server.addr("web");
    let idle: Vec<Conn> = (0..20)
        .map(|_| {
            let mut c = Conn::open(web);
            assert_eq!(c.get("/plaintext").status, 200);
            c
        })
        .collect();
    let newcomer = connect(server.addr("echo"));
    (server, idle, newcomer)
}

/// Issue 10 section 2: at the limit, idle keep-alive connections past the grace make room;
/// with a grace longer than any idleness here, none is closed and the newcomer waits.
#[test]
pub fn keepalive_grace_decides_who_is_evicted() {
    let (_server, idle, mut newcomer) = one_more_at_the_limit("keepalive_grace = \"0s\"");
    echoed(&mut newcomer, b"served after an eviction");
    assert!(idle.iter().any(|c| closed_now(&c.stream)));

    let (server, mut idle, mut newcomer) = one_more_at_the_limit("keepalive_grace = \"1h\"");
    let mut kept = idle.pop().unwrap();
    // Every idle connection is still served: none was evicted within its grace.
    assert_eq!(kept.get("/plaintext").status, 200);
    assert!(idle.iter().all(|c| !closed_now(&c.stream)));
    drop(kept);
    echoed(&mut newcomer, b"served once a client left");
    drop(idle); // room for the scrape
    drop(newcomer);
    let evicted = metric(
        server.addr("web"),
        "coreloop_connections_closed_total",
        &[("reason", "evicted")],
    );
    assert_eq!(evicted, 0.0);
}
