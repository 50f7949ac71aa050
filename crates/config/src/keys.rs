//! The one table of every configuration key: when a change to it takes effect, where it may
//! be written, and which protocols it acts on. `check-config`, the SIGHUP reload warning,
//! `coreloop print-keys` and the reload column of docs/CONFIG.md all come from here (a test
//! fails when the doc disagrees), and the black-box suite proves every key has an effect.

use std::fmt;

use crate::schema::{Limits, Listener, Protocol, Timeouts};
use crate::values::Keyword;
use crate::Config;

/// When a changed value takes effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reload {
    /// At SIGHUP: new connections and new requests see the new value.
    Live,
    /// At the next start. A reload that changes it applies nothing of it and logs a warning
    /// naming the key (and the listener, for a per-listener key). A listener that a reload
    /// adds is built from the new file and so does take it.
    Restart,
    /// At SIGHUP the listener is replaced: the old socket stops accepting (its connections
    /// carry on) and a new one is bound.
    Rebind,
}

impl Reload {
    /// The word used in docs/CONFIG.md and `print-keys`.
    pub fn word(self) -> &'static str {
        match self {
            Reload::Live => "live",
            Reload::Restart => "restart",
            Reload::Rebind => "rebind",
        }
    }
}

/// Where a key may be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// In its global section only.
    Global,
    /// In its global section, and overridden in `[listener.limits]`/`[listener.timeouts]`.
    PerListener,
    /// In a `[[listener]]` (or its routes) only.
    Listener,
}

impl Scope {
    /// The word used in the "per listener" column of docs/CONFIG.md and `print-keys`.
    pub fn word(self) -> &'static str {
        match self {
            Scope::Global => "no",
            Scope::PerListener => "yes",
            Scope::Listener => "only",
        }
    }
}

/// The protocols a listener-level key acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applies {
    /// Every listener.
    All,
    /// `protocol = "http"` listeners only.
    Http,
    /// `protocol = "frame"` listeners only.
    Frame,
    /// `protocol = "http"` and `protocol = "tcp-proxy"` listeners.
    HttpOrTcpProxy,
    /// No listener: an `[[upstream]]` key, acting through the listeners that name it.
    Upstream,
}

impl Applies {
    /// Whether the key acts on a listener speaking `protocol`.
    pub fn to(self, protocol: Protocol) -> bool {
        match self {
            Applies::All => true,
            Applies::Http => protocol == Protocol::Http,
            Applies::Frame => protocol == Protocol::Frame,
            Applies::HttpOrTcpProxy => matches!(protocol, Protocol::Http | Protocol::TcpProxy),
            Applies::Upstream => protocol == Protocol::TcpProxy,
        }
    }

    pub(crate) fn word(self) -> &'static str {
        match self {
            Applies::All => "all",
            Applies::Http => "http",
            Applies::Frame => "frame",
            Applies::HttpOrTcpProxy => "http,tcp-proxy",
            Applies::Upstream => "tcp-proxy",
        }
    }
}

/// How a key's value is read, to see whether a reload changed it.
#[derive(Clone, Copy)]
enum Get {
    /// A `[server]` or `[log]` key, from the whole configuration.
    Config(fn(&Config) -> String),
    /// A `[timeouts]` key: the global value, or a listener's effective one.
    Timeout(fn(&Timeouts) -> String),
    /// A `[limits]` key: the global value, or a listener's effective one.
    Limit(fn(&Limits) -> String),
    /// A listener key (`address`, routes): compared by the reload's own plan.
    Listener,
}

/// One configuration key.
#[derive(Clone, Copy)]
pub struct Key {
    /// The path as documented: `server.shards`, `timeouts.write`, `listener.backlog`,
    /// `listener.route.static`.
    pub path: &'static str,
    pub reload: Reload,
    pub scope: Scope,
    pub applies: Applies,
    get: Get,
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key")
            .field("path", &self.path)
            .field("reload", &self.reload)
            .field("scope", &self.scope)
            .field("applies", &self.applies)
            .finish()
    }
}

