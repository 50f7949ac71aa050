//! Every kind of mistake, with its exact message and position.

use coreloop_config::{Config, Host, Override};

const HOST: Host = Host {
    cpus: 2,
    fd_hard_limit: 1_000_000,
};

/// A valid http listener to build cases on.
const WEB: &str = r#"
[[listener]]
name = "web"
address = "127.0.0.1:8080"

[[listener.route]]
path = "/"
json = {}
"#;

/// Parses `input` as `test.toml` and compares every error line.
fn check(input: &str, expected: &str) {
    let got = match Config::from_toml_str_on(input, "test.toml", HOST) {
        Ok(config) => config.summary(),
        Err(errors) => errors.to_string(),
    };
    assert_eq!(
        got,
        expected.trim(),
        "\n--- input ---\n{input}\n--- got ---\n{got}\n"
    );
}

#[test]
fn unknown_keys_suggest_the_closest() {
    check(
        &format!("[server]\nshard = 2\nthreads = 4\n{WEB}"),
        r#"
test.toml:2:1: server.shard: unknown key "shard"; did you mean "shards"?
test.toml:3:1: server.threads: unknown key "threads"; allowed keys: shards, balance, pin_cores, max_connections, max_connections_per_shard, offload_threads, offload_queue
"#,
    );
    check(
        &format!("[timeout]\nidle = \"5s\"\n{WEB}"),
        r#"test.toml:1:2: timeout: unknown key "timeout"; did you mean "timeouts"?"#,
    );
    check(
        "[[listener]]\nname = \"w\"\naddress = \"127.0.0.1:8080\"\n\
         [[listener.route]]\npath = \"/\"\njson = { pretty = true }\n",
        r#"test.toml:6:10: listener[0].route[0].json.pretty: unknown key "pretty"; this table takes no keys"#,
    );
}

#[test]
fn wrong_types() {
    check(
        &format!("[server]\npin_cores = \"yes\"\nshards = 1.5\n{WEB}"),
        r#"
test.toml:2:13: server.pin_cores: expected true or false, found a string
test.toml:3:10: server.shards: expected "auto" or an integer >= 1, found a float
"#,
    );
    check(
        &format!("[timeouts]\nidle = 60\n{WEB}"),
        r#"test.toml:2:8: timeouts.idle: expected a duration string such as "10s" or "250ms", found an integer"#,
    );
}

#[test]
fn bad_durations() {
    check(
        &format!("[timeouts]\nidle = \"60 sec\"\nheader = \"-1s\"\nbody = \"0s\"\n{WEB}"),
        r#"
test.toml:2:8: timeouts.idle: bad duration "60 sec": unknown unit "sec"; expected a whole number with unit ms, s, m or h, e.g. "250ms", "10s", "1m", "0s"
test.toml:3:10: timeouts.header: bad duration "-1s": negative values are not allowed; expected a whole number with unit ms, s, m or h, e.g. "250ms", "10s", "1m", "0s"
test.toml:4:8: timeouts.body: must be greater than "0s"; a zero deadline would expire at once
"#,
    );
}

#[test]
fn bad_sizes() {
    check(
        &format!("[limits]\nbody_bytes = \"1.5MiB\"\nheader_bytes = \"8kb\"\nframe_max = -1\nread_buffer = \"1GiB\"\n{WEB}"),
        r#"
test.toml:2:14: limits.body_bytes: bad size "1.5MiB": fractions are not allowed; use a smaller unit; expected a whole number of bytes with optional unit B, KiB, MiB, GiB, TiB (1024-based) or kB, MB, GB, TB (1000-based), e.g. 512, "8KiB", "1MB"
test.toml:3:16: limits.header_bytes: bad size "8kb": unknown unit "kb"; expected a whole number of bytes with optional unit B, KiB, MiB, GiB, TiB (1024-based) or kB, MB, GB, TB (1000-based), e.g. 512, "8KiB", "1MB"
test.toml:4:13: limits.frame_max: -1 is out of range; allowed 0..=9223372036854775807
test.toml:5:15: limits.read_buffer: 1073741824 is out of range; allowed 512..=16777216
"#,
    );
}

#[test]
fn bad_addresses() {
    check(
        "[[listener]]\nname = \"a\"\naddress = \"example.com:80\"\nprotocol = \"echo\"\n\
         [[listener]]\nname = \"b\"\naddress = \"::1:80\"\nprotocol = \"echo\"\n\
         [[listener]]\nname = \"c\"\nprotocol = \"echo\"\n",
        r#"
test.toml:3:11: listener[0].address: bad address "example.com:80": the host must be an IP address or localhost (names are not resolved); expected "host:port" with an IP or localhost, "[::1]:port" or "unix:/path"
test.toml:7:11: listener[1].address: bad address "::1:80": an IPv6 address needs brackets, e.g. "[::1]:8080"; expected "host:port" with an IP or localhost, "[::1]:port" or "unix:/path"
test.toml:9:1: listener[2].address: missing required key; expected "host:port", "[::1]:port" or "unix:/path"
"#,
    );
}

