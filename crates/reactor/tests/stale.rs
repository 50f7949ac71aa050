//! Generations at work: a job's completion for a connection that closed arrives after its slab
//! slot was reused, and never reaches the new connection.

mod support;

use std::io::Read;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use coreloop_reactor::{
    Balance, Completion, ConnFactory, ConnInfo, Cx, Protocol, ProtocolFactory, Step, Verb,
};

/// On open writes `slot=I gen=G\n`. On `job` offloads a job that blocks until released and
/// writes `queued\n`; a completion writes `late\n`. Anything else is echoed as `b:<line>`.
struct Worker {
    release: crossbeam_channel::Receiver<()>,
}

impl Protocol for Worker {
    fn on_open(&mut self, cx: &mut Cx<'_>) -> Verb {
        let token = cx.token();
        let line = format!("slot={} gen={}\n", token.index(), token.generation());
        cx.out().extend_from_slice(line.as_bytes());
        Verb::Read
    }

    fn on_input(&mut self, input: &[u8], cx: &mut Cx<'_>) -> Step {
        if input == b"job" {
            let release = self.release.clone();
            let job = Box::new(move || {
                let _ = release.recv_timeout(Duration::from_secs(20));
                Box::new(()) as coreloop_reactor::JobOutput
            });
            cx.offload(job).expect("the queue has room");
            cx.out().extend_from_slice(b"queued\n");
            return Step::new(input.len(), Verb::AwaitCompletion);
        }
        cx.out().extend_from_slice(b"b:");
        cx.out().extend_from_slice(input);
        cx.out().push(b'\n');
        Step::new(input.len(), Verb::Read)
    }

    fn on_completion(&mut self, _completion: Completion, cx: &mut Cx<'_>) -> Verb {
        cx.out().extend_from_slice(b"late\n");
        Verb::Read
    }
}

struct WorkerFactory {
    release: Mutex<crossbeam_channel::Receiver<()>>,
}

impl ProtocolFactory for WorkerFactory {
    fn for_shard(&self, _shard: usize) -> Box<dyn ConnFactory> {
        Box::new(WorkerConns(self.release.lock().unwrap().clone()))
    }
}

struct WorkerConns(crossbeam_channel::Receiver<()>);

impl ConnFactory for WorkerConns {
    fn open(&mut self, _info: &ConnInfo) -> Box<dyn Protocol> {
        Box::new(Worker {
            release: self.0.clone(),
        })
    }
}

fn read_line(stream: &mut impl Read) -> String {
    let mut line = Vec::new();
    let mut byte = [0u8];
    while byte[0] != b'\n' {
        stream.read_exact(&mut byte).expect("a line");
        line.push(byte[0]);
    }
    String::from_utf8(line).unwrap()
}

#[test]
fn a_late_completion_for_a_closed_connection_does_not_reach_the_slots_new_owner() {
    let (release, released) = crossbeam_channel::unbounded();
    let factory = Arc::new(WorkerFactory {
        release: Mutex::new(released),
    });
    let reactor = support::start(
        1,
        Balance::LeastLoaded,
        support::loopback(),
        factory,
        |_| {},
    );
    let addr = support::tcp_addr(&reactor);

    let mut first = support::connect(addr);
    let first_slot = read_line(&mut first);
    support::write_all(&mut first, b"job");
    assert_eq!(read_line(&mut first), "queued\n");
    // A reset, not a FIN: the server closes at once instead of waiting to answer.
    socket2::SockRef::from(&first)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(first);
    support::wait_until(
        Duration::from_secs(10),
        "the first connection to close",
        || reactor.snapshot().shards[0].active == 0,
    );

    let mut second = support::connect(addr);
    let second_slot = read_line(&mut second);
    let slot_of = |line: &str| line.split_whitespace().next().unwrap().to_owned();
    assert_eq!(
        slot_of(&first_slot),
        slot_of(&second_slot),
        "the slot should be reused"
    );
    assert_ne!(first_slot, second_slot, "with a new generation");

    release.send(()).unwrap();
    support::wait_until(
        Duration::from_secs(10),
        "the stale completion to be dropped",
        || reactor.snapshot().shards[0].stale_completions == 1,
    );
    support::write_all(&mut second, b"ping");
    assert_eq!(
        read_line(&mut second),
        "b:ping\n",
        "nothing may arrive before our own answer"
    );
    assert_eq!(reactor.snapshot().shards[0].completions, 0);
    reactor.shutdown(Duration::from_secs(2));
}

/// Issue 10, §7: `stale_events` proves the generation check at work, so it must count only
/// events for a connection that is gone, not the shard's own bookkeeping: a ready-list turn for
/// a connection closed meanwhile, or the readable half of an event whose writable half closed
/// it. Clients here flood a small read budget and vanish with a reset, again and again.
#[test]
fn normal_closes_count_no_stale_events() {
    use coreloop_reactor::echo::EchoFactory;
    use std::io::Write;
    let reactor = support::start(
        1,
        coreloop_reactor::Balance::LeastLoaded,
        support::loopback(),
        Arc::new(EchoFactory),
        |c| c.read_budget = 2048,
    );
    let addr = support::tcp_addr(&reactor);
    let payload = vec![b'z'; 256 * 1024];
    for _ in 0..40 {
        let mut client = support::connect(addr);
        client
            .set_write_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let _ = client.write_all(&payload);
        // Unread echo in our receive queue: dropping the socket resets the connection.
        drop(client);
    }
    for i in 0..20 {
        drop(support::echoed(addr, &format!("polite {i}")));
    }
    support::wait_until(Duration::from_secs(10), "every connection to close", || {
        reactor.snapshot().active() == 0
    });
    let snapshot = reactor.snapshot();
    assert!(
        snapshot.shards[0].budget_yields > 0,
        "the floods should have spent the read budget"
    );
    assert_eq!(
        snapshot.shards[0].stale_events, 0,
        "{:?}",
        snapshot.shards[0]
    );
    reactor.shutdown(Duration::from_secs(1));
}

/// `events` counts every readiness event the loop handled (the `coreloop_events` metric; the
/// loop counts them while dispatching): each echo round trip on one connection waits for its
/// answer, so each is at least one readable event of its own.
#[test]
fn every_readiness_event_is_counted() {
    use coreloop_reactor::echo::EchoFactory;
    let reactor = support::start(
        1,
        coreloop_reactor::Balance::LeastLoaded,
        support::loopback(),
        Arc::new(EchoFactory),
        |_| {},
    );
    let addr = support::tcp_addr(&reactor);
    let before = reactor.snapshot().shards[0].events;
    let mut client = support::echoed(addr, "first\n");
    for i in 0..30 {
        let line = format!("round {i}\n");
        support::write_all(&mut client, line.as_bytes());
        assert_eq!(
            support::read_exact(&mut client, line.len()),
            line.as_bytes()
        );
    }
    let shard = &reactor.snapshot().shards[0];
    assert!(shard.events - before >= 31, "{shard:?}");
    assert!(shard.loop_iterations > 0 && shard.events <= 2 * shard.loop_iterations * 1024);
    drop(client);
    reactor.shutdown(Duration::from_secs(1));
}
