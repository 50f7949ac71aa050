//! Issue 10, §3: a listener's own `write` / `linger` / `drain` timeouts, `read_buffer` and
//! `write_high_water` used to be accepted and ignored. Each test runs two listeners on one
//! shard, one with the reactor-wide value and one with its own, and shows the difference.

mod support;

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use coreloop_reactor::echo::EchoFactory;
use coreloop_reactor::{
    Balance, CloseReason, ConnFactory, ConnInfo, Cx, ListenAddr, ListenerIo, ListenerSpec,
    Protocol, ProtocolFactory, ReactorHandle, Step, Verb,
};

/// A reactor with listener 0 on the reactor-wide settings and listener 1 on `own`.
fn two_listeners(
    protocol: Arc<dyn ProtocolFactory>,
    own: ListenerIo,
) -> (ReactorHandle, SocketAddr, SocketAddr) {
    let second = protocol.clone();
    let reactor = support::start(
        1,
        Balance::LeastLoaded,
        support::loopback(),
        protocol,
        |c| {
            c.write_timeout = Duration::from_secs(60);
            c.linger = Duration::from_secs(60);
            c.listeners.push(
                ListenerSpec::new("own", support::loopback(), second)
                    .with_backlog(64)
                    .with_io(own),
            );
        },
    );
    let addr = |i: usize| match &reactor.local_addrs()[i] {
        ListenAddr::Tcp(addr) => *addr,
        other => panic!("not TCP: {other}"),
    };
    let (a, b) = (addr(0), addr(1));
    (reactor, a, b)
}

fn active(reactor: &ReactorHandle, listener: usize) -> u64 {
    reactor.snapshot().shards[0].listeners[listener].active
}

/// Writes without reading until the pipes are full (a write times out).
fn hog(addr: SocketAddr) -> TcpStream {
    let mut stream = support::connect(addr);
    stream
        .set_write_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let chunk = vec![b'h'; 64 * 1024];
    let give_up = Instant::now() + Duration::from_secs(20);
    while Instant::now() < give_up && stream.write(&chunk).is_ok() {}
    stream
}

#[test]
fn a_listeners_own_write_timeout_closes_its_stalled_reader_only() {
    let own = ListenerIo::default().with_write_timeout(Duration::from_millis(300));
    let (reactor, wide, short) = two_listeners(Arc::new(EchoFactory), own);
    let _slow_wide = hog(wide);
    let _slow_short = hog(short);
    support::wait_until(Duration::from_secs(10), "the short write timeout", || {
        reactor.snapshot().shards[0].closed_for(CloseReason::WriteTimeout) == 1
    });
    assert_eq!(active(&reactor, 1), 0);
    assert_eq!(active(&reactor, 0), 1, "the 60 s write timeout fired too");
    reactor.shutdown(Duration::from_secs(1));
}

/// Answers `bye` to anything and closes after the flush (a lingering close).
struct Bye;

impl Protocol for Bye {
    fn on_input(&mut self, input: &[u8], cx: &mut Cx<'_>) -> Step {
        cx.out().extend_from_slice(b"bye");
        Step::new(input.len(), Verb::CloseAfterFlush)
    }
}

/// Tells the largest input it was handed in one call, on EOF.
#[derive(Default)]
struct Biggest(usize);

impl Protocol for Biggest {
    fn on_input(&mut self, input: &[u8], _cx: &mut Cx<'_>) -> Step {
        self.0 = self.0.max(input.len());
        Step::new(input.len(), Verb::Read)
    }

