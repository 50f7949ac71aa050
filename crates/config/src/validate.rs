//! Rules across keys, run after decoding. A rule skips values that already
//! failed to decode (their path is marked bad), so one mistake gives one
//! error.

use std::collections::HashMap;

use crate::address::overlaps;
use crate::error::{ConfigError, ErrorKind};
use crate::host::{connection_limit, fd_margin, shard_count, Host};
use crate::keys::{Scope, KEYS};
use crate::reader::suggest;
use crate::reader::Locations;
use crate::schema::{
    Address, Balance, Handler, Listener, MaxConnections, Protocol, Server, Upstream,
};
use crate::values::Keyword;

const NO_FDS: &str = "the hard RLIMIT_NOFILE leaves no file descriptors for connections; \
     raise it (ulimit -Hn as root, LimitNOFILE= in a systemd unit)";
const PIN_TOO_MANY: &str = "pin_cores = true needs shards <= the number of CPUs; \
     set shards = \"auto\" or pin_cores = false";
const REUSEPORT_UNIX: &str = "balance = \"reuseport\" needs TCP listeners; \
     SO_REUSEPORT does not apply to unix sockets";
const NO_LISTENER: &str = "no [[listener]]: nothing would be served; add one, e.g. \
     [[listener]] name = \"web\" address = \"127.0.0.1:8080\" with a [[listener.route]]";
const URI_OVER_HEADER: &str =
    "uri_length must not exceed header_bytes: the request line is part of the head";
const EMPTY_HTTP: &str = "an http listener needs at least one [[listener.route]]";

/// What validation looks at.
pub(crate) struct Subject<'a> {
    pub(crate) server: &'a Server,
    pub(crate) listeners: &'a [Listener],
    pub(crate) upstreams: &'a [Upstream],
    pub(crate) locs: &'a Locations,
    pub(crate) host: &'a Host,
}

pub(crate) fn validate(s: &Subject<'_>) -> Vec<ConfigError> {
    let mut out = Vec::new();
    if s.listeners.is_empty() && !s.locs.is_bad("listener") {
        push(s, &mut out, "", ErrorKind::Rule(NO_LISTENER));
    }
    unique_names(s, &mut out);
    unique_addresses(s, &mut out);
    unique_upstreams(s, &mut out);
    known_upstreams(s, &mut out);
    for (i, listener) in s.listeners.iter().enumerate() {
        listener_rules(s, i, listener, &mut out);
    }
    fd_limit(s, &mut out);
    pinning(s, &mut out);
    out
}

fn push(s: &Subject<'_>, out: &mut Vec<ConfigError>, path: &str, kind: ErrorKind) {
    out.push(ConfigError {
        loc: s.locs.of(path),
        path: path.to_string(),
        kind,
    });
}

fn unique_names(s: &Subject<'_>, out: &mut Vec<ConfigError>) {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (i, listener) in s.listeners.iter().enumerate() {
        let path = format!("listener[{i}].name");
        if s.locs.is_bad(&path) {
            continue;
        }
        if let Some(&first) = seen.get(listener.name.as_str()) {
            let first = s.locs.of(&format!("listener[{first}].name"));
            push(
                s,
                out,
                &path,
                ErrorKind::DuplicateName {
                    name: listener.name.clone(),
                    first,
                },
            );
        } else {
            seen.insert(&listener.name, i);
        }
    }
}

fn unique_addresses(s: &Subject<'_>, out: &mut Vec<ConfigError>) {
    let good = |i: usize| !s.locs.is_bad(&format!("listener[{i}].address"));
    for (i, listener) in s.listeners.iter().enumerate().filter(|(i, _)| good(*i)) {
        let earlier = s.listeners[..i]
            .iter()
            .enumerate()
            .filter(|(j, _)| good(*j));
        let clash = earlier
            .into_iter()
            .find(|(_, other)| overlaps(&other.address, &listener.address));
        if let Some((j, first)) = clash {
            let kind = ErrorKind::DuplicateAddress {
                address: listener.address.to_string(),
                first_name: first.name.clone(),
                first: s.locs.of(&format!("listener[{j}].address")),
            };
            push(s, out, &format!("listener[{i}].address"), kind);
        }
    }
}

