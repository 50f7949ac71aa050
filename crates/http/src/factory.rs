//! The factories the reactor calls, the per-shard state connections share, and live reload.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use std::net::SocketAddr;

use coreloop_reactor::token::ConnToken;
use coreloop_reactor::{ConnFactory, ConnInfo, Protocol, ProtocolFactory};
use crossbeam_utils::CachePadded;

use crate::access::{AccessLog, AccessLogHook};
use crate::config::HttpConfig;
use crate::conn::{HttpConn, Scratch};
use crate::exchange::{Exchange, Work};
use crate::files::OpenFiles;
use crate::held::Held;
use crate::response::{format_date, DateBytes};
use crate::router::{Route, RouteError, RouteTable};
use crate::stamp::{Stamp, Untimed};
use crate::stats::{HttpStats, ShardHttpStats};

/// A config and its compiled routes: what a connection consults at each request.
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    pub config: HttpConfig,
    pub routes: RouteTable,
}

/// A live change of config and routes, made by [`HttpFactory::reload`] and delivered to every
/// shard with `ReactorHandle::broadcast(listener, message)`.
#[derive(Debug)]
pub struct HttpReload {
    settings: Arc<Settings>,
}

/// The HTTP protocol factory of one listener.
#[derive(Debug)]
pub struct HttpFactory {
    current: Mutex<Arc<Settings>>,
    stats: Arc<HttpStats>,
    access_log: Option<AccessLog>,
}

impl HttpFactory {
    /// Compiles `routes` (pre-encoding static responses, canonicalizing file roots).
    pub fn new(config: HttpConfig, routes: Vec<Route>) -> Result<Arc<Self>, RouteError> {
        Self::with_access_log(config, routes, None)
    }

    /// Like [`HttpFactory::new`], with a hook that receives a record of every response
    /// (it stays across reloads).
    pub fn with_access_log(
        config: HttpConfig,
        routes: Vec<Route>,
        access_log: Option<AccessLogHook>,
    ) -> Result<Arc<Self>, RouteError> {
        let stats = Arc::<HttpStats>::default();
        let mut table = RouteTable::new(routes)?;
        table.label(&stats);
        let settings = Arc::new(Settings {
            config,
            routes: table,
        });
        Ok(Arc::new(Self {
            current: Mutex::new(settings),
            stats,
            access_log: access_log.map(AccessLog),
        }))
    }

    /// The per-shard counters of this listener, for the metrics scraper.
    pub fn stats(&self) -> Arc<HttpStats> {
        self.stats.clone()
    }

    /// Compiles a new config and route table and makes it current for shards started later;
    /// broadcast the returned message to reach running shards. Connections keep going and use
    /// the new settings from their next request on. An invalid table changes nothing.
    pub fn reload(
        &self,
        config: HttpConfig,
        routes: Vec<Route>,
    ) -> Result<Arc<HttpReload>, RouteError> {
        let mut table = RouteTable::new(routes)?;
        table.label(&self.stats);
        let settings = Arc::new(Settings {
            config,
            routes: table,
        });
        *self.current.lock().unwrap_or_else(PoisonError::into_inner) = settings.clone();
        Ok(Arc::new(HttpReload { settings }))
    }

