//! `[[listener]]` and its routes.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;

use super::{connect, echoed, metric};
use crate::support::{config, get, Conn, Server, TempDir, WAIT};

const FIRST_ROUTE: &str = "[[listener.route]]\npath = \"/plaintext\"";

/// The default config with `routes` (TOML) added before the web listener's first route.
fn with_routes(routes: &str) -> Server {
    Server::start(&config(&[(
        FIRST_ROUTE,
        &format!("{routes}\n{FIRST_ROUTE}"),
    )]))
}

#[test]
pub fn name_is_the_metric_label() {
    let server = Server::start(&config(&[("name = \"web\"", "name = \"front\"")]));
    let front = server.addr("front");
    assert_eq!(get(front, "/plaintext").status, 200);
    let accepted = metric(
        front,
        "coreloop_connections_accepted_total",
        &[("listener", "front")],
    );
    assert!(accepted >= 1.0);
}

#[test]
pub fn address_can_be_a_unix_socket() {
    let dir = TempDir::new();
    let path = dir.0.join("echo.sock");
    let address = format!("address = \"unix:{}\"", path.display());
    let text = config(&[]);
    // The echo listener is the second `address = "127.0.0.1:0"`.
    let at = text.rfind("address = \"127.0.0.1:0\"").unwrap();
    let text = format!("{}{address}{}", &text[..at], &text[at + 23..]);
    let _server = Server::start(&text);
    let mut conn = UnixStream::connect(&path).unwrap();
    conn.set_read_timeout(Some(WAIT)).unwrap();
    conn.write_all(b"over unix").unwrap();
    let mut back = [0u8; 9];
    conn.read_exact(&mut back).unwrap();
    assert_eq!(&back, b"over unix");
}

/// The same bytes echoed raw by `echo`, refused as an oversized frame length by `frame`.
#[test]
pub fn protocol_decides_what_is_spoken() {
    let echo = Server::start(&config(&[]));
    echoed(&mut connect(echo.addr("echo")), b"ping");
    let frame = Server::start(&config(&[("protocol = \"echo\"", "protocol = \"frame\"")]));
    let mut conn = connect(frame.addr("echo"));
    conn.write_all(b"ping").unwrap();
    let mut rest = Vec::new();
    let _ = conn.read_to_end(&mut rest);
    assert!(rest.is_empty(), "frame echoed raw bytes: {rest:?}");
}

/// `ss` shows a listening socket's backlog in its Send-Q column.
#[test]
pub fn backlog_is_the_listen_queue() {
    let text = config(&[]);
    let at = text.rfind("backlog = 1024").unwrap();
    let text = format!("{}backlog = 7{}", &text[..at], &text[at + 14..]);
    let server = Server::start(&text);
    let port = server.addr("echo").port();
    let out = std::process::Command::new("ss")
        .args(["-ltnH", &format!("sport = :{port}")])
        .output()
        .expect("ss is missing: .ci/setup installs iproute2");
    let line = String::from_utf8_lossy(&out.stdout).into_owned();
    let columns: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(columns.get(2), Some(&"7"), "ss: {line}");
}

#[test]
pub fn routes_answer_their_paths() {
    let server = with_routes(
        "[[listener.route]]\npath = \"/a/*\"\nstatic = { body = \"prefix\" }\n\
         [[listener.route]]\npath = \"/a/b\"\nstatic = { body = \"exact\" }\n",
    );
    let web = server.addr("web");
    assert_eq!(get(web, "/a/x/y").text(), "prefix");
    assert_eq!(get(web, "/a/b").text(), "exact");
    assert_eq!(get(web, "/b").status, 404);
}

#[test]
pub fn methods_outside_a_route_get_405() {
    let server = Server::start(&config(&[]));
    let response = get(server.addr("web"), "/echo");
    assert_eq!(response.status, 405);
    assert_eq!(response.header("allow"), Some("POST"));
}

#[test]
pub fn static_is_the_written_response() {
    let server = with_routes(
        "[[listener.route]]\npath = \"/s\"\nstatic = { status = 201, body = \"B\", \
         content_type = \"text/x\", headers = { x-k = \"v\" } }\n",
    );
    let response = get(server.addr("web"), "/s");
    assert_eq!((response.status, response.text().as_str()), (201, "B"));
    assert_eq!(response.header("content-type"), Some("text/x"));
    assert_eq!(response.header("x-k"), Some("v"));
}

#[test]
pub fn json_and_echo_answer() {
    let server = Server::start(&config(&[]));
    let web = server.addr("web");
    assert_eq!(get(web, "/json").text(), r#"{"message":"Hello, World!"}"#);
    let mut conn = Conn::open(web);
    conn.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc")
        .unwrap();
    assert_eq!(conn.read_response().unwrap().text(), "abc");
}

#[test]
pub fn files_serves_a_directory() {
    let dir = TempDir::new();
    dir.write("index.html", "the index");
    std::fs::create_dir(dir.0.join("sub")).unwrap();
    std::fs::write(dir.0.join("sub/listed.txt"), "x").unwrap();
    let route = format!(
        "[[listener.route]]\npath = \"/f/*\"\nfiles = {{ root = \"{}\", index = \"index.html\", \
         listing = true }}\n",
        dir.0.display()
    );
    let server = with_routes(&route);
    let web = server.addr("web");
    assert_eq!(get(web, "/f/").text(), "the index");
    assert!(get(web, "/f/sub/").text().contains("listed.txt"));
}

#[test]
pub fn health_answers() {
    let server = Server::start(&config(&[]));
    let web = server.addr("web");
    assert_eq!(get(web, "/healthz").status, 200);
    assert_eq!(get(web, "/readyz").status, 200);
}

#[test]
pub fn metrics_answers_the_exposition() {
    let server = Server::start(&config(&[]));
    let e = crate::support::scrape(server.addr("web"));
    assert_eq!(e.sum("coreloop_build_info", &[]), 1.0);
}

/// Asked for a minute, capped at 50 ms: answered before the 2 s offload deadline.
#[test]
pub fn delay_is_capped_at_max_ms() {
    let server = Server::start(&config(&[
        ("delay = { max_ms = 10000 }", "delay = { max_ms = 50 }"),
        ("offload = \"10s\"", "offload = \"2s\""),
    ]));
    assert_eq!(get(server.addr("web"), "/delay?ms=60000").status, 200);
}
