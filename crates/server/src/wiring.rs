//! The configuration mapped onto the reactor and the protocols: one function per seam, so a
//! reload builds exactly what a start builds.

use std::sync::Arc;

use crate::tcp_proxy::{TcpProxyFactory, UpstreamUpdate};
use coreloop_config::{self as config, Config, Health};
use coreloop_http::{
    AccessLogHook, FilesSpec, Handler, HttpConfig, HttpFactory, MetricsHook, Route, StaticSpec,
};
use coreloop_metrics::upstream::UpstreamStats;
use coreloop_reactor::activation;
use coreloop_reactor::echo::EchoFactory;
use coreloop_reactor::frame::FrameEchoFactory;
use coreloop_reactor::{
    Balance, ListenAddr, ListenerIo, ListenerSpec, ProtocolFactory, ReactorConfig,
};

/// What the server keeps of each listener after start: its HTTP factory, for stats and reload.
pub(crate) struct Wired {
    pub reactor: ReactorConfig,
    /// `(listener index, factory)` of every HTTP listener.
    pub http: Vec<(usize, Arc<HttpFactory>)>,
    pub upstreams: Arc<Upstreams>,
}

/// The `[[upstream]]`s running now, and their counters. A reload makes the next set with
/// [`Upstreams::reloaded`]; each shard of a tcp-proxy listener takes a change as an
/// [`UpstreamUpdate`] message.
pub(crate) struct Upstreams {
    specs: Vec<config::Upstream>,
    /// In `specs` order; what a scrape reads.
    pub stats: Vec<Arc<UpstreamStats>>,
    /// The running shard count (restart-only), for the counters of an upstream a reload adds.
    shards: usize,
}

impl Upstreams {
    pub fn new(config: &Config) -> Self {
        let shards = config.shard_count();
        let stats = (config.upstreams.iter())
            .map(|u| Arc::new(UpstreamStats::new(&u.name, &server_labels(u), shards)))
            .collect();
        Self {
            specs: config.upstreams.clone(),
            stats,
            shards,
        }
    }

    /// The upstreams of `new`: one kept by name keeps its counters (reshaped to its new server
    /// list), a new one starts at zero, a removed one goes. Also the names whose settings
    /// changed, which running listeners must be told of.
    pub fn reloaded(&self, new: &Config) -> (Upstreams, Vec<String>) {
        let mut changed = Vec::new();
        let stats = (new.upstreams.iter())
            .map(|u| match self.get(&u.name) {
                Some((old, stats)) if old == u => stats.clone(),
                Some((_, stats)) => {
                    changed.push(u.name.clone());
                    Arc::new(stats.reshaped(&server_labels(u)))
                }
                None => Arc::new(UpstreamStats::new(&u.name, &server_labels(u), self.shards)),
            })
            .collect();
        let next = Upstreams {
            specs: new.upstreams.clone(),
            stats,
            shards: self.shards,
        };
        (next, changed)
    }

    /// The message that tells a tcp-proxy listener's shards of upstream `name`'s settings.
    pub fn update(&self, name: &str) -> Option<UpstreamUpdate> {
        let (spec, stats) = self.get(name)?;
        Some(UpstreamUpdate {
            upstream: spec.clone(),
            stats: stats.clone(),
        })
    }

    fn get(&self, name: &str) -> Option<(&config::Upstream, &Arc<UpstreamStats>)> {
        let i = self.specs.iter().position(|u| u.name == name)?;
        Some((&self.specs[i], &self.stats[i]))
    }
}

/// The `server` labels of an upstream: its addresses as written.
fn server_labels(upstream: &config::Upstream) -> Vec<String> {
    upstream.servers.iter().map(ToString::to_string).collect()
}

/// Builds the reactor's config and every listener's protocol factory.
pub(crate) fn build(
    config: &Config,
    metrics: &MetricsHook,
    access_log: Option<&AccessLogHook>,
) -> Result<Wired, String> {
    let mut http = Vec::new();
    let upstreams = Arc::new(Upstreams::new(config));
    let mut listeners = Vec::with_capacity(config.listeners.len());
    for (index, listener) in config.listeners.iter().enumerate() {
        let (spec, factory) = listener_spec(listener, &upstreams, metrics, access_log)?;
        if let Some(factory) = factory {
            http.push((index, factory));
        }
        listeners.push(spec);
    }
    Ok(Wired {
        reactor: reactor_config(config, listeners),
        http,
        upstreams,
    })
}

