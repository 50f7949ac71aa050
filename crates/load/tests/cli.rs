//! The binary's behaviour through `main_with_args`: exit codes and JSON.

use coreloop_load::main_with_args;

use crate::support::{Behaviour, Server};

fn code(args: &[&str]) -> i32 {
    main_with_args(std::iter::once("coreloop-load").chain(args.iter().copied()))
}

#[test]
fn help_and_version_exit_zero() {
    assert_eq!(code(&["--help"]), 0);
    assert_eq!(code(&["--version"]), 0);
}

#[test]
fn usage_errors_exit_two() {
    assert_eq!(code(&[]), 2);
    assert_eq!(code(&["--bogus", "http://127.0.0.1:1/"]), 2);
    assert_eq!(code(&["ftp://127.0.0.1:1/"]), 2);
    assert_eq!(code(&["--pipeline", "0", "http://127.0.0.1:1/"]), 2);
    assert_eq!(code(&["-d", "ten", "http://127.0.0.1:1/"]), 2);
    assert_eq!(code(&["--pipeline-mode", "bulk", "http://127.0.0.1:1/"]), 2);
    let open = [
        "--rate",
        "10",
        "--pipeline-mode",
        "batch",
        "http://127.0.0.1:1/",
    ];
    assert_eq!(code(&open), 2);
}

#[test]
fn json_report_has_the_documented_fields() {
    let server = Server::start(Behaviour::ok());
    let path = std::env::temp_dir().join(format!("coreloop-load-test-{}.json", std::process::id()));
    let url = server.http_url();
    let p = path.to_string_lossy().to_string();
    let args = [
        "-c",
        "2",
        "-t",
        "1",
        "--warmup",
        "0s",
        "--requests",
        "50",
        "--no-progress",
        "--json",
        &p,
        &url,
    ];
    assert_eq!(code(&args), 0);
    let text = std::fs::read_to_string(&path).expect("json written");
    let _ = std::fs::remove_file(&path);
    let v: serde_json::Value = serde_json::from_str(&text).expect("valid json");
    assert_eq!(v["requests"]["completed"], 50);
    assert_eq!(v["errors"]["connect"], 0);
    assert_eq!(v["pipeline_mode"], "window");
    for key in [
        "requests_per_s",
        "latency",
        "connections",
        "cpu",
        "read_bytes_per_s",
        "notes",
    ] {
        assert!(v.get(key).is_some(), "missing {key} in {text}");
    }
    for key in [
        "p50_us",
        "p75_us",
        "p90_us",
        "p99_us",
        "p99_9_us",
        "p99_99_us",
        "max_us",
    ] {
        assert!(v["latency"].get(key).is_some(), "missing latency.{key}");
    }
}
