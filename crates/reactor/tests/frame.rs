//! The frame-echo protocol over a real socket: frames come back whole; an oversized one closes.

mod support;

use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

use coreloop_reactor::frame::FrameEchoFactory;
use coreloop_reactor::{Balance, CloseReason};

#[test]
fn frames_echo_and_an_oversized_frame_closes_the_connection() {
    let reactor = support::start(
        1,
        Balance::LeastLoaded,
        support::loopback(),
        Arc::new(FrameEchoFactory { max: 100 }),
        |_| {},
    );
    let addr = support::tcp_addr(&reactor);
    let mut client = support::connect(addr);
    let mut wire = Vec::new();
    for payload in [&b"one"[..], b"", &[7u8; 100]] {
        wire.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        wire.extend_from_slice(payload);
    }
    for byte in &wire {
        support::write_all(&mut client, std::slice::from_ref(byte));
    }
    assert_eq!(support::read_exact(&mut client, wire.len()), wire);

    support::write_all(&mut client, &101u32.to_be_bytes());
    // Closed at once: either a clean end or a reset, but never another byte.
    let mut rest = Vec::new();
    let _ = client.read_to_end(&mut rest);
    assert!(
        rest.is_empty(),
        "no bytes may follow an oversized frame: {rest:?}"
    );
    support::wait_until(Duration::from_secs(5), "the close to be counted", || {
        reactor.snapshot().shards[0].closed_for(CloseReason::Aborted) == 1
    });
    reactor.shutdown(Duration::from_secs(1));
}