/// One listener for the reactor, and its HTTP factory when it speaks HTTP. A listener whose
/// name matches a socket passed by systemd socket activation takes that socket instead of
/// binding its address.
pub(crate) fn listener_spec(
    listener: &config::Listener,
    upstreams: &Upstreams,
    metrics: &MetricsHook,
    access_log: Option<&AccessLogHook>,
) -> Result<(ListenerSpec, Option<Arc<HttpFactory>>), String> {
    let mut http = None;
    let protocol: Arc<dyn ProtocolFactory> = match listener.protocol {
        config::Protocol::Http => {
            let (cfg, routes) = http_settings(listener, metrics, upstreams);
            let factory = HttpFactory::with_access_log(cfg, routes, access_log.cloned())
                .map_err(|e| format!("listener `{}`: {e}", listener.name))?;
            http = Some(factory.clone());
            factory
        }
        config::Protocol::Echo => Arc::new(EchoFactory),
        config::Protocol::Frame => Arc::new(FrameEchoFactory {
            max: to_usize(listener.effective_limits().frame_max),
        }),
        config::Protocol::TcpProxy => tcp_proxy(listener, upstreams)?,
    };
    let inherited = activation::inherited_names().contains(&listener.name);
    let addr = if inherited {
        ListenAddr::Inherited(listener.name.clone())
    } else {
        listen_addr(&listener.address)
    };
    let mut spec = ListenerSpec::new(listener.name.clone(), addr, protocol)
        .with_backlog(listener.backlog)
        .with_io(listener_io(listener));
    if let Some(tls) = &listener.tls {
        spec = spec.with_tls(crate::tls::build(listener, tls, None)?);
    }
    Ok((spec, http))
}

/// A tcp-proxy listener's factory, on the upstream it names (validated to exist in the file;
/// one a reload added is not running yet).
fn tcp_proxy(
    listener: &config::Listener,
    upstreams: &Upstreams,
) -> Result<Arc<dyn ProtocolFactory>, String> {
    let name = listener.upstream.as_deref().unwrap_or_default();
    let Some((spec, stats)) = upstreams.get(name) else {
        return Err(format!(
            "listener `{}`: upstream `{name}` is not configured",
            listener.name
        ));
    };
    Ok(Arc::new(TcpProxyFactory {
        upstream: spec.clone(),
        idle: listener.effective_timeouts().idle,
        stats: stats.clone(),
    }))
}

/// The reactor's half of a listener's `[listener.timeouts]`/`[listener.limits]` overrides, as
/// written (the rest take the reactor-wide values from `[timeouts]`/`[limits]`).
fn listener_io(listener: &config::Listener) -> ListenerIo {
    let timeouts = &listener.timeout_overrides;
    let limits = &listener.limit_overrides;
    let mut io = ListenerIo::default();
    io.write_timeout = timeouts.write;
    io.linger = timeouts.linger;
    io.drain = timeouts.drain;
    io.read_buffer = limits.read_buffer.map(to_usize);
    io.write_high_water = limits.write_high_water.map(to_usize);
    io.keepalive_grace = timeouts.keepalive_grace;
    io
}

/// The reactor-wide settings from the global `[limits]`/`[timeouts]`; a listener's own
/// overrides of the IO keys travel in its `ListenerSpec::io`.
fn reactor_config(config: &Config, listeners: Vec<ListenerSpec>) -> ReactorConfig {
    let defaults = ReactorConfig::default();
    let server = &config.server;
    let limits = &config.limits;
    // Unconsumed input: at least a whole request head, or a whole frame, on any listener.
    let max_input = config
        .listeners
        .iter()
        .map(|l| {
            let limits = l.effective_limits();
            limits.header_bytes.max(limits.frame_max.saturating_add(16))
        })
        .map(to_usize)
        .fold(defaults.max_input, usize::max);
    let mut reactor = defaults;
    reactor.shards = config.shard_count();
    reactor.balance = balance(server.balance);
    reactor.pin_cores = server.pin_cores;
    reactor.max_connections = connection_limit(config);
    reactor.fd_reserve = Some(config.fd_margin());
    reactor.max_connections_per_shard = server.max_connections_per_shard.map(to_usize);
    reactor.offload_threads = server.offload_threads as usize;
    reactor.offload_queue = server.offload_queue as usize;
    reactor.read_buffer = to_usize(limits.read_buffer);
    reactor.max_input = max_input;
    reactor.write_high_water = to_usize(limits.write_high_water);
    reactor.write_timeout = config.timeouts.write;
    reactor.linger = config.timeouts.linger;
    reactor.keepalive_grace = config.timeouts.keepalive_grace;
    reactor.listeners = listeners;
    reactor
}

