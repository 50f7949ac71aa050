//! Starting the reactor and the handle that controls it.

use std::any::Any;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_utils::CachePadded;
use mio::{Poll, Waker};

use crate::accept::{AcceptGate, Limits, LocalAccept};
use crate::acceptor::Acceptor;
use crate::config::{Balance, ReactorConfig};
use crate::conn::IoConfig;
use crate::inbox::Inbox;
use crate::limits::{check_fd_limit, raise_fd_limit, reserved_fds};
use crate::offload::{DepthProbe, OffloadPool, OffloadStats};
use crate::shard::{Control, Shard};
use crate::socket::{ListenAddr, Listener};
use crate::stats::{AcceptorStats, ShardStats, Snapshot};
use crate::token::Reserved;

/// Why the reactor did not start.
#[derive(Debug)]
pub enum StartError {
    /// The configuration cannot work; the message says why.
    Config(String),
    /// `max_connections` does not fit in the fd limit; the message has the figures.
    FdLimit(String),
    /// A listener could not be bound.
    Bind {
        /// The listener's name.
        listener: String,
        /// The address asked for.
        addr: ListenAddr,
        /// What the kernel said.
        error: io::Error,
    },
    /// A thread, poll or waker could not be created.
    Io(io::Error),
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Config(message) | Self::FdLimit(message) => f.write_str(message),
            Self::Bind {
                listener,
                addr,
                error,
            } => {
                write!(f, "listener `{listener}` cannot listen on {addr}: {error}")
            }
            Self::Io(error) => write!(f, "starting the reactor failed: {error}"),
        }
    }
}

impl std::error::Error for StartError {}

impl From<io::Error> for StartError {
    fn from(error: io::Error) -> Self {
        Self::Io(error)
    }
}

/// Controls a running reactor: addresses, statistics, messages, drain and join.
pub struct ReactorHandle {
    addrs: Vec<ListenAddr>,
    names: Vec<String>,
    inboxes: Arc<[Arc<Inbox>]>,
    shard_stats: Arc<[Arc<CachePadded<ShardStats>>]>,
    acceptor_stats: Arc<AcceptorStats>,
    shards: Vec<JoinHandle<()>>,
    acceptor: Option<JoinHandle<()>>,
    acceptor_stop: Arc<AtomicBool>,
    gate: Arc<AcceptGate>,
    offload: Option<OffloadPool>,
    unix_paths: Vec<std::path::PathBuf>,
    drain_deadline: Option<Instant>,
}

/// Reads the reactor's counters from any thread, without blocking a shard.
#[derive(Clone)]
pub struct StatsReader {
    shards: Arc<[Arc<CachePadded<ShardStats>>]>,
    acceptor: Arc<AcceptorStats>,
    offload: Option<(Arc<OffloadStats>, DepthProbe)>,
}

impl StatsReader {
    /// Every counter, read now.
    pub fn snapshot(&self) -> Snapshot {
        let (stats, depth) = match &self.offload {
            Some((stats, probe)) => (stats.clone(), probe.depth()),
            None => (Arc::default(), 0),
        };
        Snapshot::gather(&self.shards, &self.acceptor, &stats, depth)
    }
}

