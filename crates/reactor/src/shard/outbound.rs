//! Outbound connections on the shard: starting the connects protocols asked for, finishing
//! them on their first event or timing them out, and telling the connection that asked.

use std::time::Instant;

use super::{env, split, Loop, Shard};
use crate::conn::Conn;
use crate::message::{ConnAddr, Local};
use crate::moment::Moment;
use crate::outbound::{ConnectError, ConnectId, ConnectOutcome, Pending};
use crate::socket::Stream;
use crate::stats::{bump, set, CloseReason};
use crate::token::ConnToken;

impl Shard {
    /// Starts every connect asked for since the last turn. A request whose asker closed in
    /// the meantime is dropped: nobody would hear its outcome.
    pub(super) fn open_outbound(&mut self, state: &mut Loop, now: Instant) {
        for request in std::mem::take(&mut state.connects.queue) {
            let Some(asker) = state.conns.get_mut(request.asker) else {
                continue;
            };
            let listener = asker.listener();
            bump(&self.stats.outbound.connects, 1);
            if !self.room_for_outbound(state.conns.len()) {
                self.connect_failed(request.asker, request.id, ConnectError::NoRoom);
                continue;
            }
            let stream = match Stream::connect(&request.target) {
                Ok(stream) => stream,
                Err(error) => {
                    self.connect_failed(request.asker, request.id, ConnectError::of(&error));
                    continue;
                }
            };
            let registry = self.poll.registry();
            let connect_by = Moment::new(state.timers.epoch(), now + request.timeout);
            let protocol = request.protocol;
            let inserted = state.conns.insert_with(|token| {
                let mut conn = Conn::outbound(stream, token, listener, protocol, connect_by);
                conn.register_connecting(registry).ok()?;
                Some(conn)
            });
            let Some(token) = inserted else {
                let error = ConnectError::Other(std::io::ErrorKind::Other);
                self.connect_failed(request.asker, request.id, error);
                continue;
            };
            set(&self.stats.balance.active, state.conns.len() as u64);
            bump(&self.stats.outbound.active, 1);
            state.pending.push(Pending {
                token,
                asker: request.asker,
                id: request.id,
            });
            let (conns, parts) = split(state);
            if let Some(conn) = conns.get_mut(token) {
                conn.arm(&mut env(self, parts, now, listener));
            }
        }
    }

    /// A readiness event for `token`: `true` when it was a connecting connection's (handled
    /// here), `false` for any other connection.
    pub(super) fn connect_event(
        &mut self,
        state: &mut Loop,
        token: ConnToken,
        now: Instant,
    ) -> bool {
        let Some(at) = state.pending.iter().position(|p| p.token == token) else {
            return false;
        };
        let Some(conn) = state.conns.get_mut(token) else {
            state.pending.swap_remove(at);
            return true;
        };
        match conn.poll_connect() {
            Ok(false) => {}
            Ok(true) => {
                let pending = state.pending.swap_remove(at);
                bump(&self.stats.outbound.connected, 1);
                let addr = ConnAddr {
                    shard: self.id,
                    token,
                };
                self.tell(pending.asker, pending.id, Ok(addr));
                let draining = state.draining.is_some();
                self.drive(state, token, now, |conn, env| {
                    conn.on_open(env)?;
                    // Bytes (or a FIN) may have come with the connect's edge.
                    conn.on_readable(env, true)?;
                    if draining {
                        conn.on_drain(env)?;
                    }
                    Ok(())
                });
            }
            Err(error) => {
                let pending = state.pending.swap_remove(at);
                self.connect_failed(pending.asker, pending.id, ConnectError::of(&error));
                self.close(state, token, now, CloseReason::IoError);
            }
        }
        true
    }

    /// The wheel fired for `token`: `true` when it was a connecting connection's.
    pub(super) fn connect_timer(
        &mut self,
        state: &mut Loop,
        token: ConnToken,
        now: Instant,
    ) -> bool {
        let Some(at) = state.pending.iter().position(|p| p.token == token) else {
            return false;
        };
        let epoch = state.timers.epoch();
        let Some(conn) = state.conns.get_mut(token) else {
            state.pending.swap_remove(at);
            return true;
        };
        if !conn.connect_expired(Moment::new(epoch, now)) {
            // Connected meanwhile (its event is on the way), or the wheel fired early.
            if !self.connect_event(state, token, now) {
                return false;
            }
            let listener = state.conns.get_mut(token).map(|c| c.listener());
            if let Some(listener) = listener {
                let (conns, parts) = split(state);
                if let Some(conn) = conns.get_mut(token) {
                    conn.arm(&mut env(self, parts, now, listener));
                }
            }
            return true;
        }
        let pending = state.pending.swap_remove(at);
        self.connect_failed(pending.asker, pending.id, ConnectError::TimedOut);
        self.close(state, token, now, CloseReason::IoError);
        true
    }

    /// An outbound connection closed: if it was still connecting (a drain closed it), its
    /// asker hears that it was aborted.
    pub(super) fn outbound_closed(&mut self, state: &mut Loop, token: ConnToken) {
        if let Some(at) = state.pending.iter().position(|p| p.token == token) {
            let pending = state.pending.swap_remove(at);
            self.connect_failed(pending.asker, pending.id, ConnectError::Aborted);
        }
    }

    /// Outbound connections hold fds like accepted ones: they start only below the limits
    /// that `max_connections` (checked against the fd limit at start) sets.
    fn room_for_outbound(&self, here: usize) -> bool {
        let limits = &self.limits;
        if limits.per_shard.is_some_and(|max| here >= max) {
            return false;
        }
        let total: u64 = limits
            .shards
            .iter()
            .map(|shard| {
                shard
                    .balance
                    .active
                    .load(std::sync::atomic::Ordering::Relaxed)
            })
            .sum();
        total < limits.global as u64
    }

    fn connect_failed(&mut self, asker: ConnToken, id: ConnectId, error: ConnectError) {
        let counter = match error {
            ConnectError::Refused => &self.stats.outbound.refused,
            ConnectError::TimedOut => &self.stats.outbound.timed_out,
            ConnectError::Aborted | ConnectError::NoRoom | ConnectError::Other(_) => {
                &self.stats.outbound.failed
            }
        };
        bump(counter, 1);
        self.tell(asker, id, Err(error));
    }

    /// Queues the outcome for the asker, delivered in this turn's local pass.
    fn tell(&mut self, asker: ConnToken, id: ConnectId, result: Result<ConnAddr, ConnectError>) {
        let outcome = ConnectOutcome { id, result };
        self.mail.local.push_back((asker, Local::Connect(outcome)));
    }
}
