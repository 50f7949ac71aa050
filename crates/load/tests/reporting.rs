//! Reporting like the tools people know (issue 12, section 2), through the
//! real binary: status codes, SIGINT, exit statuses, the backlog note, units
//! and the JSON's metadata.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{run_bin, wait_bounded, Behaviour, Server, BIN};

const BOUND: Duration = Duration::from_secs(30);

#[test]
fn status_codes_are_counted_like_oha_and_wrk() {
    let server = Server::start(Behaviour::Statuses(vec![200, 404, 200, 503]));
    let url = server.http_url();
    let args = [
        "-c",
        "1",
        "-t",
        "1",
        "--warmup",
        "0s",
        "--requests",
        "400",
        "--no-progress",
        &url,
    ];
    let out = run_bin(&args, BOUND);
    assert_eq!(out.code, Some(0), "non-2xx answers are not errors");
    for line in [
        "[200] 200",
        "[404] 100",
        "[503] 100",
        "Non-2xx responses: 200",
    ] {
        assert!(
            out.stdout.lines().any(|l| l.trim_start().ends_with(line)
                && (l.contains("Status") || l.trim_start().starts_with(line))),
            "no {line:?} in\n{}",
            out.stdout
        );
    }
    let mut json_args = args.to_vec();
    json_args.splice(json_args.len() - 1.., ["--json", "-", &url]);
    let v = run_bin(&json_args, BOUND).json();
    assert_eq!(
        v["status"],
        serde_json::json!({"200": 200, "404": 100, "503": 100})
    );
    assert_eq!(v["errors"]["status"], 200);
}

#[test]
fn refused_target_exits_at_once_with_its_own_status() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let url = format!("http://127.0.0.1:{port}/");
    let started = Instant::now();
    let out = run_bin(&["-d", "60s", "--no-progress", &url], BOUND);
    assert_eq!(out.code, Some(3));
    assert!(out.stderr.contains("Connection refused"), "{}", out.stderr);
    // Not after the 62 s of warm-up and duration.
    assert!(started.elapsed() < BOUND);
}

#[test]
fn bad_command_lines_exit_two() {
    for args in [
        vec!["-H", "no colon here", "http://127.0.0.1:1/"],
        vec!["-H", "Bad Name: x", "http://127.0.0.1:1/"],
        vec!["--rate", "abc", "http://127.0.0.1:1/"],
        vec!["--processes", "0", "http://127.0.0.1:1/"],
        vec!["ftp://127.0.0.1:1/"],
    ] {
        let out = run_bin(&args, BOUND);
        assert_eq!(out.code, Some(2), "{args:?}: {}", out.stderr);
    }
}

#[test]
fn nothing_completed_and_some_failed_have_their_own_statuses() {
    let silent = Server::start(Behaviour::Blackhole);
    let url = silent.http_url();
    let quick = [
        "-c",
        "2",
        "-t",
        "1",
        "--warmup",
        "0s",
        "-d",
        "300ms",
        "--timeout",
        "200ms",
        "--no-progress",
    ];
    let out = run_bin(&[&quick[..], &[&url]].concat(), BOUND);
    assert_eq!(out.code, Some(4), "{}", out.stdout);

    let lossy = Server::start(Behaviour::SilentEvery(5));
    let url = lossy.http_url();
    let out = run_bin(&[&quick[..], &[&url]].concat(), BOUND);
    assert!(out.stdout.contains("timeout "), "{}", out.stdout);
    assert_eq!(out.code, Some(5), "{}", out.stdout);
}

