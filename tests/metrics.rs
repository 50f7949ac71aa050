//! The exposition: counters move by exactly what the client did, and docs/METRICS.md agrees.

use std::collections::{BTreeMap, BTreeSet};

use std::os::unix::fs::OpenOptionsExt;

use crate::support::{config, repo_file, Conn, Exposition, Server, TempDir};

/// What Prometheus 2.x sends.
const PROMETHEUS_ACCEPT: &str = "application/openmetrics-text;version=1.0.0,\
    application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

fn scrape_on(conn: &mut Conn) -> Exposition {
    let response = conn.get("/metrics");
    assert_eq!(response.status, 200);
    assert_eq!(
        response.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    Exposition::parse(&response.text())
}

#[test]
fn requests_and_connections_are_counted_exactly() {
    let server = Server::start(&config(&[]));
    let web = server.addr("web");
    let mut scraper = Conn::open(web);
    let before = scrape_on(&mut scraper);
    let mut conn = Conn::open(web);
    for i in 0..20 {
        let path = if i % 4 == 0 { "/missing" } else { "/plaintext" };
        conn.get(path);
    }
    // Each shard holds what the client holds: held connections plus the scraper and `conn`.
    let held: Vec<Conn> = (0..6)
        .map(|_| {
            let mut c = Conn::open(web);
            assert_eq!(c.get("/healthz").status, 200);
            c
        })
        .collect();
    let after = scrape_on(&mut scraper);
    let total = |e: &Exposition, code| {
        e.sum(
            "coreloop_http_requests_total",
            &[("listener", "web"), ("code", code)],
        )
    };
    // The first scrape's own response is counted once it is written, so it shows up now.
    assert_eq!(
        total(&after, "200") - total(&before, "200"),
        15.0 + 6.0 + 1.0
    );
    assert_eq!(total(&after, "404") - total(&before, "404"), 5.0);
    let active = after.sum("coreloop_connections_active", &[("listener", "web")]);
    assert_eq!(active, (held.len() + 2) as f64);
    let per_shard: f64 = (0..2)
        .map(|s| {
            let shard = s.to_string();
            after.sum(
                "coreloop_connections_active",
                &[("listener", "web"), ("shard", &shard)],
            )
        })
        .sum();
    assert_eq!(per_shard, active);
    let count = after.sum(
        "coreloop_http_request_duration_seconds_count",
        &[("listener", "web")],
    );
    assert_eq!(count, total(&after, "200") + total(&after, "404"));
    assert!(after.sum("process_open_fds", &[]) > 0.0);
    assert!(after.sum("coreloop_received_bytes_total", &[]) > 0.0);
    promtool_if_installed(&scraper_text(&mut scraper));
}

fn scraper_text(conn: &mut Conn) -> String {
    conn.get("/metrics").text()
}

/// `promtool check metrics` when it is on PATH (optional: the test does not need it).
fn promtool_if_installed(text: &str) {
    use std::io::Write;
    let Ok(mut child) = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
    else {
        return;
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `name -> (type, labels)` from the tables of docs/METRICS.md.
fn documented() -> BTreeMap<String, (String, BTreeSet<String>)> {
    let text = std::fs::read_to_string(repo_file("docs/METRICS.md")).unwrap();
    let mut metrics = BTreeMap::new();
    for line in text.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let name = cells[1].trim_matches('`').to_owned();
        let kind = cells[2].to_owned();
        let labels = cells[3]
            .split(',')
            .map(|l| l.trim().trim_matches('`').to_owned())
            .filter(|l| !l.is_empty() && l != "-")
            .collect();
        metrics.insert(name, (kind, labels));
    }
    metrics
}

#[test]
fn docs_list_exactly_the_exposed_metrics() {
    // With an (unused) upstream and TLS listeners, whose families only a server with them
    // exposes.
    let upstream = "\n[[upstream]]\nname = \"app\"\nservers = [\"127.0.0.1:9\"]\n";
    let dir = TempDir::new();
    let (cert, key) = crate::tls::make_cert(
        &dir.0,
        "localhost",
        "localhost",
        crate::tls::KeyType::EcdsaP256,
        2,
    );
    let tls = crate::tls::tls_table(&cert, &key, "");
    let server = Server::start(&(crate::tls::tls_config(&tls, &[]) + upstream));
    let mut conn = Conn::open(server.addr("web"));
    conn.get("/plaintext");
    let exposed = scrape_on(&mut conn);
    let docs = documented();
    let mut exposed_names = BTreeSet::new();
    for (family, kind) in &exposed.types {
        // In the 0.0.4 format a counter's family is named with its `_total`.
        let name = family.clone();
        exposed_names.insert(name.clone());
        let (doc_kind, doc_labels) = docs
            .get(&name)
            .unwrap_or_else(|| panic!("{name} is exposed but not in docs/METRICS.md"));
        assert_eq!(doc_kind, kind, "{name}: type");
        let labels: BTreeSet<String> = exposed
            .samples
            .iter()
            .filter(|(sample, _, _)| exposed.family_of(sample).as_deref() == Some(family))
            .flat_map(|(_, labels, _)| labels.iter().map(|(k, _)| k.clone()))
            .filter(|k| k != "le")
            .collect();
        assert_eq!(&labels, doc_labels, "{name}: labels");
    }
    let documented: BTreeSet<String> = docs.keys().cloned().collect();
    assert_eq!(
        documented, exposed_names,
        "docs/METRICS.md and the exposition differ"
    );
}

/// `promtool check metrics` on `text`; panics with its complaint.
fn promtool_check(text: &str) {
    use std::io::Write;
    let promtool = std::env::var_os("PATH")
        .and_then(|path| {
            std::env::split_paths(&path)
                .map(|dir| dir.join("promtool"))
                .find(|p| p.exists())
        })
        .expect("promtool is missing: .ci/setup installs it from Debian's prometheus package");
    let mut check = std::process::Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    check
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = check.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool: {}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// promtool (2.42) lints the 0.0.4 text only; OpenMetrics is checked by the strict parser of
/// the reference Python client (PyPI `prometheus-client`, installed by .ci/setup), which
/// refuses anything the OpenMetrics 1.0 grammar does not allow.
fn openmetrics_check(text: &str) {
    use std::io::Write;
    let script = "import sys\n\
        from prometheus_client.openmetrics.parser import text_string_to_metric_families as p\n\
        families = list(p(sys.stdin.read()))\n\
        print(len(families))\n";
    let mut check = std::process::Command::new("python3")
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = check.stdin.take().unwrap();
    stdin.write_all(text.as_bytes()).unwrap();
    drop(stdin);
    let out = check.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "OpenMetrics parser: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    let families: usize = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    assert_eq!(families, text.matches("# TYPE ").count());
}

#[test]
fn the_exposition_passes_promtool() {
    let server = Server::start(&config(&[]));
    let mut conn = Conn::open(server.addr("web"));
    conn.get("/plaintext");
    promtool_check(&conn.get("/metrics").text());
}

/// Prometheus asks for OpenMetrics first; it gets it, and it is as valid as the 0.0.4 text.
#[test]
fn openmetrics_when_the_scraper_asks_for_it() {
    let server = Server::start(&config(&[]));
    let mut conn = Conn::open(server.addr("web"));
    conn.get("/plaintext");
    let ask = |conn: &mut Conn, accept: &str| {
        let request = format!("GET /metrics HTTP/1.1\r\nHost: t\r\nAccept: {accept}\r\n\r\n");
        conn.send(&request).unwrap();
        conn.read_response().unwrap()
    };
    let om = ask(&mut conn, PROMETHEUS_ACCEPT);
    assert_eq!(om.status, 200);
    assert_eq!(
        om.header("content-type"),
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
    );
    let text = om.text();
    assert!(text.ends_with("# EOF\n"), "{text}");
    assert!(text.contains("# TYPE coreloop_http_requests counter\n"));
    assert!(text.contains("coreloop_http_requests_total{"));
    openmetrics_check(&text);
    let plain = ask(&mut conn, "text/plain;version=0.0.4");
    assert_eq!(
        plain.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    assert!(!plain.text().contains("# EOF"));
    assert!(plain
        .text()
        .contains("# TYPE coreloop_http_requests_total counter\n"));
}

/// Before, a scrape was a job on the offload pool and waited behind blocked file jobs. Here
/// the only pool thread is stuck in `open(2)` on a FIFO and two more jobs queue behind it; the
/// scrape is answered at once and sees them queued.
#[test]
fn a_scrape_does_not_wait_for_the_offload_pool() {
    let dir = TempDir::new();
    let fifo = dir.0.join("stall");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    assert!(made.unwrap().success());
    let route = format!(
        "[[listener.route]]\npath = \"/files/*\"\nfiles = {{ root = \"{}\" }}\n\n\
         [[listener.route]]\npath = \"/delay\"",
        dir.0.display()
    );
    let server = Server::start(&config(&[
        ("offload_threads = 4", "offload_threads = 1"),
        ("offload = \"10s\"", "offload = \"30s\""),
        ("[[listener.route]]\npath = \"/delay\"", route.as_str()),
    ]));
    let web = server.addr("web");
    let mut jobs: Vec<Conn> = (0..3).map(|_| Conn::open(web)).collect();
    for conn in &mut jobs {
        conn.send("GET /files/stall HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
    }
    let mut scraper = Conn::open(web);
    // Bounded by the connection's read timeout (far below the 30 s offload timeout).
    assert!(crate::support::eventually(|| {
        scrape_on(&mut scraper).sum("coreloop_offload_queue_depth", &[]) >= 2.0
    }));
    // Let the stuck thread go: a writer that opens and leaves, once per job.
    for _ in 0..3 {
        let writer = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(0o4000) // O_NONBLOCK: no wait for a reader that is gone
            .open(&fifo);
        drop(writer);
    }
}

/// Responses of the `web` listener in buckets up to `le`, summed over shards.
fn at_most(e: &Exposition, le: &str) -> f64 {
    e.sum(
        "coreloop_http_request_duration_seconds_bucket",
        &[("listener", "web"), ("le", le)],
    )
}

/// The histogram times real work: an in-memory answer is tens of microseconds (it used to be
/// 0, timed on the loop-turn clock); a 5 ms delay lands above 5 ms and within 25 ms, since
/// the reactor's timer wheel rounds a deadline up to its 10 ms tick (5 to 15 ms). Bucket
/// assertions, with room for a preempted request or two on a loaded machine.
#[test]
fn latency_buckets_tell_fast_from_slow() {
    let server = Server::start(&config(&[]));
    let mut conn = Conn::open(server.addr("web"));
    let before = scrape_on(&mut conn);
    for _ in 0..50 {
        assert_eq!(conn.get("/plaintext").status, 200);
    }
    let middle = scrape_on(&mut conn);
    let diff = |a: &Exposition, b: &Exposition, le: &str| at_most(b, le) - at_most(a, le);
    // 50 plaintexts and the first scrape's own response.
    assert_eq!(diff(&before, &middle, "+Inf"), 51.0);
    let fast = diff(&before, &middle, "0.00025");
    assert!(fast >= 45.0, "only {fast} of 50 /plaintext below 250 us");
    assert!(diff(&before, &middle, "2.5e-05") < 51.0, "timed as zero");
    for _ in 0..10 {
        assert_eq!(conn.get("/delay?ms=5").status, 200);
    }
    let after = scrape_on(&mut conn);
    // 10 delays and the middle scrape.
    assert_eq!(diff(&middle, &after, "+Inf"), 11.0);
    let band = |le| diff(&middle, &after, le) - diff(&middle, &after, "0.0025");
    let spread: Vec<f64> = ["0.005", "0.01", "0.025", "0.1"].map(band).to_vec();
    assert!(
        band("0.1") >= 10.0,
        "a 5 ms delay outside (2.5 ms, 100 ms]: {spread:?}"
    );
    assert!(
        band("0.025") >= 9.0,
        "5 ms delays not in (2.5 ms, 25 ms]: {spread:?}"
    );
}

/// Label values are bounded by the config, never taken from a request: odd paths, methods,
/// queries and fields leave no trace in the exposition, and every `route`, `method` and
/// `code` value is one of the closed sets docs/METRICS.md gives.
#[test]
fn no_label_value_comes_from_the_network() {
    let server = Server::start(&config(&[]));
    let web = server.addr("web");
    let odd = [
        "GET /zzpath-evil HTTP/1.1\r\nHost: t\r\n\r\n",
        "GET /plaintext?zzquery=1 HTTP/1.1\r\nHost: t\r\nUser-Agent: zzagent\r\n\r\n",
        "BREW /plaintext HTTP/1.1\r\nHost: t\r\n\r\n",
        "PATCH /zzpatch HTTP/1.1\r\nHost: zzhost\r\n\r\n",
        "GET /%7Azzencoded HTTP/1.1\r\nHost: t\r\n\r\n",
        "GET /plaintext/zzbelow HTTP/1.1\r\nHost: t\r\n\r\n",
        "POST /plaintext HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n",
        "GET zz-not-a-target HTTP/1.1\r\nHost: t\r\n\r\n",
    ];
    for request in odd {
        let mut conn = Conn::open(web);
        conn.send(request).unwrap();
        let _ = conn.read_response();
    }
    let mut conn = Conn::open(web);
    let text = conn.get("/metrics").text();
    for needle in ["zz", "BREW", "PATCH", "evil"] {
        assert!(
            !text.contains(needle),
            "{needle} reached the exposition:\n{text}"
        );
    }
    let e = Exposition::parse(&text);
    let methods = ["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "other"];
    let patterns = [
        "none",
        "other",
        "/plaintext",
        "/json",
        "/echo",
        "/delay",
        "/healthz",
    ];
    let mut seen = BTreeSet::new();
    for (name, labels, _) in &e.samples {
        for (key, value) in labels {
            let known = match key.as_str() {
                "method" => methods.contains(&value.as_str()),
                "code" => {
                    value.len() == 3
                        && (value.parse::<u16>().is_ok_and(|c| (100..600).contains(&c))
                            || value.ends_with("xx"))
                }
                "route" => patterns.contains(&value.as_str()) || value.starts_with('/'),
                _ => true,
            };
            assert!(known, "{name}: {key}=\"{value}\"");
            if key == "route" || key == "method" || key == "code" {
                seen.insert(format!("{key}={value}"));
            }
        }
    }
    // The odd requests were counted, under bounded values.
    for want in [
        "route=none",
        "method=other",
        "code=404",
        "code=405",
        "code=400",
    ] {
        assert!(seen.contains(want), "{want} missing: {seen:?}");
    }
    let routes: BTreeSet<&str> = (e.samples.iter())
        .flat_map(|(_, labels, _)| labels.iter())
        .filter(|(k, _)| k == "route")
        .map(|(_, v)| v.as_str())
        .collect();
    let configured: BTreeSet<String> = std::fs::read_to_string(repo_file("config/coreloop.toml"))
        .unwrap()
        .lines()
        .filter_map(|l| l.strip_prefix("path = \""))
        .map(|p| p.trim_end_matches('"').to_owned())
        .collect();
    for route in routes {
        assert!(
            route == "none" || configured.contains(route),
            "route {route} is not a configured pattern"
        );
    }
}

/// `coreloop_draining` is 0 while serving and 1 once SIGTERM began the drain: a request begun
/// before the signal is still answered, and shows it.
#[test]
fn the_draining_gauge_follows_sigterm() {
    let server = Server::start(&config(&[]));
    let mut conn = Conn::open(server.addr("web"));
    assert_eq!(scrape_on(&mut conn).sum("coreloop_draining", &[]), 0.0);
    assert_eq!(
        scrape_on(&mut conn).sum("coreloop_max_connections", &[]),
        2000.0
    );
    conn.send("GET /metrics HTTP/1.1\r\n").unwrap();
    server.signal("TERM");
    server.wait_for("draining (deadline", 1);
    conn.send("Host: t\r\n\r\n").unwrap();
    let text = conn.read_response().unwrap().text();
    assert_eq!(Exposition::parse(&text).sum("coreloop_draining", &[]), 1.0);
}
