//! The document and its global sections: `[server]`, `[timeouts]`,
//! `[limits]`, `[log]`. Listeners are in listener.rs.

use std::path::Path;
use std::time::Duration;

use toml::de::DeValue;

use crate::defaults;
use crate::error::ErrorKind;
use crate::listener::listeners;
use crate::reader::{Cx, TableReader, Value};
use crate::schema::{
    AccessLog, Limits, LimitsPatch, Listener, Log, MaxConnections, Server, Shards, Timeouts,
    TimeoutsPatch, Upstream,
};
use crate::upstream::upstreams;
use crate::values::{boolean, duration, integer, integer32, keyword, size, string, wrong_type};

/// A whole document, decoded; what failed keeps its default.
pub(crate) struct Decoded {
    pub(crate) server: Server,
    pub(crate) timeouts: Timeouts,
    pub(crate) limits: Limits,
    pub(crate) log: Log,
    pub(crate) listeners: Vec<Listener>,
    pub(crate) upstreams: Vec<Upstream>,
}

/// The reactor always runs its pool (the `delay` and `files` handlers, and any protocol, may
/// offload), so a zero here could only be a promise it does not keep.
const NO_OFFLOAD: &str = "offload_threads must be at least 1: the offload pool always runs \
     (delay and files handlers use it); there is no way to turn it off";

const ZERO_DEADLINE: &str = "must be greater than \"0s\"; a zero deadline would expire at once";

pub(crate) fn document(cx: &mut Cx<'_>, root: &Value<'_>, base_dir: Option<&Path>) -> Decoded {
    let mut t = TableReader::new(cx, "", root);
    let server = match t.take(cx, "server") {
        Some(v) => server(cx, v),
        None => defaults::server(),
    };
    let timeouts_patch = t.take(cx, "timeouts").map(|v| timeouts(cx, "timeouts", v));
    let timeouts = defaults::timeouts().patched(&timeouts_patch.unwrap_or_default());
    let limits_patch = t.take(cx, "limits").map(|v| limits(cx, "limits", v));
    let limits = defaults::limits().patched(&limits_patch.unwrap_or_default());
    let log = match t.take(cx, "log") {
        Some(v) => log(cx, v),
        None => defaults::log(),
    };
    let listeners = match t.take(cx, "listener") {
        Some(v) => listeners(cx, v, &limits, &timeouts, base_dir),
        None => Vec::new(),
    };
    let upstreams = match t.take(cx, "upstream") {
        Some(v) => upstreams(cx, v),
        None => Vec::new(),
    };
    t.finish(cx);
    Decoded {
        server,
        timeouts,
        limits,
        log,
        listeners,
        upstreams,
    }
}

/// Decodes `key` of `t` with `decode` if it is present.
pub(crate) fn field<T>(
    cx: &mut Cx<'_>,
    t: &mut TableReader<'_, '_>,
    key: &'static str,
    decode: impl FnOnce(&mut Cx<'_>, &str, &Value<'_>) -> Option<T>,
) -> Option<T> {
    let v = t.take(cx, key)?;
    decode(cx, &t.child(key), v)
}

fn server(cx: &mut Cx<'_>, v: &Value<'_>) -> Server {
    let d = defaults::server();
    let mut t = TableReader::new(cx, "server", v);
    let server = Server {
        shards: field(cx, &mut t, "shards", shards).unwrap_or(d.shards),
        balance: field(cx, &mut t, "balance", keyword).unwrap_or(d.balance),
        pin_cores: field(cx, &mut t, "pin_cores", boolean).unwrap_or(d.pin_cores),
        max_connections: field(cx, &mut t, "max_connections", max_connections)
            .unwrap_or(d.max_connections),
        max_connections_per_shard: field(cx, &mut t, "max_connections_per_shard", |cx, p, v| {
            integer(cx, p, v, 1, 100_000_000)
        }),
        offload_threads: field(cx, &mut t, "offload_threads", offload_threads)
            .unwrap_or(d.offload_threads),
        offload_queue: field(cx, &mut t, "offload_queue", |cx, p, v| {
            integer32(cx, p, v, 1, 1_000_000)
        })
        .unwrap_or(d.offload_queue),
    };
    t.finish(cx);
    server
}

fn offload_threads(cx: &mut Cx<'_>, path: &str, v: &Value<'_>) -> Option<u32> {
    if matches!(v.get_ref(), DeValue::Integer(i) if i.as_str() == "0") {
        cx.error(v.span(), path, ErrorKind::Rule(NO_OFFLOAD));
        return None;
    }
    integer32(cx, path, v, 1, 1024)
}

pub(crate) fn shards(cx: &mut Cx<'_>, path: &str, v: &Value<'_>) -> Option<Shards> {
    match v.get_ref() {
        DeValue::String(s) if s == "auto" => Some(Shards::Auto),
        DeValue::Integer(i) if i.as_str() == "0" => {
            cx.error(v.span(), path, ErrorKind::ZeroShards);
            None
        }
        DeValue::Integer(_) => integer32(cx, path, v, 1, 1024).map(Shards::Count),
        other => wrong_type(cx, path, v, "\"auto\" or an integer >= 1", other),
    }
}