#[test]
fn duplicate_listener_names_and_addresses() {
    check(
        &format!("{WEB}\n[[listener]]\nname = \"web\"\naddress = \"0.0.0.0:8080\"\nprotocol = \"echo\"\n"),
        r#"
test.toml:11:8: listener[1].name: duplicate listener name "web"; first defined at test.toml:3:8
test.toml:12:11: listener[1].address: address 0.0.0.0:8080 is already used by listener "web" at test.toml:4:11
"#,
    );
}

#[test]
fn duplicate_routes() {
    check(
        &format!("{WEB}\n[[listener.route]]\npath = \"/\"\nmethods = [\"HEAD\", \"POST\"]\necho = {{}}\n"),
        r#"test.toml:11:8: listener[0].route[1].path: duplicate route "/" for HEAD; first defined at test.toml:7:8"#,
    );
    // A prefix next to the same exact path is not a duplicate.
    check(
        &format!("{WEB}\n[[listener.route]]\npath = \"/*\"\njson = {{}}\n"),
        "ok: 1 listener (web http 127.0.0.1:8080), 2 routes, shards=auto(2), balance=least-loaded, max_connections=auto(999927)",
    );
}

#[test]
fn zero_shards_and_unknown_words() {
    check(
        &format!(
            "[server]\nshards = 0\nbalance = \"round_robin\"\n[log]\nlevel = \"verbose\"\n{WEB}"
        ),
        r#"
test.toml:2:10: server.shards: shards must be "auto" or a number >= 1, found 0
test.toml:3:11: server.balance: unknown value "round_robin"; expected one of "least-loaded", "round-robin", "reuseport" (did you mean "round-robin"?)
test.toml:5:9: log.level: unknown value "verbose"; expected one of "trace", "debug", "info", "warn", "error"
"#,
    );
}

#[test]
fn unknown_protocol_and_routes_on_echo() {
    check(
        "[[listener]]\nname = \"e\"\naddress = \"127.0.0.1:9000\"\nprotocol = \"htp\"\n",
        r#"test.toml:4:12: listener[0].protocol: unknown value "htp"; expected one of "http", "echo", "frame", "tcp-proxy" (did you mean "http"?)"#,
    );
    check(
        "[[listener]]\nname = \"e\"\naddress = \"127.0.0.1:9000\"\nprotocol = \"echo\"\n\
         [[listener.route]]\npath = \"/\"\njson = {}\n",
        r#"test.toml:5:1: listener[0].route: routes are only allowed on protocol = "http" listeners, this one is "echo""#,
    );
}

#[test]
fn route_handlers() {
    let listener = "[[listener]]\nname = \"w\"\naddress = \"127.0.0.1:8080\"\n";
    check(
        &format!("{listener}[[listener.route]]\npath = \"/\"\njson = {{}}\necho = {{}}\n"),
        "test.toml:7:8: listener[0].route[0]: a route needs exactly one handler (static, json, echo, files, health, metrics, delay, proxy); found 2: json, echo",
    );
    check(
        &format!("{listener}[[listener.route]]\npath = \"/\"\n"),
        "test.toml:4:1: listener[0].route[0]: a route needs exactly one handler (static, json, echo, files, health, metrics, delay, proxy); found none",
    );
    check(
        &format!("{listener}[[listener.route]]\npath = \"/\"\nfiles = {{ root = \"/nonexistent/coreloop-www\" }}\n"),
        r#"test.toml:6:18: listener[0].route[0].files.root: files root "/nonexistent/coreloop-www" does not exist"#,
    );
    check(
        &format!("{listener}[[listener.route]]\npath = \"/\"\nstatic = {{ status = 600 }}\n"),
        "test.toml:6:21: listener[0].route[0].static.status: status 600 is outside 100..=599",
    );
    check(
        &format!("{listener}[[listener.route]]\npath = \"/\"\nstatic = {{ status = 204, body = \"x\" }}\n"),
        "test.toml:6:33: listener[0].route[0].static.body: statuses 1xx, 204 and 304 cannot have a body",
    );
    check(
        &format!(
            "{listener}[[listener.route]]\npath = \"/a*\"\nmethods = [\"get\"]\njson = {{}}\n"
        ),
        r#"
test.toml:5:8: listener[0].route[0].path: "*" is only allowed at the end, after a "/": "/prefix/*"
test.toml:6:12: listener[0].route[0].methods[0]: unknown value "get"; expected one of "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS" (did you mean "GET"?)
"#,
    );
}

#[test]
fn max_connections_above_the_fd_limit() {
    let host = Host {
        cpus: 2,
        fd_hard_limit: 4096,
    };
    let input = format!("[server]\nmax_connections = 10000\n{WEB}");
    let errors = Config::from_toml_str_on(&input, "test.toml", host)
        .unwrap_err()
        .to_string();
    assert_eq!(
        errors,
        "test.toml:2:19: server.max_connections: max_connections = 10000 needs 10073 file \
         descriptors (one per connection plus 73 for listeners, epoll and wakers) but the hard \
         RLIMIT_NOFILE is 4096; raise it (ulimit -Hn as root, LimitNOFILE= in a systemd unit, \
         nofile in /etc/security/limits.conf) or lower max_connections"
    );
    let auto = Config::from_toml_str_on(WEB, "test.toml", host).map(|c| c.connection_limit());
    assert_eq!(auto, Ok(4096 - 73));
}