impl Key {
    /// The key's name inside its table (`write` for `timeouts.write`).
    pub fn name(&self) -> &'static str {
        self.path.rsplit('.').next().unwrap_or(self.path)
    }

    /// The value written in (or defaulted by) `config`'s global sections.
    fn global_value(&self, config: &Config) -> Option<String> {
        match self.get {
            Get::Config(get) => Some(get(config)),
            Get::Timeout(get) => Some(get(&config.timeouts)),
            Get::Limit(get) => Some(get(&config.limits)),
            Get::Listener => None,
        }
    }

    /// The value `listener` runs with, when the key acts on it.
    fn listener_value(&self, listener: &Listener) -> Option<String> {
        if self.scope != Scope::PerListener || !self.applies.to(listener.protocol) {
            return None;
        }
        match self.get {
            Get::Timeout(get) => Some(get(listener.effective_timeouts())),
            Get::Limit(get) => Some(get(listener.effective_limits())),
            Get::Config(_) | Get::Listener => None,
        }
    }
}

macro_rules! d {
    ($field:ident) => {
        |t: &Timeouts| format!("{:?}", t.$field)
    };
}
macro_rules! l {
    ($field:ident) => {
        |l: &Limits| format!("{:?}", l.$field)
    };
}

/// An `[[upstream]]` key: its values over every upstream (live: a reload hands the new
/// upstream to each shard of the tcp-proxy listeners that name it).
macro_rules! u {
    ($field:ident) => {
        |c: &Config| {
            format!(
                "{:?}",
                c.upstreams.iter().map(|u| &u.$field).collect::<Vec<_>>()
            )
        }
    };
}

const fn key(path: &'static str, reload: Reload, scope: Scope, applies: Applies, get: Get) -> Key {
    Key {
        path,
        reload,
        scope,
        applies,
        get,
    }
}

use Applies::{All, Frame, Http, HttpOrTcpProxy, Upstream};
use Reload::{Live, Rebind, Restart};
use Scope::{Global, Listener as Own, PerListener};

