//! The command line: help, version, usage errors, print-config.

use crate::support::{run, TempDir};

#[test]
fn help_and_version_exit_0() {
    let help = run(&["--help"]);
    assert_eq!(help.status.code(), Some(0));
    let text = String::from_utf8_lossy(&help.stdout);
    for word in [
        "check-config",
        "print-config",
        "print-keys",
        "--config",
        "--listen",
        "--shards",
    ] {
        assert!(text.contains(word), "--help lacks {word}:\n{text}");
    }
    let version = run(&["--version"]);
    assert_eq!(version.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&version.stdout).trim(),
        format!("coreloop {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(run(&["--no-such-flag"]).status.code(), Some(2));
    assert_eq!(run(&["check-config"]).status.code(), Some(2));
    let check = run(&["check-config", "/dev/null", "--shards", "zero"]);
    assert_eq!(check.status.code(), Some(2));
    let bad = run(&["--shards", "zero", "--listen", "web=127.0.0.1:0"]);
    assert_eq!(bad.status.code(), Some(2));
    let text = String::from_utf8_lossy(&bad.stderr);
    assert!(text.contains("<command line>:1:"), "{text}");
}

#[test]
fn print_config_output_reparses() {
    let out = run(&["print-config"]);
    assert_eq!(out.status.code(), Some(0));
    let dir = TempDir::new();
    let path = dir.write("default.toml", &String::from_utf8(out.stdout).unwrap());
    let check = run(&["check-config", path.to_str().unwrap()]);
    assert_eq!(check.status.code(), Some(0), "{check:?}");
    let summary = String::from_utf8(check.stdout).unwrap();
    assert!(
        summary.starts_with(
            "ok: 2 listeners (web http 127.0.0.1:8080, echo echo 127.0.0.1:9000), 7 routes, "
        ),
        "{summary}"
    );
    assert_eq!(summary.lines().count(), 1);
}