    fn settings(&self) -> Arc<Settings> {
        self.current
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl ProtocolFactory for HttpFactory {
    fn for_shard(&self, shard: usize) -> Box<dyn ConnFactory> {
        let settings = (*self.settings()).clone();
        let shared = Shared::new(
            settings,
            self.stats.for_shard(shard),
            self.access_log.clone(),
        );
        Box::new(ShardFactory {
            shared: Rc::new(shared),
        })
    }
}

/// State shared by the connections of one shard: never crosses threads, so no atomics on it
/// (the settings are copied per shard so that taking them per request is a plain `Rc` clone).
pub(crate) struct Shared {
    pub settings: RefCell<Rc<Settings>>,
    pub date: Cell<DateBytes>,
    pub stats: Arc<CachePadded<ShardHttpStats>>,
    /// Serialization scratch (json), kept so its capacity is reused.
    pub scratch: RefCell<Vec<u8>>,
    pub access_log: Option<AccessLog>,
    /// Access log only: this factory's listener, the peer of the connection being opened, and
    /// each live connection's peer by token slot (a slot's entry is replaced by its next
    /// connection, so the table is as long as the most connections ever open at once).
    pub listener: Cell<usize>,
    pub opening: Cell<Option<SocketAddr>>,
    pub peers: RefCell<Vec<Option<SocketAddr>>>,
    /// Per-request buffers of connections that are between requests. Boxed because the boxes
    /// themselves move between the pool and connections: no allocation per request.
    #[allow(clippy::vec_box)]
    pub scratch_pool: RefCell<Vec<Box<Scratch>>>,
    /// The same for the state of a request in progress.
    #[allow(clippy::vec_box)]
    pub exchange_pool: RefCell<Vec<Box<Exchange>>>,
    /// The last response finished on this shard: which connection, in which loop turn, and
    /// the real time then (see [`Shared::request_start`]).
    pub last_done: Cell<Option<LastDone>>,
    /// Responses of the batch being answered, timed when its `on_input` call ends.
    pub untimed: RefCell<Untimed>,
    /// Whether this listener's transport takes `sendfile` (`Cx::can_send_file`), noted at
    /// each accept: every connection of a listener has the same transport.
    pub send_file: Cell<bool>,
    /// This shard's views of the upstreams its proxy routes name.
    pub proxies: crate::proxy::Targets,
    /// Files served lately, kept open to answer on the shard (`crate::files::OpenFiles`).
    pub open_files: RefCell<OpenFiles>,
    /// What connections' accept times are counted from (`Shared::since_epoch`).
    pub epoch: Instant,
}

/// When and where a response was last finished on a shard.
#[derive(Clone, Copy)]
pub(crate) struct LastDone {
    token: ConnToken,
    turn: Instant,
    at: Stamp,
}

/// Idle per-request buffers a shard keeps, and the capacity past which one is dropped instead
/// (one large body should not stay pinned in the pool).
const SCRATCH_POOL: usize = 256;
const SCRATCH_KEPT_BYTES: usize = 64 * 1024;

impl Shared {
    /// A shard's state, before its first connection.
    pub(crate) fn new(
        settings: Settings,
        stats: Arc<CachePadded<ShardHttpStats>>,
        access_log: Option<AccessLog>,
    ) -> Self {
        let wants_peers = settings.routes.has_proxy();
        Shared {
            settings: RefCell::new(Rc::new(settings)),
            date: Cell::new(format_date(UNIX_EPOCH)),
            stats,
            scratch: RefCell::new(Vec::new()),
            access_log,
            listener: Cell::new(0),
            opening: Cell::new(None),
            peers: RefCell::new(Vec::new()),
            scratch_pool: RefCell::new(Vec::new()),
            exchange_pool: RefCell::new(Vec::new()),
            last_done: Cell::new(None),
            untimed: RefCell::new(Untimed::new()),
            send_file: Cell::new(false),
            proxies: crate::proxy::Targets::new(wants_peers),
            open_files: RefCell::new(OpenFiles::default()),
            epoch: Instant::now(),
        }
    }

    /// Nanoseconds from this shard's epoch to `at` (0 before it): a connection's accept time
    /// in 8 bytes. u64 nanoseconds last 584 years.
    pub(crate) fn since_epoch(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.epoch).as_nanos() as u64
    }

    /// The real time a request that begins now on `token` started. When the same connection
    /// finished its previous response in this same loop turn, this one starts at the moment
    /// `note_done` filed, without a clock read: its batch's start when it came in the same
    /// read as that response, else that response's end (nothing ran in between).
    pub(crate) fn request_start(&self, token: ConnToken, turn: Instant) -> Stamp {
        match self.last_done.get() {
            Some(last) if last.token == token && last.turn == turn => last.at,
            _ => Stamp::now(),
        }
    }

    /// Files when the next request of `token` in this turn starts, for
    /// [`Shared::request_start`].
    pub(crate) fn note_done(&self, token: ConnToken, turn: Instant, at: Stamp) {
        self.last_done.set(Some(LastDone { token, turn, at }));
    }

    /// Holds the timing of a response of `token`'s batch begun at `since` ([`Untimed`]).
    pub(crate) fn hold_timing(&self, token: ConnToken, since: Stamp, series: usize) {
        (self.untimed.borrow_mut()).hold(token, since, series, &self.stats);
    }

    /// Times the held responses as ending at `now` (read only when something is held: at
    /// the end of an `on_input` call the batch is about to be written).
    pub(crate) fn time_held(&self, now: impl FnOnce() -> Stamp) {
        let mut untimed = self.untimed.borrow_mut();
        if !untimed.is_empty() {
            untimed.time(now(), &self.stats);
        }
    }

    /// Files the peer `open` saw under the connection's token (access log and proxy routes'
    /// `X-Forwarded-For` only).
    pub(crate) fn note_peer(&self, token: ConnToken) {
        if self.access_log.is_none() && !self.proxies.wants_peers() {
            return;
        }
        let mut peers = self.peers.borrow_mut();
        let slot = token.index();
        if peers.len() <= slot {
            peers.resize(slot + 1, None);
        }
        peers[slot] = self.opening.take();
    }

    /// The peer of the connection with this token, if the access log recorded it.
    pub(crate) fn peer_of(&self, token: ConnToken) -> Option<SocketAddr> {
        self.peers.borrow().get(token.index()).copied().flatten()
    }

    // The four pool calls below run on every request: inlined, their calls cost more than
    // their work did (about 140 instructions per pipelined request in callgrind, together).
    #[inline]
    pub(crate) fn take_scratch(&self) -> Box<Scratch> {
        self.scratch_pool.borrow_mut().pop().unwrap_or_default()
    }

    #[inline]
    pub(crate) fn take_exchange(&self) -> Box<Exchange> {
        self.exchange_pool
            .borrow_mut()
            .pop()
            .unwrap_or_else(|| Box::new(Exchange::empty()))
    }

    #[inline]
    pub(crate) fn give_exchange(&self, mut exchange: Box<Exchange>) {
        // What a request owned beyond its plain fields goes now, not when the box is reused:
        // a job still in flight (its client had a 504) is waited for by nobody, and a
        // proxied request's server is released (its in-flight count balances picks). Most
        // requests own none of it, and skip the drops.
        if !matches!(exchange.work, Work::None)
            || !exchange.held.is_empty()
            || exchange.proxy.is_some()
        {
            exchange.work = Work::None;
            exchange.held.cancel_job();
            exchange.held = Held::default();
            exchange.proxy = None;
        }
        let mut pool = self.exchange_pool.borrow_mut();
        if pool.len() < SCRATCH_POOL {
            pool.push(exchange);
        }
    }

    #[inline]
    pub(crate) fn give_scratch(&self, mut scratch: Box<Scratch>) {
        let mut pool = self.scratch_pool.borrow_mut();
        if pool.len() < SCRATCH_POOL && scratch.capacity() <= SCRATCH_KEPT_BYTES {
            scratch.clear();
            pool.push(scratch);
        }
    }
}

struct ShardFactory {
    shared: Rc<Shared>,
}

impl ConnFactory for ShardFactory {
    fn open(&mut self, info: &ConnInfo) -> Box<dyn Protocol> {
        if self.shared.access_log.is_some() || self.shared.proxies.wants_peers() {
            // Kept beside the connection, not in it (an idle HttpConn stays small); moved to
            // the per-shard table by `on_open`, which knows the connection's token.
            self.shared.listener.set(info.listener);
            self.shared.opening.set(info.peer);
        }
        Box::new(HttpConn::new(self.shared.clone()))
    }

    fn on_clock(&mut self, wall: SystemTime) {
        self.shared.date.set(format_date(wall));
        // Once a second: a file nobody asked for lately is closed, not held until evicted.
        self.shared.open_files.borrow_mut().sweep(Instant::now());
    }

    fn on_message(&mut self, message: &(dyn Any + Send + Sync)) {
        if let Some(reload) = message.downcast_ref::<HttpReload>() {
            *self.shared.settings.borrow_mut() = Rc::new((*reload.settings).clone());
            self.shared
                .proxies
                .reloaded(reload.settings.routes.has_proxy());
        }
    }
}