/// Every key, in the order of docs/CONFIG.md.
///
/// The reactor-level per-listener keys (`write`, `linger`, `drain`, `read_buffer`,
/// `write_high_water`) are fixed when a listener's socket is set up, so a listener that keeps
/// its socket across a reload keeps them: restart. A route handler's fields (`static`'s
/// `status`, `delay`'s `max_ms`, ...) are part of its handler's value.
#[rustfmt::skip]
pub const KEYS: &[Key] = &[
    key("server.shards", Restart, Global, All, Get::Config(|c| format!("{:?}", c.server.shards))),
    key("server.balance", Restart, Global, All, Get::Config(|c| c.server.balance.name().into())),
    key("server.pin_cores", Restart, Global, All, Get::Config(|c| c.server.pin_cores.to_string())),
    key("server.max_connections", Restart, Global, All, Get::Config(|c| format!("{:?}", c.server.max_connections))),
    key("server.max_connections_per_shard", Restart, Global, All, Get::Config(|c| format!("{:?}", c.server.max_connections_per_shard))),
    key("server.offload_threads", Restart, Global, All, Get::Config(|c| c.server.offload_threads.to_string())),
    key("server.offload_queue", Restart, Global, All, Get::Config(|c| c.server.offload_queue.to_string())),
    key("timeouts.header", Live, PerListener, Http, Get::Timeout(d!(header))),
    key("timeouts.body", Live, PerListener, Http, Get::Timeout(d!(body))),
    key("timeouts.idle", Live, PerListener, HttpOrTcpProxy, Get::Timeout(d!(idle))),
    key("timeouts.write", Restart, PerListener, All, Get::Timeout(d!(write))),
    key("timeouts.drain", Restart, PerListener, All, Get::Timeout(d!(drain))),
    key("timeouts.keepalive_grace", Restart, Global, All, Get::Timeout(d!(keepalive_grace))),
    key("timeouts.linger", Restart, PerListener, All, Get::Timeout(d!(linger))),
    key("timeouts.offload", Live, PerListener, Http, Get::Timeout(d!(offload))),
    key("limits.header_bytes", Live, PerListener, Http, Get::Limit(l!(header_bytes))),
    key("limits.header_count", Live, PerListener, Http, Get::Limit(l!(header_count))),
    key("limits.uri_length", Live, PerListener, Http, Get::Limit(l!(uri_length))),
    key("limits.body_bytes", Live, PerListener, Http, Get::Limit(l!(body_bytes))),
    key("limits.pipeline_depth", Live, PerListener, Http, Get::Limit(l!(pipeline_depth))),
    key("limits.write_high_water", Restart, PerListener, All, Get::Limit(l!(write_high_water))),
    key("limits.max_requests_per_connection", Live, PerListener, Http, Get::Limit(l!(max_requests_per_connection))),
    key("limits.max_connection_age", Live, PerListener, Http, Get::Limit(l!(max_connection_age))),
    key("limits.frame_max", Restart, PerListener, Frame, Get::Limit(l!(frame_max))),
    key("limits.read_buffer", Restart, PerListener, All, Get::Limit(l!(read_buffer))),
    key("log.level", Live, Global, All, Get::Config(|c| format!("{:?}", c.log.level))),
    key("log.format", Restart, Global, All, Get::Config(|c| format!("{:?}", c.log.format))),
    key("log.access_log", Restart, Global, All, Get::Config(|c| format!("{:?}", c.log.access_log))),
    key("log.access_format", Restart, Global, All, Get::Config(|c| format!("{:?}", c.log.access_format))),
    key("listener.name", Rebind, Own, All, Get::Listener),
    key("listener.address", Rebind, Own, All, Get::Listener),
    key("listener.protocol", Rebind, Own, All, Get::Listener),
    key("listener.backlog", Rebind, Own, All, Get::Listener),
    key("listener.upstream", Rebind, Own, Upstream, Get::Listener),

    // Turning TLS on or off rebinds; what it is made of is rebuilt at every reload (the
    // files are read again), for new handshakes.
    key("listener.tls", Rebind, Own, All, Get::Listener),
    key("listener.tls.cert", Live, Own, All, Get::Listener),
    key("listener.tls.key", Live, Own, All, Get::Listener),
    key("listener.tls.alpn", Live, Own, All, Get::Listener),
    key("listener.tls.min_version", Live, Own, All, Get::Listener),
    key("listener.tls.handshake_timeout", Live, Own, All, Get::Listener),
    key("listener.tls.certs", Live, Own, All, Get::Listener),
    key("listener.route", Live, Own, Http, Get::Listener),
    key("listener.route.path", Live, Own, Http, Get::Listener),
    key("listener.route.methods", Live, Own, Http, Get::Listener),
    key("listener.route.static", Live, Own, Http, Get::Listener),
    key("listener.route.json", Live, Own, Http, Get::Listener),
    key("listener.route.echo", Live, Own, Http, Get::Listener),
    key("listener.route.files", Live, Own, Http, Get::Listener),
    key("listener.route.health", Live, Own, Http, Get::Listener),
    key("listener.route.metrics", Live, Own, Http, Get::Listener),
    key("listener.route.delay", Live, Own, Http, Get::Listener),
    key("listener.route.proxy", Live, Own, Http, Get::Listener),
    key("upstream.name", Live, Global, Upstream, Get::Config(u!(name))),
    key("upstream.servers", Live, Global, Upstream, Get::Config(u!(servers))),
    key("upstream.balance", Live, Global, Upstream, Get::Config(u!(balance))),
    key("upstream.connect_timeout", Live, Global, Upstream, Get::Config(u!(connect_timeout))),
    key("upstream.max_fails", Live, Global, Upstream, Get::Config(u!(max_fails))),
    key("upstream.fail_timeout", Live, Global, Upstream, Get::Config(u!(fail_timeout))),
    key("upstream.response_timeout", Live, Global, Http, Get::Config(u!(response_timeout))),
    key("upstream.keepalive", Live, Global, Http, Get::Config(u!(keepalive))),
    key("upstream.idle_timeout", Live, Global, Http, Get::Config(u!(idle_timeout))),
];

