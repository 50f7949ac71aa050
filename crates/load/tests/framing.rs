//! Framing over real sockets: chunked and pipelined answers, servers that
//! close by announcement, by body end, or in the middle of a response.

use std::time::{Duration, Instant};

use crate::support::{config, run, Behaviour, Server};

const CHUNKED: &str = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
    3\r\nHel\r\n4;x=y\r\nlo, \r\n6\r\nWorld!\r\n0\r\n\r\n";

#[test]
fn chunked_pipelined_responses() {
    let server = Server::start(Behaviour::http(CHUNKED, false));
    let mut c = config(&server.http_url());
    c.pipeline = 8;
    c.requests = Some(800);
    let r = run(&c);
    assert_eq!(r.requests.completed, 800);
    assert_eq!(r.requests.ok, 800);
    assert_eq!(r.errors.total(), 0);
    assert_eq!(server.received(), 800);
}

#[test]
fn connection_close_reconnects_and_counts_every_response() {
    let closing = "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok";
    let server = Server::start(Behaviour::http(closing, true));
    let mut c = config(&server.http_url());
    c.connections = 2;
    c.requests = Some(50);
    let r = run(&c);
    assert_eq!(r.requests.completed, 50);
    assert_eq!(r.errors.total(), 0);
    assert_eq!(server.received(), 50);
    assert!(
        r.connections.reconnects >= 48,
        "reconnects {}",
        r.connections.reconnects
    );
}

#[test]
fn connection_close_with_pipelining_retries_unanswered_requests() {
    let closing = "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok";
    let server = Server::start(Behaviour::http(closing, true));
    let mut c = config(&server.http_url());
    c.connections = 2;
    c.pipeline = 4;
    c.requests = Some(40);
    let r = run(&c);
    assert_eq!(r.requests.sent, 40);
    assert_eq!(r.requests.completed, 40);
    assert_eq!(r.errors.total(), 0);
    assert!(r.requests.retried > 0);
}

#[test]
fn body_delimited_by_close() {
    let server = Server::start(Behaviour::http(
        "HTTP/1.1 200 OK\r\n\r\nuntil the end",
        true,
    ));
    let mut c = config(&server.http_url());
    c.connections = 1;
    c.requests = Some(10);
    let r = run(&c);
    assert_eq!(r.requests.completed, 10);
    assert_eq!(r.errors.total(), 0);
}

#[test]
fn close_mid_response_is_a_read_error_not_a_hang() {
    let server = Server::start(Behaviour::CloseMidResponse);
    let mut c = config(&server.http_url());
    c.connections = 2;
    c.requests = Some(10);
    let started = Instant::now();
    let r = run(&c);
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(r.errors.read, 10);
    assert_eq!(r.requests.completed, 0);
    assert_eq!(r.requests.failed, 10);
}
