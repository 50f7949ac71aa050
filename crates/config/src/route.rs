//! `[[listener.route]]`: a path, methods and exactly one handler.

use std::path::Path;
use std::time::Duration;

use toml::de::DeValue;

use crate::decode::field;
use crate::error::ErrorKind;
use crate::listener::required;
use crate::reader::{Cx, TableReader, Value};
use crate::schema::{Files, Handler, Health, Method, Route, RoutePath, StaticResponse};
use crate::values::{boolean, integer, keyword, string, wrong_type};

/// The handler keys, in the order they are documented.
pub(crate) const HANDLERS: [&str; 7] = [
    "static", "json", "echo", "files", "health", "metrics", "delay",
];

const STRIP_RULE: &str = "a path prefix such as \"/app\": starts with \"/\", does not end \
     with one, no query, fragment, percent sign or space";

const PATH_FORMS: &str = "a path such as \"/json\" (exact) or \"/static/*\" (prefix)";

pub(crate) fn routes(
    cx: &mut Cx<'_>,
    path: &str,
    v: &Value<'_>,
    base_dir: Option<&Path>,
) -> Vec<Route> {
    let DeValue::Array(items) = v.get_ref() else {
        let expected = "an array of tables ([[listener.route]])";
        return wrong_type(cx, path, v, expected, v.get_ref()).unwrap_or_default();
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let route_path = format!("{path}[{i}]");
        match route(cx, &route_path, item, base_dir) {
            Some(route) => out.push(route),
            // Validation maps kept routes back to table indices by this mark.
            None => cx.locs.mark_bad(&route_path),
        }
    }
    out
}

fn route(cx: &mut Cx<'_>, path: &str, v: &Value<'_>, base_dir: Option<&Path>) -> Option<Route> {
    let mut t = TableReader::new(cx, path, v);
    if !v.get_ref().is_table() {
        // Already reported; a missing path and handler would only echo it.
        return None;
    }
    let route_path = required(cx, &mut t, "path", PATH_FORMS, route_path);
    let methods =
        field(cx, &mut t, "methods", methods).unwrap_or_else(|| vec![Method::Get, Method::Head]);
    let mut found = Vec::new();
    if let Some(value) = t.take(cx, "proxy") {
        let handler = proxy(cx, &t.child("proxy"), value);
        found.push(("proxy", value.span(), handler));
    }
    for key in HANDLERS {
        let Some(value) = t.take(cx, key) else {
            continue;
        };
        let handler = handler(cx, &t.child(key), key, value, base_dir);
        found.push((key, value.span(), handler));
    }
    let span = t.span();
    t.finish(cx);
    // Source order, so "found 2: a, b" reads like the file.
    found.sort_by_key(|(_, span, _)| span.start);
    if found.len() != 1 {
        let names = found.iter().map(|(k, _, _)| k.to_string()).collect();
        // Point at the second handler when there are several: that is
        // where the reader's eye should go.
        let at = found.get(1).map_or(span, |(_, s, _)| s.clone());
        cx.error(at, path, ErrorKind::HandlerCount { found: names });
        return None;
    }
    let (_, _, handler) = found.pop()?;
    Some(Route {
        path: route_path?,
        methods,
        handler: handler?,
    })
}

/// `proxy = { upstream = "NAME" }`; whether NAME exists is checked with the upstreams.
fn proxy(cx: &mut Cx<'_>, path: &str, v: &Value<'_>) -> Option<Handler> {
    if !v.get_ref().is_table() {
        let expected = "a table such as { upstream = \"app\" }";
        return wrong_type(cx, path, v, expected, v.get_ref());
    }
    let mut t = TableReader::new(cx, path, v);
    let upstream = required(
        cx,
        &mut t,
        "upstream",
        "an upstream name such as \"app\"",
        |cx, p, v| string(cx, p, v).map(str::to_string),
    );
    let strip_prefix = field(cx, &mut t, "strip_prefix", |cx, p, v| {
        let text = string(cx, p, v)?;
        let ok = text.len() > 1
            && text.starts_with('/')
            && !text.ends_with('/')
            && !text.contains(['?', '#', '%', ' ']);
        if !ok {
            cx.error(v.span(), p, ErrorKind::Rule(STRIP_RULE));
            return None;
        }
        Some(text.to_string())
    });
    let set_headers = match t.take(cx, "set_headers") {
        Some(value) => crate::set_headers::set_headers(cx, &t.child("set_headers"), value),
        None => Some(Vec::new()),
    };
    t.finish(cx);
    Some(Handler::Proxy {
        upstream: upstream?,
        strip_prefix,
        set_headers: set_headers?,
    })
}

