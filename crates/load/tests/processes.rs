//! `--processes` and `merge` (issue 12, section 3) through the real binary.

use std::path::PathBuf;
use std::time::Duration;

use base64::Engine as _;
use hdrhistogram::serialization::Deserializer;
use hdrhistogram::Histogram;
use serde_json::Value;

use crate::support::{run_bin, Behaviour, Server};

const BOUND: Duration = Duration::from_secs(60);

fn n(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"))
}

fn temp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("coreloop-load-{}-{name}", std::process::id()))
}

fn histogram(text: &Value) -> Histogram<u64> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.as_str().expect("histogram string"))
        .expect("base64");
    Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .expect("HdrHistogram V2")
}

#[test]
fn processes_split_the_load_and_merge_one_report() {
    let server = Server::start(Behaviour::ok());
    let url = server.http_url();
    let args = [
        "--processes",
        "2",
        "-c",
        "20",
        "-t",
        "2",
        "--warmup",
        "0s",
        "--requests",
        "1001",
        "--no-progress",
        "--json",
        "-",
        &url,
    ];
    let out = run_bin(&args, BOUND);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let v = out.json();
    assert_eq!(n(&v["requests"]["sent"]), 1001);
    assert_eq!(n(&v["requests"]["completed"]), 1001);
    assert_eq!(
        server.received(),
        1001,
        "the server saw exactly the merged count"
    );
    assert_eq!(n(&v["processes"]), 2);
    assert_eq!(n(&v["threads"]), 2);
    assert_eq!(n(&v["connections"]["opened"]), 20);
    assert_eq!(n(&v["settings"]["connections"]), 20);
    assert_eq!(n(&v["settings"]["processes"]), 2);
    assert_eq!(n(&v["status"]["200"]), 1001);
    assert_eq!(histogram(&v["histograms"]["latency"]).len(), 1001);
    assert!(
        out.stderr
            .contains("2 processes, 2 threads, 20 connections"),
        "{}",
        out.stderr
    );
}

#[test]
fn merging_two_runs_sums_counts_and_merges_histograms_exactly() {
    let server = Server::start(Behaviour::Statuses(vec![200, 200, 404]));
    let url = server.http_url();
    let files: Vec<PathBuf> = ["a.json", "b.json"].iter().map(|f| temp(f)).collect();
    for (f, requests) in files.iter().zip(["300", "600"]) {
        let p = f.to_string_lossy();
        let args = [
            "-c",
            "2",
            "-t",
            "1",
            "--warmup",
            "0s",
            "--requests",
            requests,
            "--no-progress",
            "--json",
            &p,
            &url,
        ];
        assert_eq!(run_bin(&args, BOUND).code, Some(0));
    }
    let merged = temp("merged.json");
    let (a, b, m) = (
        files[0].to_string_lossy(),
        files[1].to_string_lossy(),
        merged.to_string_lossy(),
    );
    let out = run_bin(&["merge", &a, &b, "--json", &m], BOUND);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let read = |p: &PathBuf| -> Value {
        serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
    };
    let (va, vb, vm) = (read(&files[0]), read(&files[1]), read(&merged));
    for f in files.iter().chain([&merged]) {
        let _ = std::fs::remove_file(f);
    }
    for (section, key) in [
        ("requests", "sent"),
        ("requests", "completed"),
        ("requests", "ok"),
        ("errors", "status"),
        ("status", "404"),
        ("connections", "opened"),
    ] {
        assert_eq!(
            n(&vm[section][key]),
            n(&va[section][key]) + n(&vb[section][key]),
            "{section}.{key}"
        );
    }
    assert_eq!(n(&vm["requests"]["completed"]), 900);
    assert_eq!(n(&vm["merged"]), 2);
    // The percentiles are those of one histogram holding both runs.
    let mut both = histogram(&va["histograms"]["latency"]);
    both.add(histogram(&vb["histograms"]["latency"])).unwrap();
    assert_eq!(histogram(&vm["histograms"]["latency"]), both);
    for (key, q) in [
        ("p50_us", 0.5),
        ("p90_us", 0.9),
        ("p99_us", 0.99),
        ("p99_9_us", 0.999),
    ] {
        assert_eq!(
            n(&vm["latency"][key]),
            both.value_at_quantile(q),
            "latency.{key}"
        );
    }
    assert_eq!(n(&vm["latency"]["max_us"]), both.max());
    assert_eq!(n(&vm["latency"]["count"]), 900);
    // Per-second series merge second by second.
    let per_second = |v: &Value| {
        v["series"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| n(&s["completed"]))
            .sum::<u64>()
    };
    assert_eq!(per_second(&vm), 900);
}

#[test]
fn merge_refuses_what_is_not_a_report() {
    let bad = temp("bad.json");
    std::fs::write(&bad, "{\"hello\": 1}").unwrap();
    let p = bad.to_string_lossy();
    let out = run_bin(&["merge", &p], BOUND);
    let _ = std::fs::remove_file(&bad);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert_eq!(run_bin(&["merge"], BOUND).code, Some(2));
    assert_eq!(
        run_bin(&["merge", "/nonexistent/x.json"], BOUND).code,
        Some(2)
    );
}

#[test]
fn start_at_waits_for_the_agreed_second() {
    let server = Server::start(Behaviour::ok());
    let url = server.http_url();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let at = (now + 2).to_string();
    let args = [
        "-c",
        "1",
        "-t",
        "1",
        "--warmup",
        "0s",
        "--requests",
        "10",
        "--start-at",
        &at,
        "--no-progress",
        "--json",
        "-",
        &url,
    ];
    let v = run_bin(&args, BOUND).json();
    let expected =
        coreloop_load::report::rfc3339(std::time::UNIX_EPOCH + Duration::from_secs(now + 2));
    let started = v["started_at"].as_str().unwrap();
    assert!(
        started >= expected.as_str(),
        "started {started}, agreed {expected}"
    );
}

#[test]
fn processes_with_source_addresses_bind_their_own_ports() {
    let server = Server::start(Behaviour::ok());
    let url = server.http_url();
    let args = [
        "--processes",
        "2",
        "-c",
        "8",
        "-t",
        "2",
        "--warmup",
        "0s",
        "--requests",
        "400",
        "--source-addrs",
        "127.0.0.1-127.0.0.2",
        "--no-progress",
        "--json",
        "-",
        &url,
    ];
    let out = run_bin(&args, BOUND);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let v = out.json();
    assert_eq!(n(&v["requests"]["completed"]), 400);
    assert_eq!(n(&v["connections"]["opened"]), 8);
    assert_eq!(n(&v["errors"]["connect"]), 0);
    assert_eq!(
        v["settings"]["source_addrs"],
        serde_json::json!(["127.0.0.1", "127.0.0.2"])
    );
}
