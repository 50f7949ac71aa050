//! What the reactor needs to know to start: threads, balancing, limits, IO sizes, listeners.

use std::sync::Arc;
use std::time::Duration;

use crate::protocol::ProtocolFactory;
use crate::socket::ListenAddr;

/// How accepted connections are spread over shards.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Balance {
    /// An acceptor thread hands each connection to the shard with the fewest live plus
    /// in-flight connections (round-robin among ties).
    #[default]
    LeastLoaded,
    /// An acceptor thread hands connections to shards in turn: a baseline to compare against.
    RoundRobin,
    /// Every shard binds its own `SO_REUSEPORT` listener and accepts for itself; the kernel
    /// spreads connections by a hash of the 4-tuple.
    ReusePort,
}

impl Balance {
    /// Parses `least-loaded`, `round-robin` or `reuseport`.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "least-loaded" => Some(Self::LeastLoaded),
            "round-robin" => Some(Self::RoundRobin),
            "reuseport" => Some(Self::ReusePort),
            _ => None,
        }
    }

    /// The name `parse` accepts.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::LeastLoaded => "least-loaded",
            Self::RoundRobin => "round-robin",
            Self::ReusePort => "reuseport",
        }
    }
}

/// A listener's own IO settings; `None` takes the reactor-wide value of [`ReactorConfig`].
/// Start from [`Default`] (all `None`) and set fields or use the `with_` methods; new fields
/// may come, so it cannot be built with a struct literal outside this crate.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ListenerIo {
    /// [`ReactorConfig::write_timeout`] for this listener's connections.
    pub write_timeout: Option<Duration>,
    /// [`ReactorConfig::linger`] for this listener's connections.
    pub linger: Option<Duration>,
    /// At a drain, this listener's connections still open this long after it began are
    /// closed (`CloseReason::Drain`), instead of at the deadline given to
    /// [`crate::ReactorHandle::begin_drain`]; longer than that deadline keeps the shards
    /// running for them.
    pub drain: Option<Duration>,
    /// [`ReactorConfig::read_buffer`] for this listener's connections (each listener has its
    /// own buffer pool on each shard).
    pub read_buffer: Option<usize>,
    /// [`ReactorConfig::write_high_water`] for this listener's connections.
    pub write_high_water: Option<usize>,
    /// [`ReactorConfig::keepalive_grace`] for this listener's connections.
    pub keepalive_grace: Option<Duration>,
}

impl ListenerIo {
    /// With its own [`ListenerIo::write_timeout`].
    pub fn with_write_timeout(mut self, timeout: Duration) -> Self {
        self.write_timeout = Some(timeout);
        self
    }

    /// With its own [`ListenerIo::linger`].
    pub fn with_linger(mut self, linger: Duration) -> Self {
        self.linger = Some(linger);
        self
    }

    /// With its own [`ListenerIo::drain`].
    pub fn with_drain(mut self, drain: Duration) -> Self {
        self.drain = Some(drain);
        self
    }

    /// With its own [`ListenerIo::read_buffer`].
    pub fn with_read_buffer(mut self, bytes: usize) -> Self {
        self.read_buffer = Some(bytes);
        self
    }

    /// With its own [`ListenerIo::write_high_water`].
    pub fn with_write_high_water(mut self, bytes: usize) -> Self {
        self.write_high_water = Some(bytes);
        self
    }

    /// With its own [`ListenerIo::keepalive_grace`].
    pub fn with_keepalive_grace(mut self, grace: Duration) -> Self {
        self.keepalive_grace = Some(grace);
        self
    }
}

/// One listening address and the protocol spoken on it. Made with [`ListenerSpec::new`]; new
/// fields may come, so it cannot be built with a struct literal outside this crate.
#[derive(Clone)]
#[non_exhaustive]
pub struct ListenerSpec {
    /// A name for logs and metric labels.
    pub name: String,
    /// Where to listen.
    pub addr: ListenAddr,
    /// The kernel's accept queue length (`listen(2)` backlog).
    pub backlog: u32,
    /// Makes the protocol objects of this listener's connections.
    pub protocol: Arc<dyn ProtocolFactory>,
    /// This listener's own IO settings, over the reactor-wide ones.
    pub io: ListenerIo,
    /// TLS on every connection of this listener; `None`: plaintext.
    pub tls: Option<Arc<crate::tls::TlsListener>>,
}

impl ListenerSpec {
    /// A listener named `name` (for logs and metric labels) on `addr`, speaking `protocol`
    /// (an `Arc` of a [`ProtocolFactory`], or of a closure `Fn(&ConnInfo) -> P`), with a
    /// backlog of 1024 and the reactor-wide IO settings.
    ///
    /// [`ConnInfo`]: crate::ConnInfo
    pub fn new(
        name: impl Into<String>,
        addr: ListenAddr,
        protocol: Arc<dyn ProtocolFactory>,
    ) -> Self {
        Self {
            name: name.into(),
            addr,
            backlog: DEFAULT_BACKLOG,
            protocol,
            io: ListenerIo::default(),
            tls: None,
        }
    }

