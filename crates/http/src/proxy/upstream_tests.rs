//! The upstream side's keep-alive rules, sans-IO: which responses park the connection in its
//! pool (unlinked from the client), and what a parked connection does with what it gets.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use coreloop_reactor::testing::Harness;
use coreloop_reactor::token::ConnToken;
use coreloop_reactor::{ConnAddr, Verb};

use super::*;
use crate::proxy::pool::{PoolGauges, ServerPool};

struct Gauge(Rc<Cell<i64>>);

impl PoolGauges for Gauge {
    fn idle(&self, delta: i64) {
        self.0.set(self.0.get() + delta);
    }
}

fn client() -> ConnAddr {
    ConnAddr {
        shard: 0,
        token: ConnToken::new(3, 1),
    }
}

fn pipe(request: &[u8], request_done: bool, head_only: bool) -> SharedPipe {
    Rc::new(RefCell::new(Pipe {
        request: request.to_vec(),
        client: client(),
        http10: false,
        keep_alive: true,
        head_only,
        max_head: 8192,
        state: State::Waiting,
        connected: None,
        response_timeout: Duration::from_secs(30),
        started: false,
        answered: false,
        request_done,
    }))
}

/// A linked upstream side that sent its request, with a pool of `keep`.
fn linked_side(keep: usize, request_done: bool) -> (Harness, UpstreamSide, Rc<ServerPool>) {
    let pool = Rc::new(ServerPool::new(
        keep,
        Duration::from_secs(60),
        Box::new(Gauge(Rc::default())),
    ));
    let mut side = UpstreamSide::new(
        pipe(b"GET / HTTP/1.1\r\n\r\n", request_done, false),
        Some(Rc::downgrade(&pool)),
    );
    let mut harness = Harness::new();
    harness.token = ConnToken::new(9, 1);
    harness.open(&mut side);
    harness.take_output();
    harness.link_to(client());
    (harness, side, pool)
}

#[test]
fn only_a_complete_reusable_response_parks_the_connection() {
    // (response bytes as they arrive, request fully sent, parks)
    let cases: &[(&str, bool, bool)] = &[
        ("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", true, true),
        (
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
            true,
            true,
        ),
        ("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", true, true),
        (
            "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok",
            true,
            false,
        ),
        (
            "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok",
            true,
            false,
        ),
        // Bytes after the framed end: nobody can tell what they are.
        (
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1",
            true,
            false,
        ),
        // Answered before the whole request body went: the upstream is mid-request.
        (
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
            false,
            false,
        ),
    ];
    for (response, request_done, parks) in cases {
        let (mut harness, mut side, pool) = linked_side(4, *request_done);
        let verb = harness.push(&mut side, response.as_bytes());
        assert!(
            harness.take_peer_output().starts_with(b"HTTP/1.1 200 OK"),
            "{response}"
        );
        let expected = if *parks { Verb::Read } else { Verb::CloseNow };
        assert_eq!(verb, expected, "{response}");
        assert_eq!(harness.take_unlinked_by_protocol(), *parks, "{response}");
        assert_eq!(pool.idle_count(), usize::from(*parks), "{response}");
    }
}

#[test]
fn a_close_delimited_body_never_parks() {
    let (mut harness, mut side, pool) = linked_side(4, true);
    assert_eq!(
        harness.push(&mut side, b"HTTP/1.1 200 OK\r\n\r\nuntil close"),
        Verb::Read
    );
    assert_eq!(harness.eof(&mut side), Verb::CloseNow);
    assert_eq!(pool.idle_count(), 0);
}

#[test]
fn a_full_pool_or_a_drain_closes_instead() {
    let (mut harness, mut side, pool) = linked_side(0, true);
    let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
    assert_eq!(harness.push(&mut side, ok), Verb::CloseNow);
    assert_eq!(pool.idle_count(), 0);
    let (mut harness, mut side, pool) = linked_side(4, true);
    harness.draining = true;
    assert_eq!(harness.push(&mut side, ok), Verb::CloseNow);
    assert_eq!(pool.idle_count(), 0);
}

