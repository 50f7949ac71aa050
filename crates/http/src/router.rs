//! Routes: exact and prefix paths, per method. Built once from plain values, then shared.

use crate::handlers::{compile, Compiled, Handler};

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
    handler: Compiled,
    /// The `route` label slot of its pattern (`crate::stats`), set by [`RouteTable::label`].
    slot: usize,
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
            let methods = route
                .methods
                .iter()
                .map(|m| m.to_ascii_uppercase())
                .collect();
            let entry = Entry {
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

    /// Finds the route for a decoded `path` and a method token.
    pub(crate) fn lookup(&self, path: &[u8], method: &str) -> Lookup {
        let Some(index) = self.groups.iter().position(|g| matches(g, path)) else {
            return Lookup::NotFound;
        };
        let group = &self.groups[index];
        let allowed = |entry: &&Entry| {
            entry.methods.is_empty()
                || entry
                    .methods
                    .iter()
                    .any(|m| m == method || (method == "HEAD" && m == "GET"))
        };
        match group.entries.iter().position(|e| allowed(&e)) {
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
    if !group.prefix {
        return group.path == path;
    }
    let Some(rest) = path.strip_prefix(group.path.as_slice()) else {
        return false;
    };
    rest.is_empty() || rest[0] == b'/' || group.path.ends_with(b"/")
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
        let got = match table.lookup(path.as_bytes(), method) {
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
    fn bad_routes_are_refused() {
        assert!(RouteTable::new(vec![Route::get("a", Handler::Json)]).is_err());
        let bad_method = Route {
            methods: vec!["G T".into()],
            ..Route::get("/a", Handler::Json)
        };
        assert!(RouteTable::new(vec![bad_method]).is_err());
    }
}