#[test]
fn connect_timeouts_name_the_backlog_and_the_remedy() {
    // A listener nobody accepts from, with the smallest backlog: once its
    // queue is full the kernel drops further SYNs and connects time out.
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket
        .bind(
            &"127.0.0.1:0"
                .parse::<std::net::SocketAddr>()
                .unwrap()
                .into(),
        )
        .unwrap();
    socket.listen(1).unwrap();
    let addr = socket.local_addr().unwrap().as_socket().unwrap();
    let url = format!("http://{addr}/");
    let args = [
        "-c",
        "16",
        "-t",
        "1",
        "--warmup",
        "0s",
        "-d",
        "1s",
        "--timeout",
        "300ms",
        "--no-progress",
        "--json",
        "-",
        &url,
    ];
    let out = run_bin(&args, BOUND);
    let v = out.json();
    assert!(
        v["connections"]["connect_failures"]["timeout"]
            .as_u64()
            .unwrap()
            > 0,
        "{}",
        v["connections"]
    );
    let notes = v["notes"].to_string();
    for word in ["accept backlog", "--connect-rate", "somaxconn"] {
        assert!(notes.contains(word), "{word} not in {notes}");
    }
    drop(socket);
}

#[test]
fn json_has_version_start_time_settings_and_no_float_noise() {
    let server = Server::start(Behaviour::ok());
    let url = server.http_url();
    let args = [
        "-c",
        "3",
        "-t",
        "1",
        "--warmup",
        "100ms",
        "-d",
        "700ms",
        "--rate",
        "300",
        "-H",
        "X-Test: 1",
        "--no-progress",
        "--json",
        "-",
        &url,
    ];
    let out = run_bin(&args, BOUND);
    assert_eq!(out.code, Some(0));
    let v = out.json();
    assert_eq!(v["tool"]["name"], "coreloop-load");
    assert_eq!(v["tool"]["version"], env!("CARGO_PKG_VERSION"));
    let started = v["started_at"].as_str().unwrap();
    assert_eq!(started.len(), 20, "{started}");
    assert!(
        started.ends_with('Z') && &started[10..11] == "T",
        "{started}"
    );
    let s = &v["settings"];
    assert_eq!(s["connections"], 3);
    assert_eq!(s["threads"], 1);
    assert_eq!(s["processes"], 1);
    assert_eq!(s["rate_per_s"], 300.0);
    assert_eq!(s["duration_s"], 0.7);
    assert_eq!(s["warmup_s"], 0.1);
    assert_eq!(s["timeout_s"], 5.0);
    assert_eq!(s["headers"], serde_json::json!(["X-Test: 1"]));
    for key in [
        "method",
        "pipeline",
        "pipeline_mode",
        "connect_rate_per_s",
        "body_bytes",
        "source_addrs",
        "requests",
        "target",
        "protocol",
    ] {
        assert!(s.get(key).is_some(), "settings.{key} missing: {s}");
    }
    floats_are_rounded(&v, "");
}

/// No figure carries more than 3 decimals (0.30000000000000004 and friends).
fn floats_are_rounded(v: &Value, path: &str) {
    match v {
        Value::Number(x) if x.is_f64() => {
            let text = x.to_string();
            let decimals = text.split_once('.').map_or(0, |(_, d)| d.len());
            assert!(decimals <= 3, "{path} = {text}");
        }
        Value::Array(a) => a.iter().for_each(|x| floats_are_rounded(x, path)),
        Value::Object(o) => o
            .iter()
            .for_each(|(k, x)| floats_are_rounded(x, &format!("{path}.{k}"))),
        _ => {}
    }
}

#[test]
fn text_has_one_unit_per_line() {
    let server = Server::start(Behaviour::ok());
    let url = server.http_url();
    let out = run_bin(
        &[
            "-c",
            "2",
            "-t",
            "1",
            "--warmup",
            "0s",
            "--requests",
            "300",
            "--no-progress",
            "--latency",
            &url,
        ],
        BOUND,
    );
    for line in out
        .stdout
        .lines()
        .filter(|l| l.contains("Latency") || l.contains("Connect "))
    {
        let units = ["us", "ms", " s"]
            .iter()
            .filter(|u| line.contains(*u))
            .count();
        assert_eq!(units, 1, "{line}");
    }
}

