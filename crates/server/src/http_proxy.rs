//! Proxy routes on HTTP listeners: the server crate's half of `coreloop_http::ProxySpec`. Each
//! shard builds its own [`ShardUpstream`] for each proxy route's upstream (as tcp-proxy
//! listeners do), so picking, passive health and in-flight counts stay on the shard: no lock.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use coreloop_config::Upstream;
use coreloop_http::{Attempt, Outcome, Pick, ProxySpec, ProxyTarget, ProxyTicket};
use coreloop_metrics::upstream::{ConnectFailure, ResponseFailure, UpstreamStats};
use coreloop_reactor::ConnectError;

use crate::upstream::{ServerSlot, ShardUpstream, Shared, Tried};

/// The route's spec for upstream `spec` with counters `stats`.
pub(crate) fn spec(spec: &Upstream, stats: &Arc<UpstreamStats>) -> ProxySpec {
    let (upstream, stats) = (spec.clone(), stats.clone());
    ProxySpec {
        upstream: spec.name.clone(),
        response_timeout: spec.response_timeout,
        proto: "http",
        strip_prefix: None,
        set_headers: Vec::new(),
        target: Arc::new(move |shard| {
            let view = ShardUpstream::new(&upstream, shard, stats.clone());
            Box::new(Target(Rc::new(RefCell::new(view)))) as Box<dyn ProxyTarget>
        }),
    }
}

struct Target(Shared);

impl ProxyTarget for Target {
    fn pick(&mut self, now: Instant) -> Option<Pick> {
        pick(&self.0, Tried::new(), now)
    }
}

/// A server for one attempt, or `None` (counted, and logged rate-limited) when every server
/// is ejected or was tried.
fn pick(upstream: &Shared, tried: Tried, now: Instant) -> Option<Pick> {
    let mut up = upstream.borrow_mut();
    let Some(server) = up.choose(now, &tried) else {
        up.no_server();
        if let Some(suppressed) = up.log_gate(now) {
            tracing::warn!(
                "upstream {}: no server to try (all ejected or failed){}",
                up.name,
                suppressed_note(suppressed)
            );
        }
        return None;
    };
    if !tried.is_empty() {
        server.counters().retried();
    }
    let addr = server.addr.clone();
    let connect_timeout = up.connect_timeout;
    drop(up);
    let pool = Some(server.pool.clone());
    Some(Pick {
        addr,
        connect_timeout,
        pool,
        ticket: Box::new(Ticket {
            upstream: upstream.clone(),
            server: Some(server),
            tried,
        }),
    })
}

/// Another server for a request its server closed unanswered, or `None`, quietly: that
/// request's 502 is the server's failure, already counted and logged, not a lack of servers.
fn pick_other(upstream: &Shared, tried: Tried, now: Instant) -> Option<Pick> {
    let any = {
        let up = upstream.borrow();
        up.has_other(now, &tried)
    };
    if any {
        pick(upstream, tried, now)
    } else {
        None
    }
}

struct Ticket {
    upstream: Shared,
    /// Released in `Drop`, so every way a request ends gives the in-flight count back.
    server: Option<Rc<ServerSlot>>,
    tried: Tried,
}

impl ProxyTicket for Ticket {
    /// Not a success yet for passive health: a server that accepts connections and then
    /// answers garbage, resets or stalls is as broken as one that refuses them, so on an
    /// HTTP route only a complete response clears its failures (`finished`).
    fn connected(&mut self, _now: Instant) {}

    /// As tcp-proxy's retry: nothing was sent, so another server is always safe to try.
    fn retry(mut self: Box<Self>, error: ConnectError, now: Instant) -> Option<Pick> {
        let server = self.server.take()?;
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
            return None;
        }
        let mut up = self.upstream.borrow_mut();
        let ejected = up.failed(&server, now);
        if let Some(suppressed) = up.log_gate(now) {
            let what = if ejected { "; ejected" } else { "" };
            tracing::warn!(
                "upstream {} server {}: connect {error:?}{what}{}",
                up.name,
                server.addr,
                suppressed_note(suppressed)
            );
        }
        drop(up);
        let mut tried = std::mem::take(&mut self.tried);
        tried.push(server);
        pick(&self.upstream, tried, now)
    }

    fn attempt(&mut self, attempt: Attempt) {
        self.count(attempt);
    }

    fn retry_elsewhere(self: Box<Self>, now: Instant) -> Option<Pick> {
        (*self).elsewhere(now)
    }

    /// Counted and timed; judged by passive health: a complete response (any status: the
    /// server answered) clears the server's failures, a failed one is a failure toward
    /// `max_fails` like a failed connect. A failure is logged rate-limited.
    fn finished(&mut self, outcome: Outcome, latency: Duration) {
        let Some(server) = &self.server else { return };
        let counters = server.counters();
        counters.response_took(latency);
        let (failure, what) = match outcome {
            Outcome::Complete(status) => {
                counters.responded(status);
                self.upstream.borrow_mut().connected(server);
                return;
            }
            Outcome::Invalid => (ResponseFailure::Invalid, "invalid response"),
            Outcome::TimedOut => (ResponseFailure::TimedOut, "no response head in time"),
            Outcome::Closed => (ResponseFailure::Closed, "closed before the response ended"),
        };
        counters.response_failed(failure);
        let now = Instant::now();
        let mut up = self.upstream.borrow_mut();
        let ejected = up.failed(server, now);
        if let Some(suppressed) = up.log_gate(now) {
            let ejected = if ejected { "; ejected" } else { "" };
            tracing::warn!(
                "upstream {} server {}: {what}{ejected}{}",
                up.name,
                server.addr,
                suppressed_note(suppressed)
            );
        }
    }
}

impl Ticket {
    /// Pool side of [`ProxyTicket`]: what to count for one way of reaching the server.
    fn count(&self, attempt: Attempt) {
        let Some(server) = &self.server else { return };
        let counters = server.counters();
        counters.request_sent();
        match attempt {
            Attempt::Dial => counters.connect_started(),
            Attempt::Reuse => counters.reused(),
            Attempt::Redial => {
                counters.connect_started();
                counters.retried();
            }
        }
    }

    /// Pool side of [`ProxyTicket`]: the server closed an idempotent request unanswered; it
    /// joins the tried ones (not judged: only connects are) and another is picked.
    fn elsewhere(mut self, now: Instant) -> Option<Pick> {
        let server = self.server.take()?;
        server.release();
        let mut tried = std::mem::take(&mut self.tried);
        tried.push(server);
        pick_other(&self.upstream, tried, now)
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            server.release();
        }
    }
}

fn suppressed_note(suppressed: u64) -> String {
    if suppressed == 0 {
        String::new()
    } else {
        format!(" ({suppressed} similar lines suppressed)")
    }
}
