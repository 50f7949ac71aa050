//! coreloop's configuration: the TOML schema, units, defaults and
//! validation, with every error located as `file:line:col: key.path: message`.
//!
//! ```
//! let config = coreloop_config::Config::embedded_default();
//! assert_eq!(config.listeners.len(), 2);
//! ```
//!
//! Architecture invariant: this crate depends on no other coreloop crate. It
//! defines plain types; the server crate maps them onto the reactor and HTTP.

#![forbid(unsafe_code)]

mod address;
mod decode;
mod defaults;
mod error;
mod host;
mod keys;
mod listener;
mod overrides;
mod reader;
mod route;
mod schema;
mod set_headers;
mod summary;
mod tls;
mod units;
mod upstream;
mod validate;
mod values;

use std::path::Path;

use toml::de::{DeTable, DeValue};
use toml::Spanned;

pub use error::{ConfigError, ConfigErrors, ErrorKind, Loc};
pub use host::Host;
pub use keys::{key_at, key_table, Applies, Key, Reload, Scope, KEYS};
pub use overrides::Override;
pub use schema::{
    AccessFormat, AccessLog, Address, Balance, Files, Handler, Health, Limits, LimitsPatch,
    Listener, Log, LogFormat, LogLevel, MaxConnections, Method, Protocol, Route, RoutePath, Server,
    Shards, StaticResponse, Timeouts, TimeoutsPatch, Upstream, UpstreamBalance,
};
pub use tls::{Identity, SniIdentity, Tls, TlsVersion, HANDSHAKE_TIMEOUT};
pub use units::{format_duration, format_size, parse_duration, parse_size, UnitError};
pub use values::Keyword;

use reader::{Cx, Locations};

/// A complete, validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub server: Server,
    /// The global `[timeouts]`; see [`Listener::effective_timeouts`].
    pub timeouts: Timeouts,
    /// The global `[limits]`; see [`Listener::effective_limits`].
    pub limits: Limits,
    pub log: Log,
    pub listeners: Vec<Listener>,
    /// Every `[[upstream]]`, in file order, names unique.
    pub upstreams: Vec<Upstream>,
    host: Host,
    locs: Locations,
    warnings: Vec<ConfigError>,
}

impl Config {
    /// Parses and validates `text`; `origin` names it in errors (a file
    /// name, or e.g. `<stdin>`). Relative `files` roots are taken from the
    /// current directory. Uses [`Host::current`].
    pub fn from_toml_str(text: &str, origin: &str) -> Result<Config, ConfigErrors> {
        Config::parse(text, origin, None, Host::current())
    }

    /// Like [`Config::from_toml_str`] against a given machine, for tests and
    /// for callers that sampled the limits themselves.
    pub fn from_toml_str_on(text: &str, origin: &str, host: Host) -> Result<Config, ConfigErrors> {
        Config::parse(text, origin, None, host)
    }

    /// Reads, parses and validates a file. Relative `files` roots are taken
    /// from the file's directory.
    pub fn load(path: impl AsRef<Path>) -> Result<Config, ConfigErrors> {
        Config::load_on(path, Host::current())
    }

    /// Like [`Config::load`] against a given machine.
    pub fn load_on(path: impl AsRef<Path>, host: Host) -> Result<Config, ConfigErrors> {
        let path = path.as_ref();
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| {
            let loc = Loc {
                origin: origin.as_str().into(),
                line: 1,
                col: 1,
            };
            ConfigErrors::new(vec![ConfigError {
                loc,
                path: String::new(),
                kind: ErrorKind::Io(e.to_string()),
            }])
        })?;
        let base_dir = path.parent().map(|p| {
            if p.as_os_str().is_empty() {
                Path::new(".")
            } else {
                p
            }
        });
        Config::parse(&text, &origin, base_dir, host)
    }

    /// The configuration built from [`Config::default_toml`].
    pub fn embedded_default() -> Config {
        match Config::parse(defaults::DEFAULT_TOML, "<embedded>", None, Host::current()) {
            Ok(config) => config,
            // Only a machine whose fd limit cannot hold even the listeners
            // gets here; hand back the config and let start-up report it.
            Err(_) => Config::parse(
                defaults::DEFAULT_TOML,
                "<embedded>",
                None,
                Host::unlimited(),
            )
            .expect("the embedded default is valid on an unlimited host (tested)"),
        }
    }

    /// The embedded default configuration file, documented key by key.
    pub fn default_toml() -> &'static str {
        defaults::DEFAULT_TOML
    }

    /// The shard count, with `shards = "auto"` resolved.
    pub fn shard_count(&self) -> usize {
        host::shard_count(&self.server, &self.host)
    }

    /// File descriptors kept for what is not a connection (stdio, epolls, wakers, logs,
    /// listening sockets): the one margin `check-config` and the running server both use.
    pub fn fd_margin(&self) -> u64 {
        host::fd_margin(&self.server, &self.host, self.listeners.len())
    }

    /// The global connection limit, with `max_connections = "auto"` resolved.
    pub fn connection_limit(&self) -> u64 {
        host::connection_limit(&self.server, &self.host, self.listeners.len()).unwrap_or(0)
    }

    /// The listener called `name`.
    pub fn listener(&self, name: &str) -> Option<&Listener> {
        self.listeners.iter().find(|l| l.name == name)
    }

    /// The upstream called `name`.
    pub fn upstream(&self, name: &str) -> Option<&Upstream> {
        self.upstreams.iter().find(|u| u.name == name)
    }

    /// Where `path` (e.g. `listener[0].address`) was set, for the caller's
    /// own messages (e.g. a bind failure).
    pub fn location_of(&self, path: &str) -> Loc {
        self.locs.of(path)
    }

    fn parse(
        text: &str,
        origin: &str,
        base_dir: Option<&Path>,
        host: Host,
    ) -> Result<Config, ConfigErrors> {
        let mut cx = Cx::new(text, origin);
        let (table, syntax) = DeTable::parse_recoverable(text);
        if !syntax.is_empty() {
            // A recovered tree would produce follow-on errors that mislead
            // more than they help; report the syntax alone.
            for e in syntax {
                let message = e.message().trim().replace('\n', "; ");
                cx.error(e.span().unwrap_or(0..0), "", ErrorKind::Syntax(message));
            }
            return Err(ConfigErrors::new(cx.errors));
        }
        let span = table.span();
        let root = Spanned::new(span, DeValue::Table(table.into_inner()));
        let decoded = decode::document(&mut cx, &root, base_dir);
        let config = Config {
            server: decoded.server,
            timeouts: decoded.timeouts,
            limits: decoded.limits,
            log: decoded.log,
            listeners: decoded.listeners,
            upstreams: decoded.upstreams,
            host,
            locs: cx.locs,
            warnings: cx.warnings,
        };
        let mut errors = cx.errors;
        errors.extend(config.validate());
        if errors.is_empty() {
            Ok(config)
        } else {
            Err(ConfigErrors::new(errors))
        }
    }

    /// What is valid but likely wrong (an expired certificate), each at its place: printed
    /// by `check-config` and logged at start and reload.
    pub fn warnings(&self) -> &[ConfigError] {
        &self.warnings
    }

    fn validate(&self) -> Vec<ConfigError> {
        validate::validate(&validate::Subject {
            server: &self.server,
            listeners: &self.listeners,
            upstreams: &self.upstreams,
            locs: &self.locs,
            host: &self.host,
        })
    }
}