fn listener_rules(s: &Subject<'_>, i: usize, listener: &Listener, out: &mut Vec<ConfigError>) {
    let path = format!("listener[{i}]");
    unique_routes(s, &path, listener, out);
    let protocol_ok = !s.locs.is_bad(&format!("{path}.protocol"));
    let needs_routes = listener.protocol == Protocol::Http;
    if needs_routes && protocol_ok && !s.locs.has(&format!("{path}.route")) {
        // Nothing could ever answer but 404: almost surely a forgotten table.
        push(s, out, &format!("{path}.name"), ErrorKind::Rule(EMPTY_HTTP));
    }
    if s.server.balance == Balance::ReusePort && matches!(listener.address, Address::Unix(_)) {
        push(
            s,
            out,
            &format!("{path}.address"),
            ErrorKind::Rule(REUSEPORT_UNIX),
        );
    }
    if protocol_ok {
        override_scopes(s, &path, listener, out);
    }
    let limits = listener.effective_limits();
    if limits.uri_length > limits.header_bytes {
        let own = listener.limit_overrides.uri_length.is_some()
            || listener.limit_overrides.header_bytes.is_some();
        let at = if own {
            format!("{path}.limits.uri_length")
        } else {
            "limits.uri_length".to_string()
        };
        push(s, out, &at, ErrorKind::Rule(URI_OVER_HEADER));
    }
}

/// A `[listener.limits]`/`[listener.timeouts]` key must be one that may be set per listener
/// and that acts on this listener's protocol: anything else would be accepted and do nothing.
fn override_scopes(s: &Subject<'_>, path: &str, listener: &Listener, out: &mut Vec<ConfigError>) {
    for key in KEYS.iter().filter(|k| k.scope != Scope::Listener) {
        let at = format!("{path}.{}", key.path);
        if !s.locs.has(&at) || s.locs.is_bad(&at) {
            continue;
        }
        if key.scope == Scope::Global {
            let kind = ErrorKind::NotPerListener { key: key.path };
            push(s, out, &at, kind);
        } else if !key.applies.to(listener.protocol) {
            let kind = ErrorKind::WrongProtocol {
                key: key.path,
                applies: key.applies.word(),
                protocol: listener.protocol.name(),
            };
            push(s, out, &at, kind);
        }
    }
}

/// Two routes collide when their paths are equal and they share a method;
/// `/a/*` next to `/a/b` is fine (the exact path wins).
fn unique_routes(s: &Subject<'_>, path: &str, listener: &Listener, out: &mut Vec<ConfigError>) {
    // Routes that failed to decode are dropped, so indices in `routes` are
    // not table indices; recover them from the recorded paths' order.
    let indices = route_indices(s, path, listener.routes.len());
    for (k, route) in listener.routes.iter().enumerate() {
        for (m, earlier) in listener.routes[..k].iter().enumerate() {
            let common: Vec<String> = route
                .methods
                .iter()
                .filter(|method| earlier.methods.contains(method))
                .map(|method| method.as_str().to_string())
                .collect();
            if route.path == earlier.path && !common.is_empty() {
                let first = s.locs.of(&format!("{path}.route[{}].path", indices[m]));
                let kind = ErrorKind::DuplicateRoute {
                    path: route.path.to_string(),
                    methods: common,
                    first,
                };
                push(s, out, &format!("{path}.route[{}].path", indices[k]), kind);
                break;
            }
        }
    }
}

fn route_indices(s: &Subject<'_>, path: &str, kept: usize) -> Vec<usize> {
    // Bounded: a TOML file cannot hold a million route tables in practice.
    (0..1 << 20)
        .filter(|r| !s.locs.is_bad(&format!("{path}.route[{r}]")))
        .take(kept)
        .collect()
}

