//! Each failure is counted under its own kind.

use std::time::Duration;

use crate::support::{config, run, Behaviour, Server};

#[test]
fn refused_target_is_unreachable_before_the_run() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let c = config(&format!("http://127.0.0.1:{port}/"));
    match coreloop_load::run(&c) {
        Err(coreloop_load::RunError::Unreachable(e)) => assert!(e.contains("refused"), "{e}"),
        other => panic!("expected Unreachable, got {other:?}"),
    }
}

#[test]
fn status_500_is_a_status_error() {
    let server = Server::start(Behaviour::http(
        "HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n",
        false,
    ));
    let mut c = config(&server.http_url());
    c.requests = Some(100);
    let r = run(&c);
    assert_eq!(r.requests.completed, 100);
    assert_eq!(r.requests.ok, 0);
    assert_eq!(r.errors.status, 100);
    assert_eq!(r.errors.total(), 100);
}

#[test]
fn silence_is_a_timeout() {
    let server = Server::start(Behaviour::Blackhole);
    let mut c = config(&server.http_url());
    c.connections = 1;
    c.threads = 1;
    c.timeout = Duration::from_millis(200);
    c.requests = Some(3);
    let r = run(&c);
    assert_eq!(r.errors.timeout, 3);
    assert_eq!(r.requests.completed, 0);
    assert_eq!(server.received(), 3);
}

#[test]
fn garbage_is_malformed() {
    let server = Server::start(Behaviour::http("HTTP/9.9 what\r\n\r\n", false));
    let mut c = config(&server.http_url());
    c.requests = Some(20);
    let r = run(&c);
    assert_eq!(r.errors.malformed, 20);
    assert_eq!(r.requests.completed, 0);
}

#[test]
fn echo_mismatch_is_malformed() {
    let server = Server::start(Behaviour::CorruptEcho);
    let mut c = config(&format!("echo://{}", server.addr));
    c.size = 8;
    c.requests = Some(5);
    c.connections = 1;
    let r = run(&c);
    assert_eq!(r.errors.malformed, 5);
}