/// Parks a side after one response; the harness is unlinked.
fn parked() -> (Harness, UpstreamSide, Rc<ServerPool>) {
    let (mut harness, mut side, pool) = linked_side(4, true);
    let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
    assert_eq!(harness.push(&mut side, ok), Verb::Read);
    harness.take_peer_output();
    harness.take_sent();
    assert!(harness.take_unlinked_by_protocol() && pool.idle_count() == 1);
    (harness, side, pool)
}

#[test]
fn a_parked_connection_closes_on_any_byte_an_eof_its_idle_timeout_or_a_drain() {
    let (mut harness, mut side, pool) = parked();
    assert_eq!(harness.push(&mut side, b"x"), Verb::CloseNow);
    drop(side);
    assert_eq!(pool.idle_count(), 0, "it left the pool as it closed");

    let (mut harness, mut side, _pool) = parked();
    assert_eq!(harness.eof(&mut side), Verb::CloseNow);

    let (mut harness, mut side, _pool) = parked();
    assert_eq!(harness.drain(&mut side), Verb::CloseNow);

    // The deadline checks every second, and closes at idle_timeout.
    let (mut harness, mut side, pool) = parked();
    harness.advance(CHECK_EVERY);
    assert_eq!(harness.fire_due_deadline(&mut side), Some(Verb::Read));
    harness.advance(Duration::from_secs(60));
    assert_eq!(harness.fire_due_deadline(&mut side), Some(Verb::CloseNow));
    drop(side);
    assert_eq!(pool.idle_count(), 0);

    // A retired pool (its server removed by a reload) closes it at the next check.
    let (mut harness, mut side, pool) = parked();
    pool.retire();
    harness.advance(CHECK_EVERY);
    assert_eq!(harness.fire_due_deadline(&mut side), Some(Verb::CloseNow));
}

/// A parked side taken for a request with a body (`body`) or without, and told.
fn taken(body: bool) -> (Harness, UpstreamSide, Rc<ServerPool>, SharedPipe) {
    let (mut harness, mut side, pool) = parked();
    let taken = pool.take().unwrap();
    let next = pipe(b"GET /next HTTP/1.1\r\n\r\n", !body, false);
    *taken.next.borrow_mut() = Some(next.clone());
    // The link the client asked for is made: the request goes.
    assert_eq!(harness.linked(&mut side, client()), Verb::Read);
    assert_eq!(harness.take_output(), b"GET /next HTTP/1.1\r\n\r\n");
    assert!(next.borrow().started);
    (harness, side, pool, next)
}

#[test]
fn a_taken_connection_writes_the_next_request_when_told() {
    let (mut harness, _side, _pool, _next) = taken(true);
    assert_eq!(
        harness.take_sent().len(),
        1,
        "a client with a body is told the head is out"
    );
    let (mut harness, mut side, pool, next) = taken(false);
    assert!(
        harness.take_sent().is_empty(),
        "a client without a body waits for the response only"
    );
    let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    assert_eq!(harness.push(&mut side, ok), Verb::Read);
    assert_eq!(
        next.borrow().state,
        State::Complete {
            status: 200,
            keep_alive: true
        }
    );
    assert_eq!(pool.idle_count(), 1, "parked again");
    assert!(
        harness.take_sent().is_empty() && harness.take_unlinked_by_protocol(),
        "a parked connection's unlink is the client's word, not a message"
    );
}

/// Its link refused (the taker heard so and redials), a taken connection is never linked:
/// it sends nothing and closes at its next check, and a message changes nothing.
#[test]
fn a_taken_connection_never_linked_sends_nothing_and_closes_at_its_check() {
    let (mut harness, mut side, pool) = parked();
    let taken = pool.take().unwrap();
    let next = pipe(b"GET /next HTTP/1.1\r\n\r\n", true, false);
    *taken.next.borrow_mut() = Some(next.clone());
    assert_eq!(harness.message(&mut side, Box::new(Linked)), Verb::Read);
    assert_eq!(harness.drain(&mut side), Verb::Read, "taken: not idle");
    harness.advance(CHECK_EVERY);
    assert_eq!(harness.fire_due_deadline(&mut side), Some(Verb::CloseNow));
    assert!(harness.take_output().is_empty() && harness.take_sent().is_empty());
    assert!(!next.borrow().started);
}
