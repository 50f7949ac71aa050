//! Outbound connections: a protocol asks its shard, through [`crate::Cx::connect`], to open a
//! TCP or Unix connection. The shard owns the new socket: it connects without blocking, under
//! a connect timeout, gives it its own token and generation and, once connected, drives it by
//! the same IO rules as an accepted connection (read budget, short-read rule, immediate
//! writes, `WRITABLE` only after a short write, high-water mark, lingering close, write
//! timeout, pooled buffers). Its settings are those of the asking connection's listener.
//!
//! The outcome goes to the connection that asked, as [`crate::Protocol::on_connect`]: the
//! new connection's [`ConnAddr`] (to send it messages), or why not ([`ConnectError`]). It is
//! delivered later in the same loop turn or when the socket reports, never from inside the
//! asking call. An asker that closed in the meantime gets nothing; the new connection lives
//! on under its own protocol.

use std::io;
use std::time::Duration;

use crate::message::ConnAddr;
use crate::protocol::Protocol;
use crate::socket::ListenAddr;
use crate::token::ConnToken;

/// Names one [`crate::Cx::connect`] request of one connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConnectId(pub u64);

/// Why an outbound connection did not come up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectError {
    /// The peer refused it (`ECONNREFUSED`, or no socket at a Unix path).
    Refused,
    /// The connect timeout passed first.
    TimedOut,
    /// The shard closed it before it connected (a drain).
    Aborted,
    /// Not started: open connections (accepted and outbound, over all shards, or on this
    /// shard) are at `max_connections` / `max_connections_per_shard`, the fd budget.
    NoRoom,
    /// Any other failure, by its kind.
    Other(io::ErrorKind),
}

impl ConnectError {
    pub(crate) fn of(error: &io::Error) -> Self {
        match error.kind() {
            io::ErrorKind::ConnectionRefused | io::ErrorKind::NotFound => Self::Refused,
            io::ErrorKind::TimedOut => Self::TimedOut,
            kind => Self::Other(kind),
        }
    }
}

/// The outcome of a [`crate::Cx::connect`], delivered to the connection that asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectOutcome {
    /// The id [`crate::Cx::connect`] returned.
    pub id: ConnectId,
    /// The new connection's address, or why there is none.
    pub result: Result<ConnAddr, ConnectError>,
}

/// A connect a protocol asked for, waiting for its shard.
pub(crate) struct ConnectRequest {
    pub asker: ConnToken,
    pub id: ConnectId,
    pub target: ListenAddr,
    pub timeout: Duration,
    pub protocol: Box<dyn Protocol>,
}

/// An outbound connection still connecting, and who to tell.
pub(crate) struct Pending {
    pub token: ConnToken,
    pub asker: ConnToken,
    pub id: ConnectId,
}

/// A shard's connect requests not yet started, and its id counter.
#[derive(Default)]
pub(crate) struct Connects {
    pub queue: Vec<ConnectRequest>,
    /// Links asked for (`Cx::link`): the asker and its peer, made after the asker's call.
    pub links: Vec<(ConnToken, ConnAddr)>,
    /// Unlinks asked for (`Cx::unlink`), made after the asker's call, before new links.
    pub unlinks: Vec<ConnToken>,
    next: u64,
}

impl Connects {
    /// True when a drive asked for links or unlinks (`Shard::make_links` has work).
    pub fn wants_links(&self) -> bool {
        !self.links.is_empty() || !self.unlinks.is_empty()
    }

    pub fn push(
        &mut self,
        asker: ConnToken,
        target: ListenAddr,
        timeout: Duration,
        protocol: Box<dyn Protocol>,
    ) -> ConnectId {
        let id = ConnectId(self.next);
        self.next += 1;
        self.queue.push(ConnectRequest {
            asker,
            id,
            target,
            timeout,
            protocol,
        });
        id
    }
}
