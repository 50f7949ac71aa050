//! Building a running reactor from its config: the checks, the listeners, the shards and the
//! acceptor (the handle that controls it afterwards is the parent module's).

use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_queue::SegQueue;
use crossbeam_utils::CachePadded;
use mio::{Poll, Waker};

use crate::accept::{AcceptGate, Limits};
use crate::accept_loop::{AcceptLoop, LocalAccept};
use crate::acceptor::{Acceptor, AcceptorCommand};
use crate::bind::{bind, Bound};
use crate::config::ListenerSpec;
use crate::config::{Balance, ReactorConfig};
use crate::conn::IoConfig;
use crate::inbox::Inbox;
use crate::limits::{check_fd_limit, raise_fd_limit, reserved_fds};
use crate::listener_set::ListenerSet;
use crate::message::ShardMail;
use crate::offload::OffloadPool;
use crate::shard::Shard;
use crate::socket::{ListenAddr, Listener};
use crate::stats::{AcceptorStats, ShardStats};
use crate::token::Reserved;

use super::{BindSettings, ReactorHandle, StartError, LIMIT_RECHECK, MAX_LISTENERS};

/// Starts the reactor: binds (or adopts) every listener, and starts one thread per shard and,
/// unless `balance` is reuseport, the acceptor thread.
///
/// Side effects on the process:
/// - raises the soft `RLIMIT_NOFILE` to the hard limit, and refuses to start (with
///   [`StartError::FdLimit`]) when `max_connections` plus the fd reserve do not fit;
/// - takes the sockets passed by systemd (`LISTEN_FDS`), which every listener of kind
///   `Inherited` names, and refuses those that no listener takes;
/// - the offload pool's `offload_threads` threads start only when a protocol first
///   offloads a job; a reactor whose protocols never offload runs none.
///
/// Drop the returned handle and the reactor shuts down at once; see [`ReactorHandle`].
pub fn start(config: ReactorConfig) -> Result<ReactorHandle, StartError> {
    validate(&config)?;
    check_fds(&config)?;
    let (polls, inboxes) = shard_polls(&config)?;
    let shard_stats: Arc<[Arc<CachePadded<ShardStats>>]> = (0..config.shards)
        .map(|_| Arc::new(ShardStats::new(MAX_LISTENERS)))
        .collect();
    let limits = Limits {
        global: config.max_connections,
        per_shard: config.max_connections_per_shard,
        shards: shard_stats.clone(),
        admitted: Arc::default(),
    };
    let reuse_port = config.balance == Balance::ReusePort;
    let bound = bind_all(&config, &polls, reuse_port)?;
    crate::activation::check_all_taken().map_err(StartError::Config)?;
    let commands = Arc::new(SegQueue::new());
    let acceptor_stats = Arc::new(AcceptorStats::new(config.shards));
    let acceptor_stop = Arc::new(AtomicBool::new(false));
    let (acceptor, gate) = if reuse_port {
        (None, Arc::new(AcceptGate::new(None)))
    } else {
        let shared = AcceptorParts {
            commands: &commands,
            inboxes: &inboxes,
            limits: &limits,
            stats: &acceptor_stats,
            stop: &acceptor_stop,
        };
        let (acceptor, gate) = make_acceptor(&config, bound.shared, &shared)?;
        (Some(acceptor), gate)
    };
    let offload = OffloadPool::start(
        config.offload_threads,
        config.offload_queue,
        inboxes.clone(),
    )?;
    let io = io_defaults(&config);
    let parts = ShardParts {
        inboxes: &inboxes,
        stats: &shard_stats,
        limits: &limits,
        gate: &gate,
        offload: &offload,
        io: &io,
        reuse_port,
    };
    let threads = spawn_shards(&config, polls, bound.per_shard, &parts)?;
    let acceptor = acceptor.map(spawn_acceptor).transpose()?;
    Ok(ReactorHandle {
        addrs: bound.addrs.into_iter().map(Some).collect(),
        names: config.listeners.iter().map(|l| l.name.clone()).collect(),
        config_for_binding: BindSettings {
            shards: config.shards,
            reuse_port,
        },
        commands,
        listener_slots: Arc::new(AtomicUsize::new(config.listeners.len())),
        inboxes,
        shard_stats,
        acceptor_stats,
        shards: threads,
        acceptor,
        acceptor_stop,
        gate,
        offload: Some(offload),
        drain_deadline: None,
        closed_at_drain: (0, 0),
        io,
    })
}

