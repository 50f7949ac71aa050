//! One client connection slot: its socket (replaced on reconnect), its
//! requests in flight and its open-loop schedule.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mio::net::{TcpStream, UnixStream};
use mio::{Interest, Registry, Token};
use socket2::{Domain, Socket, Type};

use crate::framer::Framer;
use crate::lowat::LowWater;
use crate::target::Endpoint;
use crate::tls::{self, TlsStream};

/// Longest wait between attempts after connect failures (doubling from 10 ms).
const MAX_BACKOFF: Duration = Duration::from_secs(1);
const FIRST_BACKOFF: Duration = Duration::from_millis(10);
const EINPROGRESS: i32 = 115;
const EADDRINUSE: i32 = 98;
const EADDRNOTAVAIL: i32 = 99;

/// A connected or connecting socket of either family, or TLS over TCP.
#[derive(Debug)]
pub enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
    Tls(Box<TlsStream>),
}

/// What a worker needs to open TLS sessions: its own configuration (and
/// session cache) and the server's name.
#[derive(Debug, Clone)]
pub struct TlsClient {
    pub config: std::sync::Arc<rustls::ClientConfig>,
    pub name: rustls::pki_types::ServerName<'static>,
}

impl Stream {
    /// Starts a non-blocking connect, bound to `source` first if given; with
    /// `tls`, the session starts once the connect is done (`handshake`).
    pub fn connect(
        endpoint: &Endpoint,
        source: Option<SocketAddr>,
        tls: Option<&TlsClient>,
    ) -> io::Result<Self> {
        match (endpoint, tls) {
            (Endpoint::Tcp(dest), None) => connect_tcp(*dest, source).map(Self::Tcp),
            (Endpoint::Tcp(dest), Some(t)) => {
                let tcp = connect_tcp(*dest, source)?;
                let session = TlsStream::new(tcp, t.config.clone(), t.name.clone())?;
                Ok(Self::Tls(Box::new(session)))
            }
            (Endpoint::Unix(path), _) => UnixStream::connect(path).map(Self::Unix),
        }
    }

    pub fn is_tls(&self) -> bool {
        matches!(self, Self::Tls(_))
    }

    /// Drives the TLS handshake; `Ok(true)` at once for a plain socket.
    pub fn handshake(&mut self) -> Result<bool, tls::Failure> {
        match self {
            Self::Tls(s) => s.handshake(),
            _ => Ok(true),
        }
    }

    /// What the finished handshake agreed on (`None` for a plain socket).
    pub fn agreed(&self) -> Option<tls::Agreed> {
        match self {
            Self::Tls(s) => Some(s.agreed()),
            _ => None,
        }
    }

    /// Bytes accepted by `write` that the socket has not taken yet (TLS records).
    pub fn pending_output(&self) -> bool {
        match self {
            Self::Tls(s) => s.pending_output(),
            _ => false,
        }
    }

    /// Writes what `pending_output` holds, as far as the socket takes.
    pub fn flush_pending(&mut self) -> io::Result<()> {
        match self {
            Self::Tls(s) => s.flush_tls(),
            _ => Ok(()),
        }
    }

    /// Whether a read that returned `n` of `len` bytes left nothing behind:
    /// the receive queue was empty, so new bytes will raise a new edge.
    pub fn drained(&self, n: usize, len: usize) -> bool {
        match self {
            Self::Tls(s) => s.drained(n, len),
            _ => n < len,
        }
    }

    /// Registers for both directions: writability reports the connect's end.
    pub fn register(&mut self, registry: &Registry, token: Token) -> io::Result<()> {
        let interest = Interest::READABLE | Interest::WRITABLE;
        match self {
            Self::Tcp(s) => registry.register(s, token, interest),
            Self::Unix(s) => registry.register(s, token, interest),
            Self::Tls(s) => registry.register(s.tcp_mut(), token, interest),
        }
    }

