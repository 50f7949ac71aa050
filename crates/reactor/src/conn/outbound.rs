//! The connecting part of an outbound connection's life; once connected it is driven like
//! any other (`conn.rs`).

use std::io;

use mio::{Interest, Registry};

use super::lifecycle::State;
use super::{Conn, Env};
use crate::moment::Moment;
use crate::protocol::Protocol;
use crate::socket::Stream;
use crate::token::ConnToken;
use crate::transport::Transport;

impl Conn {
    /// An outbound connection still connecting: `WRITABLE` is registered from the start (a
    /// connect completes as writable), and `timeout` is its io deadline until it connects.
    pub fn outbound(
        stream: Stream,
        token: ConnToken,
        listener: usize,
        protocol: Box<dyn Protocol>,
        connect_by: Moment,
    ) -> Self {
        let mut conn = Self::new(Transport::Plain(stream), token, listener, protocol);
        conn.state = State::Connecting;
        conn.outbound = true;
        conn.io_deadline = Some(connect_by);
        conn
    }

    /// True for a connection this shard opened.
    pub fn is_outbound(&self) -> bool {
        self.outbound
    }

    /// Registers an outbound connection for both readiness kinds.
    pub fn register_connecting(&mut self, registry: &Registry) -> io::Result<()> {
        self.writable_registered = true;
        self.stream.register(
            registry,
            self.token.to_mio(),
            Interest::READABLE | Interest::WRITABLE,
        )
    }

    /// Where a connecting connection stands: `Ok(true)` once connected (it then reads like an
    /// accepted one; its protocol's `on_open` is the caller's next call), `Ok(false)` while
    /// connecting, `Err` when the connect failed.
    pub fn poll_connect(&mut self) -> io::Result<bool> {
        if self.state != State::Connecting {
            return Ok(true);
        }
        let connected = self.stream.connect_state()?;
        if connected {
            self.state = State::Reading { eof_seen: false };
            self.io_deadline = None;
        }
        Ok(connected)
    }

    /// True while connecting, with its connect deadline passed at `now`.
    pub fn connect_expired(&self, now: Moment) -> bool {
        self.state == State::Connecting && self.io_deadline.is_some_and(|at| at <= now)
    }

    /// Arms the timer for the connect deadline.
    pub fn arm(&mut self, env: &mut Env<'_>) {
        self.sync_timer(env);
    }
}
