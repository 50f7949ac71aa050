//! What a connection's bytes travel over: the socket itself, or TLS on the socket.
//!
//! Chosen per listener when a connection is adopted, and fixed for its life. Both kinds read
//! and write like a non-blocking socket (`WouldBlock` included), so `conn.rs` has one IO path;
//! what TLS adds is ciphertext that rustls holds for the socket (`has_pending`), a handshake
//! deadline, and close_notify at the end.

use std::io;
use std::time::Instant;

use mio::{Interest, Registry, Token};

use crate::socket::Stream;
use crate::tls::stream::{Flushed, TlsStream};

pub(crate) enum Transport {
    Plain(Stream),
    /// Boxed: a rustls connection is about a kilobyte, and `Conn` stays small for the
    /// plaintext connections that do not need it.
    Tls(Box<TlsStream>),
}

impl Transport {
    /// True when the protocol's output may go to the socket as it is, bypassing this layer
    /// (a `sendfile` of a file body): only plaintext. kTLS would make TLS qualify too.
    pub fn can_sendfile(&self) -> bool {
        matches!(self, Self::Plain(_)) && self.socket().can_send_file()
    }

    /// The socket, when nothing lies between it and the protocol (a file segment's path).
    pub fn plain_mut(&mut self) -> Option<&mut Stream> {
        match self {
            Self::Plain(s) => Some(s),
            Self::Tls(_) => None,
        }
    }

    fn socket(&self) -> &Stream {
        match self {
            Self::Plain(s) => s,
            Self::Tls(t) => t.socket(),
        }
    }

    fn socket_mut(&mut self) -> &mut Stream {
        match self {
            Self::Plain(s) => s,
            Self::Tls(t) => t.socket_mut(),
        }
    }

    /// Protocol bytes into `buf`; `Ok(0)` at the end of the stream.
    pub fn read(&mut self, buf: &mut [u8], now: Instant) -> io::Result<usize> {
        match self {
            Self::Plain(s) => s.read(buf),
            Self::Tls(t) => t.read(buf, now),
        }
    }

    /// Whether a read of `n` into `room` bytes emptied everything below the protocol.
    pub fn drained(&self, n: usize, room: usize) -> bool {
        match self {
            Self::Plain(_) => n < room,
            Self::Tls(t) => t.drained(n, room),
        }
    }

    /// Reads socket bytes to drop them (lingering close): no decryption is needed for that.
    pub fn discard(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.socket_mut().read(buf)
    }

    /// Protocol bytes out; the count taken.
    pub fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Self::Plain(s) => s.write(buf),
            Self::Tls(t) => t.write(buf),
        }
    }

    /// True while bytes this layer took still wait for the socket.
    pub fn has_pending(&self) -> bool {
        match self {
            Self::Plain(_) => false,
            Self::Tls(t) => t.has_pending(),
        }
    }

    /// Writes what `has_pending` says waits.
    pub fn write_pending(&mut self) -> io::Result<Flushed> {
        match self {
            Self::Plain(_) => Ok(Flushed {
                wrote: 0,
                done: true,
            }),
            Self::Tls(t) => t.write_pending(),
        }
    }

    /// Ends our direction of the stream (after close_notify, over TLS).
    pub fn shutdown_write(&mut self) -> io::Result<()> {
        match self {
            Self::Plain(s) => s.shutdown_write(),
            Self::Tls(t) => t.shutdown_write(),
        }
    }

    /// The connection is being dropped: a last word if the layer has one (close_notify).
    pub fn finish(&mut self) {
        if let Self::Tls(t) = self {
            t.finish();
        }
    }

    /// While a TLS handshake runs: by when it must be done.
    pub fn handshake_deadline(&self) -> Option<Instant> {
        match self {
            Self::Plain(_) => None,
            Self::Tls(t) => t.handshake_deadline(),
        }
    }

    /// The socket failed (a reset): a handshake still running failed with it.
    pub fn reset(&mut self) {
        if let Self::Tls(t) = self {
            t.reset();
        }
    }

    /// Counts a handshake that ran out of time.
    pub fn handshake_timed_out(&mut self) {
        if let Self::Tls(t) = self {
            t.handshake_timed_out();
        }
    }

    pub fn connect_state(&self) -> io::Result<bool> {
        self.socket().connect_state()
    }

    pub fn register(
        &mut self,
        registry: &Registry,
        token: Token,
        interest: Interest,
    ) -> io::Result<()> {
        self.socket_mut().register(registry, token, interest)
    }

    pub fn reregister(
        &mut self,
        registry: &Registry,
        token: Token,
        interest: Interest,
    ) -> io::Result<()> {
        self.socket_mut().reregister(registry, token, interest)
    }
}
