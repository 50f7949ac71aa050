//! A real Prometheus (Debian's server binary, unpacked by .ci/setup) scrapes a real coreloop
//! every second on loopback while coreloop-load runs; every query of the Grafana dashboard
//! must then return data through the HTTP API, and the shipped rules must load. Bounded:
//! the load runs 20 s at most and the whole wait is under 45 s.

use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{config, repo_file, Server, TempDir};

const LOAD: &str = env!("CARGO_BIN_EXE_coreloop-load");
const DEADLINE: Duration = Duration::from_secs(45);

/// Kills and reaps a child when dropped, so a failing assertion leaves nothing running.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    // Prometheus cannot report a port 0 it was given; a port just freed is the usual way.
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_prometheus(dir: &TempDir, target: SocketAddr, port: u16) -> Reaped {
    let rules = repo_file("config/prometheus/rules.yml");
    let config = format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
         rule_files:\n  - {}\n\
         scrape_configs:\n  - job_name: coreloop\n    static_configs:\n      - targets: [\"{target}\"]\n",
        rules.display()
    );
    let file = dir.write("prometheus.yml", &config);
    let data = dir.0.join("data");
    let child = Command::new("prometheus")
        .arg(format!("--config.file={}", file.display()))
        .arg(format!("--storage.tsdb.path={}", data.display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("prometheus is missing: .ci/setup unpacks it from Debian's prometheus package");
    Reaped(child)
}

/// `GET /api/v1/<path>` with `query` URL-encoded, through curl (bounded by --max-time).
fn api(port: u16, path: &str, query: &str) -> String {
    let out = Command::new("curl")
        .args(["-s", "--max-time", "3", "-G"])
        .arg(format!("http://127.0.0.1:{port}/api/v1/{path}"))
        .args(["--data-urlencode", &format!("query={query}")])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn has_data(answer: &str) -> bool {
    answer.contains("\"status\":\"success\"") && !answer.contains("\"result\":[]")
}

/// The dashboard's queries as Prometheus runs them (`$__rate_interval` as Grafana would set
/// it for a 1 s scrape interval: at least four scrapes).
fn dashboard_queries() -> Vec<String> {
    let text = std::fs::read_to_string(repo_file("config/grafana/coreloop.json")).unwrap();
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("\"expr\": \""))
        .map(|e| {
            let e = e.trim_end_matches(',').trim_end_matches('"');
            e.replace("\\\"", "\"").replace("$__rate_interval", "10s")
        })
        .collect()
}

#[test]
fn every_dashboard_query_returns_data_from_a_real_scrape() {
    let queries = dashboard_queries();
    assert!(queries.len() >= 10, "dashboard queries: {queries:?}");
    let server = Server::start(&config(&[]));
    let web = server.addr("web");
    let dir = TempDir::new();
    let port = free_port();
    let _prometheus = start_prometheus(&dir, web, port);
    let _load = Reaped(
        Command::new(LOAD)
            .args([
                "-t",
                "1",
                "-c",
                "8",
                "-d",
                "20s",
                "--warmup",
                "0s",
                "--no-progress",
            ])
            .arg(format!("http://{web}/plaintext"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let start = Instant::now();
    let mut waiting: Vec<String> = queries;
    let mut rules_loaded = false;
    while start.elapsed() < DEADLINE && (!waiting.is_empty() || !rules_loaded) {
        waiting.retain(|q| !has_data(&api(port, "query", q)));
        rules_loaded =
            rules_loaded || has_data(&api(port, "query", "coreloop:http_requests:rate1m"));
        std::thread::sleep(Duration::from_millis(500)); // poll interval, bounded by DEADLINE
    }
    assert!(
        waiting.is_empty(),
        "no data within {DEADLINE:?} for: {waiting:#?}"
    );
    assert!(
        rules_loaded,
        "the recording rules of rules.yml never produced a series"
    );
    let up = api(port, "query", "up{job=\"coreloop\"}");
    assert!(up.contains("\"1\"]"), "target not up: {up}");
}
