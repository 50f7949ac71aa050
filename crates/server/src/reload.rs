//! SIGHUP: read and validate the file again; apply what can change live (routes, limits and
//! timeouts of HTTP listeners, the log level) and warn about what needs a restart. An invalid
//! file changes nothing and every error is logged.

use std::sync::Arc;

use coreloop_config::{self as config, Config};
use coreloop_http::{AccessLogHook, HttpFactory, MetricsHook};
use coreloop_metrics::{Scraper, ServerStats};
use coreloop_reactor::ReactorHandle;

use crate::cli::{self, ServeArgs};
use crate::logging::LogControl;
use crate::notify::Notifier;
use crate::wiring;

/// A listener the reactor runs, as the configuration described it.
pub(crate) struct RunningListener {
    /// Its id in the reactor.
    pub id: usize,
    pub config: config::Listener,
    /// Its HTTP factory, for live route changes and stats.
    pub http: Option<Arc<HttpFactory>>,
    /// Its TLS, rebuilt at every reload (the files are read again).
    pub tls: Option<Arc<coreloop_reactor::tls::TlsListener>>,
}

/// What a reload needs, kept by the main loop.
pub(crate) struct Reloader {
    pub args: ServeArgs,
    /// The configuration the reactor was started with: `[server]` and the reactor-wide keys
    /// are compared with this one, since those do not change until a restart.
    pub started: Config,
    /// The configuration now in force (drain timeout, log level).
    pub current: Config,
    pub listeners: Vec<RunningListener>,
    pub metrics: MetricsHook,
    pub access_log: Option<AccessLogHook>,
    /// The upstreams running now.
    pub upstreams: Arc<wiring::Upstreams>,
    pub log: LogControl,
    pub stats: Arc<ServerStats>,
    /// What a scrape reads; refreshed when listeners come or go.
    pub scraper: Arc<Scraper>,
}

/// A listener of the new configuration, compiled but not yet started.
struct Planned {
    config: config::Listener,
    spec: coreloop_reactor::ListenerSpec,
    http: Option<Arc<HttpFactory>>,
}

type TlsChange = (usize, Arc<coreloop_reactor::tls::TlsListener>);

/// Everything a reload will do, worked out before anything changes, so that an error in any
/// listener leaves the running configuration untouched.
struct Plan {
    /// `(listener id, message)` for HTTP listeners that stay.
    route_changes: Vec<(usize, Arc<dyn std::any::Any + Send + Sync>)>,
    /// New certificates (and TLS settings) for listeners that stay.
    tls_changes: Vec<TlsChange>,
    /// Ids of listeners to stop (removed, or replaced by a listener with another address,
    /// protocol or backlog).
    remove: Vec<usize>,
    add: Vec<Planned>,
    /// The upstreams of the new file (counters carried over).
    upstreams: wiring::Upstreams,
}

impl Reloader {
    /// Reloads, telling systemd before and after.
    pub fn reload(&mut self, reactor: &mut ReactorHandle, notifier: &Notifier) {
        notifier.reloading();
        // try_reload counts the outcome before logging it, so a log line seen means the
        // counter has moved.
        self.try_reload(reactor);
        notifier.ready();
    }