/// Decoded upstreams with their table indices (one that failed to decode is dropped).
fn upstream_paths<'a>(s: &Subject<'a>) -> impl Iterator<Item = (String, &'a Upstream)> {
    let indices = (0..1 << 20).filter(|r| !s.locs.is_bad(&format!("upstream[{r}]")));
    indices
        .zip(s.upstreams.iter())
        .map(|(i, u)| (format!("upstream[{i}]"), u))
}

fn unique_upstreams(s: &Subject<'_>, out: &mut Vec<ConfigError>) {
    let mut seen: HashMap<&str, String> = HashMap::new();
    for (path, upstream) in upstream_paths(s) {
        let at = format!("{path}.name");
        match seen.get(upstream.name.as_str()) {
            Some(first) => {
                let kind = ErrorKind::DuplicateUpstream {
                    name: upstream.name.clone(),
                    first: s.locs.of(first),
                };
                push(s, out, &at, kind);
            }
            None => {
                seen.insert(&upstream.name, at);
            }
        }
    }
}

/// Every `upstream = "NAME"` names an `[[upstream]]` that decoded. One that failed to decode
/// already has its error, so naming it is not reported twice.
fn known_upstreams(s: &Subject<'_>, out: &mut Vec<ConfigError>) {
    let known: Vec<&str> = s.upstreams.iter().map(|u| u.name.as_str()).collect();
    let any_bad = (0..s.upstreams.len() + 1).any(|i| s.locs.is_bad(&format!("upstream[{i}]")));
    for (i, listener) in s.listeners.iter().enumerate() {
        let Some(name) = &listener.upstream else {
            continue;
        };
        if known.contains(&name.as_str()) || any_bad {
            continue;
        }
        let kind = ErrorKind::UnknownUpstream {
            name: name.clone(),
            suggestion: suggest(name, &known).map(str::to_string),
            known: known.iter().map(|k| k.to_string()).collect(),
        };
        push(s, out, &format!("listener[{i}].upstream"), kind);
    }
    for (i, listener) in s.listeners.iter().enumerate() {
        let path = format!("listener[{i}]");
        let indices = route_indices(s, &path, listener.routes.len());
        for (k, route) in listener.routes.iter().enumerate() {
            let Handler::Proxy { upstream: name, .. } = &route.handler else {
                continue;
            };
            if known.contains(&name.as_str()) || any_bad {
                continue;
            }
            let kind = ErrorKind::UnknownUpstream {
                name: name.clone(),
                suggestion: suggest(name, &known).map(str::to_string),
                known: known.iter().map(|k| k.to_string()).collect(),
            };
            let at = format!("{path}.route[{}].proxy.upstream", indices[k]);
            push(s, out, &at, kind);
        }
    }
}

fn fd_limit(s: &Subject<'_>, out: &mut Vec<ConfigError>) {
    let margin = fd_margin(s.server, s.host, s.listeners.len());
    let hard_limit = s.host.fd_hard_limit;
    match s.server.max_connections {
        MaxConnections::Limit(max_connections) => {
            let needed = max_connections.saturating_add(margin);
            if needed > hard_limit {
                let kind = ErrorKind::FdLimit {
                    max_connections,
                    needed,
                    margin,
                    hard_limit,
                };
                push(s, out, "server.max_connections", kind);
            }
        }
        MaxConnections::Auto => {
            if connection_limit(s.server, s.host, s.listeners.len()).is_none() {
                push(s, out, "server.max_connections", ErrorKind::Rule(NO_FDS));
            }
        }
    }
}

fn pinning(s: &Subject<'_>, out: &mut Vec<ConfigError>) {
    if s.server.pin_cores && shard_count(s.server, s.host) > s.host.cpus {
        push(s, out, "server.shards", ErrorKind::Rule(PIN_TOO_MANY));
    }
}
