//! Proxy routes: a request handed to a server of an upstream over an outbound connection of
//! the client's own shard, and the response streamed back (docs/PROXY.md, "HTTP").
//!
//! - The client side is the [`crate::HttpConn`] that read the request (`client.rs`): it picks
//!   a server through the route's [`ProxyTarget`] (balance and passive health live in the
//!   server crate), dials it with the rewritten request head as the new connection's first
//!   output, links the two connections, streams the request body into the link and waits
//!   (`Verb::AwaitCompletion`) until the upstream side says that the response is complete
//!   or failed: by a same-shard message, or, when it parks, by unlinking itself (`Cx::resume`
//!   ends the wait).
//! - The upstream side (`upstream.rs`) parses the response head strictly (`head.rs`), writes
//!   the client's head and then the body into the client's output through the link. The
//!   reactor's link rule is the backpressure: each side reads only while the other's pending
//!   output is under the high-water mark, so a proxied exchange holds two connections'
//!   buffers, whatever the body sizes.
//! - Keep-alive (`pool.rs`): after a response that allows it, the upstream side unlinks
//!   itself from the client (`Cx::unlink`) and parks in its server's [`ServerPool`], which the
//!   server crate keeps per server per shard; the client side of a later request on that
//!   shard takes it before dialing, links to it, and the upstream side writes the request
//!   when the link is made (`Protocol::on_linked`). A request is retried only when nothing of it was sent
//!   (a failed connect, a pooled connection that closed before the request was written) or
//!   when it is idempotent, sent no body and no response byte came back.

mod client;
mod head;
mod options;
mod pool;
mod upstream;

use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use coreloop_reactor::{ConnectError, ListenAddr};

/// A server picked for one request.
pub struct Pick {
    /// Where to connect.
    pub addr: ListenAddr,
    /// The connect timeout (`upstream.connect_timeout`).
    pub connect_timeout: Duration,
    /// The pick's bookkeeping: told how the connect went; gives the server back when dropped.
    pub ticket: Box<dyn ProxyTicket>,
    /// The server's kept-alive connections on this shard, taken before dialing and where the
    /// connection goes back after its response; `None`: no reuse.
    pub pool: Option<Rc<ServerPool>>,
}

/// How a request reaches its server, for the counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attempt {
    /// A new connection is dialed.
    Dial,
    /// An idle pooled connection is taken.
    Reuse,
    /// A new connection to the same server, because the pooled one taken closed before it
    /// answered (a retry).
    Redial,
}

/// One shard's view of an upstream: balance and passive health (server crate).
pub trait ProxyTarget {
    /// A server for a new request, or `None` when none is available (every one ejected).
    fn pick(&mut self, now: Instant) -> Option<Pick>;
}

/// One attempt's server. Dropping it releases the server's in-flight count.
pub trait ProxyTicket {
    /// The connect succeeded (resets the server's failure count).
    fn connected(&mut self, now: Instant);
    /// The connect failed, before any byte was sent: counts against the server when it is
    /// the server's fault, and picks another server not tried yet, if any (a retry).
    fn retry(self: Box<Self>, error: ConnectError, now: Instant) -> Option<Pick>;
    /// How the exchange with the server ended, after its connect.
    fn finished(&mut self, outcome: Outcome, latency: Duration);
    /// How the request goes to the server (before it does).
    fn attempt(&mut self, attempt: Attempt) {
        let _ = attempt;
    }
    /// The server closed before answering an idempotent request that sent no body: another
    /// server not tried yet, if any (a retry; not judged by passive health).
    fn retry_elsewhere(self: Box<Self>, now: Instant) -> Option<Pick> {
        let _ = now;
        None
    }
}

/// How a proxied exchange ended, after the connect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The whole response, with this status, reached the client's output.
    Complete(u16),
    /// An invalid or ambiguous response head or body framing (502, or a cut response).
    Invalid,
    /// No response head within `response_timeout` (504).
    TimedOut,
    /// The server closed or reset the connection before the response was complete.
    Closed,
}

/// Builds a shard's [`ProxyTarget`]; called once per shard, on that shard, at its first
/// proxied request.
pub type ProxyTargetFactory = Arc<dyn Fn(usize) -> Box<dyn ProxyTarget> + Send + Sync>;

/// A proxy route.
#[derive(Clone)]
pub struct ProxySpec {
    /// The upstream's name (for logs).
    pub upstream: String,
    /// Per-shard server picking.
    pub target: ProxyTargetFactory,
    /// From connected to the end of the response head (`upstream.response_timeout`).
    pub response_timeout: Duration,
    /// `X-Forwarded-Proto` (`https` behind TLS).
    pub proto: &'static str,
    /// Removed from the front of the path when the path is it or continues with `/` or `?`
    /// (`/app/x` -> `/x`, `/app` -> `/`); other paths pass as they are.
    pub strip_prefix: Option<String>,
    /// `set_headers`: (name, value) pairs, validated by the config; each replaces the
    /// client's fields of that name and the proxy's own, and an empty value only removes.
    pub set_headers: Vec<(String, String)>,
}

impl std::fmt::Debug for ProxySpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProxySpec")
            .field("upstream", &self.upstream)
            .field("response_timeout", &self.response_timeout)
            .finish()
    }
}

pub(crate) use client::{ProxyExchange, ProxyWake, Targets};
pub use pool::{PoolGauges, ServerPool};
