//! What the protocols enforce: HTTP timeouts and limits (each written per listener, in
//! `[listener.timeouts]`/`[listener.limits]`, so the override is proven too), and frame_max.

use std::io::{Read, Write};

use super::{closed_now, connect};
use crate::support::{config, Conn, Server};

/// The default config with `key = value` written in the web listener's `[listener.TABLE]`.
fn web_with(table: &str, lines: &str) -> Server {
    let header = format!("[listener.{table}]\n");
    Server::start(&config(&[(&header, &format!("{header}{lines}\n"))]))
}

fn status_of(server: &Server, request: &str) -> u16 {
    let mut conn = Conn::open(server.addr("web"));
    conn.send(request).unwrap();
    conn.read_response().unwrap().status
}

#[test]
pub fn header_timeout_answers_408() {
    let server = web_with("timeouts", "header = \"200ms\"");
    let mut conn = Conn::open(server.addr("web"));
    conn.send("GET /plaintext HTTP/1.1\r\n").unwrap();
    assert_eq!(conn.read_response().unwrap().status, 408);
}

#[test]
pub fn body_timeout_answers_408() {
    let server = web_with("timeouts", "body = \"200ms\"");
    let mut conn = Conn::open(server.addr("web"));
    conn.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc")
        .unwrap();
    let response = conn.read_response().expect("a response before the close");
    assert_eq!(response.status, 408);
}

#[test]
pub fn idle_timeout_closes_a_quiet_keep_alive_connection() {
    let server = web_with("timeouts", "idle = \"200ms\"");
    let mut conn = Conn::open(server.addr("web"));
    assert_eq!(conn.get("/plaintext").status, 200);
    assert_eq!(conn.read_eof().unwrap(), 0);
}

#[test]
pub fn offload_timeout_answers_504() {
    let server = web_with("timeouts", "offload = \"200ms\"");
    assert_eq!(
        status_of(&server, "GET /delay?ms=5000 HTTP/1.1\r\nHost: t\r\n\r\n"),
        504
    );
}

#[test]
pub fn header_bytes_answers_431() {
    let server = web_with("limits", "header_bytes = \"1KiB\"\nuri_length = \"512\"");
    let big = "x".repeat(1500);
    let request = format!("GET /plaintext HTTP/1.1\r\nHost: t\r\nX-Big: {big}\r\n\r\n");
    assert_eq!(status_of(&server, &request), 431);
    let fits = "x".repeat(500);
    let request = format!("GET /plaintext HTTP/1.1\r\nHost: t\r\nX-Big: {fits}\r\n\r\n");
    assert_eq!(status_of(&server, &request), 200);
}

/// `n` header fields: Host and `n - 1` others.
pub fn with_fields(n: usize) -> String {
    let fields: String = (1..n).map(|i| format!("X-F{i}: v\r\n")).collect();
    format!("GET /plaintext HTTP/1.1\r\nHost: t\r\n{fields}\r\n")
}

#[test]
pub fn header_count_answers_431() {
    let server = web_with("limits", "header_count = 4");
    assert_eq!(status_of(&server, &with_fields(4)), 200);
    assert_eq!(status_of(&server, &with_fields(5)), 431);
}

#[test]
pub fn uri_length_answers_414() {
    let server = web_with("limits", "uri_length = \"64\"");
    let long = format!(
        "GET /plaintext?{} HTTP/1.1\r\nHost: t\r\n\r\n",
        "q".repeat(80)
    );
    assert_eq!(status_of(&server, &long), 414);
    let short = format!(
        "GET /plaintext?{} HTTP/1.1\r\nHost: t\r\n\r\n",
        "q".repeat(20)
    );
    assert_eq!(status_of(&server, &short), 200);
}

#[test]
pub fn body_bytes_answers_413() {
    let server = web_with("limits", "body_bytes = 8");
    let post = |body: &str| {
        format!(
            "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
    };
    assert_eq!(status_of(&server, &post("12345678")), 200);
    assert_eq!(status_of(&server, &post("123456789")), 413);
}

#[test]
pub fn max_requests_per_connection_closes() {
    let server = web_with("limits", "max_requests_per_connection = 2");
    let mut conn = Conn::open(server.addr("web"));
    assert_eq!(conn.get("/plaintext").header("connection"), None);
    assert_eq!(conn.get("/plaintext").header("connection"), Some("close"));
    assert_eq!(conn.read_eof().unwrap(), 0);
}

/// The first request itself takes longer than the age limit, so its response must close.
#[test]
pub fn max_connection_age_closes() {
    let server = web_with("limits", "max_connection_age = \"100ms\"");
    let mut conn = Conn::open(server.addr("web"));
    let response = conn.get("/delay?ms=300");
    assert_eq!(response.status, 200);
    assert_eq!(response.header("connection"), Some("close"));
}

#[test]
pub fn frame_max_closes_on_a_larger_frame() {
    let server = Server::start(&config(&[
        ("protocol = \"echo\"", "protocol = \"frame\""),
        ("frame_max = \"1MiB\"", "frame_max = 64"),
    ]));
    let frame = |n: u32| {
        let mut f = n.to_be_bytes().to_vec();
        f.extend(std::iter::repeat_n(b'f', n as usize));
        f
    };
    let mut conn = connect(server.addr("echo"));
    conn.write_all(&frame(64)).unwrap();
    let mut back = vec![0; 68];
    conn.read_exact(&mut back).unwrap();
    assert_eq!(back, frame(64));
    conn.write_all(&frame(65)).unwrap();
    let mut rest = Vec::new();
    let _ = conn.read_to_end(&mut rest);
    assert!(
        rest.is_empty() && closed_now(&conn),
        "a 65-byte frame was echoed"
    );
}
