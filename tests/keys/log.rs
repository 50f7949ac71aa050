//! `[log]`: level, format, access log.

use std::net::TcpListener;

use crate::support::{config, get, Server, TempDir};

/// At `warn`, info lines (the `listening` announcements) are not written; an error line is.
#[test]
pub fn log_level_filters_lines() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let address = format!("address = \"127.0.0.1:{port}\"");
    let text = config(&[
        ("level = \"info\"", "level = \"warn\""),
        ("address = \"127.0.0.1:0\"", &address),
    ]);
    let dir = TempDir::new();
    let path = dir.write("coreloop.toml", &text);
    // No `listening` line to wait for at this level: wait until the port answers instead
    // (the signal handlers are installed before any listener is bound).
    let server = Server::spawn(&["--config", path.to_str().unwrap()], dir, path.clone(), 0);
    assert!(super::eventually(|| std::net::TcpStream::connect((
        "127.0.0.1",
        port
    ))
    .is_ok()));
    std::fs::write(
        &path,
        text.replace("balance = \"least-loaded\"", "balance = \"x\""),
    )
    .unwrap();
    server.signal("HUP");
    server.wait_for("reload refused", 1);
    let log = server.stderr();
    assert!(
        !log.contains("listening name="),
        "info lines at level warn:\n{log}"
    );
}

#[test]
pub fn log_format_json() {
    let server = Server::start(&config(&[("format = \"text\"", "format = \"json\"")]));
    let line = server.stderr().lines().next().unwrap().to_owned();
    assert!(
        line.starts_with('{') && line.contains("\"message\":"),
        "{line}"
    );
}

#[test]
pub fn access_log_writes_a_line_per_response() {
    let edit = ("access_log = false", "access_log = \"stderr\"");
    let server = Server::start(&config(&[edit]));
    assert_eq!(get(server.addr("web"), "/nowhere").status, 404);
    server.wait_for(" GET /nowhere 404 ", 1);
}
