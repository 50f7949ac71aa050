//! Built-in defaults: the values a key takes when it is absent. They must
//! agree with config/coreloop.toml, which a test checks.

use std::time::Duration;

use crate::schema::{
    AccessFormat, AccessLog, Balance, Limits, Log, LogFormat, LogLevel, MaxConnections, Server,
    Shards, Timeouts,
};

/// The embedded default configuration, documented key by key.
pub(crate) const DEFAULT_TOML: &str = include_str!("../../../config/coreloop.toml");

/// File descriptors kept back from max_connections for what is not a
/// connection: stdio, the acceptor's and each shard's epoll and waker, log
/// and offloaded file reads. Listeners are added per listener (and per shard
/// with reuseport, which opens one socket per shard).
pub(crate) const FD_MARGIN_BASE: u64 = 64;

/// Listen backlog when a listener does not set one.
pub(crate) const BACKLOG: u32 = 1024;

/// Cap for `max_connections = "auto"`: beyond this the memory for slab
/// entries and timer slots is better spent on a deliberate number.
pub(crate) const AUTO_MAX_CONNECTIONS_CAP: u64 = 1_000_000;

pub(crate) fn server() -> Server {
    Server {
        shards: Shards::Auto,
        balance: Balance::LeastLoaded,
        pin_cores: false,
        max_connections: MaxConnections::Auto,
        max_connections_per_shard: None,
        offload_threads: 4,
        offload_queue: 1024,
    }
}

pub(crate) fn timeouts() -> Timeouts {
    Timeouts {
        header: Duration::from_secs(10),
        body: Duration::from_secs(30),
        idle: Duration::from_secs(60),
        write: Duration::from_secs(30),
        drain: Duration::from_secs(30),
        keepalive_grace: Duration::from_secs(1),
        linger: Duration::from_secs(5),
        offload: Duration::from_secs(10),
    }
}

pub(crate) fn limits() -> Limits {
    Limits {
        header_bytes: 8 << 10,
        header_count: 64,
        uri_length: 4 << 10,
        body_bytes: 1 << 20,
        pipeline_depth: 16,
        write_high_water: 64 << 10,
        max_requests_per_connection: 0,
        max_connection_age: None,
        frame_max: 1 << 20,
        read_buffer: 4 << 10,
    }
}

pub(crate) fn log() -> Log {
    Log {
        level: LogLevel::Info,
        format: LogFormat::Text,
        access_log: AccessLog::Off,
        access_format: AccessFormat::Auto,
    }
}
