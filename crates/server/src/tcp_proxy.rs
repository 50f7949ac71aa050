//! `protocol = "tcp-proxy"`: every accepted connection is spliced to a server of its
//! listener's upstream (docs/PROXY.md). The client side picks the server (balance, passive
//! health), dials it under the upstream's `connect_timeout`, tries the next server when a
//! connect fails (nothing was sent yet: the client's bytes stay buffered until the link), then
//! links the two connections: each side's input goes once into the other's output, a
//! half-close passes through, and each side reads only while the other's pending output is
//! under the high-water mark (the reactor's `link` rules), so memory is bounded.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use coreloop_config::Upstream;
use coreloop_metrics::upstream::{ConnectFailure, UpstreamStats};
use coreloop_reactor::{
    ConnFactory, ConnInfo, ConnectError, ConnectOutcome, Cx, Protocol, ProtocolFactory, Step, Verb,
};

use crate::upstream::{ServerSlot, ShardUpstream, Shared, Tried};

/// One tcp-proxy listener's factory: each shard builds its own view of the upstream.
pub(crate) struct TcpProxyFactory {
    pub upstream: Upstream,
    /// `[timeouts] idle`, effective for the listener: no byte either way this long closes.
    pub idle: Duration,
    pub stats: Arc<UpstreamStats>,
}

impl ProtocolFactory for TcpProxyFactory {
    fn for_shard(&self, shard: usize) -> Box<dyn ConnFactory> {
        let upstream = ShardUpstream::new(&self.upstream, shard, self.stats.clone());
        Box::new(ShardFactory {
            upstream: Rc::new(RefCell::new(upstream)),
            idle: self.idle,
        })
    }
}

struct ShardFactory {
    upstream: Shared,
    idle: Duration,
}

/// A reloaded `[[upstream]]`, broadcast to each shard of every tcp-proxy listener that names
/// it (`crate::reload`), with its counters reshaped to the new server list.
pub(crate) struct UpstreamUpdate {
    pub upstream: Upstream,
    pub stats: Arc<UpstreamStats>,
}

impl ConnFactory for ShardFactory {
    fn on_message(&mut self, message: &(dyn Any + Send + Sync)) {
        if let Some(update) = message.downcast_ref::<UpstreamUpdate>() {
            let mut upstream = self.upstream.borrow_mut();
            upstream.update(&update.upstream, update.stats.clone());
        }
    }

    fn open(&mut self, _info: &ConnInfo) -> Box<dyn Protocol> {
        Box::new(Client {
            upstream: self.upstream.clone(),
            idle: self.idle,
            server: None,
            tried: Tried::new(),
            attempts: 0,
            activity: Rc::new(Cell::new(None)),
        })
    }
}

/// When a byte last moved either way through one proxied connection; shared by its two
/// sides (one shard, so a `Cell`). `None` until the first call sets it.
type Activity = Rc<Cell<Option<Instant>>>;

/// The accepted side.
struct Client {
    upstream: Shared,
    idle: Duration,
    /// The server this connection counts against (connecting or linked).
    server: Option<Rc<ServerSlot>>,
    tried: Tried,
    attempts: u32,
    activity: Activity,
}

impl Client {
    /// Dials the next server, or closes when there is none left to try.
    fn dial(&mut self, cx: &mut Cx<'_>) -> Verb {
        let now = cx.now();
        let mut up = self.upstream.borrow_mut();
        let Some(server) = up.pick(now, &self.tried) else {
            up.no_server();
            if let Some(suppressed) = up.log_gate(now) {
                tracing::warn!(
                    "upstream {}: no server to try (all ejected or failed){}",
                    up.name,
                    suppressed_note(suppressed)
                );
            }
            cx.refuse();
            return Verb::CloseNow;
        };
        if self.attempts > 0 {
            server.counters().retried();
        }
        self.attempts += 1;
        let addr = server.addr.clone();
        self.server = Some(server);
        let timeout = up.connect_timeout;
        drop(up);
        let side = Server {
            activity: self.activity.clone(),
        };
        cx.connect(addr, timeout, Box::new(side));
        Verb::AwaitCompletion
    }

