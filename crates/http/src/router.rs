//! Routes: exact and prefix paths, per method. Built once from plain values, then shared.

use crate::handlers::{compile, Compiled, Handler};
use crate::head::Method;

/// One route, from plain values (the server maps its config onto these).
#[derive(Clone, Debug)]
pub struct Route {
    /// The path, starting with `/`, matched against the percent-decoded request path.
    pub path: String,
    /// Match `path` and everything below it (`/static` matches `/static` and `/static/a`,
    /// not `/staticx`) instead of `path` alone.
    pub prefix: bool,
    /// Methods served, e.g. `["GET"]`; HEAD is implied by GET. Empty serves every method.
    pub methods: Vec<String>,
    /// What answers.
    pub handler: Handler,
}

impl Route {
    /// An exact route for GET (and HEAD).
    pub fn get(path: &str, handler: Handler) -> Self {
        Self {
            path: path.to_owned(),
            prefix: false,
            methods: vec!["GET".to_owned()],
            handler,
        }
    }
}

/// A route table that cannot work.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteError(pub String);

impl std::fmt::Display for RouteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RouteError {}

/// Routes with the same path and kind; the method picks among them.
#[derive(Clone, Debug)]
struct Group {
    path: Vec<u8>,
    prefix: bool,
    entries: Vec<Entry>,
    /// `Allow: ...\r\n`, pre-encoded for 405 responses.
    allow: Vec<u8>,
}

#[derive(Clone, Debug)]
struct Entry {
    methods: Vec<String>,
    /// `methods` as the lookup tests them, decided once here instead of by string compares
    /// per request.
    allows: Allows,
    handler: Compiled,
    /// The `route` label slot of its pattern (`crate::stats`), set by [`RouteTable::label`].
    slot: usize,
}

/// The methods an entry serves: every one, or the known methods by bit (`1 << method_index`;
/// GET's bit brings HEAD's, RFC 9110 §9.3.2) and any other tokens by name.
#[derive(Clone, Debug)]
struct Allows {
    any: bool,
    known: u8,
    others: Vec<String>,
}

impl Allows {
    fn new(methods: &[String]) -> Self {
        let mut allows = Allows {
            any: methods.is_empty(),
            known: 0,
            others: Vec::new(),
        };
        for method in methods {
            match Method::from_token(method) {
                Method::Other => allows.others.push(method.clone()),
                Method::Get => allows.known |= bit(Method::Get) | bit(Method::Head),
                known => allows.known |= bit(known),
            }
        }
        allows
    }

    /// Whether a request with this method (and its token, for one outside [`Method`]) is
    /// served: a token equals a route's method exactly, as routes' methods are upper-cased.
    fn admit(&self, method: Method, token: &str) -> bool {
        self.any
            || match method {
                Method::Other => self.others.iter().any(|m| m == token),
                known => self.known & bit(known) != 0,
            }
    }
}

fn bit(method: Method) -> u8 {
    1 << crate::stats::method_index(method)
}

/// The compiled routes: exact groups first, then prefix groups longest first.
#[derive(Clone, Debug, Default)]
pub struct RouteTable {
    groups: Vec<Group>,
}

/// What the table says about a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lookup {
    /// A route serves it; `prefix_len` is the length of the matched (decoded) path prefix.
    Found {
        group: usize,
        entry: usize,
        prefix_len: usize,
    },
    /// The path is known but not for this method: 405 with the group's `Allow`.
    NotAllowed { group: usize },
    /// 404.
    NotFound,
}

impl RouteTable {
    /// Compiles `routes`: pre-encodes static responses, canonicalizes file roots.
    pub fn new(routes: Vec<Route>) -> Result<Self, RouteError> {
        let mut groups: Vec<Group> = Vec::new();
        for route in routes {
            check_route(&route)?;
            let handler = compile(route.handler)
                .map_err(|e| RouteError(format!("route {}: {e}", route.path)))?;
            let methods: Vec<String> = route
                .methods
                .iter()
                .map(|m| m.to_ascii_uppercase())
                .collect();
            let entry = Entry {
                allows: Allows::new(&methods),
                methods,
                handler,
                slot: crate::stats::NO_ROUTE,
            };
            let path = route.path.into_bytes();
            match groups
                .iter_mut()
                .find(|g| g.path == path && g.prefix == route.prefix)
            {
                Some(group) => group.entries.push(entry),
                None => groups.push(Group {
                    path,
                    prefix: route.prefix,
                    entries: vec![entry],
                    allow: Vec::new(),
                }),
            }
        }
        for group in &mut groups {
            group.allow = allow_header(&group.entries);
        }
        // Exact before prefix, then longer prefixes first, so the first match is the best one.
        groups.sort_by_key(|g| (g.prefix, std::cmp::Reverse(g.path.len())));
        Ok(Self { groups })
    }

