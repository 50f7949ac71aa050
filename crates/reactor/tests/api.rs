//! The protocol API over real sockets: `Cx::unseen_from` says where the bytes a protocol has
//! not been handed before start; `on_eof` gets the unconsumed bytes; a closure is a factory.

mod support;

use std::io::Write;
use std::net::Shutdown;
use std::sync::Arc;

use coreloop_reactor::{Balance, ConnInfo, Cx, Protocol, Step, Verb};

/// Reports `unseen_from/len` for every call, consumes only whole lines, and answers a final
/// unterminated line at EOF.
struct Lines;

impl Protocol for Lines {
    fn on_input(&mut self, input: &[u8], cx: &mut Cx<'_>) -> Step {
        let report = format!("{}/{} ", cx.unseen_from(), input.len());
        cx.out().extend_from_slice(report.as_bytes());
        let consumed = input
            .iter()
            .rposition(|b| *b == b'\n')
            .map_or(0, |at| at + 1);
        Step::new(consumed, Verb::Read)
    }

    fn on_eof(&mut self, unconsumed: &[u8], cx: &mut Cx<'_>) -> Verb {
        cx.out().extend_from_slice(b"eof:");
        cx.out().extend_from_slice(unconsumed);
        Verb::CloseAfterFlush
    }
}

#[test]
fn unseen_bytes_and_the_unconsumed_tail_at_eof() {
    let reactor = support::start(
        1,
        Balance::LeastLoaded,
        support::loopback(),
        Arc::new(|_: &ConnInfo| Lines),
        |_| {},
    );
    let mut conn = support::connect(support::tcp_addr(&reactor));
    let mut exchange = |send: &[u8], expect: &str| {
        support::write_all(&mut conn, send);
        let got = support::read_exact(&mut conn, expect.len());
        assert_eq!(String::from_utf8(got).unwrap(), expect, "after {send:?}");
    };
    exchange(b"ab", "0/2 ");
    exchange(b"cd", "2/4 ");
    exchange(b"e\nf", "4/7 ");
    exchange(b"gh", "1/3 ");
    conn.flush().unwrap();
    conn.shutdown(Shutdown::Write).unwrap();
    let rest = support::read_to_end(&mut conn).unwrap();
    assert_eq!(rest, b"eof:fgh");
    reactor.shutdown(std::time::Duration::from_secs(5));
}

#[test]
fn the_harness_reports_unseen_bytes_the_same_way() {
    let mut harness = coreloop_reactor::testing::Harness::new();
    let mut lines = Lines;
    harness.push(&mut lines, b"ab");
    harness.push(&mut lines, b"c\nd");
    harness.feed(&mut lines);
    assert_eq!(harness.take_output(), b"0/2 2/5 1/1 ");
    assert_eq!(harness.eof(&mut lines), Verb::CloseAfterFlush);
    assert_eq!(harness.take_output(), b"eof:d");
}
