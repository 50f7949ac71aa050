//! TLS on a listener: a layer between the socket's bytes and the protocol's bytes.
//!
//! rustls is sans-IO like our protocols: its [`ServerConnection`](rustls::ServerConnection)
//! takes ciphertext (`read_tls`), yields plaintext (`reader`), takes plaintext (`writer`) and
//! yields ciphertext (`write_tls`). The connection's `Transport` puts it
//! between the socket and the input and output buffers, so HTTP, echo, frame and the splice
//! speak TLS without knowing it. docs/TLS.md has the whole picture.
//!
//! Give a listener TLS with [`ListenerSpec::with_tls`](crate::ListenerSpec::with_tls) and a
//! [`TlsListener`]; replace it at a reload with
//! [`ReactorHandle::set_listener_tls`](crate::ReactorHandle::set_listener_tls): handshakes
//! from then on use the new one, open connections keep theirs.

use std::sync::Arc;
use std::time::Duration;

/// The rustls this reactor is built with, for building a [`rustls::ServerConfig`].
pub use rustls;

mod stats;
pub(crate) mod stream;

pub use stats::{HandshakeFailure, TlsSnapshot, TlsStats, HANDSHAKE_BUCKETS};

/// What a TLS listener hands each new connection: the rustls configuration (certificates,
/// versions, ALPN, the session ticketer shared by all shards) and the shared counters.
pub struct TlsListener {
    pub(crate) config: Arc<rustls::ServerConfig>,
    pub(crate) stats: Arc<TlsStats>,
    pub(crate) handshake_timeout: Duration,
}

impl TlsListener {
    /// TLS with `config`, counting into `stats` (keep the same `Arc` across reloads so the
    /// counters carry on). A handshake not complete after `handshake_timeout` is closed; so
    /// is one still running at the protocol's own deadline (the header deadline of HTTP).
    pub fn new(
        config: Arc<rustls::ServerConfig>,
        stats: Arc<TlsStats>,
        handshake_timeout: Duration,
    ) -> Self {
        Self {
            config,
            stats,
            handshake_timeout,
        }
    }

    /// The rustls configuration new connections get.
    pub fn config(&self) -> &Arc<rustls::ServerConfig> {
        &self.config
    }

    /// This listener's counters.
    pub fn stats(&self) -> &Arc<TlsStats> {
        &self.stats
    }
}

impl std::fmt::Debug for TlsListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsListener")
            .field("alpn", &self.config.alpn_protocols)
            .field("handshake_timeout", &self.handshake_timeout)
            .finish_non_exhaustive()
    }
}