    /// Asks for writability only while output is stuck: on loopback every
    /// byte the peer consumes raises a fresh EPOLLOUT edge, and waking for
    /// those would cost a `poll` per response.
    pub fn want_write(&mut self, registry: &Registry, token: Token, on: bool) -> io::Result<()> {
        let interest = if on {
            Interest::READABLE | Interest::WRITABLE
        } else {
            Interest::READABLE
        };
        match self {
            Self::Tcp(s) => registry.reregister(s, token, interest),
            Self::Unix(s) => registry.reregister(s, token, interest),
            Self::Tls(s) => registry.reregister(s.tcp_mut(), token, interest),
        }
    }

    pub fn deregister(&mut self, registry: &Registry) {
        // The socket is dropped right after; a failure here changes nothing.
        let _ = match self {
            Self::Tcp(s) => registry.deregister(s),
            Self::Unix(s) => registry.deregister(s),
            Self::Tls(s) => {
                s.close();
                registry.deregister(s.tcp_mut())
            }
        };
    }

    /// `Ok(true)` once a non-blocking connect has completed, `Ok(false)`
    /// while it is still under way, the connect's error otherwise.
    pub fn connect_done(&self) -> io::Result<bool> {
        let (err, peer) = match self {
            Self::Tcp(s) => (s.take_error(), s.peer_addr().map(|_| ())),
            Self::Unix(s) => (s.take_error(), s.peer_addr().map(|_| ())),
            Self::Tls(s) => (s.tcp().take_error(), s.tcp().peer_addr().map(|_| ())),
        };
        if let Some(e) = err? {
            return Err(e);
        }
        match peer {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Sets the receive low-water mark (lowat.rs); TCP only: a Unix socket's
    /// readiness ignores the mark, and over TLS the bytes queued are records,
    /// not the responses' bytes.
    pub fn set_recv_low_water(&self, bytes: u32) -> io::Result<()> {
        use std::os::fd::AsFd;
        match self {
            Self::Tcp(s) => coreloop_reactor::sockopt::set_recv_low_water(s.as_fd(), bytes),
            _ => Err(io::ErrorKind::Unsupported.into()),
        }
    }

    pub fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Self::Tcp(s) => s.read(buf),
            Self::Unix(s) => s.read(buf),
            Self::Tls(s) => s.read(buf),
        }
    }

    pub fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Self::Tcp(s) => s.write(buf),
            Self::Unix(s) => s.write(buf),
            Self::Tls(s) => s.write(buf),
        }
    }
}

fn connect_tcp(dest: SocketAddr, source: Option<SocketAddr>) -> io::Result<TcpStream> {
    match connect_from(dest, source) {
        // The chosen port was taken (see `connect_from`): let the kernel pick.
        Err(e) if source.is_some_and(|s| s.port() != 0) && port_taken(&e) => {
            connect_from(dest, source.map(|s| SocketAddr::new(s.ip(), 0)))
        }
        other => other,
    }
}

/// Binds before connect so each source address brings its own ports. The
/// port is chosen by the caller (one per connection slot): with port 0 the
/// kernel searches the range for a free port on every bind, which at 15,000
/// sockets per address cost 11 s of system time and stalled the connects
/// for 25 s (docs/BENCHMARKS.md, 30,000 connections). SO_REUSEADDR lets the
/// chosen port be bound while an earlier run's socket on it sits in
/// TIME_WAIT; if the kernel then finds the four-tuple still in use, connect
/// fails with EADDRNOTAVAIL and `connect_tcp` falls back to port 0.
fn connect_from(dest: SocketAddr, source: Option<SocketAddr>) -> io::Result<TcpStream> {
    let socket = Socket::new(Domain::for_address(dest), Type::STREAM.nonblocking(), None)?;
    socket.set_tcp_nodelay(true)?;
    if let Some(src) = source {
        if src.port() != 0 {
            socket.set_reuse_address(true)?;
        }
        socket.bind(&src.into())?;
    }
    match socket.connect(&dest.into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(EINPROGRESS) => {}
        Err(e) => return Err(e),
    }
    Ok(TcpStream::from_std(socket.into()))
}