/// Raises the fd limit and refuses a `max_connections` it cannot hold.
fn check_fds(config: &ReactorConfig) -> Result<(), StartError> {
    let limit = raise_fd_limit()?;
    let reserve = config
        .fd_reserve
        .unwrap_or_else(|| reserved_fds(config.shards, config.listeners.len()));
    check_fd_limit(limit, config.max_connections, reserve).map_err(StartError::FdLimit)
}

/// Every shard's inbox, by shard.
type Inboxes = Arc<[Arc<Inbox>]>;

/// One poll per shard, and its inbox woken through a waker on that poll.
fn shard_polls(config: &ReactorConfig) -> Result<(Vec<Poll>, Inboxes), StartError> {
    let mut polls = Vec::with_capacity(config.shards);
    let mut inboxes = Vec::with_capacity(config.shards);
    for _ in 0..config.shards {
        let poll = Poll::new()?;
        let waker = Waker::new(poll.registry(), Reserved::Waker.to_mio())?;
        inboxes.push(Arc::new(Inbox::with_messages(
            config.inbox_capacity,
            config.message_capacity,
            waker,
        )));
        polls.push(poll);
    }
    Ok((polls, inboxes.into()))
}

/// Every listener of the config, bound for the balancing mode.
struct BoundListeners {
    /// For the acceptor, by listener id.
    shared: Vec<(usize, Listener)>,
    /// Reuseport mode: each shard's own sockets, registered on its poll.
    per_shard: Vec<ListenerSet>,
    addrs: Vec<ListenAddr>,
}

fn bind_all(
    config: &ReactorConfig,
    polls: &[Poll],
    reuse_port: bool,
) -> Result<BoundListeners, StartError> {
    let mut bound_all = BoundListeners {
        shared: Vec::new(),
        per_shard: (0..config.shards).map(|_| ListenerSet::default()).collect(),
        addrs: Vec::new(),
    };
    for (id, spec) in config.listeners.iter().enumerate() {
        let (bound, addr) = bind(spec, config.shards, reuse_port)?;
        match bound {
            Bound::Shared(listener) => bound_all.shared.push((id, listener)),
            Bound::PerShard(listeners) => {
                for ((set, poll), listener) in
                    bound_all.per_shard.iter_mut().zip(polls).zip(listeners)
                {
                    set.add(poll.registry(), id, listener)?;
                }
            }
        }
        bound_all.addrs.push(addr);
    }
    Ok(bound_all)
}

/// The reactor-wide IO settings, under each listener's own.
fn io_defaults(config: &ReactorConfig) -> IoConfig {
    IoConfig {
        max_input: config.max_input.max(config.read_buffer),
        read_budget: config.read_budget.max(1),
        read_buffer: config.read_buffer.max(1),
        write_high_water: config.write_high_water,
        write_timeout: config.write_timeout,
        linger: config.linger,
        drain: None,
        keepalive_grace: config.keepalive_grace,
        tls: None,
    }
}

/// A listener's IO settings with its TLS, which `for_listener` leaves out.
pub(super) fn with_tls(mut io: IoConfig, spec: &ListenerSpec) -> IoConfig {
    io.tls = spec.tls.clone();
    io
}

/// What every shard shares with the others and the handle.
struct ShardParts<'a> {
    inboxes: &'a Arc<[Arc<Inbox>]>,
    stats: &'a Arc<[Arc<CachePadded<ShardStats>>]>,
    limits: &'a Limits,
    gate: &'a Arc<AcceptGate>,
    offload: &'a OffloadPool,
    io: &'a IoConfig,
    reuse_port: bool,
}