/// `/exact`, or `/prefix/*` for everything under `/prefix/`.
pub(crate) fn parse_route_path(text: &str) -> Result<RoutePath, &'static str> {
    if !text.starts_with('/') {
        return Err("a route path starts with \"/\"");
    }
    if text
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == '?' || c == '#')
    {
        return Err("a route path has no query, fragment, spaces or control characters");
    }
    let (base, prefix) = match text.strip_suffix('*') {
        Some(base) if base.ends_with('/') => (base, true),
        _ => (text, false),
    };
    if base.contains('*') {
        return Err("\"*\" is only allowed at the end, after a \"/\": \"/prefix/*\"");
    }
    // Segments between the slashes; a prefix or "/" itself ends in "/".
    let inner = base.strip_suffix('/').unwrap_or(base);
    if inner
        .split('/')
        .skip(1)
        .any(|s| s.is_empty() || s == "." || s == "..")
    {
        return Err("a route path has no empty, \".\" or \"..\" segments");
    }
    let owned = base.to_string();
    Ok(if prefix {
        RoutePath::Prefix(owned)
    } else {
        RoutePath::Exact(owned)
    })
}

fn route_path(cx: &mut Cx<'_>, path: &str, v: &Value<'_>) -> Option<RoutePath> {
    let text = string(cx, path, v)?;
    parse_route_path(text)
        .map_err(|rule| cx.error(v.span(), path, ErrorKind::Rule(rule)))
        .ok()
}

fn methods(cx: &mut Cx<'_>, path: &str, v: &Value<'_>) -> Option<Vec<Method>> {
    let DeValue::Array(items) = v.get_ref() else {
        return wrong_type(
            cx,
            path,
            v,
            "an array of methods such as [\"GET\", \"HEAD\"]",
            v.get_ref(),
        );
    };
    if items.is_empty() {
        cx.error(
            v.span(),
            path,
            ErrorKind::Rule("list at least one method, or leave out the key"),
        );
        return None;
    }
    let mut out = Vec::new();
    let mut ok = true;
    for (i, item) in items.iter().enumerate() {
        match keyword::<Method>(cx, &format!("{path}[{i}]"), item) {
            Some(m) if !out.contains(&m) => out.push(m),
            Some(_) => {}
            None => ok = false,
        }
    }
    ok.then_some(out)
}

fn handler(
    cx: &mut Cx<'_>,
    path: &str,
    key: &str,
    v: &Value<'_>,
    base_dir: Option<&Path>,
) -> Option<Handler> {
    match key {
        "static" => static_response(cx, path, v).map(Handler::Static),
        "json" => empty(cx, path, v, Handler::Json),
        "echo" => empty(cx, path, v, Handler::Echo),
        "metrics" => empty(cx, path, v, Handler::Metrics),
        "files" => files(cx, path, v, base_dir).map(Handler::Files),
        "health" => keyword::<Health>(cx, path, v).map(Handler::Health),
        _ => delay(cx, path, v),
    }
}

/// A handler that takes no settings: `json = {}`.
fn empty(cx: &mut Cx<'_>, path: &str, v: &Value<'_>, handler: Handler) -> Option<Handler> {
    let t = TableReader::new(cx, path, v);
    let ok = v.get_ref().is_table();
    t.finish(cx);
    ok.then_some(handler)
}

fn delay(cx: &mut Cx<'_>, path: &str, v: &Value<'_>) -> Option<Handler> {
    let mut t = TableReader::new(cx, path, v);
    let max_ms = t
        .take(cx, "max_ms")
        .map(|v| integer(cx, &t.child("max_ms"), v, 1, 3_600_000));
    t.finish(cx);
    let max_ms = match max_ms {
        Some(decoded) => decoded?,
        None => 10_000,
    };
    Some(Handler::Delay {
        max: Duration::from_millis(max_ms),
    })
}

fn static_response(cx: &mut Cx<'_>, path: &str, v: &Value<'_>) -> Option<StaticResponse> {
    let mut t = TableReader::new(cx, path, v);
    let status = field(cx, &mut t, "status", status).unwrap_or(200);
    let body_value = t.take(cx, "body");
    let body = body_value
        .and_then(|v| string(cx, &t.child("body"), v))
        .unwrap_or_default();
    let content_type = field(cx, &mut t, "content_type", header_value)
        .unwrap_or_else(|| "text/plain; charset=utf-8".to_string());
    let headers = field(cx, &mut t, "headers", headers).unwrap_or_default();
    t.finish(cx);
    let bodiless = status < 200 || status == 204 || status == 304;
    if bodiless && !body.is_empty() {
        let rule = "statuses 1xx, 204 and 304 cannot have a body";
        let at = body_value.map_or(v.span(), |b| b.span());
        cx.error(at, &format!("{path}.body"), ErrorKind::Rule(rule));
        return None;
    }
    let body = body.to_string();
    Some(StaticResponse {
        status,
        body,
        content_type,
        headers,
    })
}

fn status(cx: &mut Cx<'_>, path: &str, v: &Value<'_>) -> Option<u16> {
    let DeValue::Integer(int) = v.get_ref() else {
        return wrong_type(cx, path, v, "an HTTP status code (100..=599)", v.get_ref());
    };
    let value = i128::from_str_radix(int.as_str(), int.radix()).unwrap_or(i128::MAX);
    match u16::try_from(value) {
        Ok(status) if (100..=599).contains(&status) => Some(status),
        _ => {
            cx.error(v.span(), path, ErrorKind::Status { status: value });
            None
        }
    }
}

