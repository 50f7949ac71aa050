//! The one-line summary printed by `coreloop check-config` and at start-up.

use crate::schema::{MaxConnections, Shards};
use crate::values::Keyword;
use crate::Config;

impl Config {
    /// e.g. `ok: 2 listeners (web http 127.0.0.1:8080, echo echo
    /// 127.0.0.1:9000), 7 routes, shards=auto(2), balance=least-loaded,
    /// max_connections=auto(19900)`.
    pub fn summary(&self) -> String {
        let listeners: Vec<String> = self
            .listeners
            .iter()
            .map(|l| match &l.upstream {
                Some(upstream) => format!(
                    "{} {} {} -> {upstream}",
                    l.name,
                    l.protocol.name(),
                    l.address
                ),
                None => format!("{} {} {}", l.name, l.protocol.name(), l.address),
            })
            .collect();
        let routes: usize = self.listeners.iter().map(|l| l.routes.len()).sum();
        let shards = match self.server.shards {
            Shards::Auto => format!("auto({})", self.shard_count()),
            Shards::Count(n) => n.to_string(),
        };
        let max_connections = match self.server.max_connections {
            MaxConnections::Auto => format!("auto({})", self.connection_limit()),
            MaxConnections::Limit(n) => n.to_string(),
        };
        // Only a file with upstreams mentions them, so other summaries read as before.
        let upstreams: Vec<String> = (self.upstreams.iter())
            .map(|u| {
                format!(
                    "{} {} server{}",
                    u.name,
                    u.servers.len(),
                    plural(u.servers.len())
                )
            })
            .collect();
        let upstreams = match upstreams.len() {
            0 => String::new(),
            n => format!(", {n} upstream{} ({})", plural(n), upstreams.join(", ")),
        };
        format!(
            "ok: {} listener{} ({}), {} route{}{upstreams}, shards={}, balance={}, \
             max_connections={}",
            listeners.len(),
            plural(listeners.len()),
            listeners.join(", "),
            routes,
            plural(routes),
            shards,
            self.server.balance.name(),
            max_connections,
        )
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}
