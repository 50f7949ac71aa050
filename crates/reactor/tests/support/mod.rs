//! Shared pieces of the reactor's socket tests: starting a reactor, bounded waits, a small
//! deterministic RNG, and a many-connection echo client on mio.

#![allow(dead_code)]

use std::io::{self, Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use coreloop_reactor::{
    Balance, ConnFactory, ConnInfo, Cx, ListenAddr, ListenerSpec, Protocol, ProtocolFactory,
    ReactorConfig, ReactorHandle, Step, Verb,
};
use mio::{Events, Interest, Poll, Token};

pub mod swarm;

/// Starts a reactor with one listener on `addr`.
pub fn start(
    shards: usize,
    balance: Balance,
    addr: ListenAddr,
    protocol: Arc<dyn ProtocolFactory>,
    tune: impl FnOnce(&mut ReactorConfig),
) -> ReactorHandle {
    let mut config = {
        let mut config = ReactorConfig::default();
        config.shards = shards;
        config.balance = balance;
        config.offload_threads = 2;
        config
    };
    config
        .listeners
        .push(ListenerSpec::new("test", addr, protocol).with_backlog(2048));
    tune(&mut config);
    coreloop_reactor::start(config).expect("reactor starts")
}

pub fn loopback() -> ListenAddr {
    ListenAddr::parse("127.0.0.1:0").unwrap()
}

pub fn unix_addr(name: &str) -> ListenAddr {
    let path = std::env::temp_dir().join(format!("coreloop-{}-{name}.sock", std::process::id()));
    ListenAddr::Unix(path)
}

pub fn tcp_addr(handle: &ReactorHandle) -> std::net::SocketAddr {
    match &handle.local_addrs()[0] {
        ListenAddr::Tcp(addr) => *addr,
        other => panic!("not a TCP listener: {other}"),
    }
}

/// Polls `condition` until it holds or `limit` passes; the description says what was awaited.
pub fn wait_until(limit: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !condition() {
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// A blocking TCP client with a read timeout, so no test can hang on a read.
pub fn connect(addr: std::net::SocketAddr) -> std::net::TcpStream {
    let stream = std::net::TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
        .set_write_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
}

/// Connects to an echo server, sends `message` and checks it comes back; the connection stays
/// open for the caller.
pub fn echoed(addr: std::net::SocketAddr, message: &str) -> std::net::TcpStream {
    let mut client = connect(addr);
    write_all(&mut client, message.as_bytes());
    assert_eq!(read_exact(&mut client, message.len()), message.as_bytes());
    client
}

/// Reads exactly `n` bytes or fails with what was read so far.
pub fn read_exact(stream: &mut impl Read, n: usize) -> Vec<u8> {
    let mut buf = vec![0; n];
    stream
        .read_exact(&mut buf)
        .unwrap_or_else(|e| panic!("reading {n} bytes: {e}"));
    buf
}

/// Reads until EOF (bounded by the stream's read timeout).
pub fn read_to_end(stream: &mut impl Read) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    stream.read_to_end(&mut out)?;
    Ok(out)
}

pub fn write_all(stream: &mut impl Write, bytes: &[u8]) {
    stream.write_all(bytes).expect("write");
}

/// xorshift64*: deterministic test data and splits without a dependency.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `low..=high`.
    pub fn range(&mut self, low: usize, high: usize) -> usize {
        low + (self.next() % (high - low + 1) as u64) as usize
    }

    /// Roughly log-uniform in `1..=max`: as many tiny payloads as huge ones.
    pub fn log_size(&mut self, max: usize) -> usize {
        let bits = usize::BITS - max.leading_zeros();
        let top = 1usize << self.range(0, bits as usize - 1);
        self.range(top, (top * 2 - 1).min(max))
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// One poll that returns readiness for a single mio source, for the swarm.
pub fn poll_once(poll: &mut Poll, events: &mut Events, timeout: Duration) {
    poll.poll(events, Some(timeout)).expect("poll");
}

pub fn interest_both() -> Interest {
    Interest::READABLE | Interest::WRITABLE
}

pub fn token(i: usize) -> Token {
    Token(i)
}

/// Answers `ok` to every byte and then marks its connection idle (for eviction tests).
pub struct Ack;

impl Protocol for Ack {
    fn on_input(&mut self, input: &[u8], cx: &mut Cx<'_>) -> Step {
        for _ in input {
            cx.out().extend_from_slice(b"ok");
        }
        cx.mark_idle();
        Step::new(input.len(), Verb::Read)
    }
}

impl ProtocolFactory for Ack {
    fn for_shard(&self, _shard: usize) -> Box<dyn ConnFactory> {
        Box::new(Ack)
    }
}

impl ConnFactory for Ack {
    fn open(&mut self, _info: &ConnInfo) -> Box<dyn Protocol> {
        Box::new(Ack)
    }
}

/// A listener that never accepts, its accept queue filled: the kernel drops further SYNs, so a
/// connect to its address can only time out. Keep the socket and the fillers alive meanwhile.
pub fn full_listener() -> (
    std::net::SocketAddr,
    socket2::Socket,
    Vec<std::net::TcpStream>,
) {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket
        .bind(
            &"127.0.0.1:0"
                .parse::<std::net::SocketAddr>()
                .unwrap()
                .into(),
        )
        .unwrap();
    socket.listen(0).unwrap();
    let full = socket.local_addr().unwrap().as_socket().unwrap();
    let mut fillers = Vec::new();
    for _ in 0..16 {
        match std::net::TcpStream::connect_timeout(&full, Duration::from_millis(200)) {
            Ok(stream) => fillers.push(stream),
            Err(_) => break,
        }
    }
    assert!(fillers.len() < 16, "the accept queue never filled");
    (full, socket, fillers)
}
