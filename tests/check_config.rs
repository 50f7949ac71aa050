//! `coreloop check-config`: each kind of mistake with its exact message, line and column.

use crate::support::{default_toml, run, TempDir};

/// Edits the default, checks it, and expects exit 2 and exactly `expected` (with `FILE` for
/// the path) on stderr.
fn check(from: &str, to: &str, expected: &str) {
    let text = default_toml();
    assert!(text.contains(from), "`{from}` not in the default");
    let dir = TempDir::new();
    let path = dir.write("bad.toml", &text.replacen(from, to, 1));
    let out = run(&["check-config", path.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    assert!(out.stdout.is_empty());
    let expected = expected.replace("FILE", path.to_str().unwrap());
    assert_eq!(stderr.trim_end(), expected);
}

#[test]
fn a_number_out_of_range() {
    check(
        "shards = \"auto\"",
        "shards = 0",
        "FILE:16:10: server.shards: shards must be \"auto\" or a number >= 1, found 0",
    );
}

#[test]
fn an_unknown_keyword() {
    check(
        "balance = \"least-loaded\"",
        "balance = \"fastest\"",
        "FILE:20:11: server.balance: unknown value \"fastest\"; expected one of \"least-loaded\", \"round-robin\", \"reuseport\"",
    );
}

#[test]
fn a_bad_duration() {
    check(
        "header = \"10s\"",
        "header = \"10 parsecs\"",
        "FILE:36:10: timeouts.header: bad duration \"10 parsecs\": unknown unit \"parsecs\"; expected a whole number with unit ms, s, m or h, e.g. \"250ms\", \"10s\", \"1m\", \"0s\"",
    );
}

#[test]
fn a_bad_size() {
    check(
        "header_bytes = \"8KiB\"",
        "header_bytes = \"8QB\"",
        "FILE:55:16: limits.header_bytes: bad size \"8QB\": unknown unit \"QB\"; expected a whole number of bytes with optional unit B, KiB, MiB, GiB, TiB (1024-based) or kB, MB, GB, TB (1000-based), e.g. 512, \"8KiB\", \"1MB\"",
    );
}

#[test]
fn a_bad_address() {
    check(
        "address = \"127.0.0.1:8080\"",
        "address = \"nowhere\"",
        "FILE:88:11: listener[0].address: bad address \"nowhere\": missing \":port\"; expected \"host:port\" with an IP or localhost, \"[::1]:port\" or \"unix:/path\"",
    );
}

#[test]
fn an_unknown_protocol() {
    check(
        "protocol = \"echo\"",
        "protocol = \"gopher\"",
        "FILE:140:12: listener[1].protocol: unknown value \"gopher\"; expected one of \"http\", \"echo\", \"frame\", \"tcp-proxy\"",
    );
}

#[test]
fn a_misspelt_key() {
    check(
        "pin_cores = false",
        "pin_cores = false\npin_corse = true",
        "FILE:23:1: server.pin_corse: unknown key \"pin_corse\"; did you mean \"pin_cores\"?",
    );
}

#[test]
fn a_wrong_type() {
    check(
        "pin_cores = false",
        "pin_cores = \"yes\"",
        "FILE:22:13: server.pin_cores: expected true or false, found a string",
    );
}

#[test]
fn a_duplicate_listener_name() {
    check(
        "name = \"echo\"",
        "name = \"web\"",
        "FILE:138:8: listener[1].name: duplicate listener name \"web\"; first defined at FILE:87:8",
    );
}

#[test]
fn two_listeners_on_one_address() {
    check(
        "address = \"127.0.0.1:9000\"",
        "address = \"127.0.0.1:8080\"",
        "FILE:139:11: listener[1].address: address 127.0.0.1:8080 is already used by listener \"web\" at FILE:88:11",
    );
}

#[test]
fn a_route_with_two_handlers() {
    check(
        "json = {}",
        "json = {}\necho = {}",
        "FILE:115:8: listener[0].route[1]: a route needs exactly one handler (static, json, echo, files, health, metrics, delay, proxy); found 2: json, echo",
    );
}

#[test]
fn a_relative_route_path() {
    check(
        "path = \"/json\"",
        "path = \"json\"",
        "FILE:113:8: listener[0].route[1].path: a route path starts with \"/\"",
    );
}

#[test]
fn an_unknown_log_level() {
    check(
        "level = \"info\"",
        "level = \"loud\"",
        "FILE:78:9: log.level: unknown value \"loud\"; expected one of \"trace\", \"debug\", \"info\", \"warn\", \"error\"",
    );
}

#[test]
fn a_syntax_error_is_located() {
    let text = default_toml().replacen("\n[server]\n", "\n[server\n", 1);
    let dir = TempDir::new();
    let path = dir.write("bad.toml", &text);
    let out = run(&["check-config", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with(&format!("{}:14:", path.display())),
        "{stderr}"
    );
}

#[test]
fn a_missing_file_exits_2() {
    let out = run(&["check-config", "/nonexistent/coreloop.toml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("/nonexistent/coreloop.toml:1:1:"));
}

/// Runs `coreloop ARGS...` with `FILE` replaced by a file holding `text`; returns (exit code,
/// stdout, stderr with the path written as FILE).
fn run_on(text: &str, args: &[&str]) -> (Option<i32>, String, String) {
    let dir = TempDir::new();
    let path = dir.write("c.toml", text);
    let file = path.to_str().unwrap();
    let args: Vec<&str> = args
        .iter()
        .map(|a| if *a == "FILE" { file } else { a })
        .collect();
    let out = run(&args);
    let stderr = String::from_utf8_lossy(&out.stderr).replace(file, "FILE");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr,
    )
}

const NO_LISTENER: &str = "FILE:1:1: no [[listener]]: nothing would be served; add one, e.g. \
     [[listener]] name = \"web\" address = \"127.0.0.1:8080\" with a [[listener.route]]\n";

/// Issue 10: `check-config` said "ok" for a file that `serve` could not run.
#[test]
fn a_file_without_listeners_fails_as_serve_does() {
    let no_listeners = default_toml();
    let no_listeners = &no_listeners[..no_listeners.find("[[listener]]").unwrap()];
    for text in ["", no_listeners] {
        let checked = run_on(text, &["check-config", "FILE"]);
        assert_eq!(checked, (Some(2), String::new(), NO_LISTENER.to_owned()));
        let served = run_on(text, &["--config", "FILE"]);
        assert_eq!(served, checked, "serve and check-config disagree");
    }
}

/// Issue 10: `check-config` took no overrides, so the command line that runs was never checked.
#[test]
fn overrides_are_checked_as_serve_applies_them() {
    let text = crate::support::config(&[]);
    let (code, stdout, stderr) = run_on(
        &text,
        &[
            "check-config",
            "FILE",
            "--shards",
            "3",
            "--listen",
            "echo=127.0.0.1:9999",
        ],
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("echo echo 127.0.0.1:9999"), "{stdout}");
    assert!(stdout.contains(", shards=3, "), "{stdout}");

    let (code, stdout, stderr) = run_on(
        &text,
        &[
            "check-config",
            "FILE",
            "--balance",
            "fastest",
            "--listen",
            "wbe=127.0.0.1:1",
        ],
    );
    assert_eq!(code, Some(2));
    assert!(stdout.is_empty());
    assert_eq!(
        stderr,
        "<command line>:1:11: server.balance: unknown value \"fastest\"; expected one of \
         \"least-loaded\", \"round-robin\", \"reuseport\"\n\
         <command line>:1:28: listener: no listener is called \"wbe\"; did you mean \"web\"?\n"
    );
    // The same command line refused by `serve`, with the same words.
    let served = run_on(
        &text,
        &[
            "--config",
            "FILE",
            "--balance",
            "fastest",
            "--listen",
            "wbe=127.0.0.1:1",
        ],
    );
    assert_eq!(served.2, stderr);
}

#[test]
fn print_keys_lists_the_key_table() {
    let out = run(&["print-keys"]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.starts_with("key\treload\tper-listener\tprotocols\n"),
        "{text}"
    );
    assert!(
        text.contains("\nlimits.frame_max\trestart\tyes\tframe\n"),
        "{text}"
    );
    assert!(
        text.contains("\ntimeouts.keepalive_grace\trestart\tno\tall\n"),
        "{text}"
    );
}

/// Issue 10: keys that would do nothing where they are written are refused, located, with why.
#[test]
fn per_listener_keys_that_would_do_nothing_are_refused() {
    check(
        "[listener.timeouts]\n",
        "[listener.timeouts]\nkeepalive_grace = \"2s\"\n",
        "FILE:95:19: listener[0].timeouts.keepalive_grace: timeouts.keepalive_grace is \
         server-wide and cannot be set per listener; set it in [timeouts]",
    );
    check(
        "protocol = \"echo\"\nbacklog = 1024\n",
        "protocol = \"echo\"\nbacklog = 1024\n[listener.limits]\nheader_count = 10\n",
        "FILE:143:16: listener[1].limits.header_count: limits.header_count acts on protocol = \
         \"http\" listeners only, and this one is \"echo\": it would do nothing here",
    );
    check(
        "offload_threads = 4",
        "offload_threads = 0",
        "FILE:30:19: server.offload_threads: offload_threads must be at least 1: the offload \
         pool always runs (delay and files handlers use it); there is no way to turn it off",
    );
}

/// A tcp-proxy listener naming an upstream the file misspells; an upstream without servers;
/// each located.
#[test]
fn an_unknown_upstream_and_an_empty_server_list() {
    let proxied = |servers: &str| {
        let text = default_toml().replacen(
            "protocol = \"echo\"",
            "protocol = \"tcp-proxy\"\nupstream = \"pg\"",
            1,
        );
        format!("{text}\n[[upstream]]\nname = \"pgg\"\nservers = {servers}\n")
    };
    check_text(
        &proxied("[\"127.0.0.1:5432\"]"),
        "FILE:141:12: listener[1].upstream: no [[upstream]] is called \"pg\"; did you mean \"pgg\"?",
    );
    // The misspelling is not reported on top of the broken upstream it may mean.
    check_text(
        &proxied("[]"),
        "FILE:146:11: upstream[0].servers: an upstream needs at least one server, e.g. servers = [\"127.0.0.1:9001\"]",
    );
}

fn check_text(text: &str, expected: &str) {
    let dir = TempDir::new();
    let path = dir.write("bad.toml", text);
    let out = run(&["check-config", path.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    let expected = expected.replace("FILE", path.to_str().unwrap());
    assert_eq!(stderr.trim_end(), expected);
}
