//! Many echo clients at once in one mio loop: each writes its payload in random chunks while
//! reading the echo back, and the run checks every byte.

use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use coreloop_reactor::ListenAddr;
use mio::net::{TcpStream, UnixStream};
use mio::{Events, Interest, Poll, Token};

use super::Rng;

enum Socket {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Socket {
    fn connect(addr: &ListenAddr) -> io::Result<Self> {
        // Blocking connects: the listener's backlog takes them all, whether or not the
        // server has accepted yet, so every client exists before any byte moves.
        Ok(match addr {
            ListenAddr::Tcp(addr) => {
                let stream = std::net::TcpStream::connect(addr)?;
                stream.set_nonblocking(true)?;
                Socket::Tcp(TcpStream::from_std(stream))
            }
            ListenAddr::Unix(path) => {
                let stream = std::os::unix::net::UnixStream::connect(path)?;
                stream.set_nonblocking(true)?;
                Socket::Unix(UnixStream::from_std(stream))
            }
            ListenAddr::Inherited(name) => panic!("cannot connect to inherited socket `{name}`"),
        })
    }

    fn source(&mut self) -> &mut dyn mio::event::Source {
        match self {
            Socket::Tcp(s) => s,
            Socket::Unix(s) => s,
        }
    }

    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Socket::Tcp(s) => s.read(buf),
            Socket::Unix(s) => s.read(buf),
        }
    }

    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Socket::Tcp(s) => s.write(buf),
            Socket::Unix(s) => s.write(buf),
        }
    }
}

struct Client {
    socket: Socket,
    payload: Vec<u8>,
    sent: usize,
    received: Vec<u8>,
    chunk_seed: Rng,
}

/// What a swarm run saw.
#[derive(Debug)]
pub struct Outcome {
    pub clients: usize,
    pub bytes: usize,
    pub mismatched: Vec<usize>,
    pub unfinished: Vec<usize>,
}

/// Connects `payloads.len()` clients to `addr`, echoes every payload, and returns what matched.
pub fn echo_all(addr: &ListenAddr, payloads: Vec<Vec<u8>>, seed: u64, limit: Duration) -> Outcome {
    let mut poll = Poll::new().expect("poll");
    let mut clients: Vec<Client> = payloads
        .into_iter()
        .enumerate()
        .map(|(i, payload)| {
            let mut socket = Socket::connect(addr).expect("connect");
            let interest = Interest::READABLE | Interest::WRITABLE;
            poll.registry()
                .register(socket.source(), Token(i), interest)
                .expect("register");
            Client {
                socket,
                received: Vec::with_capacity(payload.len()),
                payload,
                sent: 0,
                chunk_seed: Rng::new(seed ^ ((i as u64 + 1) * 0x9E37_79B9)),
            }
        })
        .collect();
    let total: usize = clients.iter().map(|c| c.payload.len()).sum();
    let mut done = 0;
    let mut events = Events::with_capacity(1024);
    let mut buf = vec![0u8; 64 * 1024];
    let deadline = Instant::now() + limit;
    while done < clients.len() && Instant::now() < deadline {
        poll.poll(&mut events, Some(Duration::from_millis(100)))
            .expect("poll");
        for event in events.iter() {
            let client = &mut clients[event.token().0];
            let was_done = client.received.len() >= client.payload.len();
            pump(client, &mut buf);
            if !was_done && client.received.len() >= client.payload.len() {
                done += 1;
            }
        }
    }
    let mismatched = clients
        .iter()
        .enumerate()
        .filter(|(_, c)| c.received.len() >= c.payload.len() && c.received != c.payload)
        .map(|(i, _)| i)
        .collect();
    let unfinished = clients
        .iter()
        .enumerate()
        .filter(|(_, c)| c.received.len() < c.payload.len())
        .map(|(i, _)| i)
        .collect();
    Outcome {
        clients: clients.len(),
        bytes: total,
        mismatched,
        unfinished,
    }
}

/// Writes random-sized chunks until the socket is full, then reads until it is empty.
fn pump(client: &mut Client, buf: &mut [u8]) {
    while client.sent < client.payload.len() {
        let chunk = client
            .chunk_seed
            .range(1, 64 * 1024)
            .min(client.payload.len() - client.sent);
        match client
            .socket
            .write(&client.payload[client.sent..client.sent + chunk])
        {
            Ok(n) => client.sent += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) => panic!("client write failed: {e}"),
        }
    }
    loop {
        match client.socket.read(buf) {
            Ok(0) => break,
            Ok(n) => client.received.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) => panic!("client read failed: {e}"),
        }
    }
}
