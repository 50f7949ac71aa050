//! `[[upstream]]` tables and the listeners that name them: every mistake with its exact
//! message and position, and what a valid file decodes to.

use std::time::Duration;

use coreloop_config::{Address, Config, Host, Protocol, UpstreamBalance};

const HOST: Host = Host {
    cpus: 2,
    fd_hard_limit: 1_000_000,
};

/// A tcp-proxy listener naming upstream "app", to build cases on.
const PROXY: &str = r#"[[listener]]
name = "db"
address = "127.0.0.1:5433"
protocol = "tcp-proxy"
upstream = "app"
"#;

/// Parses `input` as `test.toml` and compares every error line (or the summary).
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

fn upstream(body: &str) -> String {
    format!("{PROXY}\n[[upstream]]\nname = \"app\"\n{body}")
}

#[test]
fn a_full_upstream_decodes_every_key() {
    let text = upstream(
        "servers = [\"127.0.0.1:9001\", \"[::1]:9002\", \"unix:/run/app.sock\"]\n\
         balance = \"least-requests\"\nconnect_timeout = \"250ms\"\nmax_fails = 5\n\
         fail_timeout = \"30s\"\n",
    );
    let config = Config::from_toml_str_on(&text, "t.toml", HOST).unwrap();
    let app = config.upstream("app").unwrap();
    assert_eq!(app.servers.len(), 3);
    assert_eq!(app.servers[2], Address::Unix("/run/app.sock".into()));
    assert_eq!(app.balance, UpstreamBalance::LeastRequests);
    assert_eq!(app.connect_timeout, Duration::from_millis(250));
    assert_eq!(
        (app.max_fails, app.fail_timeout),
        (5, Duration::from_secs(30))
    );
    let db = config.listener("db").unwrap();
    assert_eq!(db.protocol, Protocol::TcpProxy);
    assert_eq!(db.upstream.as_deref(), Some("app"));
}

#[test]
fn defaults_are_round_robin_1s_3_fails_10s() {
    let config =
        Config::from_toml_str_on(&upstream("servers = [\"127.0.0.1:9001\"]\n"), "t", HOST).unwrap();
    let app = &config.upstreams[0];
    assert_eq!(app.balance, UpstreamBalance::RoundRobin);
    assert_eq!(app.connect_timeout, Duration::from_secs(1));
    assert_eq!(
        (app.max_fails, app.fail_timeout),
        (3, Duration::from_secs(10))
    );
}

#[test]
fn servers_must_be_a_nonempty_list_of_distinct_connectable_addresses() {
    check(
        &upstream("servers = []\n"),
        r#"test.toml:9:11: upstream[0].servers: an upstream needs at least one server, e.g. servers = ["127.0.0.1:9001"]"#,
    );
    check(
        &upstream("servers = [\"127.0.0.1:9001\", \"127.0.0.1:9001\"]\n"),
        r#"test.toml:9:30: upstream[0].servers[1]: server 127.0.0.1:9001 is listed twice; list each server once"#,
    );
    check(
        &upstream("servers = [\"127.0.0.1:0\", \"db.internal:5432\"]\n"),
        r#"
test.toml:9:12: upstream[0].servers[0]: a server needs a port to connect to; port 0 only makes sense to bind
test.toml:9:27: upstream[0].servers[1]: bad address "db.internal:5432": the host must be an IP address or localhost (names are not resolved); expected "host:port" with an IP or localhost, "[::1]:port" or "unix:/path"
"#,
    );
    check(
        &upstream("servers = \"127.0.0.1:9001\"\n"),
        r#"test.toml:9:11: upstream[0].servers: expected an array of addresses such as ["127.0.0.1:9001", "unix:/run/app.sock"], found a string"#,
    );
    check(
        &upstream(""),
        r#"test.toml:7:1: upstream[0].servers: missing required key; expected an array of addresses"#,
    );
}

#[test]
fn bad_values_are_located() {
    check(
        &upstream(
            "servers = [\"127.0.0.1:9001\"]\nbalance = \"random\"\nconnect_timeout = \"0s\"\n\
             max_fails = -1\nfail_timeout = 10\n",
        ),
        r#"
test.toml:10:11: upstream[0].balance: unknown value "random"; expected one of "round-robin", "least-requests"
test.toml:11:19: upstream[0].connect_timeout: must be greater than "0s"; a zero deadline would expire at once
test.toml:12:13: upstream[0].max_fails: -1 is out of range; allowed 0..=1000
test.toml:13:16: upstream[0].fail_timeout: expected a duration string such as "10s" or "250ms", found an integer
"#,
    );
}