    fn connect_failed(&mut self, error: ConnectError, cx: &mut Cx<'_>) -> Verb {
        let Some(server) = self.server.take() else {
            return Verb::CloseNow;
        };
        let now = cx.now();
        let mut up = self.upstream.borrow_mut();
        let cause = match error {
            ConnectError::Refused => ConnectFailure::Refused,
            ConnectError::TimedOut => ConnectFailure::TimedOut,
            _ => ConnectFailure::Other,
        };
        server.counters().connect_failed(cause);
        server.release();
        // No room under max_connections, or a drain: not the server's fault, and no other
        // server would do better.
        if matches!(error, ConnectError::NoRoom | ConnectError::Aborted) {
            cx.refuse();
            return Verb::CloseNow;
        }
        let ejected = up.failed(&server, now);
        if let Some(suppressed) = up.log_gate(now) {
            let addr = &server.addr;
            let what = if ejected { "; ejected" } else { "" };
            tracing::warn!(
                "upstream {} server {addr}: connect {error:?}{what}{}",
                up.name,
                suppressed_note(suppressed)
            );
        }
        drop(up);
        self.tried.push(server);
        self.dial(cx)
    }
}

fn suppressed_note(suppressed: u64) -> String {
    if suppressed == 0 {
        String::new()
    } else {
        format!(" ({suppressed} similar lines suppressed)")
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            server.release();
        }
    }
}

impl Protocol for Client {
    fn on_open(&mut self, cx: &mut Cx<'_>) -> Verb {
        self.activity.set(Some(cx.now()));
        self.dial(cx)
    }

    fn on_connect(&mut self, outcome: ConnectOutcome, cx: &mut Cx<'_>) -> Verb {
        match outcome.result {
            Ok(server_conn) => {
                if let Some(server) = &self.server {
                    self.upstream.borrow_mut().connected(server);
                }
                cx.link(server_conn);
                self.activity.set(Some(cx.now()));
                cx.set_deadline(cx.now() + self.idle);
                Verb::Read
            }
            Err(error) => self.connect_failed(error, cx),
        }
    }

    fn on_input(&mut self, input: &[u8], cx: &mut Cx<'_>) -> Step {
        forward(input, &self.activity, cx)
    }

    fn on_eof(&mut self, unconsumed: &[u8], cx: &mut Cx<'_>) -> Verb {
        half_close(unconsumed, cx)
    }

    /// One deadline for both directions: moved lazily, so a busy connection costs no timer
    /// work per read, only a `Cell` store.
    fn on_deadline(&mut self, cx: &mut Cx<'_>) -> Verb {
        let last = self.activity.get().unwrap_or(cx.now());
        let until = last + self.idle;
        if cx.now() < until {
            cx.set_deadline(until);
            return Verb::Read;
        }
        Verb::CloseAfterFlush
    }

    // A byte stream has no boundary at which a drain could close without loss.
    fn on_drain(&mut self, _cx: &mut Cx<'_>) -> Verb {
        Verb::Read
    }
}

/// The server side, opened by [`Client::dial`].
struct Server {
    activity: Activity,
}

impl Protocol for Server {
    fn on_input(&mut self, input: &[u8], cx: &mut Cx<'_>) -> Step {
        forward(input, &self.activity, cx)
    }

    fn on_eof(&mut self, unconsumed: &[u8], cx: &mut Cx<'_>) -> Verb {
        half_close(unconsumed, cx)
    }

    fn on_drain(&mut self, _cx: &mut Cx<'_>) -> Verb {
        Verb::Read
    }
}

/// Until the link is made the input stays buffered; it is handed over again then.
fn forward(input: &[u8], activity: &Activity, cx: &mut Cx<'_>) -> Step {
    let now = cx.now();
    match cx.peer_out() {
        Some(out) => {
            out.extend_from_slice(input);
            activity.set(Some(now));
            Step::new(input.len(), Verb::Read)
        }
        None => Step::new(0, Verb::Read),
    }
}

fn half_close(unconsumed: &[u8], cx: &mut Cx<'_>) -> Verb {
    match cx.peer_out() {
        Some(out) => out.extend_from_slice(unconsumed),
        None => return Verb::CloseAfterFlush,
    }
    cx.shutdown_peer_write();
    Verb::Read
}

#[cfg(test)]
mod tests;
