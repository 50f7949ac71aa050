//! Serving the default routes, overrides, log formats, the access log, and bind failures.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};

use crate::support::{config, get, Conn, Server, TempDir, WAIT};

#[test]
fn the_default_routes_answer() {
    let server = Server::start(&config(&[]));
    let web = server.addr("web");
    let plain = get(web, "/plaintext");
    assert_eq!(
        (plain.status, plain.text().as_str()),
        (200, "Hello, World!")
    );
    assert_eq!(plain.header("content-type"), Some("text/plain"));
    let json = get(web, "/json");
    assert_eq!(json.text(), r#"{"message":"Hello, World!"}"#);
    let mut conn = Conn::open(web);
    conn.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello")
        .unwrap();
    assert_eq!(conn.read_response().unwrap().text(), "hello");
    assert_eq!(conn.get("/healthz").status, 200);
    assert_eq!(conn.get("/readyz").status, 200);
    assert_eq!(conn.get("/nope").status, 404);
    let metrics = conn.get("/metrics");
    assert!(metrics.text().contains("coreloop_build_info{version="));
    // The echo listener.
    let mut echo = TcpStream::connect(server.addr("echo")).unwrap();
    echo.set_read_timeout(Some(WAIT)).unwrap();
    echo.write_all(b"ping\n").unwrap();
    let mut buf = [0u8; 5];
    echo.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"ping\n");
}

#[test]
fn no_config_file_runs_the_embedded_default_with_overrides() {
    let server = Server::spawn(
        &[
            "--listen",
            "web=127.0.0.1:0",
            "--listen",
            "echo=127.0.0.1:0",
            "--shards",
            "1",
        ],
        TempDir::new(),
        "<embedded>".into(),
        2,
    );
    server.wait_for("running: 1 shards", 1);
    assert_eq!(
        get(server.addr("web"), "/plaintext").text(),
        "Hello, World!"
    );
}

#[test]
fn json_logs_carry_the_listening_line_in_the_message() {
    let server = Server::start(&config(&[("format = \"text\"", "format = \"json\"")]));
    let line = server
        .stderr()
        .lines()
        .find(|l| l.contains("listening name=web"))
        .unwrap()
        .to_owned();
    assert!(line.starts_with('{'), "{line}");
    assert!(
        line.contains("\"message\":\"listening name=web protocol=http address=127.0.0.1:"),
        "{line}"
    );
    assert_eq!(get(server.addr("web"), "/plaintext").status, 200);
}

#[test]
fn the_access_log_writes_a_line_per_response() {
    let server = Server::start(&config(&[(
        "access_log = false",
        "access_log = \"stderr\"",
    )]));
    assert_eq!(get(server.addr("web"), "/plaintext").status, 200);
    assert_eq!(get(server.addr("web"), "/missing").status, 404);
    server.wait_for(" GET /missing 404 ", 1);
    assert!(server.stderr().contains(" GET /plaintext 200 "));
}

#[test]
fn an_address_in_use_exits_1_naming_listener_and_address() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let toml = config(&[(
        "address = \"127.0.0.1:0\"",
        &format!("address = \"{addr}\""),
    )]);
    let dir = TempDir::new();
    let path = dir.write("c.toml", &toml);
    let mut child = std::process::Command::new(crate::support::BIN)
        .args(["--config", path.to_str().unwrap()])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // stderr closes when the process exits; read_to_string returns then (bounded by the
    // process, which exits at once on a bind failure).
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("listener `web` cannot listen on {addr}")),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("{}:88:11", path.display())),
        "{stderr}"
    );
    drop(taken);
}
