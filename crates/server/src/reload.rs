//! SIGHUP: read and validate the file again; apply what can change live (routes, limits and
//! timeouts of HTTP listeners, the log level) and warn about what needs a restart. An invalid
//! file changes nothing and every error is logged.

use std::sync::Arc;

use coreloop_config::Config;
use coreloop_http::{HttpFactory, MetricsHook};
use coreloop_metrics::ServerStats;
use coreloop_reactor::ReactorHandle;

use crate::cli::{self, ServeArgs};
use crate::logging::LogControl;
use crate::notify::Notifier;
use crate::wiring;

/// What a reload needs, kept by the main loop.
pub(crate) struct Reloader {
    pub args: ServeArgs,
    /// The configuration the reactor was started with: listeners and `[server]` are compared
    /// with this one, since those do not change until a restart.
    pub started: Config,
    /// The configuration now in force (drain timeout, log level).
    pub current: Config,
    pub http: Vec<(usize, Arc<HttpFactory>)>,
    pub metrics: MetricsHook,
    pub log: LogControl,
    pub stats: Arc<ServerStats>,
}

impl Reloader {
    /// Reloads, telling systemd before and after.
    pub fn reload(&mut self, reactor: &ReactorHandle, notifier: &Notifier) {
        notifier.reloading();
        // try_reload counts the outcome before logging it, so a log line seen means the
        // counter has moved.
        self.try_reload(reactor);
        notifier.ready();
    }

    fn try_reload(&mut self, reactor: &ReactorHandle) -> bool {
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
        if !self.apply_http(&new, reactor) {
            self.stats.reload(false);
            tracing::error!("reload refused: a listener's routes did not compile");
            return false;
        }
        if new.log.level != self.current.log.level && !self.log.set_level(new.log.level) {
            tracing::warn!("reload: RUST_LOG is set, so log.level is not applied");
        }
        for change in restart_needed(&self.started, &new) {
            tracing::warn!("reload: {change} needs a restart; not applied");
        }
        self.current = new;
        self.stats.reload(true);
        tracing::info!("configuration reloaded from {origin}");
        true
    }

    /// Compiles and broadcasts the new settings of every running HTTP listener.
    fn apply_http(&self, new: &Config, reactor: &ReactorHandle) -> bool {
        let mut ok = true;
        for (index, factory) in &self.http {
            let name = &self.started.listeners[*index].name;
            let Some(listener) = new.listener(name) else {
                continue; // Removed: reported by restart_needed; it keeps serving as it was.
            };
            if listener.protocol != coreloop_config::Protocol::Http {
                continue;
            }
            let (cfg, routes) = wiring::http_settings(listener, &self.metrics);
            match factory.reload(cfg, routes) {
                Ok(message) => reactor.broadcast(*index, message),
                Err(error) => {
                    tracing::error!("reload: listener `{name}`: {error}; it keeps its routes");
                    ok = false;
                }
            }
        }
        ok
    }
}

/// What differs between the started and the new configuration and cannot change live.
fn restart_needed(started: &Config, new: &Config) -> Vec<String> {
    let mut changes = Vec::new();
    for l in &new.listeners {
        match started.listener(&l.name) {
            None => changes.push(format!("new listener `{}` ({})", l.name, l.address)),
            Some(old) if old.address != l.address => changes.push(format!(
                "listener `{}` address {} -> {}",
                l.name, old.address, l.address
            )),
            Some(old) if old.protocol != l.protocol || old.backlog != l.backlog => {
                changes.push(format!("listener `{}` protocol or backlog", l.name))
            }
            Some(_) => {}
        }
    }
    for l in &started.listeners {
        if new.listener(&l.name).is_none() {
            changes.push(format!("removing listener `{}` ({})", l.name, l.address));
        }
    }
    let (a, b) = (&started.server, &new.server);
    let server = [
        ("server.shards", a.shards != b.shards),
        ("server.balance", a.balance != b.balance),
        ("server.pin_cores", a.pin_cores != b.pin_cores),
        (
            "server.max_connections",
            a.max_connections != b.max_connections,
        ),
        (
            "server.max_connections_per_shard",
            a.max_connections_per_shard != b.max_connections_per_shard,
        ),
        (
            "server.offload_threads",
            a.offload_threads != b.offload_threads,
        ),
        ("server.offload_queue", a.offload_queue != b.offload_queue),
        (
            "limits.read_buffer",
            started.limits.read_buffer != new.limits.read_buffer,
        ),
        (
            "timeouts.write",
            started.timeouts.write != new.timeouts.write,
        ),
        (
            "timeouts.linger",
            started.timeouts.linger != new.timeouts.linger,
        ),
        ("log.format", started.log.format != new.log.format),
        (
            "log.access_log",
            started.log.access_log != new.log.access_log,
        ),
    ];
    changes.extend(
        server
            .into_iter()
            .filter(|(_, changed)| *changed)
            .map(|(key, _)| format!("`{key}`")),
    );
    changes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listener_and_server_changes_are_named() {
        let started = Config::embedded_default();
        let text = Config::default_toml()
            .replace("name = \"echo\"", "name = \"echo2\"")
            .replace("shards = \"auto\"", "shards = 3");
        let new = Config::from_toml_str(&text, "t.toml").unwrap();
        let changes = restart_needed(&started, &new).join("; ");
        assert!(changes.contains("new listener `echo2`"), "{changes}");
        assert!(changes.contains("removing listener `echo`"), "{changes}");
        assert!(changes.contains("`server.shards`"), "{changes}");
        assert!(restart_needed(&started, &started).is_empty());
    }
}
