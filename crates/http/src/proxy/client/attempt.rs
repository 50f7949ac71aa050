//! How one attempt of a proxied request reaches its server: a pooled connection taken, or a
//! new one dialed; and when a failed attempt is made again (docs/PROXY.md, "Upstream
//! keep-alive", "Retries"): only when nothing of the request was sent, or when it is
//! idempotent, has no body and no response byte came back.

use std::cell::RefCell;
use std::rc::Rc;

use coreloop_reactor::{Cx, Verb};

use super::ProxyExchange;
use crate::conn::{HttpConn, Phase};
use crate::proxy::pool::Parked;
use crate::proxy::upstream::UpstreamSide;
use crate::proxy::{Attempt, Outcome, Pick};

/// What a failed attempt allows, when no response byte came back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Retry {
    /// A new connection to the same server: the pooled one closed before it answered.
    Redial,
    /// Another server (an idempotent request on a new connection that closed unanswered).
    Elsewhere,
}

impl HttpConn {
    /// The timer of a new attempt: none while connecting (the reactor's connect timeout
    /// answers for it); on a pooled connection, the body's or the response's at once.
    pub(super) fn arm_attempt(&mut self, claimed: bool, cx: &mut Cx<'_>) {
        let timeout = self.proxy_mut().map(|p| p.spec.response_timeout);
        match (claimed, timeout) {
            (true, Some(_)) if self.phase == Phase::Body => self.arm_body(cx),
            (true, Some(timeout)) => self.arm_proxy(timeout, cx),
            _ => self.clear_timer(cx),
        }
    }

    /// A pooled connection wrote the request head: a request body may follow it now.
    pub(super) fn proxy_started(&mut self, cx: &mut Cx<'_>) -> Verb {
        let Some(proxy) = self.proxy_mut() else {
            return self.idle_verb();
        };
        if !std::mem::take(&mut proxy.awaits_start) {
            return self.idle_verb();
        }
        cx.resume();
        Verb::Read
    }

    /// Whether the failed attempt (closed, no response byte) may be made again.
    pub(super) fn retry_kind(&self) -> Option<Retry> {
        let proxy = self.exchange.as_ref()?.proxy.as_ref()?;
        let pipe = proxy.pipe.borrow();
        if pipe.answered {
            return None;
        }
        if !pipe.started {
            // Nothing of it was sent: the pooled connection closed before it was used.
            return Some(Retry::Redial);
        }
        if !proxy.idempotent || proxy.body {
            return None;
        }
        Some(if proxy.reused {
            Retry::Redial
        } else {
            Retry::Elsewhere
        })
    }

    /// Makes the attempt again, on a new pipe (the old upstream side, if it lives on, writes
    /// nothing this request reads). `false`: no server left to try.
    pub(super) fn proxy_retry(&mut self, retry: Retry, cx: &mut Cx<'_>) -> bool {
        let now = cx.now();
        let Some(proxy) = self.proxy_mut() else {
            return false;
        };
        let latency = (proxy.pipe.borrow().connected)
            .map(|at| now.saturating_duration_since(at))
            .unwrap_or_default();
        let fresh = proxy.pipe.borrow_mut().retried(proxy.body);
        proxy.pipe = Rc::new(RefCell::new(fresh));
        proxy.upstream = None;
        proxy.awaits_start = false;
        tracing::debug!(upstream = %proxy.spec.upstream, ?retry, "retrying a request");
        let claimed = match retry {
            Retry::Redial => {
                if let Some(ticket) = proxy.ticket.as_mut() {
                    ticket.attempt(Attempt::Redial);
                }
                dial(proxy, cx);
                false
            }
            Retry::Elsewhere => {
                let Some(mut ticket) = proxy.ticket.take() else {
                    return false;
                };
                ticket.finished(Outcome::Closed, latency);
                let Some(pick) = ticket.retry_elsewhere(now) else {
                    return false;
                };
                attempt(proxy, pick, cx)
            }
        };
        self.arm_attempt(claimed, cx);
        true
    }
}

/// Takes an idle pooled connection to the picked server, or dials one. `true`: pooled (it is
/// linked now and told to send the request).
pub(super) fn attempt(proxy: &mut ProxyExchange, pick: Pick, cx: &mut Cx<'_>) -> bool {
    let parked = pick.pool.as_ref().and_then(|pool| pool.take());
    attempt_taken(proxy, pick, parked, cx)
}

/// [`attempt`] with the pooled connection (if any) taken already.
pub(super) fn attempt_taken(
    proxy: &mut ProxyExchange,
    pick: Pick,
    parked: Option<Rc<Parked>>,
    cx: &mut Cx<'_>,
) -> bool {
    proxy.ticket = Some(pick.ticket);
    proxy.server = Some((pick.addr, pick.connect_timeout, pick.pool));
    match parked {
        Some(parked) => {
            claim(proxy, &parked, cx);
            true
        }
        None => {
            if let Some(ticket) = proxy.ticket.as_mut() {
                ticket.attempt(Attempt::Dial);
            }
            dial(proxy, cx);
            false
        }
    }
}

/// A new connection to the attempt's server.
fn dial(proxy: &mut ProxyExchange, cx: &mut Cx<'_>) {
    let Some((addr, timeout, pool)) = proxy.server.clone() else {
        return;
    };
    proxy.reused = false;
    let home = pool.as_ref().filter(|p| p.keeps()).map(Rc::downgrade);
    let side = UpstreamSide::new(proxy.pipe.clone(), home);
    cx.connect(addr, timeout, Box::new(side));
}

/// Hands the request to a parked connection and links to it; the upstream side writes the
/// request when the link is made (its `on_linked`, later in this loop turn).
fn claim(proxy: &mut ProxyExchange, parked: &Rc<Parked>, cx: &mut Cx<'_>) {
    if let Some(ticket) = proxy.ticket.as_mut() {
        ticket.attempt(Attempt::Reuse);
    }
    proxy.reused = true;
    proxy.awaits_start = proxy.body;
    proxy.upstream = Some(parked.addr);
    proxy.pipe.borrow_mut().connected = Some(cx.now());
    *parked.next.borrow_mut() = Some(proxy.pipe.clone());
    cx.link(parked.addr);
}