/// `max_connections`, with `"auto"` resolved by the config crate against the hard fd limit
/// and `Config::fd_margin`, the same margin the reactor is given (`fd_reserve`), so the
/// server runs with the figure `check-config` prints.
fn connection_limit(config: &Config) -> usize {
    to_usize(config.connection_limit()).max(1)
}

/// One HTTP listener's protocol settings and routes, with its overrides applied.
pub(crate) fn http_settings(
    listener: &config::Listener,
    metrics: &MetricsHook,
    upstreams: &Upstreams,
) -> (HttpConfig, Vec<Route>) {
    let limits = listener.effective_limits();
    let timeouts = listener.effective_timeouts();
    let cfg = HttpConfig {
        max_header_bytes: to_usize(limits.header_bytes),
        max_headers: limits.header_count as usize,
        max_uri_bytes: to_usize(limits.uri_length),
        max_body_bytes: limits.body_bytes,
        max_pipeline_depth: (limits.pipeline_depth as usize).max(1),
        max_pending_output: to_usize(limits.write_high_water),
        max_requests_per_connection: limits.max_requests_per_connection,
        max_connection_age: limits.max_connection_age,
        header_timeout: timeouts.header,
        body_timeout: timeouts.body,
        idle_timeout: timeouts.idle,
        offload_timeout: timeouts.offload,
        ..HttpConfig::default()
    };
    // What a proxied request's `X-Forwarded-Proto` says: the client's scheme on this listener.
    let proto = if listener.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let routes = (listener.routes.iter())
        .map(|r| route(r, metrics, upstreams, proto))
        .collect();
    (cfg, routes)
}

fn route(
    route: &config::Route,
    metrics: &MetricsHook,
    upstreams: &Upstreams,
    proto: &'static str,
) -> Route {
    let (path, prefix) = match &route.path {
        config::RoutePath::Exact(path) => (path.clone(), false),
        // The config's "/a/*" is stored as "/a/"; the router's prefix ending in `/` matches
        // everything below it, as the config promises.
        config::RoutePath::Prefix(prefix) => (prefix.clone(), true),
    };
    Route {
        path,
        prefix,
        methods: route
            .methods
            .iter()
            .map(|m| m.as_str().to_owned())
            .collect(),
        handler: handler(&route.handler, metrics, upstreams, proto),
    }
}

fn handler(
    handler: &config::Handler,
    metrics: &MetricsHook,
    upstreams: &Upstreams,
    proto: &'static str,
) -> Handler {
    match handler {
        config::Handler::Static(s) => Handler::Static(StaticSpec {
            status: s.status,
            content_type: s.content_type.clone(),
            headers: s.headers.clone(),
            body: s.body.clone().into_bytes(),
        }),
        config::Handler::Json => Handler::Json,
        config::Handler::Echo => Handler::Echo,
        config::Handler::Files(f) => Handler::Files(FilesSpec {
            root: f.root.clone(),
            index: f.index.clone(),
            listing: f.listing,
        }),
        config::Handler::Health(Health::Live) => Handler::Health,
        config::Handler::Health(Health::Ready) => Handler::Ready,
        config::Handler::Metrics => Handler::Metrics(metrics.clone()),
        config::Handler::Delay { max } => Handler::Delay { max: *max },
        config::Handler::Proxy {
            upstream,
            strip_prefix,
            set_headers,
        } => match upstreams.get(upstream) {
            Some((spec, stats)) => {
                let mut proxy = crate::http_proxy::spec(spec, stats);
                proxy.strip_prefix = strip_prefix.clone();
                proxy.set_headers = set_headers.clone();
                proxy.proto = proto;
                Handler::Proxy(proxy)
            }
            // Validated to exist; answer 502 rather than panic if it somehow does not.
            None => Handler::Static(StaticSpec {
                status: 502,
                content_type: "text/plain".to_owned(),
                headers: Vec::new(),
                body: b"upstream not configured\n".to_vec(),
            }),
        },
    }
}

pub(crate) fn listen_addr(address: &config::Address) -> ListenAddr {
    match address {
        config::Address::Tcp(addr) => ListenAddr::Tcp(*addr),
        config::Address::Unix(path) => ListenAddr::Unix(path.clone()),
    }
}

