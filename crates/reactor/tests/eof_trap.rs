//! Issue 10, §5: a protocol that answers `AwaitCompletion` from `on_eof` and `Read` after the
//! completion used to leave its connection open, unread and timer-less until the drain
//! deadline. After the peer's EOF a connection that neither waits nor closes is done, whatever
//! path got it there.

mod support;

use std::sync::Arc;
use std::time::Duration;

use coreloop_reactor::{
    Balance, CloseReason, Completion, ConnFactory, ConnInfo, Cx, Protocol, ProtocolFactory, Step,
    Verb,
};

/// Swallows its input; on EOF offloads a job and waits for it; on completion writes `done`
/// and says `Read`, as if more input could still come.
struct LateAnswer;

impl Protocol for LateAnswer {
    fn on_input(&mut self, input: &[u8], _cx: &mut Cx<'_>) -> Step {
        Step::new(input.len(), Verb::Read)
    }

    fn on_eof(&mut self, _unconsumed: &[u8], cx: &mut Cx<'_>) -> Verb {
        let job = Box::new(|| Box::new(()) as coreloop_reactor::JobOutput);
        cx.offload(job).expect("the queue has room");
        Verb::AwaitCompletion
    }

    fn on_completion(&mut self, _completion: Completion, cx: &mut Cx<'_>) -> Verb {
        cx.out().extend_from_slice(b"done");
        Verb::Read
    }
}

struct LateAnswerFactory;

impl ProtocolFactory for LateAnswerFactory {
    fn for_shard(&self, _shard: usize) -> Box<dyn ConnFactory> {
        Box::new(LateAnswerFactory)
    }
}

impl ConnFactory for LateAnswerFactory {
    fn open(&mut self, _info: &ConnInfo) -> Box<dyn Protocol> {
        Box::new(LateAnswer)
    }
}

#[test]
fn a_protocol_that_reads_after_a_completion_that_followed_eof_is_closed() {
    let reactor = support::start(
        1,
        Balance::LeastLoaded,
        support::loopback(),
        Arc::new(LateAnswerFactory),
        |_| {},
    );
    let addr = support::tcp_addr(&reactor);
    let mut client = support::connect(addr);
    support::write_all(&mut client, b"anything");
    client.shutdown(std::net::Shutdown::Write).unwrap();
    // read_to_end returns at the server's FIN; the stream's read timeout bounds the wait.
    let answer = support::read_to_end(&mut client).expect("the server closes, not a timeout");
    assert_eq!(answer, b"done");
    support::wait_until(Duration::from_secs(10), "the close to be counted", || {
        reactor.snapshot().shards[0].closed_for(CloseReason::Peer) == 1
    });
    assert_eq!(reactor.snapshot().active(), 0);
    reactor.shutdown(Duration::from_secs(1));
}