#[test]
fn keys_not_built_are_refused_by_name() {
    check(
        &upstream(
            "servers = [\"127.0.0.1:9001\"]\nkeepalive = 32\n\
             idle_timeout = \"60s\"\nhealth = { path = \"/healthz\" }\n",
        ),
        r#"
test.toml:12:10: upstream[0].health: active health checks are not built in this version; remove `health` (passive health, max_fails and fail_timeout, is)
"#,
    );
    check(
        &upstream("servers = [\"127.0.0.1:9001\"]\nkeepalive = -1\nidle_timeout = \"0s\"\n"),
        r#"
test.toml:10:13: upstream[0].keepalive: -1 is out of range; allowed 0..=100000
test.toml:11:16: upstream[0].idle_timeout: must be greater than "0s"; a zero deadline would expire at once
"#,
    );
    check(
        &upstream("servers = [\"127.0.0.1:9001\"]\nresponse_timeout = \"0s\"\n"),
        r#"test.toml:10:20: upstream[0].response_timeout: must be greater than "0s"; a zero deadline would expire at once"#,
    );
}

#[test]
fn names_are_labels_and_unique() {
    let two = format!(
        "{}\n[[upstream]]\nname = \"app\"\nservers = [\"127.0.0.1:9002\"]\n",
        upstream("servers = [\"127.0.0.1:9001\"]\n")
    );
    check(
        &two,
        r#"test.toml:12:8: upstream[1].name: duplicate upstream name "app"; first defined at test.toml:8:8"#,
    );
    check(
        &format!("{PROXY}\n[[upstream]]\nname = \"my app\"\nservers = [\"127.0.0.1:9001\"]\n"),
        r#"test.toml:8:8: upstream[0].name: an upstream name is 1 to 64 letters, digits, '-' or '_' (it becomes a metric label)"#,
    );
}

#[test]
fn listeners_name_upstreams_that_exist() {
    check(
        &format!("{PROXY}\n[[upstream]]\nname = \"ap\"\nservers = [\"127.0.0.1:9001\"]\n"),
        r#"test.toml:5:12: listener[0].upstream: no [[upstream]] is called "app"; did you mean "ap"?"#,
    );
    check(
        PROXY,
        r#"test.toml:5:12: listener[0].upstream: no [[upstream]] is called "app"; add an [[upstream]] table with that name"#,
    );
    check(
        "[[listener]]\nname = \"db\"\naddress = \"127.0.0.1:5433\"\nprotocol = \"tcp-proxy\"\n",
        r#"test.toml:1:1: listener[0].upstream: missing required key; expected the name of an [[upstream]] to forward connections to"#,
    );
    check(
        "[[listener]]\nname = \"e\"\naddress = \"127.0.0.1:5433\"\nprotocol = \"echo\"\nupstream = \"app\"\n",
        r#"test.toml:5:12: listener[0].upstream: `upstream` on a listener needs protocol = "tcp-proxy""#,
    );
}