    fn on_eof(&mut self, _unconsumed: &[u8], cx: &mut Cx<'_>) -> Verb {
        cx.out().extend_from_slice(self.0.to_string().as_bytes());
        Verb::CloseAfterFlush
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Bye,
    Biggest,
}

impl ProtocolFactory for Kind {
    fn for_shard(&self, _shard: usize) -> Box<dyn ConnFactory> {
        Box::new(*self)
    }
}

impl ConnFactory for Kind {
    fn open(&mut self, _info: &ConnInfo) -> Box<dyn Protocol> {
        match self {
            Kind::Bye => Box::new(Bye),
            Kind::Biggest => Box::new(Biggest::default()),
        }
    }
}

#[test]
fn a_listeners_own_linger_ends_its_lingering_closes_only() {
    let own = ListenerIo::default().with_linger(Duration::from_millis(200));
    let (reactor, wide, short) = two_listeners(Arc::new(Kind::Bye), own);
    // Each client reads the answer and the server's FIN, and keeps its own side open.
    let clients: Vec<TcpStream> = [wide, short]
        .into_iter()
        .map(|addr| {
            let mut client = support::connect(addr);
            support::write_all(&mut client, b"hi");
            assert_eq!(support::read_to_end(&mut client).unwrap(), b"bye");
            client
        })
        .collect();
    support::wait_until(Duration::from_secs(10), "the short linger to end", || {
        active(&reactor, 1) == 0
    });
    assert_eq!(active(&reactor, 0), 1, "the 60 s linger ended too");
    drop(clients);
    reactor.shutdown(Duration::from_secs(1));
}

#[test]
fn a_listeners_own_drain_time_cuts_its_connections_only() {
    let own = ListenerIo::default().with_drain(Duration::from_millis(200));
    let (mut reactor, wide, short) = two_listeners(Arc::new(EchoFactory), own);
    // Echo keeps a connection open through a drain until its peer closes.
    let wide_client = support::echoed(wide, "wide");
    let _short_client = support::echoed(short, "short");
    reactor.begin_drain(Instant::now() + Duration::from_secs(60));
    support::wait_until(Duration::from_secs(10), "the short drain to cut", || {
        active(&reactor, 1) == 0
    });
    assert_eq!(active(&reactor, 0), 1, "the 60 s drain deadline cut too");
    assert_eq!(
        reactor.snapshot().shards[0].closed_for(CloseReason::Drain),
        1
    );
    drop(wide_client);
    let (done_tx, done_rx) = crossbeam_channel::bounded(1);
    std::thread::spawn(move || {
        reactor.wait();
        let _ = done_tx.send(());
    });
    done_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the drain ends once the last peer closed");
}

#[test]
fn a_listeners_own_read_buffer_bounds_each_read() {
    let own = ListenerIo::default().with_read_buffer(1024);
    let (reactor, wide, small) = two_listeners(Arc::new(Kind::Biggest), own);
    let biggest = |addr| {
        let mut client = support::connect(addr);
        support::write_all(&mut client, &vec![b'r'; 256 * 1024]);
        client.shutdown(std::net::Shutdown::Write).unwrap();
        let text = String::from_utf8(support::read_to_end(&mut client).unwrap()).unwrap();
        text.parse::<usize>().unwrap()
    };
    let small_reads = biggest(small);
    assert!(
        small_reads <= 1024,
        "a 1 KiB buffer read {small_reads} at once"
    );
    let wide_reads = biggest(wide);
    assert!(
        wide_reads > 1024,
        "the 16 KiB buffer read at most {wide_reads}"
    );
    reactor.shutdown(Duration::from_secs(1));
}

#[test]
fn a_listeners_own_high_water_mark_holds_its_output() {
    const LOW: usize = 4 * 1024;
    const READ: usize = 16 * 1024;
    let own = ListenerIo::default().with_write_high_water(LOW);
    let (reactor, wide, low) = two_listeners(Arc::new(EchoFactory), own);
    let peak = || reactor.snapshot().shards[0].peak_output_buffered as usize;
    let low_hog = hog(low);
    assert!(
        peak() <= LOW + READ,
        "{} buffered on a {LOW}-byte mark",
        peak()
    );
    drop(low_hog);
    let _wide_hog = hog(wide);
    assert!(
        peak() > LOW + READ,
        "the 256 KiB mark buffered only {}",
        peak()
    );
    reactor.shutdown(Duration::from_secs(1));
}

/// A reload changes a listener's IO settings live, for connections already open too.
#[test]
fn a_listeners_io_can_change_while_it_runs() {
    let (mut reactor, wide, short) = two_listeners(Arc::new(EchoFactory), ListenerIo::default());
    let _early = support::echoed(short, "open before the change");
    assert!(reactor.set_listener_io(
        1,
        ListenerIo::default().with_write_timeout(Duration::from_millis(300))
    ));
    assert!(!reactor.set_listener_io(7, ListenerIo::default()));
    let _slow_wide = hog(wide);
    let _slow_short = hog(short);
    support::wait_until(Duration::from_secs(10), "the new write timeout", || {
        reactor.snapshot().shards[0].closed_for(CloseReason::WriteTimeout) == 1
    });
    assert_eq!(active(&reactor, 0), 1, "the wide listener changed too");
    reactor.shutdown(Duration::from_secs(1));
}

#[test]
fn a_listeners_own_keepalive_grace_decides_which_idle_connections_may_go() {
    const LIMIT: usize = 16;
    let own = ListenerIo::default().with_keepalive_grace(Duration::from_millis(50));
    let second = Arc::new(support::Ack);
    let reactor = support::start(
        1,
        Balance::LeastLoaded,
        support::loopback(),
        Arc::new(support::Ack),
        |c| {
            c.max_connections = LIMIT;
            c.keepalive_grace = Duration::from_secs(60);
            c.linger = Duration::from_millis(100);
            c.listeners.push(
                ListenerSpec::new("own", support::loopback(), second)
                    .with_backlog(64)
                    .with_io(own),
            );
        },
    );
    let addr = |i: usize| match &reactor.local_addrs()[i] {
        ListenAddr::Tcp(addr) => *addr,
        other => panic!("not TCP: {other}"),
    };
    let acked = |addr| {
        let mut client = support::connect(addr);
        support::write_all(&mut client, b"?");
        assert_eq!(support::read_exact(&mut client, 2), b"ok");
        client
    };
    // The long-grace listener's connections are the oldest: oldest first would pick them.
    let _long: Vec<TcpStream> = (0..LIMIT / 2).map(|_| acked(addr(0))).collect();
    let _short: Vec<TcpStream> = (0..LIMIT / 2).map(|_| acked(addr(1))).collect();
    // The short grace is the subject: let it pass (not a synchronisation).
    std::thread::sleep(Duration::from_millis(100));
    let _newcomer = acked(addr(1));
    assert_eq!(
        active(&reactor, 0),
        (LIMIT / 2) as u64,
        "a connection in its 60 s grace went"
    );
    assert!(reactor.snapshot().shards[0].closed_for(CloseReason::Evicted) >= 1);
    reactor.shutdown(Duration::from_secs(1));
}