    fn try_reload(&mut self, reactor: &mut ReactorHandle) -> bool {
        let origin = self
            .args
            .config
            .as_ref()
            .map_or("the embedded default".to_owned(), |p| {
                p.display().to_string()
            });
        let new = match cli::load(&self.args) {
            Ok(new) => new,
            Err(errors) => {
                for error in errors.errors() {
                    tracing::error!("reload: {error}");
                }
                self.stats.reload(false);
                tracing::error!(
                    "reload refused: {} error(s) in {origin}; the running configuration stays",
                    errors.len()
                );
                return false;
            }
        };
        for warning in new.warnings() {
            tracing::warn!("reload: {warning}");
        }
        let plan = match self.plan(&new) {
            Ok(plan) => plan,
            Err(message) => {
                self.stats.reload(false);
                tracing::error!("reload refused: {message}; the running configuration stays");
                return false;
            }
        };
        let started_all = self.apply(plan, reactor);
        self.refresh_sources(reactor);
        if new.log.level != self.current.log.level && !self.log.set_level(new.log.level) {
            tracing::warn!("reload: RUST_LOG is set, so log.level is not applied");
        }
        for change in restart_needed(&self.started, &self.listeners, &new) {
            tracing::warn!("reload: {change} needs a restart; not applied");
        }
        self.current = new;
        self.stats.reload(started_all);
        if started_all {
            tracing::info!("configuration reloaded from {origin}");
        } else {
            tracing::error!(
                "configuration reloaded from {origin}, but a new listener did not start"
            );
        }
        started_all
    }

    /// Compiles every listener of `new` against what runs now.
    fn plan(&self, new: &Config) -> Result<Plan, String> {
        let (upstreams, changed) = self.upstreams.reloaded(new);
        let mut plan = Plan {
            route_changes: Vec::new(),
            tls_changes: Vec::new(),
            remove: Vec::new(),
            add: Vec::new(),
            upstreams,
        };
        for running in &self.listeners {
            match new.listener(&running.config.name) {
                None => plan.remove.push(running.id),
                Some(l) if same_socket(&running.config, l) => {
                    // A tcp-proxy listener that stays takes its upstream's new servers and
                    // settings on every shard; its connections carry on.
                    let name = l
                        .upstream
                        .as_deref()
                        .filter(|n| changed.iter().any(|c| c == n));
                    if let Some(update) = name.and_then(|n| plan.upstreams.update(n)) {
                        plan.route_changes.push((running.id, Arc::new(update)));
                    }
                    if let (Some(now), Some(tls)) = (&running.tls, &l.tls) {
                        let rebuilt = crate::tls::build(l, tls, Some(now))?;
                        plan.tls_changes.push((running.id, rebuilt));
                    }
                    if let (Some(factory), config::Protocol::Http) = (&running.http, l.protocol) {
                        let (mut cfg, routes) =
                            wiring::http_settings(l, &self.metrics, &plan.upstreams);
                        // write_high_water is restart-only (the reactor's half is fixed with
                        // the socket): the protocol's half keeps the running value with it.
                        let (running_cfg, _) =
                            wiring::http_settings(&running.config, &self.metrics, &plan.upstreams);
                        cfg.max_pending_output = running_cfg.max_pending_output;
                        let message = factory
                            .reload(cfg, routes)
                            .map_err(|e| format!("listener `{}`: {e}", l.name))?;
                        plan.route_changes.push((running.id, message));
                    }
                }
                Some(_) => plan.remove.push(running.id),
            }
        }
        for l in &new.listeners {
            let keeps = self
                .listeners
                .iter()
                .any(|r| r.config.name == l.name && same_socket(&r.config, l));
            if !keeps {
                let (spec, http) = wiring::listener_spec(
                    l,
                    &plan.upstreams,
                    &self.metrics,
                    self.access_log.as_ref(),
                )?;
                plan.add.push(Planned {
                    config: l.clone(),
                    spec,
                    http,
                });
            }
        }
        Ok(plan)
    }