fn balance(balance: config::Balance) -> Balance {
    match balance {
        config::Balance::LeastLoaded => Balance::LeastLoaded,
        config::Balance::RoundRobin => Balance::RoundRobin,
        config::Balance::ReusePort => Balance::ReusePort,
    }
}

/// Config sizes are u64; on a 64-bit target they always fit, elsewhere they saturate.
fn to_usize(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook() -> MetricsHook {
        Arc::new(|_| String::new())
    }

    #[test]
    fn the_default_maps_every_listener_and_route() {
        let config = Config::embedded_default();
        let wired = build(&config, &hook(), None).unwrap();
        assert_eq!(wired.reactor.listeners.len(), 2);
        assert_eq!(wired.http.len(), 1);
        assert_eq!(wired.reactor.shards, config.shard_count());
        // One margin: the server runs with the limit check-config prints.
        assert_eq!(wired.reactor.fd_reserve, Some(config.fd_margin()));
        assert_eq!(
            wired.reactor.max_connections as u64,
            config.connection_limit()
        );
        assert!(wired.reactor.max_input >= 8 * 1024);
        let (cfg, routes) = http_settings(&config.listeners[0], &hook(), &Upstreams::new(&config));
        assert_eq!(cfg.max_header_bytes, 8 * 1024);
        assert_eq!(cfg.max_pipeline_depth, 16);
        assert_eq!(routes.len(), 7);
        assert!(matches!(routes[0].handler, Handler::Static(_)));
    }

    #[test]
    fn listener_overrides_reach_its_http_settings_only() {
        let text = Config::default_toml().replace(
            "[listener.limits]\n",
            "[listener.limits]\nheader_bytes = \"2KiB\"\nuri_length = \"1KiB\"\n",
        );
        let config = Config::from_toml_str(&text, "t.toml").unwrap();
        let (cfg, _) = http_settings(&config.listeners[0], &hook(), &Upstreams::new(&config));
        assert_eq!(cfg.max_header_bytes, 2048);
        let wired = build(&config, &hook(), None).unwrap();
        assert_eq!(wired.reactor.read_buffer, 4096);
        assert_eq!(wired.reactor.listeners[0].io, ListenerIo::default());
    }

    #[test]
    fn listener_io_overrides_reach_the_reactor() {
        let text = Config::default_toml()
            .replace(
                "[listener.limits]\n",
                "[listener.limits]\nread_buffer = \"2KiB\"\nwrite_high_water = \"8KiB\"\n",
            )
            .replace(
                "[listener.timeouts]\n",
                "[listener.timeouts]\nwrite = \"3s\"\nlinger = \"4s\"\ndrain = \"5s\"\n",
            );
        let config = Config::from_toml_str(&text, "t.toml").unwrap();
        let wired = build(&config, &hook(), None).unwrap();
        let secs = |s| Some(std::time::Duration::from_secs(s));
        let io = &wired.reactor.listeners[0].io;
        assert_eq!(
            (
                io.write_timeout,
                io.linger,
                io.drain,
                io.read_buffer,
                io.write_high_water,
                io.keepalive_grace,
            ),
            // keepalive_grace: server-wide only in the config (the key table's scope), so
            // never per listener.
            (secs(3), secs(4), secs(5), Some(2048), Some(8192), None)
        );
    }

    /// Issue 10 section 8: check-config printed 19930 where the server ran with 19924. The
    /// config's fd margin and the reactor's reserve are one formula, for every shape.
    #[test]
    fn the_config_margin_is_the_reactor_reserve() {
        for (shards, listeners, balance) in [
            (1, 1, "least-loaded"),
            (2, 2, "least-loaded"),
            (8, 3, "reuseport"),
        ] {
            let host = config::Host {
                cpus: 8,
                fd_hard_limit: 100_000,
            };
            let text = Config::default_toml()
                .replace("shards = \"auto\"", &format!("shards = {shards}"))
                .replace(
                    "balance = \"least-loaded\"",
                    &format!("balance = \"{balance}\""),
                );
            let extra: String = (2..listeners)
                .map(|i| format!("[[listener]]\nname = \"e{i}\"\naddress = \"127.0.0.1:{}\"\nprotocol = \"echo\"\n", 9100 + i))
                .collect();
            let config =
                Config::from_toml_str_on(&format!("{text}{extra}"), "t.toml", host).unwrap();
            let reserve = coreloop_reactor::limits::reserved_fds(shards, config.listeners.len());
            assert_eq!(
                config.connection_limit(),
                100_000 - reserve,
                "{shards} shards, {listeners} listeners, {balance}"
            );
        }
    }
}
