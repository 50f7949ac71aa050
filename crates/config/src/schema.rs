//! The plain, validated configuration types. They know nothing of the
//! reactor or HTTP crates; the server crate maps them onto those.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// `[server]`: threads, balancing and global connection limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    pub shards: Shards,
    pub balance: Balance,
    pub pin_cores: bool,
    pub max_connections: MaxConnections,
    /// Absent: no cap per shard beyond the global one.
    pub max_connections_per_shard: Option<u64>,
    pub offload_threads: u32,
    pub offload_queue: u32,
}

/// How many shards (reactor threads) to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shards {
    /// One per CPU (`num_cpus::get()`).
    Auto,
    /// A fixed number, at least 1.
    Count(u32),
}

/// How accepted connections are spread over shards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Balance {
    LeastLoaded,
    RoundRobin,
    /// One `SO_REUSEPORT` listener per shard; the kernel balances.
    ReusePort,
}

/// The global connection limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaxConnections {
    /// As many as the hard fd limit holds after the fixed margin.
    Auto,
    Limit(u64),
}

/// `[timeouts]`, also the resolved per-listener view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    pub header: Duration,
    pub body: Duration,
    pub idle: Duration,
    pub write: Duration,
    pub drain: Duration,
    pub keepalive_grace: Duration,
    pub linger: Duration,
    pub offload: Duration,
}

/// `[listener.timeouts]`: only the keys that were written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimeoutsPatch {
    pub header: Option<Duration>,
    pub body: Option<Duration>,
    pub idle: Option<Duration>,
    pub write: Option<Duration>,
    pub drain: Option<Duration>,
    pub keepalive_grace: Option<Duration>,
    pub linger: Option<Duration>,
    pub offload: Option<Duration>,
}

impl Timeouts {
    /// `self` with every key present in `patch` replaced.
    pub fn patched(&self, patch: &TimeoutsPatch) -> Timeouts {
        Timeouts {
            header: patch.header.unwrap_or(self.header),
            body: patch.body.unwrap_or(self.body),
            idle: patch.idle.unwrap_or(self.idle),
            write: patch.write.unwrap_or(self.write),
            drain: patch.drain.unwrap_or(self.drain),
            keepalive_grace: patch.keepalive_grace.unwrap_or(self.keepalive_grace),
            linger: patch.linger.unwrap_or(self.linger),
            offload: patch.offload.unwrap_or(self.offload),
        }
    }
}

/// `[limits]`, also the resolved per-listener view. Sizes are bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub header_bytes: u64,
    pub header_count: u32,
    pub uri_length: u64,
    pub body_bytes: u64,
    pub pipeline_depth: u32,
    pub write_high_water: u64,
    /// 0 = unlimited.
    pub max_requests_per_connection: u64,
    /// None = unlimited (written as absent or `"0s"`).
    pub max_connection_age: Option<Duration>,
    pub frame_max: u64,
    pub read_buffer: u64,
}

/// `[listener.limits]`: only the keys that were written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LimitsPatch {
    pub header_bytes: Option<u64>,
    pub header_count: Option<u32>,
    pub uri_length: Option<u64>,
    pub body_bytes: Option<u64>,
    pub pipeline_depth: Option<u32>,
    pub write_high_water: Option<u64>,
    pub max_requests_per_connection: Option<u64>,
    /// `Some(None)`: written as `"0s"`, turning a global age limit off.
    pub max_connection_age: Option<Option<Duration>>,
    pub frame_max: Option<u64>,
    pub read_buffer: Option<u64>,
}

impl Limits {
    /// `self` with every key present in `patch` replaced.
    pub fn patched(&self, patch: &LimitsPatch) -> Limits {
        Limits {
            header_bytes: patch.header_bytes.unwrap_or(self.header_bytes),
            header_count: patch.header_count.unwrap_or(self.header_count),
            uri_length: patch.uri_length.unwrap_or(self.uri_length),
            body_bytes: patch.body_bytes.unwrap_or(self.body_bytes),
            pipeline_depth: patch.pipeline_depth.unwrap_or(self.pipeline_depth),
            write_high_water: patch.write_high_water.unwrap_or(self.write_high_water),
            max_requests_per_connection: patch
                .max_requests_per_connection
                .unwrap_or(self.max_requests_per_connection),
            max_connection_age: patch.max_connection_age.unwrap_or(self.max_connection_age),
            frame_max: patch.frame_max.unwrap_or(self.frame_max),
            read_buffer: patch.read_buffer.unwrap_or(self.read_buffer),
        }
    }
}

/// `[log]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Log {
    pub level: LogLevel,
    pub format: LogFormat,
    pub access_log: AccessLog,
    pub access_format: AccessFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// How access log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessFormat {
    /// `json` when `log.format` is `json`, else `text`.
    Auto,
    /// coreloop's own `key=value` line.
    Text,
    /// One JSON object per line.
    Json,
    /// nginx's `combined` format (what log parsers such as GoAccess read), plus timing.
    Combined,
}

impl AccessFormat {
    /// The format `Auto` stands for under `log_format`.
    pub fn resolve(self, log_format: LogFormat) -> Self {
        match (self, log_format) {
            (Self::Auto, LogFormat::Json) => Self::Json,
            (Self::Auto, LogFormat::Text) => Self::Text,
            (other, _) => other,
        }
    }
}