    /// Carries a plan out; `false` when a new listener could not start.
    fn apply(&mut self, plan: Plan, reactor: &mut ReactorHandle) -> bool {
        self.upstreams = Arc::new(plan.upstreams);
        for (id, message) in plan.route_changes {
            reactor.broadcast(id, message);
        }
        for (id, tls) in plan.tls_changes {
            reactor.set_listener_tls(id, tls.clone());
            if let Some(running) = self.listeners.iter_mut().find(|r| r.id == id) {
                running.tls = Some(tls);
            }
        }
        let mut freed = Vec::new();
        for id in plan.remove {
            reactor.remove_listener(id);
            if let Some(at) = self.listeners.iter().position(|r| r.id == id) {
                let gone = self.listeners.remove(at);
                freed.push(gone.config.address.clone());
                tracing::info!(
                    "stopped listening name={} address={}",
                    gone.config.name,
                    gone.config.address
                );
            }
        }
        let mut all_started = true;
        for planned in plan.add {
            let protocol = crate::serve::protocol_name(planned.config.protocol);
            let reuses = freed.contains(&planned.config.address);
            let tls = planned.spec.tls.clone();
            match add_listener(reactor, planned.spec, reuses) {
                Ok((id, addr)) => {
                    tracing::info!(
                        "listening name={} protocol={protocol} address={addr}",
                        planned.config.name
                    );
                    self.listeners.push(RunningListener {
                        id,
                        config: planned.config,
                        http: planned.http,
                        tls,
                    });
                }
                Err(error) => {
                    tracing::error!("reload: {error}");
                    all_started = false;
                }
            }
        }
        all_started
    }

    fn refresh_sources(&self, reactor: &ReactorHandle) {
        self.scraper.update(|sources| {
            sources.listeners = reactor.listener_names().to_vec();
            sources.http = http_stats(&self.listeners);
            sources.upstreams = self.upstreams.stats.clone();
            sources.tls = tls_stats(&self.listeners);
        });
    }
}

