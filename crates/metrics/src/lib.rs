//! coreloop's metrics: the reactor's and the HTTP protocol's per-shard counters, summed and
//! labelled at scrape time, plus process figures from `/proc/self`.
//!
//! A scrape runs on the shard that received it, so it is cheap and never waits: it reads
//! `Relaxed` atomics that each shard publishes (see `coreloop_reactor::stats`), process
//! figures a server thread refreshed (see [`process::ProcessCache`]), and the sources as this
//! thread last saw them (a lock is taken only after a reload changed them). The text, in the
//! Prometheus 0.0.4 format or OpenMetrics 1.0.0, is written straight from those snapshots;
//! docs/METRICS.md lists every family.

#![forbid(unsafe_code)]

mod exposition;
pub mod process;
pub mod upstream;

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use coreloop_http::{ExpositionFormat, HttpStats};
use coreloop_reactor::StatsReader;

pub use exposition::render;
use process::ProcessCache;

/// Counters kept by the server itself (not by a shard). Bumped off the hot path, so plain
/// `fetch_add` is fine here.
#[derive(Debug, Default)]
pub struct ServerStats {
    reloads_ok: AtomicU64,
    reloads_failed: AtomicU64,
    access_log_dropped: AtomicU64,
    /// Unix seconds (as `f64` bits) of the last reload that was applied; 0: none yet.
    last_reload_ok_at: AtomicU64,
    /// 1 while the last reload attempt was applied (or none was tried), 0 after a refusal.
    last_reload_failed: AtomicU64,
    /// 1 once SIGTERM/SIGINT started the drain.
    draining: AtomicU64,
}

impl ServerStats {
    /// Counts one SIGHUP reload, applied or refused.
    pub fn reload(&self, ok: bool) {
        let counter = if ok {
            &self.reloads_ok
        } else {
            &self.reloads_failed
        };
        counter.fetch_add(1, Ordering::Relaxed);
        self.last_reload_failed
            .store(u64::from(!ok), Ordering::Relaxed);
        if ok {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64());
            self.last_reload_ok_at
                .store(now.to_bits(), Ordering::Relaxed);
        }
    }

    /// (whether the last reload was applied, Unix seconds of the last applied one or 0).
    pub fn last_reload(&self) -> (bool, f64) {
        (
            self.last_reload_failed.load(Ordering::Relaxed) == 0,
            f64::from_bits(self.last_reload_ok_at.load(Ordering::Relaxed)),
        )
    }

    /// Counts access-log lines dropped because the writer's queue was full.
    pub fn access_log_dropped(&self, n: u64) {
        self.access_log_dropped.fetch_add(n, Ordering::Relaxed);
    }

    /// Reloads so far: (applied, refused).
    pub fn reloads(&self) -> (u64, u64) {
        (
            self.reloads_ok.load(Ordering::Relaxed),
            self.reloads_failed.load(Ordering::Relaxed),
        )
    }

    /// The drain began (`coreloop_draining` becomes 1).
    pub fn begin_drain(&self) {
        self.draining.store(1, Ordering::Relaxed);
    }

    /// Whether the drain began.
    pub fn draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed) == 1
    }

    /// Access-log lines dropped so far.
    pub fn dropped(&self) -> u64 {
        self.access_log_dropped.load(Ordering::Relaxed)
    }
}

/// Everything a scrape reads.
#[derive(Clone)]
pub struct Sources {
    /// The reactor's counters.
    pub reactor: StatsReader,
    /// Listener names, in listener order (the `listener` label).
    pub listeners: Vec<String>,
    /// The HTTP counters of each HTTP listener, by listener index.
    pub http: Vec<(usize, Arc<HttpStats>)>,
    /// The counters of each `[[upstream]]`, in config order.
    pub upstreams: Vec<Arc<upstream::UpstreamStats>>,
    /// The TLS counters of each TLS listener, by listener index.
    pub tls: Vec<(usize, Arc<coreloop_reactor::tls::TlsStats>)>,
    /// Reloads and access-log drops.
    pub server: Arc<ServerStats>,
    /// `coreloop_build_info{version}`.
    pub version: &'static str,
    /// `max_connections` as the reactor runs it (`auto` resolved).
    pub max_connections: u64,
}

impl std::fmt::Debug for Sources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sources")
            .field("listeners", &self.listeners)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

/// What a scrape reads, shared by every shard's metrics route and the server.
#[derive(Debug)]
pub struct Scraper {
    /// Tells one scraper's sources from another's in a thread's cache (tests run several).
    id: u64,
    generation: AtomicU64,
    sources: Mutex<Option<Arc<Sources>>>,
    process: ProcessCache,
}

/// How often [`Scraper::spawn_refresher`] reads `/proc/self`: the process figures a scrape
/// shows are at most this old.
pub const PROCESS_REFRESH: Duration = Duration::from_secs(1);

thread_local! {
    /// The sources this thread last rendered from: `(scraper id, generation, sources)`.
    static SEEN: RefCell<Option<(u64, u64, Arc<Sources>)>> = const { RefCell::new(None) };
}

impl Scraper {
    /// A scraper with no sources yet (it renders an empty text until [`Self::set`]) and process
    /// figures read once now.
    pub fn new() -> Arc<Self> {
        static IDS: AtomicU64 = AtomicU64::new(0);
        let scraper = Self {
            id: IDS.fetch_add(1, Ordering::Relaxed),
            generation: AtomicU64::new(0),
            sources: Mutex::new(None),
            process: ProcessCache::default(),
        };
        scraper.process.refresh();
        Arc::new(scraper)
    }

    /// Replaces the sources (at start, and after a reload adds or removes listeners).
    pub fn set(&self, sources: Sources) {
        *self.lock() = Some(Arc::new(sources));
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// Changes the current sources, if any.
    pub fn update(&self, change: impl FnOnce(&mut Sources)) {
        let mut current = self.lock();
        if let Some(sources) = current.as_mut() {
            change(Arc::make_mut(sources));
        }
        drop(current);
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// Reads `/proc/self` again (what the refresher thread does once a second).
    pub fn refresh_process(&self) {
        self.process.refresh();
    }

    /// Starts the thread that refreshes process figures every [`PROCESS_REFRESH`]; it ends
    /// once the scraper is dropped.
    pub fn spawn_refresher(self: &Arc<Self>) -> std::io::Result<()> {
        let weak: Weak<Self> = Arc::downgrade(self);
        std::thread::Builder::new()
            .name("metrics-process".into())
            .spawn(move || loop {
                std::thread::sleep(PROCESS_REFRESH);
                match weak.upgrade() {
                    Some(scraper) => scraper.refresh_process(),
                    None => return,
                }
            })
            .map(drop)
    }

    /// The exposition now. Takes no lock unless the sources changed since this thread last
    /// rendered, and reads no file.
    pub fn render(&self, format: ExpositionFormat) -> String {
        let generation = self.generation.load(Ordering::Acquire);
        SEEN.with(|seen| {
            let mut seen = seen.borrow_mut();
            let fresh = matches!(&*seen, Some((id, g, _)) if *id == self.id && *g == generation);
            if !fresh {
                *seen = self
                    .lock()
                    .clone()
                    .map(|sources| (self.id, generation, sources));
            }
            match &*seen {
                Some((_, _, sources)) => render(sources, &self.process.get(), format),
                None => String::new(),
            }
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Arc<Sources>>> {
        self.sources.lock().unwrap_or_else(|p| p.into_inner())
    }
}