fn port_taken(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(EADDRINUSE) | Some(EADDRNOTAVAIL))
}

/// One request on the wire, or queued to be written.
#[derive(Debug, Clone, Copy)]
pub struct InFlight {
    /// Latency is measured from here: the intended send time in open loop,
    /// the moment it was queued in closed loop.
    pub start: Instant,
    /// When it was queued on this socket; the timeout counts from here.
    pub queued: Instant,
    /// Intended during the measured phase (not warm-up).
    pub measured: bool,
}

/// Where a slot is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// A connect timer is pending (first connect or back-off).
    Waiting,
    Connecting(Instant),
    /// TCP is up; the TLS handshake began at this instant.
    Handshaking(Instant),
    Open,
    /// The run is over for this slot.
    Done,
}

/// A connection slot. The slot outlives its sockets: the open-loop schedule
/// and requests to retry carry over a reconnect.
#[derive(Debug)]
pub struct Conn {
    /// Index over all threads; picks the source address and schedule phase.
    pub global: usize,
    /// Bumped on every new socket so stale events are dropped.
    pub generation: u32,
    pub stream: Option<Stream>,
    pub phase: Phase,
    pub ever_connected: bool,
    pub framer: Framer,
    /// Bytes of the current echo reply already checked.
    pub echo_pos: usize,
    /// Bytes of the response being framed so far, credited to its request.
    pub response_bytes: u64,
    pub in_flight: VecDeque<InFlight>,
    /// Bytes of queued requests not yet written.
    pub unwritten: usize,
    /// Offset inside the current request of the next byte to write.
    pub write_pos: usize,
    /// Open loop: intended time of the next new request.
    pub next_due: Option<Instant>,
    /// Open loop: a send timer is in the heap for this slot.
    pub send_timer: bool,
    /// WRITABLE is in the socket's registered interest.
    pub write_interest: bool,
    /// On the worker's list of connections to write after this poll batch.
    pub write_queued: bool,
    pub backoff: Duration,
    /// Batch mode: the socket's receive low-water mark.
    pub low_water: LowWater,
}

impl Conn {
    pub fn new(global: usize, pipeline: usize, expect_body: bool) -> Self {
        Self {
            global,
            generation: 0,
            stream: None,
            phase: Phase::Waiting,
            ever_connected: false,
            framer: Framer::new(expect_body),
            echo_pos: 0,
            response_bytes: 0,
            in_flight: VecDeque::with_capacity(pipeline),
            unwritten: 0,
            write_pos: 0,
            next_due: None,
            send_timer: false,
            write_interest: false,
            write_queued: false,
            backoff: FIRST_BACKOFF,
            low_water: LowWater::default(),
        }
    }

    /// The token for this slot's current socket: low 32 bits index, high 32 generation.
    pub fn token(&self, local: usize) -> Token {
        Token((self.generation as usize) << 32 | local)
    }

    /// Drops the socket and any partial response; requests in flight stay.
    pub fn close(&mut self, registry: &Registry) {
        if let Some(mut s) = self.stream.take() {
            s.deregister(registry);
        }
        self.framer = Framer::new(self.expect_body());
        self.echo_pos = 0;
        self.response_bytes = 0;
        self.unwritten = 0;
        self.write_pos = 0;
        self.write_interest = false;
        self.low_water.new_socket();
    }

    fn expect_body(&self) -> bool {
        // The framer was built with the run's setting; a fresh one keeps it.
        self.framer.expects_body()
    }

    /// The back-off before the next attempt after a connect failure.
    pub fn next_backoff(&mut self) -> Duration {
        let d = self.backoff;
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
        d
    }

    /// Queues every request still in flight to be written again.
    pub fn requeue(&mut self, unit: usize) {
        self.unwritten = self.in_flight.len() * unit;
        self.write_pos = 0;
    }
}

/// Splits a token into slot index and generation.
pub fn split_token(t: Token) -> (usize, u32) {
    (t.0 & 0xffff_ffff, (t.0 >> 32) as u32)
}