/// Starts the shards, the acceptor (unless reuseport) and the offload pool.
pub fn start(config: ReactorConfig) -> Result<ReactorHandle, StartError> {
    validate(&config)?;
    let limit = raise_fd_limit()?;
    let reserve = reserved_fds(config.shards, config.listeners.len());
    check_fd_limit(limit, config.max_connections, reserve).map_err(StartError::FdLimit)?;

    let shards = config.shards;
    let mut polls = Vec::with_capacity(shards);
    let mut inboxes = Vec::with_capacity(shards);
    for _ in 0..shards {
        let poll = Poll::new()?;
        let waker = Waker::new(poll.registry(), Reserved::Waker.to_mio())?;
        inboxes.push(Arc::new(Inbox::new(config.inbox_capacity, waker)));
        polls.push(poll);
    }
    let inboxes: Arc<[Arc<Inbox>]> = inboxes.into();
    let shard_stats: Arc<[Arc<CachePadded<ShardStats>>]> = (0..shards)
        .map(|_| Arc::new(ShardStats::new(config.listeners.len())))
        .collect();
    let limits = Limits {
        global: config.max_connections,
        per_shard: config.max_connections_per_shard,
        shards: shard_stats.clone(),
    };
    let Bound {
        per_shard: mut per_shard_listeners,
        shared: shared_listeners,
        addrs,
    } = bind_all(&config)?;
    let acceptor_stats = Arc::new(AcceptorStats::new(shards));
    let acceptor_stop = Arc::new(AtomicBool::new(false));

    let (acceptor, gate) = if config.balance == Balance::ReusePort {
        (None, Arc::new(AcceptGate::new(None)))
    } else {
        let poll = Poll::new()?;
        let waker = Waker::new(poll.registry(), Reserved::Waker.to_mio())?;
        let gate = Arc::new(AcceptGate::new(Some(waker)));
        let acceptor = Acceptor {
            poll,
            listeners: shared_listeners,
            inboxes: inboxes.clone(),
            balance: config.balance,
            limits: limits.clone(),
            gate: gate.clone(),
            stats: acceptor_stats.clone(),
            stop: acceptor_stop.clone(),
            batch: config.accept_batch.max(1),
            backoff: config.accept_backoff,
        };
        (Some(acceptor), gate)
    };

    let offload = OffloadPool::start(
        config.offload_threads,
        config.offload_queue,
        inboxes.clone(),
    )?;
    let io = IoConfig {
        max_input: config.max_input.max(config.read_buffer),
        read_budget: config.read_budget.max(1),
        write_high_water: config.write_high_water,
        write_timeout: config.write_timeout,
        linger: config.linger,
    };
    let cores = if config.pin_cores {
        core_affinity::get_core_ids()
    } else {
        None
    };
    let mut threads = Vec::with_capacity(shards);
    for (id, poll) in polls.into_iter().enumerate() {
        let local_accept = match per_shard_listeners.as_mut() {
            Some(all) => {
                let mut local = LocalAccept::new(
                    std::mem::take(&mut all[id]),
                    limits.clone(),
                    config.accept_batch,
                    config.accept_backoff,
                );
                local.register(poll.registry())?;
                Some(local)
            }
            None => None,
        };
        let specs: Vec<_> = config
            .listeners
            .iter()
            .map(|l| l.protocol.clone())
            .collect();
        let core = cores
            .as_ref()
            .and_then(|c| (!c.is_empty()).then(|| c[id % c.len()]));
        let shard = Shard {
            id,
            poll,
            inbox: inboxes[id].clone(),
            jobs: offload.sink(id),
            stats: shard_stats[id].clone(),
            gate: gate.clone(),
            local_accept,
            io: io.clone(),
            read_buffer: config.read_buffer,
            timer_tick: config.timer_tick,
        };
        let thread = std::thread::Builder::new()
            .name(format!("coreloop-shard-{id}"))
            .spawn(move || {
                if let Some(core) = core {
                    core_affinity::set_for_current(core);
                }
                // Made here so that a factory may keep shard-local, non-Send state.
                let factories = specs.iter().map(|f| f.for_shard(id)).collect();
                shard.run(factories);
            })?;
        threads.push(thread);
    }
    let acceptor = match acceptor {
        Some(acceptor) => Some(
            std::thread::Builder::new()
                .name("coreloop-acceptor".into())
                .spawn(move || acceptor.run())?,
        ),
        None => None,
    };
    let unix_paths = addrs
        .iter()
        .filter_map(|a| match a {
            ListenAddr::Unix(path) => Some(path.clone()),
            ListenAddr::Tcp(_) | ListenAddr::Inherited(_) => None,
        })
        .collect();
    Ok(ReactorHandle {
        addrs,
        names: config.listeners.iter().map(|l| l.name.clone()).collect(),
        inboxes,
        shard_stats,
        acceptor_stats,
        shards: threads,
        acceptor,
        acceptor_stop,
        gate,
        offload: Some(offload),
        unix_paths,
        drain_deadline: None,
    })
}

fn validate(config: &ReactorConfig) -> Result<(), StartError> {
    if config.shards == 0 {
        return Err(StartError::Config("shards must be at least 1".into()));
    }
    if config.listeners.is_empty() {
        return Err(StartError::Config("at least one listener is needed".into()));
    }
    if config.max_connections == 0 {
        return Err(StartError::Config(
            "max_connections must be at least 1".into(),
        ));
    }
    Ok(())
}

/// Bound listeners, each with its index in the listener table.
struct Bound {
    /// Reuseport mode: each shard's own listeners.
    per_shard: Option<Vec<Vec<(usize, Listener)>>>,
    /// Acceptor mode: the acceptor's listeners.
    shared: Vec<(usize, Listener)>,
    /// The real addresses, in listener order.
    addrs: Vec<ListenAddr>,
}

