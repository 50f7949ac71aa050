//! A real Prometheus (Debian's server binary, unpacked by .ci/setup) scrapes a real coreloop
//! every second on loopback while coreloop-load runs over http, over https (a TLS listener,
//! certificate made at test time) and through a tcp-proxy listener (an upstream of a refused
//! unix path and a second coreloop); every query of the Grafana dashboard must then return data
//! through the HTTP API, the counters the TLS and upstream panels show must move, and the
//! shipped rules must load. Bounded: the loads run 20 s at most and the whole wait is under
//! 45 s.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{repo_file, Server, TempDir, WAIT};
use crate::tcp_proxy::{backend, proxy_toml_on, servers};
use crate::tls::{client_config, connect, make_cert, tls_config, tls_get, tls_table, KeyType};

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

/// Series that stay at zero without a reason to move; these must be above it, so that the
/// TLS and upstream panels and rules show traffic, not just the families' zeros.
const MOVING: &[&str] = &[
    "sum(coreloop_tls_handshakes_total{kind=\"full\"}) > 0",
    "sum(coreloop_tls_handshakes_total{kind=\"resumed\"}) > 0",
    "sum(coreloop_tls_handshake_errors_total{reason=\"malformed\"}) > 0",
    "sum(coreloop_tls_unclean_closes_total) > 0",
    "sum(coreloop_tls_handshake_duration_seconds_count) > 0",
    "sum(coreloop_upstream_connects_total) > 0",
    "sum(coreloop_upstream_connect_errors_total{cause=\"refused\"}) > 0",
    "sum(coreloop_upstream_retries_total) > 0",
    "sum(coreloop_upstream_ejections_total) > 0",
    "coreloop:tls_handshakes_tried:rate5m > 0",
    "coreloop:tls_handshake_failures:ratio5m > 0",
    "coreloop:tls_handshake_duration_seconds:p99_5m > 0",
    "coreloop:upstream_connect_errors:ratio5m > 0",
    // The alert's expression matches the scraped series (its `for:` is longer than the run).
    "ALERTS{alertname=\"CoreloopUpstreamServerEjected\",server=~\".+\"}",
];

/// coreloop-load for 20 s at `url` with `args`, its output kept in `dir` for a failure.
fn load(dir: &TempDir, name: &str, args: &[&str], url: &str) -> Reaped {
    let log = std::fs::File::create(dir.0.join(format!("{name}.log"))).unwrap();
    let child = Command::new(LOAD)
        .args(["-t", "1", "-d", "20s", "--warmup", "0s", "--no-progress"])
        .args(args)
        .arg(url)
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    Reaped(child)
}

/// What the loads do not: a plaintext request on the TLS port (a `malformed` handshake
/// error) and a session ended by a bare FIN (an unclean close).
fn tls_oddities(tls: SocketAddr, ca: &Path) {
    let mut plain = TcpStream::connect(tls).unwrap();
    plain.set_read_timeout(Some(WAIT)).unwrap();
    plain.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
    let _ = plain.read_to_end(&mut Vec::new());
    let mut session = connect(tls, &client_config(ca, &["http/1.1"])).unwrap();
    assert_eq!(tls_get(&mut session, "/plaintext").unwrap().0, 200);
    drop(session); // no close_notify: StreamOwned sends none on drop
}

/// The server under test: the default listeners, `web-tls` with a certificate for
/// localhost, and `db`, a tcp-proxy to a unix path nobody listens on and to `upstream`
/// (http).
fn server_under_test(dir: &TempDir, upstream: SocketAddr) -> Server {
    let (cert, key) = make_cert(&dir.0, "server", "localhost", KeyType::EcdsaP256, 30);
    let base = tls_config(&tls_table(&cert, &key, ""), &[]);
    // A unix path nobody listens on is refused for sure; a loopback port just freed may be
    // taken by another test's listener meanwhile.
    let dead = format!("unix:{}", dir.0.join("nobody.sock").display());
    // Ejected at the first refusal, back on probation a second later: errors, retries and
    // ejections keep moving for the whole run.
    let keys = servers(&[dead, upstream.to_string()]) + "max_fails = 1\nfail_timeout = \"1s\"\n";
    Server::start(&proxy_toml_on(base, &keys, ""))
}

fn logs(dir: &TempDir) -> String {
    ["http", "https", "proxy"]
        .iter()
        .map(|n| {
            let text = std::fs::read_to_string(dir.0.join(format!("{n}.log"))).unwrap_or_default();
            format!("--- coreloop-load {n}:\n{text}")
        })
        .collect()
}

#[test]
fn every_dashboard_query_returns_data_from_a_real_scrape() {
    let queries = dashboard_queries();
    assert!(queries.len() >= 10, "dashboard queries: {queries:?}");
    let dir = TempDir::new();
    let upstream = backend(false);
    let server = server_under_test(&dir, upstream.addr("web"));
    let web = server.addr("web");
    let tls = server.addr("web-tls");
    let ca = dir.0.join("server.pem");
    let port = free_port();
    let _prometheus = start_prometheus(&dir, web, port);
    let close = ["-H", "Connection: close", "--rate", "100", "-c", "2"];
    let _loads = [
        load(
            &dir,
            "http",
            // Paced: the box is shared, and the panels need traffic, not a saturated core.
            &["-c", "8", "--rate", "2000"],
            &format!("http://{web}/plaintext"),
        ),
        load(
            &dir,
            "https",
            &[
                &close[..],
                &["--tls-resume", "--cacert", ca.to_str().unwrap()],
            ]
            .concat(),
            &format!("https://localhost:{}/plaintext", tls.port()),
        ),
        load(
            &dir,
            "proxy",
            &close,
            &format!("http://{}/plaintext", server.addr("db")),
        ),
    ];
    let start = Instant::now();
    // After a first scrape, so that rate() sees these single events as an increase.
    while start.elapsed() < DEADLINE && !has_data(&api(port, "query", "up == 1")) {
        std::thread::sleep(Duration::from_millis(200)); // poll interval, bounded by DEADLINE
    }
    tls_oddities(tls, &ca);
    let mut waiting: Vec<String> = queries;
    waiting.extend(MOVING.iter().map(|q| q.to_string()));
    let mut rules_loaded = false;
    while start.elapsed() < DEADLINE && (!waiting.is_empty() || !rules_loaded) {
        waiting.retain(|q| !has_data(&api(port, "query", q)));
        rules_loaded =
            rules_loaded || has_data(&api(port, "query", "coreloop:http_requests:rate1m"));
        std::thread::sleep(Duration::from_millis(500)); // poll interval, bounded by DEADLINE
    }
    assert!(
        waiting.is_empty(),
        "no data within {DEADLINE:?} for: {waiting:#?}\n{}",
        logs(&dir)
    );
    assert!(
        rules_loaded,
        "the recording rules of rules.yml never produced a series"
    );
    let up = api(port, "query", "up{job=\"coreloop\"}");
    assert!(up.contains("\"1\"]"), "target not up: {up}");
}
