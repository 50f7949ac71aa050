//! `protocol = "tcp-proxy"` through the real binary: a second coreloop's echo listener is the
//! upstream. Bytes both ways, half-close, retries past a refusing server, passive ejection,
//! no server left, unix upstreams.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use crate::support::{config, eventually, scrape, Server, TempDir, WAIT};

/// A coreloop whose `echo` listener (and `echo2`, with `second`) serve as upstream servers.
pub fn backend(second: bool) -> Server {
    let extra =
        "\n[[listener]]\nname = \"echo2\"\naddress = \"127.0.0.1:0\"\nprotocol = \"echo\"\n";
    Server::start(&(config(&[]) + if second { extra } else { "" }))
}

/// The default config plus `[[upstream]]` "app" (`upstream`: its keys after the name) and a
/// tcp-proxy listener "db" on it (`listener`: extra lines of that listener).
pub fn proxy(upstream: &str, listener: &str) -> Server {
    Server::start(&proxy_toml(upstream, listener))
}

pub fn proxy_toml(upstream: &str, listener: &str) -> String {
    proxy_toml_on(config(&[]), upstream, listener)
}

/// Like [`proxy_toml`] on another base file.
pub fn proxy_toml_on(base: String, upstream: &str, listener: &str) -> String {
    base + "\n[[upstream]]\nname = \"app\"\n"
        + upstream
        + "\n[[listener]]\nname = \"db\"\naddress = \"127.0.0.1:0\"\nprotocol = \"tcp-proxy\"\n\
           upstream = \"app\"\n"
        + listener
}

/// `servers = [...]` of these addresses.
pub fn servers<S: AsRef<str>>(addrs: &[S]) -> String {
    let quoted: Vec<String> = addrs
        .iter()
        .map(|a| format!("\"{}\"", a.as_ref()))
        .collect();
    format!("servers = [{}]\n", quoted.join(", "))
}

/// A loopback port nobody listens on (bound, then closed): connects are refused.
pub fn dead_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

pub fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect_timeout(&addr, WAIT).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    stream.set_write_timeout(Some(WAIT)).unwrap();
    stream
}

/// Sends `bytes` and reads them back on one connection.
pub fn round_trip(conn: &mut TcpStream, bytes: &[u8]) {
    conn.write_all(bytes).unwrap();
    let mut back = vec![0; bytes.len()];
    conn.read_exact(&mut back).unwrap();
    assert_eq!(back, bytes);
}

/// Whether the proxy closed `conn` (EOF or reset) within `WAIT`.
pub fn closed(conn: &mut TcpStream) -> bool {
    let mut byte = [0u8; 1];
    matches!(conn.read(&mut byte), Ok(0) | Err(_))
}