#[test]
fn toml_syntax_errors_have_positions() {
    check(
        "[server]\nshards = \n",
        "test.toml:2:10: TOML syntax error: string values must be quoted, expected literal string",
    );
    check(
        "[server\nshards = 1\n",
        "test.toml:1:8: TOML syntax error: unclosed table, expected `]`",
    );
}

#[test]
fn many_errors_are_reported_together_in_order() {
    let input = "[server]\nshards = 0\n[[listener]]\nname = \"bad name\"\naddress = \"x\"\nprotocol = \"echo\"\n";
    let errors = Config::from_toml_str_on(input, "test.toml", HOST).unwrap_err();
    let lines: Vec<String> = errors
        .errors()
        .iter()
        .map(|e| format!("{}:{}", e.loc.line, e.path))
        .collect();
    assert_eq!(
        lines,
        [
            "2:server.shards",
            "4:listener[0].name",
            "5:listener[0].address"
        ]
    );
}

#[test]
fn overrides_are_validated_like_the_file() {
    let base = Config::from_toml_str_on(
        &format!("{WEB}\n[[listener]]\nname = \"echo\"\naddress = \"127.0.0.1:9000\"\nprotocol = \"echo\"\n"),
        "test.toml",
        HOST,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let ok = base.with_overrides(&[
        Override::Shards("4".into()),
        Override::Balance("reuseport".into()),
        Override::Listen("web=0.0.0.0:8081".into()),
        Override::LogLevel("debug".into()),
    ]);
    assert_eq!(
        ok.map(|c| c.summary()).unwrap_or_else(|e| e.to_string()),
        "ok: 2 listeners (web http 0.0.0.0:8081, echo echo 127.0.0.1:9000), 1 route, shards=4, balance=reuseport, max_connections=auto(999914)"
    );
    let bad = base
        .with_overrides(&[
            Override::Shards("0".into()),
            Override::Listen("wbe=1.2.3.4:80".into()),
            Override::Listen("web=127.0.0.1:9000".into()),
            Override::LogLevel("loud".into()),
        ])
        .unwrap_err();
    assert_eq!(
        bad.to_string(),
        r#"<command line>:1:10: server.shards: shards must be "auto" or a number >= 1, found 0
<command line>:1:21: listener: no listener is called "wbe"; did you mean "web"?
<command line>:1:76: log.level: unknown value "loud"; expected one of "trace", "debug", "info", "warn", "error"
test.toml:12:11: listener[1].address: address 127.0.0.1:9000 is already used by listener "web" at <command line>:1:49"#
    );
}

/// Issue 10: a file that would serve nothing fails like `serve` would, located at its start.
#[test]
fn no_listener_or_an_empty_file() {
    let rule = "no [[listener]]: nothing would be served; add one, e.g. [[listener]] \
                name = \"web\" address = \"127.0.0.1:8080\" with a [[listener.route]]";
    check("", &format!("test.toml:1:1: {rule}"));
    check("[server]\nshards = 2\n", &format!("test.toml:1:1: {rule}"));
}

/// Issue 10: `offload_threads = 0` was accepted and one thread started anyway.
#[test]
fn offload_threads_zero_is_refused() {
    check(
        &format!("[server]\noffload_threads = 0\n{WEB}"),
        "test.toml:2:19: server.offload_threads: offload_threads must be at least 1: the offload \
         pool always runs (delay and files handlers use it); there is no way to turn it off",
    );
}

/// Issue 10: a per-listener key that cannot act on this listener is refused, not ignored.
#[test]
fn per_listener_keys_that_would_do_nothing() {
    check(
        &format!("{WEB}[listener.timeouts]\nkeepalive_grace = \"2s\"\n"),
        "test.toml:10:19: listener[0].timeouts.keepalive_grace: timeouts.keepalive_grace is \
         server-wide and cannot be set per listener; set it in [timeouts]",
    );
    check(
        "[[listener]]\nname = \"e\"\naddress = \"127.0.0.1:9000\"\nprotocol = \"echo\"\n\
         [listener.limits]\nheader_count = 10\n[listener.timeouts]\nidle = \"1s\"\n",
        r#"
test.toml:6:16: listener[0].limits.header_count: limits.header_count acts on protocol = "http" listeners only, and this one is "echo": it would do nothing here
test.toml:8:8: listener[0].timeouts.idle: timeouts.idle acts on protocol = "http" or "tcp-proxy" listeners only, and this one is "echo": it would do nothing here
"#,
    );
    check(
        &format!("{WEB}[listener.limits]\nframe_max = \"1KiB\"\n"),
        "test.toml:10:13: listener[0].limits.frame_max: limits.frame_max acts on protocol = \
         \"frame\" listeners only, and this one is \"http\": it would do nothing here",
    );
}
