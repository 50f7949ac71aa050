//! A protocol that panics closes its own connection only: the shard and every other
//! connection on it carry on, and the close is counted.

mod support;

use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

use coreloop_reactor::{
    Balance, CloseReason, ConnFactory, ConnInfo, Cx, Protocol, ProtocolFactory, Step, Verb,
};

/// Echoes, but panics on `boom` (a stand-in for a bug in a protocol).
struct Fragile;

impl Protocol for Fragile {
    fn on_input(&mut self, input: &[u8], cx: &mut Cx<'_>) -> Step {
        assert!(input != b"boom", "fragile protocol hit its bug");
        cx.out().extend_from_slice(input);
        Step::new(input.len(), Verb::Read)
    }
}

impl ProtocolFactory for Fragile {
    fn for_shard(&self, _shard: usize) -> Box<dyn ConnFactory> {
        Box::new(Fragile)
    }
}

impl ConnFactory for Fragile {
    fn open(&mut self, _info: &ConnInfo) -> Box<dyn Protocol> {
        Box::new(Fragile)
    }
}

#[test]
fn a_panicking_protocol_closes_only_its_connection() {
    let reactor = support::start(
        1,
        Balance::LeastLoaded,
        support::loopback(),
        Arc::new(Fragile),
        |_| {},
    );
    let addr = support::tcp_addr(&reactor);
    let mut bystander = support::connect(addr);
    support::write_all(&mut bystander, b"before");
    assert_eq!(support::read_exact(&mut bystander, 6), b"before");

    let mut victim = support::connect(addr);
    support::write_all(&mut victim, b"boom");
    let mut rest = Vec::new();
    let _ = victim.read_to_end(&mut rest);
    assert!(
        rest.is_empty(),
        "the panicking connection answered: {rest:?}"
    );
    support::wait_until(Duration::from_secs(5), "the panic to be counted", || {
        reactor.snapshot().shards[0].closed_for(CloseReason::Panicked) == 1
    });

    support::write_all(&mut bystander, b"after");
    assert_eq!(
        support::read_exact(&mut bystander, 5),
        b"after",
        "the shard must live on"
    );
    let mut newcomer = support::connect(addr);
    support::write_all(&mut newcomer, b"new");
    assert_eq!(support::read_exact(&mut newcomer, 3), b"new");
    reactor.shutdown(Duration::from_secs(1));
}
