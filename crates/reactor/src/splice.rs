//! A TCP splice on linked connections (`crate::link`): each accepted connection dials an
//! upstream and, once linked, every byte read on one side goes once into the other side's
//! output; a half-close passes through; either side closing closes the other. The proxy of
//! `examples/tcp_proxy.rs`, and the pattern an HTTP reverse proxy builds on.

use std::time::Duration;

use crate::outbound::ConnectOutcome;
use crate::protocol::{ConnFactory, ConnInfo, Cx, Protocol, ProtocolFactory, Step, Verb};
use crate::socket::ListenAddr;

/// One side of a splice: hands its input to the linked peer's output.
#[derive(Debug, Default)]
pub struct Splice;

impl Protocol for Splice {
    fn on_input(&mut self, input: &[u8], cx: &mut Cx<'_>) -> Step {
        forward(input, cx)
    }

    fn on_eof(&mut self, unconsumed: &[u8], cx: &mut Cx<'_>) -> Verb {
        half_close(unconsumed, cx)
    }

    // A byte stream has no boundary at which a drain could close without loss.
    fn on_drain(&mut self, _cx: &mut Cx<'_>) -> Verb {
        Verb::Read
    }
}

/// The accepted side: dials the upstream on open, reads nothing until the outcome, then
/// links to it and splices; an upstream that does not come up closes it (the cause is
/// counted in the shard's outbound figures).
#[derive(Debug)]
pub struct SpliceClient {
    upstream: ListenAddr,
    connect_timeout: Duration,
}

impl SpliceClient {
    /// A client side that will dial `upstream`, giving up after `connect_timeout`.
    pub fn new(upstream: ListenAddr, connect_timeout: Duration) -> Self {
        Self {
            upstream,
            connect_timeout,
        }
    }
}

impl Protocol for SpliceClient {
    fn on_open(&mut self, cx: &mut Cx<'_>) -> Verb {
        cx.connect(
            self.upstream.clone(),
            self.connect_timeout,
            Box::new(Splice),
        );
        Verb::AwaitCompletion
    }

    fn on_connect(&mut self, outcome: ConnectOutcome, cx: &mut Cx<'_>) -> Verb {
        match outcome.result {
            Ok(upstream) => {
                cx.link(upstream);
                Verb::Read
            }
            Err(_) => {
                cx.refuse();
                Verb::CloseAfterFlush
            }
        }
    }

    fn on_input(&mut self, input: &[u8], cx: &mut Cx<'_>) -> Step {
        forward(input, cx)
    }

    fn on_eof(&mut self, unconsumed: &[u8], cx: &mut Cx<'_>) -> Verb {
        half_close(unconsumed, cx)
    }

    fn on_drain(&mut self, _cx: &mut Cx<'_>) -> Verb {
        Verb::Read
    }
}

/// Until the link is made the input stays buffered; it is handed over again then.
fn forward(input: &[u8], cx: &mut Cx<'_>) -> Step {
    match cx.peer_out() {
        Some(out) => {
            out.extend_from_slice(input);
            Step::new(input.len(), Verb::Read)
        }
        None => Step::new(0, Verb::Read),
    }
}

fn half_close(unconsumed: &[u8], cx: &mut Cx<'_>) -> Verb {
    match cx.peer_out() {
        Some(out) => out.extend_from_slice(unconsumed),
        None => return Verb::CloseAfterFlush,
    }
    cx.shutdown_peer_write();
    Verb::Read
}

/// Makes [`SpliceClient`] connections to one upstream.
#[derive(Clone, Debug)]
pub struct SpliceFactory {
    /// Where every accepted connection is spliced to.
    pub upstream: ListenAddr,
    /// How long a connect to it may take.
    pub connect_timeout: Duration,
}

impl ProtocolFactory for SpliceFactory {
    fn for_shard(&self, _shard: usize) -> Box<dyn ConnFactory> {
        Box::new(self.clone())
    }
}

impl ConnFactory for SpliceFactory {
    fn open(&mut self, _info: &ConnInfo) -> Box<dyn Protocol> {
        Box::new(SpliceClient::new(
            self.upstream.clone(),
            self.connect_timeout,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::ConnAddr;
    use crate::outbound::ConnectError;
    use crate::testing::Harness;
    use crate::token::ConnToken;

    fn client() -> SpliceClient {
        let upstream = ListenAddr::parse("127.0.0.1:1").unwrap();
        SpliceClient::new(upstream, Duration::from_secs(1))
    }

    #[test]
    fn the_client_waits_for_the_upstream_then_links_and_forwards() {
        let mut harness = Harness::new();
        let mut client = client();
        assert_eq!(harness.open(&mut client), Verb::AwaitCompletion);
        let (id, _, _) = harness.take_connects().remove(0);
        let upstream = ConnAddr {
            shard: 0,
            token: ConnToken::new(3, 1),
        };
        assert_eq!(harness.connected(&mut client, id, upstream), Verb::Read);
        assert_eq!(harness.take_links(), vec![upstream]);
        harness.link_to(upstream);
        harness.push(&mut client, b"abc");
        assert_eq!(harness.take_peer_output(), b"abc");
        assert_eq!(harness.buffered(), 0);
        assert_eq!(harness.eof(&mut client), Verb::Read);
        assert!(harness.peer_write_shut());
        assert_eq!(harness.unlinked(&mut client), Verb::CloseAfterFlush);
    }

    #[test]
    fn an_upstream_that_does_not_come_up_closes_the_client_as_refused() {
        for error in [ConnectError::Refused, ConnectError::TimedOut] {
            let mut harness = Harness::new();
            let mut client = client();
            harness.open(&mut client);
            let (id, _, _) = harness.take_connects().remove(0);
            let verb = harness.connect_failed(&mut client, id, error);
            assert_eq!(verb, Verb::CloseAfterFlush);
            assert!(harness.refused());
        }
    }

    #[test]
    fn input_before_the_link_stays_buffered() {
        let mut harness = Harness::new();
        let mut side = Splice;
        harness.push(&mut side, b"early");
        assert_eq!(harness.buffered(), 5);
        assert_eq!(harness.eof(&mut side), Verb::CloseAfterFlush);
    }
}