fn headers(cx: &mut Cx<'_>, path: &str, v: &Value<'_>) -> Option<Vec<(String, String)>> {
    let DeValue::Table(table) = v.get_ref() else {
        return wrong_type(
            cx,
            path,
            v,
            "a table of header names to strings",
            v.get_ref(),
        );
    };
    let mut out = Vec::new();
    for (name, value) in table.iter() {
        let name: &str = name.get_ref();
        let header_path = format!("{path}.{name}");
        cx.record(&header_path, value.span());
        if let Some(rule) = header_name_rule(name) {
            cx.error(value.span(), &header_path, ErrorKind::Rule(rule));
        } else if let Some(text) = header_value(cx, &header_path, value) {
            out.push((name.to_string(), text));
        }
    }
    out.sort();
    Some(out)
}

fn header_name_rule(name: &str) -> Option<&'static str> {
    // RFC 9110 section 5.6.2: a field name is a token.
    let tchar = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    if name.is_empty() || !name.chars().all(tchar) {
        return Some("a header name is a token (letters, digits and !#$%&'*+-.^_`|~)");
    }
    match name.to_ascii_lowercase().as_str() {
        "content-length" | "transfer-encoding" | "connection" => {
            Some("the server sets framing headers itself (content-length, transfer-encoding, connection)")
        }
        "content-type" => Some("set content_type instead of a content-type header"),
        _ => None,
    }
}

fn header_value(cx: &mut Cx<'_>, path: &str, v: &Value<'_>) -> Option<String> {
    let text = string(cx, path, v)?;
    if text.chars().any(|c| c == '\r' || c == '\n' || c == '\0') {
        cx.error(
            v.span(),
            path,
            ErrorKind::Rule("a header value cannot contain CR, LF or NUL"),
        );
        return None;
    }
    Some(text.to_string())
}

fn files(cx: &mut Cx<'_>, path: &str, v: &Value<'_>, base_dir: Option<&Path>) -> Option<Files> {
    let mut t = TableReader::new(cx, path, v);
    let root = required(cx, &mut t, "root", "a directory path", |cx, p, v| {
        root(cx, p, v, base_dir)
    });
    let index = field(cx, &mut t, "index", index).unwrap_or_else(|| Some("index.html".to_string()));
    let listing = field(cx, &mut t, "listing", boolean).unwrap_or(false);
    t.finish(cx);
    Some(Files {
        root: root?,
        index,
        listing,
    })
}

fn root(
    cx: &mut Cx<'_>,
    path: &str,
    v: &Value<'_>,
    base_dir: Option<&Path>,
) -> Option<std::path::PathBuf> {
    let text = string(cx, path, v)?;
    let root = match base_dir {
        Some(base) if Path::new(text).is_relative() => base.join(text),
        _ => text.into(),
    };
    let reason = match std::fs::metadata(&root) {
        Ok(meta) if meta.is_dir() => return Some(root),
        Ok(_) => "is not a directory".to_string(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => "does not exist".to_string(),
        Err(e) => format!("cannot be read: {e}"),
    };
    let root = root.display().to_string();
    cx.error(v.span(), path, ErrorKind::FilesRoot { root, reason });
    None
}

fn index(cx: &mut Cx<'_>, path: &str, v: &Value<'_>) -> Option<Option<String>> {
    let text = string(cx, path, v)?;
    if text.contains('/') || text == "." || text == ".." {
        cx.error(
            v.span(),
            path,
            ErrorKind::Rule("index is a file name without \"/\", or \"\" for none"),
        );
        return None;
    }
    Some((!text.is_empty()).then(|| text.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expected: Result<RoutePath, &str>) {
        assert_eq!(
            parse_route_path(input),
            expected,
            "parse_route_path({input:?})"
        );
    }

    #[test]
    fn route_paths() {
        let exact = |s: &str| Ok(RoutePath::Exact(s.to_string()));
        let prefix = |s: &str| Ok(RoutePath::Prefix(s.to_string()));
        check("/", exact("/"));
        check("/json", exact("/json"));
        check("/a/b/", exact("/a/b/"));
        check("/static/*", prefix("/static/"));
        check("/*", prefix("/"));
        check("json", Err("a route path starts with \"/\""));
        check(
            "/a*",
            Err("\"*\" is only allowed at the end, after a \"/\": \"/prefix/*\""),
        );
        check(
            "/*/x",
            Err("\"*\" is only allowed at the end, after a \"/\": \"/prefix/*\""),
        );
        check(
            "/a?b",
            Err("a route path has no query, fragment, spaces or control characters"),
        );
        check(
            "/a//b",
            Err("a route path has no empty, \".\" or \"..\" segments"),
        );
        check(
            "/a/../b",
            Err("a route path has no empty, \".\" or \"..\" segments"),
        );
    }
}
