//! SIGHUP while `coreloop-load` drives 1,000 keep-alive connections: no response lost,
//! truncated or malformed. (SIGTERM under the same load loses requests: drain_race.rs, kept
//! out of the suite and reported.)

use std::process::{Command, Stdio};
use std::time::Duration;

use super::process::poll_until;

use crate::support::{config, scrape, Server};

const LOAD: &str = env!("CARGO_BIN_EXE_coreloop-load");

/// Starts coreloop-load for `secs` with 1,000 connections, JSON on stdout.
pub fn load(addr: std::net::SocketAddr, secs: u32) -> std::process::Child {
    Command::new(LOAD)
        .args([
            "-t",
            "1",
            "-c",
            "1000",
            "--warmup",
            "0s",
            "--timeout",
            "5s",
            "--no-progress",
        ])
        .args(["-d", &format!("{secs}s"), "--json", "-"])
        .arg(format!("http://{addr}/plaintext"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// The number at `"key":` after `"section":` in coreloop-load's JSON.
pub fn field(json: &str, section: &str, key: &str) -> f64 {
    let from = json
        .find(&format!("\"{section}\""))
        .unwrap_or_else(|| panic!("{section} in {json}"));
    let rest = &json[from..];
    let at = rest
        .find(&format!("\"{key}\":"))
        .unwrap_or_else(|| panic!("{key} in {json}"));
    let value: String = rest[at + key.len() + 3..]
        .trim_start()
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    value.parse().unwrap()
}

pub fn finish(child: std::process::Child) -> String {
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "coreloop-load: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

pub fn assert_nothing_lost(json: &str) {
    for key in ["read", "malformed", "timeout", "write"] {
        assert_eq!(field(json, "errors", key), 0.0, "errors.{key} in {json}");
    }
    assert_eq!(field(json, "requests", "unfinished"), 0.0, "in {json}");
    assert!(field(json, "requests", "completed") > 0.0, "in {json}");
}

#[test]
fn sighup_under_a_thousand_connections_loses_nothing() {
    let server = Server::start(&config(&[]));
    let child = load(server.addr("web"), 3);
    for n in 1..=3 {
        // Signal while the load runs: once the server has answered another 2,000 requests.
        let mark = 2000.0 * n as f64;
        let loaded = poll_until(Duration::from_secs(5), || {
            scrape(server.addr("web")).sum("coreloop_http_requests_total", &[("code", "200")])
                >= mark
        });
        assert!(loaded, "the load never reached {mark} responses");
        server.signal("HUP");
        server.wait_for("reload", n);
    }
    let json = finish(child);
    eprintln!("sighup under load: {json}");
    assert_nothing_lost(&json);
    assert_eq!(field(&json, "errors", "connect"), 0.0, "in {json}");
}
