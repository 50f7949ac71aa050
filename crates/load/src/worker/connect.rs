//! How a worker's connection slot gets a socket: connect, the TLS handshake, backing off
//! after a failure, and reconnecting after a close. The request traffic on an open socket
//! is the parent module's.

use std::cmp::Reverse;
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Timer, Worker};
use crate::conn::{Phase, Stream};
use crate::exchange::{self, ReadUntil};
use crate::stats::ErrorKind;

impl Worker {
    pub(super) fn on_connect_timer(&mut self, local: usize, now: Instant) {
        if self.conns[local].phase != Phase::Waiting || self.env.stopping {
            return;
        }
        self.connect(local, now);
    }

    /// Opens a new socket for slot `local`.
    pub(super) fn connect(&mut self, local: usize, now: Instant) {
        let plan = Arc::clone(&self.env.plan);
        let conn = &mut self.conns[local];
        if conn.next_due.is_none() {
            conn.next_due = plan.first_due(local, conn.global);
        }
        conn.generation = conn.generation.wrapping_add(1);
        let token = conn.token(local);
        let source = plan.source_for(conn.global);
        let opened =
            Stream::connect(&plan.endpoint, source, self.tls.as_ref()).and_then(|mut s| {
                s.register(self.poll.registry(), token)?;
                Ok(s)
            });
        match opened {
            Ok(s) => {
                conn.stream = Some(s);
                conn.phase = Phase::Connecting(now);
            }
            Err(e) => self.connect_failed(local, &e, now),
        }
    }

    pub(super) fn connect_failed(&mut self, local: usize, e: &io::Error, now: Instant) {
        self.env.stats.connect_failed(e);
        self.retry_connect(local, now);
    }

    pub(super) fn handshake_failed(&mut self, local: usize, f: crate::tls::Failure, now: Instant) {
        self.env.stats.tls.failures.count(f);
        self.env.stats.errors.tls += 1;
        self.retry_connect(local, now);
    }

    /// After a failed connect or handshake: back off, then connect again.
    pub(super) fn retry_connect(&mut self, local: usize, now: Instant) {
        let conn = &mut self.conns[local];
        // Requests kept for a retry after a clean close are lost with the reconnect.
        exchange::fail_all(conn, &mut self.env, ErrorKind::Read);
        conn.close(self.poll.registry());
        if self.env.stopping {
            conn.phase = Phase::Done;
            return;
        }
        conn.phase = Phase::Waiting;
        let delay = conn.next_backoff();
        self.timers
            .push(Reverse((now + delay, local, Timer::Connect)));
    }

    pub(super) fn check_connected(&mut self, local: usize, since: Instant, now: Instant) {
        let done = match self.conns[local].stream.as_ref() {
            Some(s) => s.connect_done(),
            None => return,
        };
        match done {
            Ok(false) => {}
            Err(e) => self.connect_failed(local, &e, now),
            Ok(true) => {
                self.env
                    .stats
                    .connect_time
                    .record(now.saturating_duration_since(since));
                let tls = self.conns[local]
                    .stream
                    .as_ref()
                    .is_some_and(Stream::is_tls);
                if tls {
                    self.conns[local].phase = Phase::Handshaking(now);
                    self.handshake(local, now);
                } else {
                    self.open(local);
                }
            }
        }
    }

    /// Advances a TLS handshake begun at `since`; opens the slot once done.
    pub(super) fn handshake(&mut self, local: usize, since: Instant) {
        let Some(stream) = self.conns[local].stream.as_mut() else {
            return;
        };
        match stream.handshake() {
            Ok(false) => {}
            Err(f) => self.handshake_failed(local, f, Instant::now()),
            Ok(true) => {
                let now = Instant::now();
                if let Some(agreed) = stream.agreed() {
                    let measured = self.measuring && !self.env.stopping;
                    let time = now.saturating_duration_since(since);
                    self.env.stats.tls.completed(agreed, time, measured);
                }
                self.open(local);
            }
        }
    }

    /// The slot's socket is ready for requests (connected, and TLS done).
    pub(super) fn open(&mut self, local: usize) {
        let conn = &mut self.conns[local];
        let stats = &mut self.env.stats;
        stats.opened();
        if conn.ever_connected {
            stats.reconnects += 1;
        }
        conn.ever_connected = true;
        conn.phase = Phase::Open;
        // Registered for the connect; `sync_interest` drops WRITABLE if nothing is pending.
        conn.write_interest = true;
        conn.backoff = Duration::from_millis(10);
        conn.requeue(self.env.plan.batch.unit());
        self.pump(local, ReadUntil::WouldBlock);
    }

    /// A clean close: unanswered requests are written again on the new socket
    /// (also while draining, so they can still be answered).
    pub(super) fn reconnect(&mut self, local: usize, now: Instant) {
        exchange::note_retry(&self.conns[local], &mut self.env);
        self.drop_socket(local);
        // A budget spent means no request would use the new socket: with a
        // connection per request (and TLS), it would be a handshake the
        // server counts and the report could not account for.
        if !self.env.may_start() && self.conns[local].in_flight.is_empty() {
            self.conns[local].phase = Phase::Done;
            return;
        }
        self.connect(local, now);
    }

    pub(super) fn fail(&mut self, local: usize, kind: ErrorKind, now: Instant) {
        exchange::fail_all(&mut self.conns[local], &mut self.env, kind);
        self.drop_socket(local);
        if self.env.stopping {
            self.conns[local].phase = Phase::Done;
            return;
        }
        self.connect(local, now);
    }

    pub(super) fn drop_socket(&mut self, local: usize) {
        let conn = &mut self.conns[local];
        if conn.phase == Phase::Open {
            self.env.stats.open -= 1;
        }
        conn.close(self.poll.registry());
        conn.phase = Phase::Waiting;
    }
}
