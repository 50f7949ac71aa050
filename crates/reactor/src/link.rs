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
//! - Unlink: [`crate::Cx::unlink`] ends a live link without closing either side (a proxy
//!   detaches a kept-alive upstream connection from its client after a complete response,
//!   and links it to another client later). The shard removes both entries right after the
//!   asking call; the other side is told with `on_unlinked`, the asker is not (it asked).
//!   Each link has its own id, so an `on_unlinked` still queued for a link that ended never
//!   ends a newer link between the same two connections; and a `ConnAddr` names a token
//!   with its generation, so a stale address never reaches the connection that reuses its
//!   slot (the link to it is refused, as to a gone connection). An unlinked connection
//!   holds no lent buffer (what it lent came back after each call, and the peer's output
//!   was only ever borrowed), and reads its socket as any connection does.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

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
    /// The link's own id (both sides carry it), so that the news of its end cannot be
    /// taken for the end of a later link between the same two connections.
    pub id: u32,
}

/// The link table's hasher: its keys are the shard's own tokens (a slab index and a
/// generation), never chosen by a peer, so HashDoS resistance buys nothing, and SipHash was a
/// tenth of a proxied request's instructions (callgrind, docs/BENCHMARKS.md). FxHash's
/// multiply-rotate over the token's two words.
#[derive(Default)]
pub(crate) struct TokenHasher(u64);

impl Hasher for TokenHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// The shard's links, by connection (both sides have an entry). Kept out of `Conn`, which
/// carries only a flag, so that connections that never link pay nothing.
#[derive(Default)]
pub(crate) struct Links {
    pub by_conn: HashMap<ConnToken, Link, BuildHasherDefault<TokenHasher>>,
    /// The next link's id (wrapping: two links of one pair 4 billion links apart would
    /// have to overlap for it to matter).
    next_id: u32,
}

impl Links {
    pub fn next_id(&mut self) -> u32 {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        id
    }
}