fn spawn_shards(
    config: &ReactorConfig,
    polls: Vec<Poll>,
    listeners: Vec<ListenerSet>,
    parts: &ShardParts<'_>,
) -> Result<Vec<JoinHandle<()>>, StartError> {
    let cores = if config.pin_cores {
        core_affinity::get_core_ids()
    } else {
        None
    };
    let mut threads = Vec::with_capacity(config.shards);
    for ((id, poll), listeners) in polls.into_iter().enumerate().zip(listeners) {
        let shard = make_shard(config, id, poll, listeners, parts);
        let specs: Vec<_> = config
            .listeners
            .iter()
            .map(|l| l.protocol.clone())
            .collect();
        let ios: Vec<IoConfig> = config
            .listeners
            .iter()
            .map(|l| with_tls(parts.io.for_listener(&l.io), l))
            .collect();
        let core = cores
            .as_ref()
            .and_then(|c| (!c.is_empty()).then(|| c[id % c.len()]));
        let thread = std::thread::Builder::new()
            .name(format!("coreloop-shard-{id}"))
            .spawn(move || {
                if let Some(core) = core {
                    core_affinity::set_for_current(core);
                }
                // Made here so that a factory may keep shard-local, non-Send state.
                let factories = specs.iter().map(|f| Some(f.for_shard(id))).collect();
                shard.run(factories, ios);
            })?;
        threads.push(thread);
    }
    Ok(threads)
}

fn make_shard(
    config: &ReactorConfig,
    id: usize,
    poll: Poll,
    listeners: ListenerSet,
    parts: &ShardParts<'_>,
) -> Shard {
    let local_accept = parts.reuse_port.then(|| LocalAccept {
        accept: AcceptLoop::new(
            listeners,
            config.accept_batch,
            config.accept_backoff,
            LIMIT_RECHECK,
        ),
        limits: parts.limits.clone(),
    });
    Shard {
        id,
        poll,
        inbox: parts.inboxes[id].clone(),
        jobs: parts.offload.sink(id),
        mail: ShardMail::new(
            config.message_capacity,
            parts.inboxes.clone(),
            parts.stats[id].clone(),
        ),
        stats: parts.stats[id].clone(),
        gate: parts.gate.clone(),
        local_accept,
        limits: parts.limits.clone(),
        admits: parts.reuse_port,
        output_buffer: config.read_buffer,
        timer_tick: config.timer_tick,
        slab_capacity: slab_capacity(config),
    }
}

/// What the acceptor shares with the shards and the handle.
struct AcceptorParts<'a> {
    commands: &'a Arc<SegQueue<AcceptorCommand>>,
    inboxes: &'a Arc<[Arc<Inbox>]>,
    limits: &'a Limits,
    stats: &'a Arc<AcceptorStats>,
    stop: &'a Arc<AtomicBool>,
}

/// The acceptor (not yet running) and the gate through which shards wake it.
fn make_acceptor(
    config: &ReactorConfig,
    listeners: Vec<(usize, Listener)>,
    parts: &AcceptorParts<'_>,
) -> Result<(Acceptor, Arc<AcceptGate>), StartError> {
    let poll = Poll::new()?;
    let waker = Waker::new(poll.registry(), Reserved::Waker.to_mio())?;
    let gate = Arc::new(AcceptGate::new(Some(waker)));
    let acceptor = Acceptor {
        poll,
        listeners,
        commands: parts.commands.clone(),
        inboxes: parts.inboxes.clone(),
        balance: config.balance,
        limits: parts.limits.clone(),
        gate: gate.clone(),
        stats: parts.stats.clone(),
        stop: parts.stop.clone(),
        batch: config.accept_batch.max(1),
        backoff: config.accept_backoff,
    };
    Ok((acceptor, gate))
}

fn spawn_acceptor(acceptor: Acceptor) -> Result<JoinHandle<()>, StartError> {
    Ok(std::thread::Builder::new()
        .name("coreloop-acceptor".into())
        .spawn(move || acceptor.run())?)
}

/// The most connections one shard can hold, capped so the reservation stays modest.
fn slab_capacity(config: &ReactorConfig) -> usize {
    const MOST: usize = 256 * 1024;
    let per_shard = config
        .max_connections_per_shard
        .unwrap_or(config.max_connections);
    per_shard.min(config.max_connections).min(MOST)
}

fn validate(config: &ReactorConfig) -> Result<(), StartError> {
    if config.shards == 0 {
        return Err(StartError::Config("shards must be at least 1".into()));
    }
    if config.listeners.is_empty() {
        return Err(StartError::Config("at least one listener is needed".into()));
    }
    if config.listeners.len() > MAX_LISTENERS {
        return Err(StartError::Config(format!(
            "at most {MAX_LISTENERS} listeners are supported"
        )));
    }
    if config.max_connections == 0 {
        return Err(StartError::Config(
            "max_connections must be at least 1".into(),
        ));
    }
    Ok(())
}