fn pattern(len: usize) -> Vec<u8> {
    let mut x: u32 = 0x1234_5678;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

/// `name{upstream="app",server=...}` summed as scraped from `proxy`'s web listener.
pub fn upstream_metric(proxy: &Server, name: &str, server: &str) -> f64 {
    let with: Vec<(&str, &str)> = if server.is_empty() {
        vec![("upstream", "app")]
    } else {
        vec![("upstream", "app"), ("server", server)]
    };
    scrape(proxy.addr("web")).sum(name, &with)
}

#[test]
fn bytes_pass_both_ways_and_a_half_close_passes_through() {
    let backend = backend(false);
    let echo = backend.addr("echo").to_string();
    let proxy = proxy(&servers(&[&echo]), "");
    let mut conn = connect(proxy.addr("db"));
    let data = pattern(4 << 20);
    let mut reader = conn.try_clone().unwrap();
    let expected = data.len();
    let read = std::thread::spawn(move || {
        let mut back = Vec::with_capacity(expected);
        reader.read_to_end(&mut back).map(|_| back)
    });
    for chunk in data.chunks(64 << 10) {
        conn.write_all(chunk).unwrap();
    }
    // Our EOF reaches the echo server, which closes after echoing; its EOF comes back.
    conn.shutdown(Shutdown::Write).unwrap();
    let back = read.join().unwrap().expect("read to EOF");
    assert_eq!(back.len(), data.len());
    assert!(back == data, "bytes differ");
    assert_eq!(
        upstream_metric(&proxy, "coreloop_upstream_connects_total", &echo),
        1.0
    );
    let gone = eventually(|| {
        upstream_metric(&proxy, "coreloop_upstream_connections_active", &echo) == 0.0
    });
    assert!(gone, "the proxied connection is still counted active");
}

#[test]
fn a_refusing_server_is_retried_elsewhere_then_ejected() {
    let backend = backend(false);
    let echo = backend.addr("echo").to_string();
    let dead = dead_addr().to_string();
    let proxy = proxy(
        &(servers(&[&dead, &echo]) + "max_fails = 1\nfail_timeout = \"10m\"\n"),
        "",
    );
    for i in 0..8u8 {
        round_trip(&mut connect(proxy.addr("db")), &[i; 100]);
    }
    let refused = scrape(proxy.addr("web")).sum(
        "coreloop_upstream_connect_errors_total",
        &[("server", &dead), ("cause", "refused")],
    );
    // Each shard (two) tries the dead server at most once before ejecting it.
    assert!((1.0..=2.0).contains(&refused), "refused {refused}");
    let m = |name, server| upstream_metric(&proxy, name, server);
    assert_eq!(m("coreloop_upstream_retries_total", &echo), refused);
    assert_eq!(m("coreloop_upstream_ejections_total", &dead), refused);
    assert_eq!(m("coreloop_upstream_ejected", &dead), refused);
    assert_eq!(m("coreloop_upstream_connects_total", &echo), 8.0);
    assert!(proxy.wait_log(|log| log.contains("connect Refused; ejected")));
}

#[test]
fn no_server_left_closes_the_client_and_is_counted() {
    let dead = dead_addr().to_string();
    let proxy = proxy(&(servers(&[&dead]) + "max_fails = 2\n"), "");
    let mut conn = connect(proxy.addr("db"));
    let _ = conn.write_all(b"hello");
    assert!(closed(&mut conn), "the client was not closed");
    assert_eq!(
        upstream_metric(&proxy, "coreloop_upstream_no_server_total", ""),
        1.0
    );
    // One line per upstream per shard per second: the refusal is logged, the "no server"
    // right after it is held back (and counted in the next line).
    assert!(proxy.wait_log(|log| log.contains("connect Refused")));
}

#[test]
fn a_server_that_never_accepts_times_out_and_the_next_one_answers() {
    let backend = backend(false);
    let echo = backend.addr("echo").to_string();
    let (full, _socket, _fillers) = full_listener();
    let full = full.to_string();
    let proxy = proxy(
        &(servers(&[full.clone(), echo]) + "connect_timeout = \"200ms\"\n"),
        "",
    );
    // Shard 0 starts its rotation at the first server: at most two connections to reach it.
    for _ in 0..4 {
        round_trip(&mut connect(proxy.addr("db")), b"through");
    }
    let timed_out = scrape(proxy.addr("web")).sum(
        "coreloop_upstream_connect_errors_total",
        &[("server", &full), ("cause", "timed_out")],
    );
    assert!(timed_out >= 1.0, "no connect timed out");
}

#[test]
fn a_unix_socket_server() {
    let dir = TempDir::new();
    let path = dir.0.join("echo.sock");
    let text = config(&[]);
    // The echo listener is the second `address = "127.0.0.1:0"`.
    let at = text.rfind("address = \"127.0.0.1:0\"").unwrap();
    let text = format!(
        "{}address = \"unix:{}\"{}",
        &text[..at],
        path.display(),
        &text[at + 23..]
    );
    let _backend = Server::start(&text);
    let proxy = proxy(&format!("servers = [\"unix:{}\"]\n", path.display()), "");
    round_trip(&mut connect(proxy.addr("db")), b"over a unix upstream");
}

/// A listener that never accepts, its accept queue filled: the kernel drops further SYNs, so
/// a connect to it can only time out. Keep the socket and the fillers alive meanwhile.
pub fn full_listener() -> (SocketAddr, socket2::Socket, Vec<TcpStream>) {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    socket.bind(&any.into()).unwrap();
    socket.listen(0).unwrap();
    let full = socket.local_addr().unwrap().as_socket().unwrap();
    let mut fillers = Vec::new();
    // A second for the handshake: on a loaded machine a slow one is not a full queue.
    for _ in 0..16 {
        match TcpStream::connect_timeout(&full, Duration::from_secs(1)) {
            Ok(stream) => fillers.push(stream),
            Err(_) => break,
        }
    }
    assert!(fillers.len() < 16, "the accept queue never filled");
    (full, socket, fillers)
}
