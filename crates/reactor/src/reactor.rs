//! The reactor's handle and what it controls; `start` (in `start.rs`) builds one.

use std::any::Any;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_queue::SegQueue;
use crossbeam_utils::CachePadded;

use crate::accept::AcceptGate;
use crate::acceptor::AcceptorCommand;
use crate::bind::{bind, Bound};
use crate::config::{ListenerIo, ListenerSpec};
use crate::conn::IoConfig;
use crate::inbox::Inbox;
use crate::message::Messenger;
use crate::offload::{DepthProbe, OffloadPool, OffloadStats};
use crate::shard::Control;
use crate::socket::{ListenAddr, Listener};
use crate::stats::{AcceptorStats, ShardStats, Snapshot};

mod start;

pub use start::start;
use start::with_tls;

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
///
/// Dropping it drains the reactor at once (a zero-grace shutdown): keep it for as long as
/// the server should run.
#[must_use = "dropping the handle shuts the reactor down at once"]
pub struct ReactorHandle {
    /// Per listener id; `None` once removed.
    addrs: Vec<Option<ListenAddr>>,
    names: Vec<String>,
    config_for_binding: BindSettings,
    commands: Arc<SegQueue<AcceptorCommand>>,
    listener_slots: Arc<AtomicUsize>,
    inboxes: Arc<[Arc<Inbox>]>,
    shard_stats: Arc<[Arc<CachePadded<ShardStats>>]>,
    acceptor_stats: Arc<AcceptorStats>,
    shards: Vec<JoinHandle<()>>,
    acceptor: Option<JoinHandle<()>>,
    acceptor_stop: Arc<AtomicBool>,
    gate: Arc<AcceptGate>,
    offload: Option<OffloadPool>,
    drain_deadline: Option<Instant>,
    /// Connections closed (all reasons, and at the deadline) when the drain began.
    closed_at_drain: (u64, u64),
    /// The reactor-wide IO settings, under the own settings of a listener added later.
    io: IoConfig,
}

/// What binding a listener added at run time needs to know.
#[derive(Clone, Copy)]
struct BindSettings {
    shards: usize,
    reuse_port: bool,
}

/// How a drain ended, from [`ReactorHandle::wait`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DrainReport {
    /// Connections that closed after the drain began and before its deadline: their work
    /// was finished (or they were idle), and they closed the way their protocol chose.
    pub closed_cleanly: u64,
    /// Connections still open at the drain deadline, closed there (`CloseReason::Drain`):
    /// whatever they were doing was cut off.
    pub cut: u64,
}

impl DrainReport {
    /// True when the drain cut some connection off.
    pub fn lost_work(&self) -> bool {
        self.cut > 0
    }
}

/// Closed connections over all shards: all reasons, and `CloseReason::Drain`.
fn closed_counts(snapshot: &Snapshot) -> (u64, u64) {
    let all = snapshot
        .shards
        .iter()
        .map(|s| s.closed.iter().sum::<u64>())
        .sum();
    let cut = snapshot
        .shards
        .iter()
        .map(|s| s.closed_for(crate::stats::CloseReason::Drain))
        .sum();
    (all, cut)
}

/// Listener ids run from 0 to this, over the reactor's whole life (ids of removed listeners
/// are not reused, so a late handoff never meets another listener's protocol). Fixed so that
/// the per-shard counters can be plain arrays.
pub const MAX_LISTENERS: usize = 64;

/// Reads the reactor's counters from any thread, without blocking a shard.
#[derive(Clone)]
pub struct StatsReader {
    shards: Arc<[Arc<CachePadded<ShardStats>>]>,
    listener_slots: Arc<AtomicUsize>,
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
        let listeners = self.listener_slots.load(Ordering::SeqCst);
        Snapshot::gather(&self.shards, listeners, &self.acceptor, &stats, depth)
    }
}

/// How long a reuseport shard paused at the global connection limit waits before looking again
/// when no close on this shard ends the pause (the room may have been freed on another shard).
const LIMIT_RECHECK: Duration = Duration::from_millis(50);

impl ReactorHandle {
    /// The bound addresses of the listeners given at start, in order (real ports when port 0
    /// was asked for). See [`listener_addr`](Self::listener_addr) for listeners added later.
    pub fn local_addrs(&self) -> Vec<ListenAddr> {
        self.addrs.iter().flatten().cloned().collect()
    }

    /// The bound address of listener `id`; `None` if there is none or it was removed.
    pub fn listener_addr(&self, id: usize) -> Option<&ListenAddr> {
        self.addrs.get(id).and_then(Option::as_ref)
    }

    /// The listener names by id, removed ones included.
    pub fn listener_names(&self) -> &[String] {
        &self.names
    }