    /// With a `listen(2)` backlog of `backlog`.
    pub fn with_backlog(mut self, backlog: u32) -> Self {
        self.backlog = backlog;
        self
    }

    /// With its own IO settings.
    pub fn with_io(mut self, io: ListenerIo) -> Self {
        self.io = io;
        self
    }

    /// With TLS on every connection (see [`crate::tls`]).
    pub fn with_tls(mut self, tls: Arc<crate::tls::TlsListener>) -> Self {
        self.tls = Some(tls);
        self
    }
}

/// The backlog of [`ListenerSpec::new`].
const DEFAULT_BACKLOG: u32 = 1024;

impl std::fmt::Debug for ListenerSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ListenerSpec")
            .field("name", &self.name)
            .field("addr", &self.addr)
            .field("backlog", &self.backlog)
            .field("io", &self.io)
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

/// The reactor's settings. [`Default`] gives sensible values and no listener; set fields on
/// it, and add listeners with [`ReactorConfig::with_listener`]. New fields may come, so it
/// cannot be built with a struct literal outside this crate.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ReactorConfig {
    /// Shard threads (event loops).
    pub shards: usize,
    /// How connections are spread over shards.
    pub balance: Balance,
    /// Pin shard `i` to core `i` (modulo the core count).
    pub pin_cores: bool,
    /// Open connections over all shards; above it accepting stops and the backlog holds the rest.
    pub max_connections: usize,
    /// Open connections on one shard.
    pub max_connections_per_shard: Option<usize>,
    /// File descriptors kept for what is not a connection (listeners, epolls, wakers, stdio,
    /// logs, files): `max_connections` plus this must fit in the fd limit. `None`: the
    /// reactor's own estimate, [`crate::limits::reserved_fds`]. A server with a config file
    /// passes the margin its `check-config` uses, so both say the same.
    pub fd_reserve: Option<u64>,
    /// Offload pool threads.
    pub offload_threads: usize,
    /// Offload jobs that may wait for a thread; more are refused at once.
    pub offload_queue: usize,
    /// Handoffs that may wait in one shard's inbox.
    pub inbox_capacity: usize,
    /// Messages for connections that may wait on one shard: in its inbox (from other shards
    /// and threads), and again in its local queue (from its own connections). A send beyond
    /// that is refused with [`crate::SendError::Full`].
    pub message_capacity: usize,
    /// Connections accepted per listener before the acceptor looks at its other work.
    pub accept_batch: usize,
    /// Size of a pooled read buffer.
    pub read_buffer: usize,
    /// Unconsumed input a connection may hold; more closes it.
    pub max_input: usize,
    /// Bytes read from one connection per readiness event before the others get their turn.
    pub read_budget: usize,
    /// Pending output above which a connection's input is not read.
    pub write_high_water: usize,
    /// How long pending output may make no progress before the connection is closed.
    pub write_timeout: Duration,
    /// How long a closing connection's input is drained after its write side was shut down.
    pub linger: Duration,
    /// Near `max_connections` (free slots below 1/16 of the limit, global or per shard), idle
    /// keep-alive connections (see [`crate::Cx::mark_idle`]) are closed oldest first, but only
    /// those idle at least this long: a request may already be on the wire to a younger one.
    pub keepalive_grace: Duration,
    /// How long accepting pauses after `EMFILE`/`ENFILE`.
    pub accept_backoff: Duration,
    /// Resolution of each shard's timer wheel.
    pub timer_tick: Duration,
    /// The listeners, in order; their index is the `listener` of [`crate::ConnInfo`].
    pub listeners: Vec<ListenerSpec>,
}

impl ReactorConfig {
    /// With `spec` as its next listener (its index is the listener's id).
    pub fn with_listener(mut self, spec: ListenerSpec) -> Self {
        self.listeners.push(spec);
        self
    }
}

impl Default for ReactorConfig {
    fn default() -> Self {
        Self {
            shards: num_cpus::get().max(1),
            balance: Balance::LeastLoaded,
            pin_cores: false,
            max_connections: 10_000,
            max_connections_per_shard: None,
            fd_reserve: None,
            offload_threads: 4,
            offload_queue: 1024,
            inbox_capacity: 4096,
            message_capacity: 65_536,
            accept_batch: 64,
            read_buffer: 16 * 1024,
            max_input: 1024 * 1024,
            read_budget: 256 * 1024,
            write_high_water: 256 * 1024,
            write_timeout: Duration::from_secs(30),
            linger: Duration::from_secs(2),
            keepalive_grace: Duration::from_secs(1),
            accept_backoff: Duration::from_millis(100),
            timer_tick: Duration::from_millis(10),
            listeners: Vec::new(),
        }
    }
}
