//! Many raw client sockets driven from one thread without blocking, and latency samples.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::support::{Conn, WAIT};

/// One raw client socket: what it received, and whether the server has closed it.
pub struct Peer {
    pub stream: TcpStream,
    pub received: Vec<u8>,
    pub closed: bool,
}

impl Peer {
    /// Whether a whole response head has arrived.
    pub fn answered(&self) -> bool {
        self.received.windows(4).any(|w| w == b"\r\n\r\n")
    }

    /// The status codes of the response heads received so far.
    pub fn statuses(&self) -> Vec<u16> {
        let text = String::from_utf8_lossy(&self.received);
        text.match_indices("HTTP/1.1 ")
            .filter_map(|(at, _)| text.get(at + 9..at + 12)?.parse().ok())
            .collect()
    }
}

/// Sockets connected at once and driven without blocking.
pub struct Swarm {
    pub peers: Vec<Peer>,
}

impl Swarm {
    /// `n` connections to `addr`. A connect completes in the kernel (backlog) even when the
    /// server has not accepted it, so this does not wait for the server.
    pub fn connect(addr: SocketAddr, n: usize) -> Swarm {
        let peers = (0..n)
            .map(|_| {
                let stream = TcpStream::connect_timeout(&addr, WAIT).unwrap();
                stream.set_nonblocking(true).unwrap();
                Peer {
                    stream,
                    received: Vec::new(),
                    closed: false,
                }
            })
            .collect();
        Swarm { peers }
    }

    /// Writes `bytes` to every open peer, as much as fits; a failed write marks it closed.
    pub fn write_each(&mut self, bytes: &[u8]) {
        for peer in self.peers.iter_mut().filter(|p| !p.closed) {
            match peer.stream.write(bytes) {
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(_) => peer.closed = true,
            }
        }
    }

    /// Reads whatever has arrived on every open peer; EOF or an error marks it closed.
    pub fn pump(&mut self) {
        let mut chunk = [0u8; 16 * 1024];
        for peer in self.peers.iter_mut().filter(|p| !p.closed) {
            loop {
                match peer.stream.read(&mut chunk) {
                    Ok(0) => peer.closed = true,
                    Ok(n) => {
                        peer.received.extend_from_slice(&chunk[..n]);
                        continue;
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                    Err(_) => peer.closed = true,
                }
                break;
            }
        }
    }

    /// Pumps every 10 ms until `done(peers)` holds or `within` passes; returns whether it held.
    pub fn pump_until(&mut self, within: Duration, done: impl Fn(&[Peer]) -> bool) -> bool {
        let deadline = Instant::now() + within;
        loop {
            self.pump();
            if done(&self.peers) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn count(&self, which: impl Fn(&Peer) -> bool) -> usize {
        self.peers.iter().filter(|p| which(p)).count()
    }
}

/// `n` keep-alive `GET path` on `conn`, each timed from write to whole response.
pub fn timed_gets(conn: &mut Conn, path: &str, n: usize) -> Vec<Duration> {
    (0..n)
        .map(|_| {
            let sent = Instant::now();
            let response = conn.get(path);
            assert_eq!(response.status, 200, "a normal client's {path}");
            sent.elapsed()
        })
        .collect()
}

/// The `p`-th percentile (0..=100) of `samples`, nearest rank.
pub fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    let rank = ((p / 100.0) * samples.len() as f64).ceil() as usize;
    samples[rank.clamp(1, samples.len()) - 1]
}