    /// Binds a new listener and starts accepting on it; returns its id and real address.
    /// Existing connections are not touched.
    pub fn add_listener(&mut self, spec: ListenerSpec) -> Result<(usize, ListenAddr), StartError> {
        let id = self.names.len();
        if id >= MAX_LISTENERS {
            return Err(StartError::Config(format!(
                "at most {MAX_LISTENERS} listeners over the server's life; restart to add more"
            )));
        }
        let settings = self.config_for_binding;
        let (bound, addr) = bind(&spec, settings.shards, settings.reuse_port)?;
        self.names.push(spec.name.clone());
        self.addrs.push(Some(addr.clone()));
        self.listener_slots
            .store(self.names.len(), Ordering::SeqCst);
        // Shards learn the protocol first, so a connection handed over from the new listener
        // finds its factory (a shard also re-checks its control queue before giving up).
        let mut per_shard: Vec<Option<Listener>> = match bound {
            Bound::Shared(listener) => {
                for inbox in self.inboxes.iter() {
                    inbox.push_control(Control::AddListener {
                        id,
                        factory: spec.protocol.clone(),
                        io: with_tls(self.io.for_listener(&spec.io), &spec),
                        listener: None,
                    });
                }
                self.commands.push(AcceptorCommand::Add { id, listener });
                self.gate.wake();
                return Ok((id, addr));
            }
            Bound::PerShard(listeners) => listeners.into_iter().map(Some).collect(),
        };
        for (inbox, listener) in self.inboxes.iter().zip(per_shard.iter_mut()) {
            inbox.push_control(Control::AddListener {
                id,
                factory: spec.protocol.clone(),
                io: with_tls(self.io.for_listener(&spec.io), &spec),
                listener: listener.take(),
            });
        }
        Ok((id, addr))
    }

    /// Replaces listener `id`'s own IO settings (a live reload): its connections, open ones
    /// included, use them from their next event. A `None` takes the reactor-wide value given
    /// at start. `false` if there is no such listener.
    pub fn set_listener_io(&mut self, id: usize, io: ListenerIo) -> bool {
        if self.addrs.get(id).and_then(Option::as_ref).is_none() {
            return false;
        }
        let resolved = self.io.for_listener(&io);
        for inbox in self.inboxes.iter() {
            inbox.push_control(Control::SetIo {
                id,
                io: resolved.clone(),
            });
        }
        true
    }

    /// Replaces listener `id`'s TLS (a certificate reload): handshakes that start from now on
    /// use `tls`, open connections keep the session they have. `None` would make new
    /// connections plaintext, so the server only ever passes a new `TlsListener` here. `false`
    /// if there is no such listener.
    pub fn set_listener_tls(&mut self, id: usize, tls: Arc<crate::tls::TlsListener>) -> bool {
        if self.addrs.get(id).and_then(Option::as_ref).is_none() {
            return false;
        }
        for inbox in self.inboxes.iter() {
            inbox.push_control(Control::SetTls {
                id,
                tls: Some(tls.clone()),
            });
        }
        true
    }

    /// Stops accepting on listener `id` and closes its socket; its connections carry on.
    /// `false` if there is no such listener.
    pub fn remove_listener(&mut self, id: usize) -> bool {
        let Some(addr) = self.addrs.get_mut(id).and_then(Option::take) else {
            return false;
        };
        if self.config_for_binding.reuse_port {
            for inbox in self.inboxes.iter() {
                inbox.push_control(Control::RemoveListener { id });
            }
        } else {
            self.commands.push(AcceptorCommand::Remove { id });
            self.gate.wake();
        }
        if let ListenAddr::Unix(path) = addr {
            let _ = std::fs::remove_file(path);
        }
        true
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
            listener_slots: self.listener_slots.clone(),
            acceptor: self.acceptor_stats.clone(),
            offload: self
                .offload
                .as_ref()
                .map(|pool| (pool.stats.clone(), pool.depth_probe())),
        }
    }

    /// A handle that sends messages to connections from any thread (see
    /// [`crate::message`]).
    pub fn messenger(&self) -> Messenger {
        Messenger::new(self.inboxes.clone())
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
        self.closed_at_drain = closed_counts(&self.snapshot());
        self.acceptor_stop.store(true, Ordering::SeqCst);
        self.gate.wake();
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        for inbox in self.inboxes.iter() {
            inbox.push_control(Control::Drain { deadline });
        }
    }

    /// Waits until every shard has finished draining, then stops the offload pool. Says how
    /// many connections the drain closed cleanly and how many it cut at the deadline.
    pub fn wait(mut self) -> DrainReport {
        for shard in self.shards.drain(..) {
            let _ = shard.join();
        }
        let (all, cut) = closed_counts(&self.snapshot());
        let (all_before, cut_before) = self.closed_at_drain;
        let cut = cut - cut_before;
        let report = DrainReport {
            closed_cleanly: (all - all_before).saturating_sub(cut),
            cut,
        };
        let deadline = self.drain_deadline.unwrap_or_else(Instant::now);
        if let Some(pool) = self.offload.take() {
            pool.shutdown(deadline.max(Instant::now() + Duration::from_millis(100)));
        }
        for addr in self.addrs.iter().flatten() {
            if let ListenAddr::Unix(path) = addr {
                let _ = std::fs::remove_file(path);
            }
        }
        report
    }

    /// Drains with `grace` and waits: the whole shutdown in one call.
    pub fn shutdown(mut self, grace: Duration) -> DrainReport {
        self.begin_drain(Instant::now() + grace);
        self.wait()
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
