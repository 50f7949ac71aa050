//! Open loop above what the server can do (issue 12, section 1): a server
//! that answers each request 20 ms after it arrived, 8 connections, asked for
//! 2,000 requests/s. It can do about 8 / 20 ms = 400/s. Before the fix the
//! report said "0 completed of 0 sent": the requests due during the warm-up
//! were sent in the measured window and counted nowhere, and starved the
//! requests due in it.

use std::time::Duration;

use serde_json::Value;

use crate::support::{run_bin, Behaviour, Server, OK};

fn n(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"))
}

#[test]
fn overload_counts_due_requests_and_says_the_rate_was_not_reached() {
    let server = Server::start(Behaviour::Delay {
        service: Duration::from_millis(20),
    });
    let url = server.http_url();
    let args = [
        "-c",
        "8",
        "-t",
        "2",
        "--warmup",
        "1s",
        "-d",
        "3s",
        "--rate",
        "2000",
        "--no-progress",
        "--json",
        "-",
        &url,
    ];
    let out = run_bin(&args, Duration::from_secs(60));
    let v = out.json();
    let req = &v["requests"];
    let (sent, completed) = (n(&req["sent"]), n(&req["completed"]));
    assert!(completed > 0, "{v}");
    assert_eq!(
        sent,
        completed + n(&req["failed"]) + n(&req["unfinished"]),
        "every sent request ends in one place"
    );
    // About 400/s: a loose bound, this box is shared.
    let rps = v["requests_per_s"].as_f64().unwrap();
    assert!((150.0..=600.0).contains(&rps), "requests/s {rps}");
    // Every measured request due in the 3 s is either sent or in the backlog.
    let due = sent + n(&v["rate"]["backlog"]);
    assert!(due.abs_diff(6000) <= 16, "due {due}");
    // Warm-up requests are accounted for, not lost: sent, and the rest
    // skipped when measuring began.
    assert!(n(&v["warmup"]["sent"]) > 0, "{}", v["warmup"]);
    assert!(n(&v["warmup"]["skipped"]) > 0, "{}", v["warmup"]);
    // Bytes belong to the measured requests only.
    assert_eq!(n(&v["bytes_read"]), completed * OK.len() as u64);
    let request = format!("GET /plaintext HTTP/1.1\r\nHost: {}\r\n\r\n", server.addr);
    assert_eq!(n(&v["bytes_written"]), sent * request.len() as u64);
    // The rate was not reached, and the report says so in JSON and text.
    assert_eq!(v["rate"]["reached"], false);
    let notes: Vec<&str> = v["notes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let note = notes
        .iter()
        .find(|s| s.starts_with("rate not reached: sent "))
        .unwrap_or_else(|| panic!("no rate note in {notes:?}"));
    assert!(
        note.ends_with("/s of 2000/s; latencies include queueing"),
        "{note}"
    );
    assert!(
        out.stderr.lines().any(|l| l.trim() == *note),
        "text lacks its own line: {}",
        out.stderr
    );
    latencies_grow_through_the_run(&v);
}

/// Queueing grows while the server falls further behind: compare the first
/// and the last full second of the same run, and never a zero.
fn latencies_grow_through_the_run(v: &Value) {
    let series = v["series"].as_array().unwrap();
    assert!(series.len() >= 3, "{series:?}");
    for s in &series[..3] {
        assert!(n(&s["completed"]) > 0, "{s}");
        assert!(n(&s["p50_us"]) > 0, "{s}");
    }
    let (first, last) = (n(&series[0]["p50_us"]), n(&series[2]["p50_us"]));
    assert!(
        last > 2 * first,
        "p50 first second {first} us, third {last} us"
    );
    assert!(n(&v["latency"]["p50_us"]) > 0 && n(&v["latency"]["p99_us"]) > 0);
}

#[test]
fn a_rate_the_server_keeps_up_with_is_reached() {
    let server = Server::start(Behaviour::ok());
    let url = server.http_url();
    let args = [
        "-c",
        "4",
        "-t",
        "1",
        "--warmup",
        "200ms",
        "-d",
        "1s",
        "--rate",
        "200",
        "--no-progress",
        "--json",
        "-",
        &url,
    ];
    let v = run_bin(&args, Duration::from_secs(30)).json();
    assert_eq!(v["rate"]["reached"], true, "{}", v["rate"]);
    assert_eq!(n(&v["warmup"]["skipped"]), 0);
    assert!(
        !v["notes"].to_string().contains("rate not reached"),
        "{}",
        v["notes"]
    );
}