/// Binds every listener: once for the acceptor, or once per shard with `SO_REUSEPORT`.
fn bind_all(config: &ReactorConfig) -> Result<Bound, StartError> {
    let reuse = config.balance == Balance::ReusePort;
    let mut shared = Vec::new();
    let mut per_shard: Vec<Vec<(usize, Listener)>> =
        (0..config.shards).map(|_| Vec::new()).collect();
    let mut addrs = Vec::new();
    for (id, spec) in config.listeners.iter().enumerate() {
        let bind_error = |error| StartError::Bind {
            listener: spec.name.clone(),
            addr: spec.addr.clone(),
            error,
        };
        let first = Listener::bind(&spec.addr, spec.backlog, reuse).map_err(bind_error)?;
        let bound = first.local_addr(&spec.addr).map_err(bind_error)?;
        if !reuse {
            shared.push((id, first));
        } else {
            for listeners in per_shard.iter_mut().skip(1) {
                let listener = match (&spec.addr, &bound) {
                    // Port 0 was resolved by the first bind; the others join that port.
                    (ListenAddr::Tcp(_), ListenAddr::Tcp(_)) => {
                        Listener::bind(&bound, spec.backlog, true)
                    }
                    // Unix sockets have no SO_REUSEPORT, and an inherited socket is the only
                    // one there is: the shards share it.
                    _ => first.try_clone(),
                }
                .map_err(bind_error)?;
                listeners.push((id, listener));
            }
            per_shard[0].push((id, first));
        }
        addrs.push(bound);
    }
    Ok(Bound {
        per_shard: reuse.then_some(per_shard),
        shared,
        addrs,
    })
}

impl ReactorHandle {
    /// The bound addresses, in listener order (real ports when port 0 was asked for).
    pub fn local_addrs(&self) -> &[ListenAddr] {
        &self.addrs
    }

    /// The listener names, in listener order.
    pub fn listener_names(&self) -> &[String] {
        &self.names
    }

    /// The number of shards.
    pub fn shards(&self) -> usize {
        self.inboxes.len()
    }

    /// Every counter, read now. Never blocks a shard.
    pub fn snapshot(&self) -> Snapshot {
        self.stats_reader().snapshot()
    }

    /// A reader of the counters that may outlive the handle (for a final report after
    /// [`wait`](Self::wait), or for a metrics scraper on another thread).
    pub fn stats_reader(&self) -> StatsReader {
        StatsReader {
            shards: self.shard_stats.clone(),
            acceptor: self.acceptor_stats.clone(),
            offload: self
                .offload
                .as_ref()
                .map(|pool| (pool.stats.clone(), pool.depth_probe())),
        }
    }

    /// Sends `message` to listener `listener`'s connection factory on every shard.
    pub fn broadcast(&self, listener: usize, message: Arc<dyn Any + Send + Sync>) {
        for inbox in self.inboxes.iter() {
            inbox.push_control(Control::Message {
                listener,
                message: message.clone(),
            });
        }
    }

    /// Stops accepting (listeners close, so new connections are refused) and tells every shard
    /// to drain: in-flight work finishes, quiet connections close, and whatever is still open
    /// at `deadline` is closed.
    pub fn begin_drain(&mut self, deadline: Instant) {
        if self.drain_deadline.is_some() {
            return;
        }
        self.drain_deadline = Some(deadline);
        self.acceptor_stop.store(true, Ordering::SeqCst);
        self.gate.set_waiting();
        self.gate.capacity_freed();
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        for inbox in self.inboxes.iter() {
            inbox.push_control(Control::Drain { deadline });
        }
    }

    /// Waits until every shard has finished draining, then stops the offload pool.
    pub fn wait(mut self) {
        for shard in self.shards.drain(..) {
            let _ = shard.join();
        }
        let deadline = self.drain_deadline.unwrap_or_else(Instant::now);
        if let Some(pool) = self.offload.take() {
            pool.shutdown(deadline.max(Instant::now() + Duration::from_millis(100)));
        }
        for path in &self.unix_paths {
            let _ = std::fs::remove_file(path);
        }
    }

    /// Drains with `grace` and waits: the whole shutdown in one call.
    pub fn shutdown(mut self, grace: Duration) {
        self.begin_drain(Instant::now() + grace);
        self.wait();
    }
}

impl Drop for ReactorHandle {
    fn drop(&mut self) {
        if !self.shards.is_empty() {
            self.begin_drain(Instant::now());
            for shard in self.shards.drain(..) {
                let _ = shard.join();
            }
        }
    }
}