/// Sends SIGINT to the child (the test harness must not receive it).
fn interrupt(pid: u32) {
    let ok = Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(ok.success());
}

/// Lines of the child's stderr as they come, with the child itself.
fn spawn_watching_stderr(args: &[&str]) -> (std::process::Child, mpsc::Receiver<String>) {
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start coreloop-load");
    let err = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    (child, rx)
}

fn wait_for_line(rx: &mpsc::Receiver<String>, needle: &str) {
    let deadline = Instant::now() + BOUND;
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(line) if line.contains(needle) => return,
            Ok(_) => {}
            Err(_) => break,
        }
    }
    panic!("no stderr line with {needle:?}");
}

fn wait_until(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + BOUND;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        // Polling a counter of the in-process test server.
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn sigint_ends_the_run_with_the_full_report() {
    let server = Server::start(Behaviour::ok());
    let url = server.http_url();
    let child = Command::new(BIN)
        .args([
            "-c",
            "2",
            "-t",
            "1",
            "--warmup",
            "0s",
            "-d",
            "120s",
            "--no-progress",
            "--json",
            "-",
            &url,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start coreloop-load");
    wait_until("requests at the server", || server.received() > 100);
    interrupt(child.id());
    let out = wait_bounded(child, BOUND, &["sigint"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let v = out.json();
    assert_eq!(v["interrupted"], true);
    assert!(v["elapsed_s"].as_f64().unwrap() < 120.0);
    assert!(v["requests"]["completed"].as_u64().unwrap() > 100);
    assert!(
        out.stderr.contains("Requests/s") && out.stderr.contains("(interrupted)"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_second_sigint_quits_at_once() {
    let server = Server::start(Behaviour::Blackhole);
    let url = server.http_url();
    let (child, lines) = spawn_watching_stderr(&[
        "-c",
        "2",
        "-t",
        "1",
        "--warmup",
        "0s",
        "-d",
        "120s",
        "--timeout",
        "120s",
        "--no-progress",
        &url,
    ]);
    wait_until("requests at the server", || server.received() >= 2);
    interrupt(child.id());
    // The drain would wait up to the 120 s timeout for the silent server.
    wait_for_line(&lines, "interrupt again to quit");
    interrupt(child.id());
    let mut child = child;
    let deadline = Instant::now() + BOUND;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "still running after the second SIGINT"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(status.code(), Some(130));
}

/// The progress bar only draws on a terminal: `script` gives the run one.
#[test]
fn progress_bar_labels_the_warmup() {
    let server = Server::start(Behaviour::ok());
    let command = format!("{BIN} -c 2 -t 1 --warmup 1s -d 500ms {}", server.http_url());
    let child = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("script(1) from util-linux/bsdutils (.ci/setup installs it)");
    let out = wait_bounded(child, BOUND, &["under script"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let screen = out.stdout.replace('\r', "\n");
    assert!(screen.contains("warm-up"), "{screen}");
    assert!(screen.contains("measuring"), "{screen}");
}

#[test]
fn sigint_stops_every_worker_process_and_merges_what_they_measured() {
    let server = Server::start(Behaviour::ok());
    let url = server.http_url();
    let child = Command::new(BIN)
        .args([
            "--processes",
            "2",
            "-c",
            "4",
            "-t",
            "2",
            "--warmup",
            "0s",
            "-d",
            "120s",
            "--no-progress",
            "--json",
            "-",
            &url,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start coreloop-load");
    wait_until("requests at the server", || server.received() > 200);
    // Only the parent gets it (no terminal): it must pass it on.
    interrupt(child.id());
    let out = wait_bounded(child, BOUND, &["--processes sigint"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let v = out.json();
    assert_eq!(v["interrupted"], true);
    assert_eq!(v["processes"], 2);
    let completed = v["requests"]["completed"].as_u64().unwrap();
    assert!(completed > 200, "{completed}");
    assert_eq!(v["requests"]["sent"], completed, "drained: nothing lost");
}