fn max_connections(cx: &mut Cx<'_>, path: &str, v: &Value<'_>) -> Option<MaxConnections> {
    match v.get_ref() {
        DeValue::String(s) if s == "auto" => Some(MaxConnections::Auto),
        DeValue::Integer(_) => integer(cx, path, v, 1, 100_000_000).map(MaxConnections::Limit),
        other => wrong_type(cx, path, v, "\"auto\" or an integer >= 1", other),
    }
}

/// `[timeouts]` or `[listener.timeouts]`.
pub(crate) fn timeouts(cx: &mut Cx<'_>, path: &str, v: &Value<'_>) -> TimeoutsPatch {
    let mut t = TableReader::new(cx, path, v);
    let patch = TimeoutsPatch {
        header: field(cx, &mut t, "header", positive_duration),
        body: field(cx, &mut t, "body", positive_duration),
        idle: field(cx, &mut t, "idle", positive_duration),
        write: field(cx, &mut t, "write", positive_duration),
        drain: field(cx, &mut t, "drain", duration),
        keepalive_grace: field(cx, &mut t, "keepalive_grace", duration),
        linger: field(cx, &mut t, "linger", duration),
        offload: field(cx, &mut t, "offload", positive_duration),
    };
    t.finish(cx);
    patch
}

fn positive_duration(cx: &mut Cx<'_>, path: &str, v: &Value<'_>) -> Option<Duration> {
    let d = duration(cx, path, v)?;
    if d.is_zero() {
        cx.error(v.span(), path, ErrorKind::Rule(ZERO_DEADLINE));
        return None;
    }
    Some(d)
}

/// `[limits]` or `[listener.limits]`.
pub(crate) fn limits(cx: &mut Cx<'_>, path: &str, v: &Value<'_>) -> LimitsPatch {
    let mut t = TableReader::new(cx, path, v);
    let patch = LimitsPatch {
        header_bytes: field(cx, &mut t, "header_bytes", |cx, p, v| {
            size_in(cx, p, v, 256, 1 << 20)
        }),
        header_count: field(cx, &mut t, "header_count", |cx, p, v| {
            integer32(cx, p, v, 1, 1024)
        }),
        uri_length: field(cx, &mut t, "uri_length", |cx, p, v| {
            size_in(cx, p, v, 16, 1 << 20)
        }),
        body_bytes: field(cx, &mut t, "body_bytes", |cx, p, v| {
            size_in(cx, p, v, 0, 1 << 40)
        }),
        pipeline_depth: field(cx, &mut t, "pipeline_depth", |cx, p, v| {
            integer32(cx, p, v, 1, 1024)
        }),
        write_high_water: field(cx, &mut t, "write_high_water", |cx, p, v| {
            size_in(cx, p, v, 1 << 10, 1 << 30)
        }),
        max_requests_per_connection: field(
            cx,
            &mut t,
            "max_requests_per_connection",
            |cx, p, v| integer(cx, p, v, 0, i64::MAX as u64),
        ),
        max_connection_age: field(cx, &mut t, "max_connection_age", |cx, p, v| {
            duration(cx, p, v).map(|d| (!d.is_zero()).then_some(d))
        }),
        frame_max: field(cx, &mut t, "frame_max", |cx, p, v| {
            size_in(cx, p, v, 16, 1 << 30)
        }),
        read_buffer: field(cx, &mut t, "read_buffer", |cx, p, v| {
            size_in(cx, p, v, 512, 16 << 20)
        }),
    };
    t.finish(cx);
    patch
}

fn size_in(cx: &mut Cx<'_>, path: &str, v: &Value<'_>, min: u64, max: u64) -> Option<u64> {
    let n = size(cx, path, v)?;
    if n < min || n > max {
        cx.error(
            v.span(),
            path,
            ErrorKind::OutOfRange {
                value: i128::from(n),
                min,
                max,
            },
        );
        return None;
    }
    Some(n)
}

fn log(cx: &mut Cx<'_>, v: &Value<'_>) -> Log {
    let d = defaults::log();
    let mut t = TableReader::new(cx, "log", v);
    let log = Log {
        level: field(cx, &mut t, "level", keyword).unwrap_or(d.level),
        format: field(cx, &mut t, "format", keyword).unwrap_or(d.format),
        access_log: field(cx, &mut t, "access_log", access_log).unwrap_or(d.access_log),
        access_format: field(cx, &mut t, "access_format", keyword).unwrap_or(d.access_format),
    };
    t.finish(cx);
    log
}

fn access_log(cx: &mut Cx<'_>, path: &str, v: &Value<'_>) -> Option<AccessLog> {
    match v.get_ref() {
        DeValue::Boolean(true) => Some(AccessLog::Stdout),
        DeValue::Boolean(false) => Some(AccessLog::Off),
        DeValue::String(_) => match string(cx, path, v)? {
            "" => {
                let rule = "an empty path; use false to turn the access log off";
                cx.error(v.span(), path, ErrorKind::Rule(rule));
                None
            }
            "stdout" => Some(AccessLog::Stdout),
            "stderr" => Some(AccessLog::Stderr),
            file => Some(AccessLog::File(file.into())),
        },
        other => wrong_type(
            cx,
            path,
            v,
            "true, false, \"stdout\", \"stderr\" or a file path",
            other,
        ),
    }
}