/// Where access log lines go; off unless asked for (it costs on the hot path).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessLog {
    Off,
    Stdout,
    Stderr,
    File(PathBuf),
}

/// One `[[listener]]`, with `[listener.limits]`/`[listener.timeouts]`
/// already merged over the global sections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    pub name: String,
    pub address: Address,
    pub protocol: Protocol,
    pub backlog: u32,
    pub routes: Vec<Route>,
    /// The `[[upstream]]` a `tcp-proxy` listener forwards to (validated to exist); `None` for
    /// every other protocol.
    pub upstream: Option<String>,
    /// The keys this listener overrides, as written.
    pub limit_overrides: LimitsPatch,
    pub timeout_overrides: TimeoutsPatch,
    /// `tls = { ... }`: TLS on every connection; `None`: plaintext.
    pub tls: Option<crate::tls::Tls>,
    pub(crate) limits: Limits,
    pub(crate) timeouts: Timeouts,
}

impl Listener {
    /// `[limits]` with this listener's overrides applied.
    pub fn effective_limits(&self) -> &Limits {
        &self.limits
    }

    /// `[timeouts]` with this listener's overrides applied.
    pub fn effective_timeouts(&self) -> &Timeouts {
        &self.timeouts
    }
}

/// Where a listener binds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Tcp(addr) => write!(f, "{addr}"),
            Address::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Http,
    Echo,
    /// Length-prefixed frames (the reactor's frame codec), echoed back.
    Frame,
    /// Every connection spliced to a server of the listener's `upstream` (L4 proxy).
    TcpProxy,
}

/// One `[[upstream]]`: servers a proxy listener forwards to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    pub name: String,
    /// At least one, no duplicates, no TCP port 0.
    pub servers: Vec<Address>,
    pub balance: UpstreamBalance,
    pub connect_timeout: Duration,
    /// Consecutive failures that eject a server; 0 never ejects.
    pub max_fails: u32,
    /// How long an ejected server is skipped.
    pub fail_timeout: Duration,
    /// HTTP proxy routes: from connected to the end of the response head.
    pub response_timeout: Duration,
    /// HTTP proxy routes: idle kept-alive connections kept per server per shard; 0 pools
    /// none (each request opens its own, sent `Connection: close`).
    pub keepalive: u32,
    /// HTTP proxy routes: a pooled connection unused this long is closed.
    pub idle_timeout: Duration,
}

/// How a proxy picks the server for a new connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamBalance {
    RoundRobin,
    /// Power of two choices over the connections in flight to each server.
    LeastRequests,
}

/// One `[[listener.route]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub path: RoutePath,
    pub methods: Vec<Method>,
    pub handler: Handler,
}

/// `"/a/b"` matches exactly; `"/a/*"` matches every path that starts with
/// `"/a/"` (stored as `Prefix("/a/")`); `"/*"` matches everything. An exact
/// match wins over a prefix, and a longer prefix over a shorter one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RoutePath {
    Exact(String),
    Prefix(String),
}

impl fmt::Display for RoutePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RoutePath::Exact(path) => f.write_str(path),
            RoutePath::Prefix(prefix) => write!(f, "{prefix}*"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Method {
    Get,
    Head,
    Post,
    Put,
    Delete,
    Patch,
    Options,
}

impl Method {
    /// The method as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
            Method::Patch => "PATCH",
            Method::Options => "OPTIONS",
        }
    }
}

/// What answers a route. Exactly one per route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handler {
    Static(StaticResponse),
    /// The benchmark JSON body `{"message":"Hello, World!"}`.
    Json,
    /// Echoes the request body back.
    Echo,
    Files(Files),
    Health(Health),
    /// Prometheus text exposition.
    Metrics,
    /// Answers after `?ms=N` milliseconds, capped at `max`.
    Delay {
        max: Duration,
    },
    /// Hands the request to a server of the `[[upstream]]` so named (HTTP reverse proxy).
    Proxy {
        upstream: String,
        /// Removed from the front of the request path before it goes upstream.
        strip_prefix: Option<String>,
        /// `set_headers`: fields that replace the client's of the same name in the forwarded
        /// request (an empty value removes the field), sorted by name.
        set_headers: Vec<(String, String)>,
    },
}

impl Handler {
    /// The handler's key in the route table.
    pub fn kind(&self) -> &'static str {
        match self {
            Handler::Static(_) => "static",
            Handler::Json => "json",
            Handler::Echo => "echo",
            Handler::Files(_) => "files",
            Handler::Health(_) => "health",
            Handler::Metrics => "metrics",
            Handler::Delay { .. } => "delay",
            Handler::Proxy { .. } => "proxy",
        }
    }
}

/// A fixed response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticResponse {
    pub status: u16,
    pub body: String,
    pub content_type: String,
    /// Extra headers, sorted by name.
    pub headers: Vec<(String, String)>,
}

/// Files served from a directory (read on the offload pool).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Files {
    /// Resolved against the config file's directory when relative.
    pub root: PathBuf,
    /// Served for a directory request; None when written as `""`.
    pub index: Option<String>,
    pub listing: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// 200 while the process runs.
    Live,
    /// 200 while accepting, 503 while draining.
    Ready,
}
