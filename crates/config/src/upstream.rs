//! `[[upstream]]` tables: the servers a `tcp-proxy` listener forwards to, how it picks one, and
//! when it stops trying a failing one (passive health).
//!
//! `keepalive` and `idle_timeout` act on the pooled connections of HTTP proxy routes (a
//! tcp-proxy listener splices each connection to its own). A key of the issue that this
//! version does not act on yet (`health`) is decoded only to be refused with a located
//! error: a key that parses and does nothing would be a promise the server does not keep.

use std::time::Duration;

use toml::de::DeValue;

use crate::decode::field;
use crate::error::ErrorKind;
use crate::listener::{address, identifier, required};
use crate::reader::{Cx, TableReader, Value};
use crate::schema::{Address, Upstream, UpstreamBalance};
use crate::values::{duration, integer32, keyword, wrong_type};

const NAME_RULE: &str = "an upstream name is 1 to 64 letters, digits, '-' or '_' \
     (it becomes a metric label)";
const NO_SERVERS: &str =
    "an upstream needs at least one server, e.g. servers = [\"127.0.0.1:9001\"]";
const PORT_ZERO: &str = "a server needs a port to connect to; port 0 only makes sense to bind";
const NO_ACTIVE_HEALTH: &str = "active health checks are not built in this version; remove \
     `health` (passive health, max_fails and fail_timeout, is)";
const ZERO_TIMEOUT: &str = "must be greater than \"0s\"; a zero deadline would expire at once";

/// Keys refused with [`NO_ACTIVE_HEALTH`].
const NOT_BUILT: [(&str, &str); 1] = [("health", NO_ACTIVE_HEALTH)];

pub(crate) fn upstreams(cx: &mut Cx<'_>, v: &Value<'_>) -> Vec<Upstream> {
    let DeValue::Array(items) = v.get_ref() else {
        let expected = "an array of tables ([[upstream]])";
        return wrong_type(cx, "upstream", v, expected, v.get_ref()).unwrap_or_default();
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let path = format!("upstream[{i}]");
        match upstream(cx, &path, item) {
            Some(u) => out.push(u),
            // Validation skips an upstream that failed to decode by this mark.
            None => cx.locs.mark_bad(&path),
        }
    }
    out
}

fn upstream(cx: &mut Cx<'_>, path: &str, v: &Value<'_>) -> Option<Upstream> {
    let mut t = TableReader::new(cx, path, v);
    if !v.get_ref().is_table() {
        return None;
    }
    let name = required(cx, &mut t, "name", "an upstream name such as \"app\"", name);
    let servers = required(cx, &mut t, "servers", "an array of addresses", servers);
    let balance = field(cx, &mut t, "balance", keyword).unwrap_or(UpstreamBalance::RoundRobin);
    let connect_timeout =
        field(cx, &mut t, "connect_timeout", positive).unwrap_or(Duration::from_secs(1));
    let max_fails = field(cx, &mut t, "max_fails", |cx, p, v| {
        integer32(cx, p, v, 0, 1_000)
    })
    .unwrap_or(3);
    let fail_timeout =
        field(cx, &mut t, "fail_timeout", positive).unwrap_or(Duration::from_secs(10));
    let response_timeout =
        field(cx, &mut t, "response_timeout", positive).unwrap_or(Duration::from_secs(30));
    let keepalive = field(cx, &mut t, "keepalive", |cx, p, v| {
        integer32(cx, p, v, 0, 100_000)
    })
    .unwrap_or(32);
    let idle_timeout =
        field(cx, &mut t, "idle_timeout", positive).unwrap_or(Duration::from_secs(60));
    for (key, rule) in NOT_BUILT {
        if let Some(value) = t.take(cx, key) {
            cx.error(value.span(), &t.child(key), ErrorKind::Rule(rule));
        }
    }
    t.finish(cx);
    Some(Upstream {
        name: name?,
        servers: servers?,
        balance,
        connect_timeout,
        max_fails,
        fail_timeout,
        response_timeout,
        keepalive,
        idle_timeout,
    })
}

fn name(cx: &mut Cx<'_>, path: &str, v: &Value<'_>) -> Option<String> {
    identifier(cx, path, v, NAME_RULE)
}

fn servers(cx: &mut Cx<'_>, path: &str, v: &Value<'_>) -> Option<Vec<Address>> {
    let DeValue::Array(items) = v.get_ref() else {
        let expected = "an array of addresses such as [\"127.0.0.1:9001\", \"unix:/run/app.sock\"]";
        return wrong_type(cx, path, v, expected, v.get_ref());
    };
    if items.is_empty() {
        cx.error(v.span(), path, ErrorKind::Rule(NO_SERVERS));
        return None;
    }
    let mut out: Vec<Address> = Vec::with_capacity(items.len());
    let mut ok = true;
    for (i, item) in items.iter().enumerate() {
        let item_path = format!("{path}[{i}]");
        cx.record(&item_path, item.span());
        match server(cx, &item_path, item) {
            Some(addr) if out.contains(&addr) => {
                let kind = ErrorKind::DuplicateServer {
                    server: addr.to_string(),
                };
                cx.error(item.span(), &item_path, kind);
                ok = false;
            }
            Some(addr) => out.push(addr),
            None => ok = false,
        }
    }
    ok.then_some(out)
}

fn server(cx: &mut Cx<'_>, path: &str, v: &Value<'_>) -> Option<Address> {
    let addr = address(cx, path, v)?;
    if matches!(&addr, Address::Tcp(a) if a.port() == 0) {
        cx.error(v.span(), path, ErrorKind::Rule(PORT_ZERO));
        return None;
    }
    Some(addr)
}

fn positive(cx: &mut Cx<'_>, path: &str, v: &Value<'_>) -> Option<Duration> {
    let d = duration(cx, path, v)?;
    if d.is_zero() {
        cx.error(v.span(), path, ErrorKind::Rule(ZERO_TIMEOUT));
        return None;
    }
    Some(d)
}