    /// Finds the route for a decoded `path` and a method (`token` is its text, which only a
    /// method outside [`Method`] is matched by).
    #[inline]
    pub(crate) fn lookup(&self, path: &[u8], method: Method, token: &str) -> Lookup {
        let Some(index) = self.groups.iter().position(|g| matches(g, path)) else {
            return Lookup::NotFound;
        };
        let group = &self.groups[index];
        match group
            .entries
            .iter()
            .position(|e| e.allows.admit(method, token))
        {
            Some(entry) => Lookup::Found {
                group: index,
                entry,
                prefix_len: group.path.len(),
            },
            None => Lookup::NotAllowed { group: index },
        }
    }

    /// The handler [`Lookup::Found`] named.
    pub(crate) fn handler(&self, group: usize, entry: usize) -> Option<&Compiled> {
        Some(&self.groups.get(group)?.entries.get(entry)?.handler)
    }

    /// Gives every entry the `route` slot of its configured pattern (`/a` or `/a/*`), so a
    /// response is counted under the pattern, never under the request's path.
    pub(crate) fn label(&mut self, stats: &crate::stats::HttpStats) {
        for group in &mut self.groups {
            let path = String::from_utf8_lossy(&group.path);
            let pattern = match (group.prefix, path.ends_with('/')) {
                (false, _) => path.into_owned(),
                (true, true) => format!("{path}*"),
                (true, false) => format!("{path}/*"),
            };
            let slot = stats.route_slot(&pattern);
            for entry in &mut group.entries {
                entry.slot = slot;
            }
        }
    }

    /// The `route` slot of the entry [`Lookup::Found`] named.
    /// Whether any route proxies (then every connection's peer address is kept, for
    /// `X-Forwarded-For`).
    pub(crate) fn has_proxy(&self) -> bool {
        self.groups
            .iter()
            .flat_map(|g| &g.entries)
            .any(|e| matches!(e.handler, Compiled::Proxy(_)))
    }

    pub(crate) fn slot(&self, group: usize, entry: usize) -> usize {
        (self.groups.get(group))
            .and_then(|g| g.entries.get(entry))
            .map_or(crate::stats::NO_ROUTE, |e| e.slot)
    }

    /// The `Allow` header line of a group.
    pub(crate) fn allow(&self, group: usize) -> &[u8] {
        self.groups.get(group).map_or(b"", |g| &g.allow)
    }
}

fn matches(group: &Group, path: &[u8]) -> bool {
    let route = group.path.as_slice();
    if !group.prefix {
        return route.len() == path.len() && same(route, path);
    }
    if path.len() < route.len() || !same(route, &path[..route.len()]) {
        return false;
    }
    let rest = &path[route.len()..];
    rest.is_empty() || rest[0] == b'/' || route.ends_with(b"/")
}

/// `a == b` for slices of one length, a word at a time (the last word overlapping the one
/// before): route paths are short, and a libc `memcmp` call cost more than the compare.
fn same(a: &[u8], b: &[u8]) -> bool {
    debug_assert_eq!(a.len(), b.len());
    let n = a.len().min(b.len());
    let word =
        |s: &[u8], at: usize| u64::from_ne_bytes(s[at..at + 8].try_into().unwrap_or_default());
    let half =
        |s: &[u8], at: usize| u32::from_ne_bytes(s[at..at + 4].try_into().unwrap_or_default());
    match n {
        0..4 => a.iter().zip(b).all(|(x, y)| x == y),
        4..8 => half(a, 0) == half(b, 0) && half(a, n - 4) == half(b, n - 4),
        _ => {
            let mut at = 0;
            while at + 8 < n {
                if word(a, at) != word(b, at) {
                    return false;
                }
                at += 8;
            }
            word(a, n - 8) == word(b, n - 8)
        }
    }
}

fn check_route(route: &Route) -> Result<(), RouteError> {
    if !route.path.starts_with('/') {
        return Err(RouteError(format!(
            "route path `{}` must start with `/`",
            route.path
        )));
    }
    let token =
        |m: &String| !m.is_empty() && m.bytes().all(|b| b.is_ascii_alphabetic() || b == b'-');
    match route.methods.iter().find(|m| !token(m)) {
        Some(bad) => Err(RouteError(format!(
            "route {}: `{bad}` is not a method",
            route.path
        ))),
        None => Ok(()),
    }
}

