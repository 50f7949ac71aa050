//! Linked connections: two connections on one shard (typically an accepted one and the
//! outbound one it asked for) joined so that each writes into the other's output and the
//! other's pending output paces its reading. What a proxy needs, as a protocol on top.
//!
//! - Making one: a protocol calls [`crate::Cx::link`] with the other connection's
//!   [`ConnAddr`](crate::ConnAddr) (usually from [`crate::Protocol::on_connect`]). The shard
//!   makes the link right after that call returns. A link it cannot make (the peer is on
//!   another shard, gone, still connecting, closing, already linked, or the asker itself)
//!   is reported as [`crate::Protocol::on_unlinked`] to the asker, like a link that ended.
//! - Writing: while one connection's protocol runs, the shard lends it the peer's output
//!   buffer ([`crate::Cx::peer_out`]). Bytes read from one socket are handed to its protocol
//!   from its input buffer and copied once, into the peer's output; there is no queue and no
//!   message. The peer writes them to its socket later in the same loop turn.
//! - Backpressure, both ways: a linked connection reads its socket only while its *peer's*
//!   pending output is at or below the high-water mark (its own output is filled by the
//!   peer's reads, so the peer is the one paused by it). When the output drains below the
//!   mark, the paused peer is put on the ready list and read again. Memory per link is so
//!   bounded by two high-water marks plus one read.
//! - Half-close: [`crate::Cx::shutdown_peer_write`] asks the peer to shut down its write side
//!   once its pending output is written (a proxy does it in `on_eof`). A linked connection
//!   whose protocol answers `on_eof` with [`crate::Verb::Read`] stays open for output. Once it
//!   has both read its peer's EOF and shut its own write side, it closes (`CloseReason::Peer`).
//! - Close: each socket is owned by its own connection and closed with it. When one closes,
//!   for any reason, the other is told with [`crate::Protocol::on_unlinked`] (default: close
//!   after flushing) later in the same loop turn; a half-closed one that answers `Read`
//!   closes after flushing anyway, as nothing can reach it any more.

use std::collections::HashMap;

use crate::buffer::BufPool;
use crate::token::ConnToken;

/// The peer's output, lent to a connection while its protocol runs.
pub(crate) struct Lent {
    /// The peer, owner of `out`.
    pub peer: ConnToken,
    pub out: Option<Vec<u8>>,
    /// Bytes of `out` the peer already wrote.
    pub written: usize,
    /// The protocol asked the peer to shut down its write side after flushing.
    pub shut: bool,
    /// The half-close of the driven connection's own write side (from the link table).
    pub own_shut: Shut,
}

impl Lent {
    pub fn pending(&self) -> usize {
        self.out.as_ref().map_or(0, |out| out.len() - self.written)
    }

    pub fn out(&mut self, pool: &mut BufPool) -> &mut Vec<u8> {
        self.out.get_or_insert_with(|| pool.take())
    }
}

/// A connection's half-close of its own write side, asked for by its linked peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Shut {
    Open,
    /// Shut down the write side once pending output is written.
    AfterFlush,
    Done,
}

/// One side of a link, in the shard's link table.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Link {
    pub peer: ConnToken,
    /// This side's write half-close.
    pub shut: Shut,
}

/// The shard's links, by connection (both sides have an entry). Kept out of `Conn`, which
/// carries only a flag, so that connections that never link pay nothing.
#[derive(Default)]
pub(crate) struct Links {
    pub by_conn: HashMap<ConnToken, Link>,
}
