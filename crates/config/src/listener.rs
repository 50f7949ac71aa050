//! `[[listener]]` tables: name, address, protocol, overrides, routes.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;

use toml::de::DeValue;

use crate::address::parse_address;
use crate::decode::{field, limits, timeouts};
use crate::defaults;
use crate::error::ErrorKind;
use crate::reader::{Cx, TableReader, Value};
use crate::route::routes;
use crate::schema::{Address, Limits, Listener, Protocol, Timeouts};
use crate::values::{integer32, keyword, string, wrong_type};

/// What `address` accepts, for "missing" messages.
const ADDRESS_FORMS: &str = "\"host:port\", \"[::1]:port\" or \"unix:/path\"";

const NAME_RULE: &str = "a listener name is 1 to 64 letters, digits, '-' or '_' \
     (it becomes a metric label)";

pub(crate) fn listeners(
    cx: &mut Cx<'_>,
    v: &Value<'_>,
    limits: &Limits,
    timeouts: &Timeouts,
    base_dir: Option<&Path>,
) -> Vec<Listener> {
    let DeValue::Array(items) = v.get_ref() else {
        let expected = "an array of tables ([[listener]])";
        return wrong_type(cx, "listener", v, expected, v.get_ref()).unwrap_or_default();
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        out.push(listener(
            cx,
            &format!("listener[{i}]"),
            item,
            limits,
            timeouts,
            base_dir,
        ));
    }
    out
}

fn listener(
    cx: &mut Cx<'_>,
    path: &str,
    v: &Value<'_>,
    global_limits: &Limits,
    global_timeouts: &Timeouts,
    base_dir: Option<&Path>,
) -> Listener {
    let mut t = TableReader::new(cx, path, v);
    let name = required(cx, &mut t, "name", "a listener name such as \"web\"", name);
    let address = required(cx, &mut t, "address", ADDRESS_FORMS, address);
    let protocol = field(cx, &mut t, "protocol", keyword);
    let backlog = field(cx, &mut t, "backlog", |cx, p, v| {
        integer32(cx, p, v, 1, 65_535)
    });
    let upstream = upstream_name(cx, &mut t, protocol);
    let limit_overrides = t
        .take(cx, "limits")
        .map(|v| limits(cx, &t.child("limits"), v));
    let timeout_overrides = t
        .take(cx, "timeouts")
        .map(|v| timeouts(cx, &t.child("timeouts"), v));
    let routes = match t.take(cx, "route") {
        Some(v) if protocol.is_some_and(|p| p != Protocol::Http) => {
            let protocol = crate::values::Keyword::name(protocol.unwrap_or(Protocol::Http));
            cx.error(
                v.span(),
                &t.child("route"),
                ErrorKind::RoutesNeedHttp { protocol },
            );
            Vec::new()
        }
        Some(v) => routes(cx, &t.child("route"), v, base_dir),
        None => Vec::new(),
    };
    let tls = t
        .take(cx, "tls")
        .and_then(|v| crate::tls::tls(cx, &t.child("tls"), v, base_dir));
    t.finish(cx);
    let limit_overrides = limit_overrides.unwrap_or_default();
    let timeout_overrides = timeout_overrides.unwrap_or_default();
    Listener {
        name: name.unwrap_or_default(),
        // A placeholder the validator skips: the path is marked bad.
        address: address.unwrap_or(Address::Tcp(SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)))),
        protocol: protocol.unwrap_or(Protocol::Http),
        backlog: backlog.unwrap_or(defaults::BACKLOG),
        routes,
        upstream,
        limits: global_limits.patched(&limit_overrides),
        timeouts: global_timeouts.patched(&timeout_overrides),
        limit_overrides,
        timeout_overrides,
        tls,
    }
}

/// `upstream`: required on a `tcp-proxy` listener, refused on any other (an HTTP listener
/// names its upstream per route, `proxy = { upstream = ... }`). Whether it exists is checked
/// by validation, against every `[[upstream]]`.
fn upstream_name(
    cx: &mut Cx<'_>,
    t: &mut TableReader<'_, '_>,
    protocol: Option<Protocol>,
) -> Option<String> {
    if protocol == Some(Protocol::TcpProxy) {
        let expected = "the name of an [[upstream]] to forward connections to";
        return required(cx, t, "upstream", expected, |cx, p, v| {
            string(cx, p, v).map(str::to_string)
        });
    }
    let v = t.take(cx, "upstream")?;
    cx.error(
        v.span(),
        &t.child("upstream"),
        ErrorKind::Rule(UPSTREAM_NEEDS_TCP_PROXY),
    );
    None
}

const UPSTREAM_NEEDS_TCP_PROXY: &str = "`upstream` on a listener needs protocol = \"tcp-proxy\"";

/// Like [`field`], but a missing key is an error at the table's header.
pub(crate) fn required<T>(
    cx: &mut Cx<'_>,
    t: &mut TableReader<'_, '_>,
    key: &'static str,
    expected: &'static str,
    decode: impl FnOnce(&mut Cx<'_>, &str, &Value<'_>) -> Option<T>,
) -> Option<T> {
    if !t.has(key) {
        cx.error(t.span(), &t.child(key), ErrorKind::Missing { expected });
        let _ = t.take(cx, key);
        return None;
    }
    field(cx, t, key, decode)
}

fn name(cx: &mut Cx<'_>, path: &str, v: &Value<'_>) -> Option<String> {
    identifier(cx, path, v, NAME_RULE)
}

/// A name other parts of the config refer to (a listener, an upstream): 1 to 64 letters,
/// digits, '-' or '_'; `rule` is the message when it is not.
pub(crate) fn identifier(
    cx: &mut Cx<'_>,
    path: &str,
    v: &Value<'_>,
    rule: &'static str,
) -> Option<String> {
    let text = string(cx, path, v)?;
    let ok = !text.is_empty()
        && text.len() <= 64
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !ok {
        cx.error(v.span(), path, ErrorKind::Rule(rule));
        return None;
    }
    Some(text.to_string())
}

pub(crate) fn address(cx: &mut Cx<'_>, path: &str, v: &Value<'_>) -> Option<Address> {
    let text = string(cx, path, v)?;
    match parse_address(text) {
        Ok(address) => Some(address),
        Err(reason) => {
            cx.error(
                v.span(),
                path,
                ErrorKind::BadAddress {
                    text: text.to_string(),
                    reason,
                },
            );
            None
        }
    }
}