/// How long a reload waits for the acceptor to close a removed listener's socket before a new
/// listener may bind the same address (the removal is a message to another thread).
const REBIND_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Adds a listener. When `reuses` (it takes the address of a listener this reload removed,
/// e.g. a changed backlog or protocol), "address in use" means the old socket is not closed
/// yet: retry until it is, for at most [`REBIND_WAIT`]. Found by reloading a backlog change
/// 20 times: 4 lost the listener.
fn add_listener(
    reactor: &mut ReactorHandle,
    spec: coreloop_reactor::ListenerSpec,
    reuses: bool,
) -> Result<(usize, coreloop_reactor::ListenAddr), coreloop_reactor::StartError> {
    let deadline = std::time::Instant::now() + REBIND_WAIT;
    loop {
        match reactor.add_listener(spec.clone()) {
            Err(coreloop_reactor::StartError::Bind { error, .. })
                if reuses
                    && error.kind() == std::io::ErrorKind::AddrInUse
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            result => return result,
        }
    }
}

/// The HTTP stats of the running listeners, by listener id, for the metrics.
pub(crate) fn http_stats(
    listeners: &[RunningListener],
) -> Vec<(usize, Arc<coreloop_http::HttpStats>)> {
    listeners
        .iter()
        .filter_map(|r| r.http.as_ref().map(|f| (r.id, f.stats())))
        .collect()
}

/// The TLS stats of the running listeners, by listener id, for the metrics.
pub(crate) fn tls_stats(
    listeners: &[RunningListener],
) -> Vec<(usize, Arc<coreloop_reactor::tls::TlsStats>)> {
    listeners
        .iter()
        .filter_map(|r| r.tls.as_ref().map(|t| (r.id, t.stats().clone())))
        .collect()
}

/// A listener keeps its socket across a reload when nothing about the socket changed
/// (turning TLS on or off is such a change: its open connections keep what they speak).
fn same_socket(old: &config::Listener, new: &config::Listener) -> bool {
    old.address == new.address
        && old.protocol == new.protocol
        && old.backlog == new.backlog
        && old.upstream == new.upstream
        && old.tls.is_some() == new.tls.is_some()
}

/// What differs between the running and the new configuration and takes effect only at a
/// restart, by the key table: global keys against the started configuration, per-listener
/// keys against each listener that keeps its socket.
fn restart_needed(started: &Config, running: &[RunningListener], new: &Config) -> Vec<String> {
    let mut changes: Vec<String> = started
        .restart_changes(new)
        .into_iter()
        .map(|key| format!("`{key}`"))
        .collect();
    for r in running {
        let Some(l) = new.listener(&r.config.name) else {
            continue;
        };
        if same_socket(&r.config, l) {
            changes.extend(
                r.config
                    .restart_changes(l)
                    .into_iter()
                    .map(|key| format!("`{key}` of listener `{}`", l.name)),
            );
        }
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn running(config: &Config) -> Vec<RunningListener> {
        let listeners = config.listeners.iter().enumerate();
        listeners
            .map(|(id, l)| RunningListener {
                id,
                config: l.clone(),
                http: None,
                tls: None,
            })
            .collect()
    }

    #[test]
    fn server_changes_are_named() {
        let started = Config::embedded_default();
        let text = Config::default_toml().replace("shards = \"auto\"", "shards = 3");
        let new = Config::from_toml_str(&text, "t.toml").unwrap();
        let changes = restart_needed(&started, &running(&started), &new).join("; ");
        assert!(changes.contains("`server.shards`"), "{changes}");
        assert!(restart_needed(&started, &running(&started), &started).is_empty());
    }

    /// Issue 10: a reload changed `frame_max` on a frame listener, logged "configuration
    /// reloaded" and applied nothing, silently.
    #[test]
    fn a_frame_max_change_on_a_kept_frame_listener_is_named() {
        let frames = Config::default_toml().replace("protocol = \"echo\"", "protocol = \"frame\"");
        let started = Config::from_toml_str(&frames, "t.toml").unwrap();
        let text = frames.replace("frame_max = \"1MiB\"", "frame_max = \"2MiB\"");
        let new = Config::from_toml_str(&text, "t.toml").unwrap();
        let changes = restart_needed(&started, &running(&started), &new);
        assert_eq!(changes, ["`limits.frame_max` of listener `echo`"]);
    }

    /// An edit of the default file (with the echo listener speaking frames, so every
    /// per-listener key acts on some listener) for every key a reload compares.
    const EDITS: &[(&str, &str, &str)] = &[
        ("server.shards", "shards = \"auto\"", "shards = 3"),
        (
            "server.balance",
            "balance = \"least-loaded\"",
            "balance = \"round-robin\"",
        ),
        ("server.pin_cores", "pin_cores = false", "pin_cores = true"),
        (
            "server.max_connections",
            "max_connections = \"auto\"",
            "max_connections = 100",
        ),
        (
            "server.max_connections_per_shard",
            "# max_connections_per_shard = 25000",
            "max_connections_per_shard = 5",
        ),
        (
            "server.offload_threads",
            "offload_threads = 4",
            "offload_threads = 2",
        ),
        (
            "server.offload_queue",
            "offload_queue = 1024",
            "offload_queue = 10",
        ),
        ("timeouts.header", "header = \"10s\"", "header = \"1s\""),
        ("timeouts.body", "body = \"30s\"", "body = \"1s\""),
        ("timeouts.idle", "idle = \"60s\"", "idle = \"1s\""),
        ("timeouts.write", "write = \"30s\"", "write = \"1s\""),
        ("timeouts.drain", "drain = \"30s\"", "drain = \"1s\""),
        (
            "timeouts.keepalive_grace",
            "keepalive_grace = \"1s\"",
            "keepalive_grace = \"2s\"",
        ),
        ("timeouts.linger", "linger = \"5s\"", "linger = \"1s\""),
        ("timeouts.offload", "offload = \"10s\"", "offload = \"1s\""),
        (
            "limits.header_bytes",
            "header_bytes = \"8KiB\"",
            "header_bytes = \"9KiB\"",
        ),
        (
            "limits.header_count",
            "header_count = 64",
            "header_count = 65",
        ),
        (
            "limits.uri_length",
            "uri_length = \"4KiB\"",
            "uri_length = \"3KiB\"",
        ),
        (
            "limits.body_bytes",
            "body_bytes = \"1MiB\"",
            "body_bytes = \"2MiB\"",
        ),
        (
            "limits.pipeline_depth",
            "pipeline_depth = 16",
            "pipeline_depth = 8",
        ),
        (
            "limits.write_high_water",
            "write_high_water = \"64KiB\"",
            "write_high_water = \"32KiB\"",
        ),
        (
            "limits.max_requests_per_connection",
            "max_requests_per_connection = 0",
            "max_requests_per_connection = 5",
        ),
        (
            "limits.max_connection_age",
            "max_connection_age = \"0s\"",
            "max_connection_age = \"1m\"",
        ),
        (
            "limits.frame_max",
            "frame_max = \"1MiB\"",
            "frame_max = \"2MiB\"",
        ),
        (
            "limits.read_buffer",
            "read_buffer = \"4KiB\"",
            "read_buffer = \"8KiB\"",
        ),
        ("log.level", "level = \"info\"", "level = \"debug\""),
        ("log.format", "format = \"text\"", "format = \"json\""),
        (
            "log.access_log",
            "access_log = false",
            "access_log = \"stderr\"",
        ),
        (
            "log.access_format",
            "access_format = \"auto\"",
            "access_format = \"combined\"",
        ),
        ("upstream.name", "name = \"app\"", "name = \"app2\""),
        ("upstream.servers", "127.0.0.1:9001", "127.0.0.1:9002"),
        (
            "upstream.balance",
            "\"round-robin\"\nconnect",
            "\"least-requests\"\nconnect",
        ),
        (
            "upstream.connect_timeout",
            "connect_timeout = \"1s\"",
            "connect_timeout = \"2s\"",
        ),
        ("upstream.max_fails", "max_fails = 3", "max_fails = 4"),
        (
            "upstream.fail_timeout",
            "fail_timeout = \"10s\"",
            "fail_timeout = \"20s\"",
        ),
        (
            "upstream.response_timeout",
            "response_timeout = \"30s\"",
            "response_timeout = \"5s\"",
        ),
        ("upstream.keepalive", "keepalive = 32", "keepalive = 4"),
        (
            "upstream.idle_timeout",
            "idle_timeout = \"60s\"",
            "idle_timeout = \"5s\"",
        ),
    ];

    /// An upstream no listener uses (valid), for the `upstream.*` edits.
    const UPSTREAM: &str = "\n[[upstream]]\nname = \"app\"\nservers = [\"127.0.0.1:9001\"]\n\
        balance = \"round-robin\"\nconnect_timeout = \"1s\"\nmax_fails = 3\nfail_timeout = \"10s\"\n\
        response_timeout = \"30s\"\nkeepalive = 32\nidle_timeout = \"60s\"\n";

    /// Walks the key table: a reload names exactly the restart keys it cannot apply, for
    /// global keys and for each listener's merged value alike, and never a live one.
    #[test]
    fn every_restart_key_is_named_and_no_live_key_is() {
        let host = config::Host {
            cpus: 4,
            fd_hard_limit: 1 << 20,
        };
        let base = Config::default_toml().replace("protocol = \"echo\"", "protocol = \"frame\"")
            + UPSTREAM;
        let started = Config::from_toml_str_on(&base, "t.toml", host).unwrap();
        for key in config::KEYS
            .iter()
            .filter(|k| k.scope != config::Scope::Listener)
        {
            let (_, from, to) = EDITS
                .iter()
                .find(|(path, _, _)| *path == key.path)
                .unwrap_or_else(|| panic!("no edit for {}", key.path));
            assert!(base.contains(from), "{from}");
            let text = base.replacen(from, to, 1);
            let new =
                Config::from_toml_str_on(&text, "t.toml", host).unwrap_or_else(|e| panic!("{e}"));
            let named = restart_needed(&started, &running(&started), &new);
            let names_it = named
                .iter()
                .any(|n| n.starts_with(&format!("`{}`", key.path)));
            assert_eq!(
                names_it,
                key.reload == config::Reload::Restart,
                "{}: {named:?}",
                key.path
            );
        }
    }
}
