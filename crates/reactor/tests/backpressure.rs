//! A client that sends but never reads cannot make the server buffer without bound, and does
//! not slow anyone else down.

mod support;

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use coreloop_reactor::echo::EchoFactory;
use coreloop_reactor::Balance;

const HIGH_WATER: usize = 64 * 1024;
const READ_BUFFER: usize = 16 * 1024;

#[test]
fn a_client_that_never_reads_is_held_at_the_high_water_mark_while_others_are_served() {
    let reactor = support::start(
        1,
        Balance::LeastLoaded,
        support::loopback(),
        Arc::new(EchoFactory),
        |c| {
            c.write_high_water = HIGH_WATER;
            c.read_buffer = READ_BUFFER;
            c.write_timeout = Duration::from_secs(60);
        },
    );
    let addr = support::tcp_addr(&reactor);

    // The hog writes until the kernel buffers on both sides and our output buffer are full.
    let mut hog = support::connect(addr);
    hog.set_write_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let chunk = vec![b'x'; 64 * 1024];
    let mut sent = 0usize;
    let give_up = Instant::now() + Duration::from_secs(20);
    while Instant::now() < give_up {
        match hog.write(&chunk) {
            Ok(n) => sent += n,
            Err(_) => break, // the write timed out: everything is full
        }
    }
    assert!(
        sent > HIGH_WATER,
        "the hog should have filled the pipes; sent {sent}"
    );
    support::wait_until(Duration::from_secs(10), "reading to pause", || {
        reactor.snapshot().shards[0].read_paused >= 1
    });

    // Meanwhile on the same shard, other clients get their echo promptly.
    for i in 0..20 {
        support::echoed(addr, &format!("client {i} says hello"));
    }

    let peak = reactor.snapshot().shards[0].peak_output_buffered as usize;
    assert!(
        peak <= HIGH_WATER + READ_BUFFER,
        "buffered output {peak} went past the high-water mark {HIGH_WATER} plus one read"
    );
    assert!(
        peak > 0,
        "the hog's output should have been buffered at some point"
    );
    drop(hog);
    reactor.shutdown(Duration::from_secs(2));
}

#[test]
fn a_reader_that_stalls_past_the_write_timeout_is_closed() {
    let reactor = support::start(
        1,
        Balance::LeastLoaded,
        support::loopback(),
        Arc::new(EchoFactory),
        |c| {
            c.write_high_water = HIGH_WATER;
            c.write_timeout = Duration::from_millis(300);
        },
    );
    let addr = support::tcp_addr(&reactor);
    let mut hog = support::connect(addr);
    hog.set_write_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let chunk = vec![b'y'; 64 * 1024];
    while hog.write(&chunk).is_ok() {}
    support::wait_until(
        Duration::from_secs(10),
        "the write timeout to close the hog",
        || {
            reactor.snapshot().shards[0].closed_for(coreloop_reactor::CloseReason::WriteTimeout)
                == 1
        },
    );
    reactor.shutdown(Duration::from_secs(2));
}
