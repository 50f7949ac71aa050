//! One TLS connection: the socket and a rustls `ServerConnection`, driven without blocking.
//!
//! The connection (`conn.rs`) reads plaintext from here and writes plaintext here exactly as
//! it does with a plain socket, `WouldBlock` included. What rustls holds in between is
//! bounded: at most one TLS read (4 KiB, 64 KiB mid-handshake) of unprocessed ciphertext, the
//! plaintext of records not yet handed over, and `SEND_LIMIT` of ciphertext not yet written.

use std::io::{self, Read};
use std::sync::Arc;
use std::time::Instant;

use rustls::ServerConnection;

use super::{HandshakeFailure, TlsListener};
use crate::socket::Stream;

/// Ciphertext rustls may hold for the socket. Above it `write` takes no more plaintext, so
/// the connection's own output buffer (and its high-water mark) does the backpressure.
const SEND_LIMIT: usize = 32 * 1024;

/// How far a write of pending ciphertext got.
pub(crate) struct Flushed {
    /// Bytes written to the socket.
    pub wrote: usize,
    /// Nothing is left pending.
    pub done: bool,
}

pub(crate) struct TlsStream {
    socket: Stream,
    conn: ServerConnection,
    listener: Arc<TlsListener>,
    /// While handshaking: when it began and by when it must be done.
    handshake: Option<(Instant, Instant)>,
    /// The last socket read filled less than it was offered: the receive queue is empty.
    socket_short: bool,
    /// close_notify was queued (it is sent once).
    close_sent: bool,
}

impl TlsStream {
    /// A server-side TLS connection on an accepted socket. `Err`: rustls refused the
    /// configuration (it never does for one built by `ServerConfig::builder`).
    pub fn accept(socket: Stream, listener: Arc<TlsListener>, now: Instant) -> io::Result<Self> {
        let mut conn = ServerConnection::new(listener.config.clone()).map_err(io::Error::other)?;
        conn.set_buffer_limit(Some(SEND_LIMIT));
        let deadline = now + listener.handshake_timeout;
        Ok(Self {
            socket,
            conn,
            listener,
            handshake: Some((now, deadline)),
            socket_short: false,
            close_sent: false,
        })
    }

    pub fn socket(&self) -> &Stream {
        &self.socket
    }

    pub fn socket_mut(&mut self) -> &mut Stream {
        &mut self.socket
    }