fn allow_header(entries: &[Entry]) -> Vec<u8> {
    let mut methods: Vec<&str> = Vec::new();
    for method in entries.iter().flat_map(|e| e.methods.iter()) {
        let implied = (method == "GET").then_some("HEAD");
        for m in std::iter::once(method.as_str()).chain(implied) {
            if !methods.contains(&m) {
                methods.push(m);
            }
        }
    }
    format!("Allow: {}\r\n", methods.join(", ")).into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> RouteTable {
        let text = |body: &str| Handler::text(body);
        RouteTable::new(vec![
            Route::get("/a", text("a")),
            Route {
                path: "/a".into(),
                prefix: false,
                methods: vec!["post".into()],
                handler: Handler::Echo,
            },
            Route {
                path: "/static".into(),
                prefix: true,
                methods: vec![],
                handler: text("s"),
            },
            Route {
                path: "/static/deep".into(),
                prefix: true,
                methods: vec!["GET".into()],
                handler: text("d"),
            },
        ])
        .unwrap()
    }

    fn check(path: &str, method: &str, expected: &str) {
        let table = table();
        let got = match table.lookup(path.as_bytes(), Method::from_token(method), method) {
            Lookup::Found { group, entry, .. }
                if matches!(table.handler(group, entry), Some(Compiled::Echo)) =>
            {
                "echo".to_owned()
            }
            Lookup::Found { prefix_len, .. } => format!("found {prefix_len}"),
            Lookup::NotAllowed { group } => String::from_utf8_lossy(table.allow(group))
                .trim()
                .to_owned(),
            Lookup::NotFound => "404".to_owned(),
        };
        assert_eq!(got, expected, "{method} {path}");
    }

    #[test]
    fn lookups() {
        check("/a", "GET", "found 2");
        check("/a", "HEAD", "found 2");
        check("/a", "POST", "echo");
        check("/a", "PUT", "Allow: GET, HEAD, POST");
        check("/a/", "GET", "404");
        check("/static", "DELETE", "found 7");
        check("/static/x/y", "GET", "found 7");
        check("/staticx", "GET", "404");
        check("/static/deep/x", "GET", "found 12");
        check("/static/deep/x", "POST", "Allow: GET, HEAD");
    }

    #[test]
    fn methods_outside_the_known_ones_match_by_their_exact_token() {
        let route = |methods: &[&str]| Route {
            path: "/m".into(),
            prefix: false,
            methods: methods.iter().map(|m| m.to_string()).collect(),
            handler: Handler::text("m"),
        };
        let table = RouteTable::new(vec![route(&["patch", "Put"])]).unwrap();
        let found = |token: &str| {
            let method = Method::from_token(token);
            matches!(table.lookup(b"/m", method, token), Lookup::Found { .. })
        };
        assert!(found("PATCH") && found("PUT"));
        // Tokens are case-sensitive (RFC 9110 §9.1): only the upper-cased route methods match.
        for token in ["patch", "Patch", "put", "GET", "HEAD", "PATCHX", "PATC"] {
            assert!(!found(token), "{token}");
        }
        let table = RouteTable::new(vec![route(&["HEAD"])]).unwrap();
        let found = |token| {
            matches!(
                table.lookup(b"/m", Method::from_token(token), token),
                Lookup::Found { .. }
            )
        };
        assert!(found("HEAD") && !found("GET"), "HEAD does not bring GET");
    }

    #[test]
    fn paths_compare_equal_exactly_at_every_length() {
        for len in 0..40 {
            let a: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
            assert!(same(&a, &a.clone()), "{len}");
            for at in 0..len {
                let mut b = a.clone();
                b[at] ^= 0x20;
                assert!(!same(&a, &b), "{len} {at}");
            }
        }
        let table = table();
        for (path, expected) in [("/a", true), ("/b", false), ("/", false), ("/ab", false)] {
            let got = matches!(
                table.lookup(path.as_bytes(), Method::Get, "GET"),
                Lookup::Found { .. }
            );
            assert_eq!(got, expected, "{path}");
        }
    }

    #[test]
    fn bad_routes_are_refused() {
        assert!(RouteTable::new(vec![Route::get("a", Handler::Json)]).is_err());
        let bad_method = Route {
            methods: vec!["G T".into()],
            ..Route::get("/a", Handler::Json)
        };
        assert!(RouteTable::new(vec![bad_method]).is_err());
    }
}