/// The key at `path`, if there is one.
pub fn key_at(path: &str) -> Option<&'static Key> {
    KEYS.iter().find(|k| k.path == path)
}

/// The table as `coreloop print-keys` shows it: one key per line, tab-separated
/// `key reload per-listener protocols`.
pub fn key_table() -> String {
    let mut out = String::from("key\treload\tper-listener\tprotocols\n");
    for k in KEYS {
        out.push_str(&format!(
            "{}\t{}\t{}\t{}\n",
            k.path,
            k.reload.word(),
            k.scope.word(),
            k.applies.word()
        ));
    }
    out
}

impl Config {
    /// The global keys whose value differs in `new` but only takes effect at a restart.
    pub fn restart_changes(&self, new: &Config) -> Vec<&'static str> {
        KEYS.iter()
            .filter(|k| k.reload == Reload::Restart)
            .filter(|k| k.scope == Scope::Global)
            .filter(|k| k.global_value(self) != k.global_value(new))
            .map(|k| k.path)
            .collect()
    }
}

impl Listener {
    /// The per-listener keys whose effective value differs for this listener in `new` (the
    /// same listener in a reloaded file) but only takes effect at a restart.
    pub fn restart_changes(&self, new: &Listener) -> Vec<&'static str> {
        KEYS.iter()
            .filter(|k| k.reload == Reload::Restart)
            .filter(|k| k.listener_value(self) != k.listener_value(new))
            .map(|k| k.path)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> Config {
        let host = crate::Host {
            cpus: 2,
            fd_hard_limit: 1_000_000,
        };
        Config::from_toml_str_on(text, "t.toml", host).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn paths_are_unique_and_every_decoded_key_is_listed() {
        for (i, k) in KEYS.iter().enumerate() {
            assert!(
                KEYS[..i].iter().all(|o| o.path != k.path),
                "{} twice",
                k.path
            );
        }
        // Every key the decoder asks for in the default file is in the table.
        let text = Config::default_toml();
        let mut section = "";
        for line in text.lines() {
            let line = line.trim();
            if let Some(name) = line.strip_prefix("[[").and_then(|l| l.strip_suffix("]]")) {
                section = if name == "listener" {
                    "listener"
                } else {
                    "listener.route"
                };
            } else if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                section = match name {
                    "listener.limits" => "limits",
                    "listener.timeouts" => "timeouts",
                    other => other,
                };
            } else if let Some((name, _)) = line.split_once(" = ") {
                if line.starts_with('#') {
                    continue;
                }
                let path = format!("{section}.{name}");
                assert!(key_at(&path).is_some(), "{path} is not in the key table");
            }
        }
    }

    #[test]
    fn restart_changes_name_global_and_listener_keys() {
        let base = Config::default_toml().replace("127.0.0.1:9000", "127.0.0.1:9001");
        let old = config(&base);
        let new = config(
            &base
                .replace("shards = \"auto\"", "shards = 3")
                .replace("level = \"info\"", "level = \"debug\"")
                .replace("protocol = \"echo\"", "protocol = \"frame\"")
                .replace("frame_max = \"1MiB\"", "frame_max = \"2MiB\"")
                .replace("write = \"30s\"", "write = \"5s\"")
                .replace("header = \"10s\"", "header = \"5s\""),
        );
        assert_eq!(old.restart_changes(&new), ["server.shards"]);
        assert!(old.restart_changes(&old).is_empty());
        let (web, new_web) = (&old.listeners[0], &new.listeners[0]);
        assert_eq!(web.restart_changes(new_web), ["timeouts.write"]);
        // frame_max acts on frame listeners only: compared where it applies.
        let frames = config(&base.replace("protocol = \"echo\"", "protocol = \"frame\""));
        assert_eq!(
            frames.listeners[1].restart_changes(&new.listeners[1]),
            ["timeouts.write", "limits.frame_max"]
        );
    }
}
