//! `[log]`: level, format, access log.

use std::os::unix::net::UnixStream;

use crate::support::{config, get, Server, TempDir};

/// At `warn`, info lines (the `listening` announcements) are not written; an error line is.
#[test]
pub fn log_level_filters_lines() {
    let dir = TempDir::new();
    // A unix socket: no announcement to read the address from at this level, and no port
    // to pick in advance.
    let socket = dir.0.join("web.sock");
    let address = format!("address = \"unix:{}\"", socket.display());
    let text = config(&[
        ("level = \"info\"", "level = \"warn\""),
        ("address = \"127.0.0.1:0\"", &address),
    ]);
    let path = dir.write("coreloop.toml", &text);
    // Wait until the socket answers instead (the signal handlers are installed before any
    // listener is bound).
    let server = Server::spawn(&["--config", path.to_str().unwrap()], dir, path.clone(), 0);
    assert!(super::eventually(|| UnixStream::connect(&socket).is_ok()));
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