    /// Plaintext into `buf`; `Ok(0)` at the end of the stream (close_notify, or a FIN after
    /// the handshake: counted as an unclean close, not an error). Handshake records are
    /// answered on the way; what the socket does not take now stays pending (`has_pending`).
    pub fn read(&mut self, buf: &mut [u8], now: Instant) -> io::Result<usize> {
        loop {
            match self.conn.reader().read(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    self.listener.stats.unclean_close();
                    return Ok(0);
                }
                Err(e) => return Err(e),
            }
            let mut probe = Probe {
                socket: &mut self.socket,
                short: false,
            };
            let read = self.conn.read_tls(&mut probe);
            self.socket_short = probe.short;
            match read {
                Ok(0) if self.handshake.is_some() => {
                    self.fail(HandshakeFailure::Eof);
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Err(e),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // A reset, or a record too large for rustls's buffer.
                    let cause = if e.kind() == io::ErrorKind::InvalidData {
                        HandshakeFailure::Malformed
                    } else {
                        HandshakeFailure::Eof
                    };
                    self.fail(cause);
                    return Err(e);
                }
            }
            if let Err(error) = self.conn.process_new_packets() {
                self.fail(HandshakeFailure::of(&error));
                // rustls queued an alert that says why; the peer may as well see it.
                let _ = self.write_pending();
                return Err(io::Error::new(io::ErrorKind::InvalidData, error));
            }
            self.note_handshake(now);
            match self.write_pending() {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Whether a read of `n` bytes into `room` left nothing behind, neither in the socket's
    /// receive queue nor in rustls (see `Conn::on_readable` for why it matters).
    pub fn drained(&self, n: usize, room: usize) -> bool {
        self.socket_short && n < room
    }

    /// Takes plaintext and writes what it can; `WouldBlock` while earlier ciphertext is still
    /// waiting for the socket, or while rustls holds `SEND_LIMIT` already.
    pub fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.conn.wants_write() {
            let flushed = self.write_pending()?;
            if !flushed.done {
                return Err(io::ErrorKind::WouldBlock.into());
            }
        }
        let taken = io::Write::write(&mut self.conn.writer(), buf)?;
        if taken == 0 && !buf.is_empty() {
            // Before the handshake ends, plaintext waits in rustls up to the same limit.
            return Err(io::ErrorKind::WouldBlock.into());
        }
        match self.write_pending() {
            Ok(_) => Ok(taken),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(taken),
            Err(e) => Err(e),
        }
    }

    /// Writes pending ciphertext until none is left or the socket is full. `WouldBlock` only
    /// when nothing at all could be written.
    pub fn write_pending(&mut self) -> io::Result<Flushed> {
        let mut wrote = 0;
        while self.conn.wants_write() {
            match self.conn.write_tls(&mut Sink(&mut self.socket)) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => wrote += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && wrote > 0 => {
                    return Ok(Flushed { wrote, done: false });
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(Flushed { wrote, done: true })
    }

    /// Ciphertext waits for the socket.
    pub fn has_pending(&self) -> bool {
        self.conn.wants_write()
    }

    /// Sends close_notify (once), then shuts the socket's write side.
    pub fn shutdown_write(&mut self) -> io::Result<()> {
        self.close_notify();
        self.socket.shutdown_write()
    }

    /// The connection is being dropped: send close_notify if the session was up, or the alert
    /// of a failed handshake, as far as the socket takes it now. Never waits.
    pub fn finish(&mut self) {
        if self.handshake.is_none() {
            self.close_notify();
        } else {
            let _ = self.write_pending();
        }
    }

    fn close_notify(&mut self) {
        if !self.close_sent {
            self.close_sent = true;
            self.conn.send_close_notify();
        }
        // At most ~30 bytes; a full socket here means a peer that reads nothing anyway.
        let _ = self.write_pending();
    }

    /// While handshaking, the time by which it must be done.
    pub fn handshake_deadline(&self) -> Option<Instant> {
        self.handshake.map(|(_, by)| by)
    }

    /// The socket failed (`EPOLLERR`, a reset): counted like an EOF mid-handshake.
    pub fn reset(&mut self) {
        self.fail(HandshakeFailure::Eof);
    }

    /// The handshake ran out of time (its own deadline or the protocol's).
    pub fn handshake_timed_out(&mut self) {
        self.fail(HandshakeFailure::Timeout);
    }

    fn note_handshake(&mut self, now: Instant) {
        let Some((began, _)) = self.handshake else {
            return;
        };
        if self.conn.is_handshaking() {
            return;
        }
        self.handshake = None;
        let resumed = self.conn.handshake_kind() == Some(rustls::HandshakeKind::Resumed);
        self.listener
            .stats
            .handshake_done(now.saturating_duration_since(began), resumed);
    }

    /// Counts a failed handshake once; failures after it are not handshake failures.
    fn fail(&mut self, cause: HandshakeFailure) {
        if self.handshake.take().is_some() {
            self.listener.stats.handshake_failed(cause);
        }
    }
}

/// The socket as rustls reads it, noting whether a read came up short.
struct Probe<'a> {
    socket: &'a mut Stream,
    short: bool,
}

impl Read for Probe<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.socket.read(buf)?;
        self.short = n < buf.len();
        Ok(n)
    }
}

/// The socket as rustls writes to it.
struct Sink<'a>(&'a mut Stream);

impl io::Write for Sink<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    /// docs/TLS.md says what an idle TLS connection holds; this is its fixed part (the heap
    /// parts come on top). A guard, not a timing.
    #[test]
    fn a_tls_connection_stays_within_its_documented_size() {
        let size = std::mem::size_of::<super::TlsStream>();
        eprintln!("TlsStream: {size} bytes");
        assert!(size <= 1280, "TlsStream grew to {size} bytes");
    }
}