#[test]
fn routes_cannot_go_on_a_tcp_proxy_listener_and_proxy_routes_name_upstreams() {
    let routed = upstream("servers = [\"127.0.0.1:9001\"]\n").replacen(
        "upstream = \"app\"\n",
        "upstream = \"app\"\n[[listener.route]]\npath = \"/\"\njson = {}\n",
        1,
    );
    check(
        &routed,
        r#"test.toml:6:1: listener[0].route: routes are only allowed on protocol = "http" listeners, this one is "tcp-proxy""#,
    );
    let proxied = |proxy: &str| {
        format!(
            "{}\n[[listener]]\nname = \"web\"\naddress = \"127.0.0.1:8080\"\n\
             [[listener.route]]\npath = \"/app/*\"\nproxy = {proxy}\n",
            upstream("servers = [\"127.0.0.1:9001\"]\n")
        )
    };
    check(
        &proxied("{ upstream = \"ap\" }"),
        r#"test.toml:16:22: listener[1].route[0].proxy.upstream: no [[upstream]] is called "ap"; did you mean "app"?"#,
    );
    check(
        &proxied("{ upstream = \"app\", strip_prefix = \"/app/\" }"),
        r#"test.toml:16:44: listener[1].route[0].proxy.strip_prefix: a path prefix such as "/app": starts with "/", does not end with one, no query, fragment, percent sign or space"#,
    );
    let set = |headers: &str| {
        proxied(&format!(
            "{{ upstream = \"app\", set_headers = {headers} }}"
        ))
    };
    check(
        &set("\"X\""),
        r#"test.toml:16:43: listener[1].route[0].proxy.set_headers: expected a table of header names to strings such as { "X-Real-IP" = "" }, found a string"#,
    );
    check(
        &set(
            "{ \"X Y\" = \"1\", Connection = \"close\", Proxy-Authorization = \"x\", \
             Content-Length = \"1\", Max-Forwards = \"1\", X-A = \"1\", X-D = \"a\\r\\nX-Evil: 1\", X-B = \" b\", \
             X-C = 1, Host = \"\", x-a = \"2\" }",
        ),
        r#"
test.toml:16:53: listener[1].route[0].proxy.set_headers.X Y: a header name is a token (letters, digits and !#$%&'*+-.^_`|~)
test.toml:16:71: listener[1].route[0].proxy.set_headers.Connection: is about one connection or the body's framing and is the proxy's own (Connection, Keep-Alive, TE, Transfer-Encoding, Upgrade, Proxy-*, HTTP2-Settings, Content-Length, Expect, Max-Forwards): it cannot be set
test.toml:16:102: listener[1].route[0].proxy.set_headers.Proxy-Authorization: is about one connection or the body's framing and is the proxy's own (Connection, Keep-Alive, TE, Transfer-Encoding, Upgrade, Proxy-*, HTTP2-Settings, Content-Length, Expect, Max-Forwards): it cannot be set
test.toml:16:124: listener[1].route[0].proxy.set_headers.Content-Length: is about one connection or the body's framing and is the proxy's own (Connection, Keep-Alive, TE, Transfer-Encoding, Upgrade, Proxy-*, HTTP2-Settings, Content-Length, Expect, Max-Forwards): it cannot be set
test.toml:16:144: listener[1].route[0].proxy.set_headers.Max-Forwards: is about one connection or the body's framing and is the proxy's own (Connection, Keep-Alive, TE, Transfer-Encoding, Upgrade, Proxy-*, HTTP2-Settings, Content-Length, Expect, Max-Forwards): it cannot be set
test.toml:16:166: listener[1].route[0].proxy.set_headers.X-D: a header value is visible US-ASCII characters with single spaces or tabs between them (RFC 9110 field-value: no CR, LF or other control character, no leading or trailing space), or "" to remove the field
test.toml:16:190: listener[1].route[0].proxy.set_headers.X-B: a header value is visible US-ASCII characters with single spaces or tabs between them (RFC 9110 field-value: no CR, LF or other control character, no leading or trailing space), or "" to remove the field
test.toml:16:202: listener[1].route[0].proxy.set_headers.X-C: expected a string, found an integer
test.toml:16:212: listener[1].route[0].proxy.set_headers.Host: Host cannot be removed (HTTP/1.1 requires it); set a value or leave it out
test.toml:16:222: listener[1].route[0].proxy.set_headers.x-a: names this header a second time (header names are case-insensitive)
"#,
    );
    check(
        &proxied("\"app\""),
        r#"test.toml:16:9: listener[1].route[0].proxy: expected a table such as { upstream = "app" }, found a string"#,
    );
    check(
        &proxied("{}"),
        r#"test.toml:16:9: listener[1].route[0].proxy.upstream: missing required key; expected an upstream name such as "app""#,
    );
    check(
        &proxied("{ upstream = \"app\" }\njson = {}"),
        r#"test.toml:17:8: listener[1].route[0]: a route needs exactly one handler (static, json, echo, files, health, metrics, delay, proxy); found 2: proxy, json"#,
    );
}

#[test]
fn the_summary_names_upstreams_and_what_each_listener_forwards_to() {
    check(
        &upstream("servers = [\"127.0.0.1:9001\", \"unix:/run/app.sock\"]\n"),
        "ok: 1 listener (db tcp-proxy 127.0.0.1:5433 -> app), 0 routes, 1 upstream (app 2 servers), \
         shards=auto(2), balance=least-loaded, max_connections=auto(999927)",
    );
}
