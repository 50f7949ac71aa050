//! Reactor-level keys, set globally: write timeout, drain deadline, lingering close, the read
//! buffer, the output high-water mark, and how many pipelined responses share a write.

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use super::trace::{length_args, returns, Trace};
use super::{closed_now, connect, echoed, eventually, metric};
use crate::support::{config, Conn, Server, WAIT};

/// A client that writes `total` bytes to `addr` and never reads; returns how many it wrote
/// before a write made no progress for `stall`.
pub fn write_without_reading(addr: SocketAddr, total: usize, stall: Duration) -> usize {
    let mut conn = TcpStream::connect_timeout(&addr, WAIT).unwrap();
    conn.set_write_timeout(Some(stall)).unwrap();
    let chunk = vec![b'w'; 64 * 1024];
    let mut written = 0;
    while written < total {
        match conn.write(&chunk) {
            Ok(n) => written += n,
            Err(_) => break,
        }
    }
    written
}

#[test]
pub fn write_timeout_closes_a_reader_that_stalls() {
    let server = Server::start(&config(&[("write = \"30s\"", "write = \"300ms\"")]));
    let (web, echo) = (server.addr("web"), server.addr("echo"));
    let writer = std::thread::spawn(move || write_without_reading(echo, 256 << 20, WAIT));
    let closed = || {
        metric(
            web,
            "coreloop_connections_closed_total",
            &[("reason", "write_timeout")],
        )
    };
    assert!(eventually(|| closed() >= 1.0), "no write_timeout close");
    writer.join().unwrap();
}

#[test]
pub fn drain_deadline_ends_the_drain() {
    let mut server = Server::start(&config(&[("drain = \"30s\"", "drain = \"300ms\"")]));
    let mut held = connect(server.addr("echo"));
    echoed(&mut held, b"held through the drain");
    server.signal("TERM");
    // The client never closes: only the 300 ms deadline (not the default 30 s) ends it
    // within WAIT.
    server.wait_exit(WAIT);
    assert!(closed_now(&held));
}

/// Open connections on the web listener, counted over a fresh connection (itself one).
fn web_connections(web: SocketAddr) -> f64 {
    metric(web, "coreloop_connections_active", &[("listener", "web")])
}

/// A lingering connection whose client never closes is closed when `linger` ends; measured
/// against an idle keep-alive connection whose idle timeout is longer, in the same run.
pub fn linger_ends_before_idle(server: &Server) {
    let web = server.addr("web");
    let mut lingering = Conn::open(web);
    lingering
        .send("GET /plaintext HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    assert_eq!(lingering.read_response().unwrap().status, 200);
    let mut idle = Conn::open(web);
    assert_eq!(idle.get("/plaintext").status, 200);
    assert_eq!(web_connections(web), 3.0);
    assert!(eventually(|| web_connections(web) <= 2.0));
    assert!(
        !closed_now(&idle.stream),
        "the idle connection closed first: linger did not bound the lingering close"
    );
}

#[test]
pub fn linger_bounds_the_lingering_close() {
    let server = Server::start(&config(&[
        ("linger = \"5s\"", "linger = \"300ms\""),
        ("idle = \"60s\"", "idle = \"5s\""),
    ]));
    linger_ends_before_idle(&server);
}

/// Bytes per `sendto` the server made while answering `n` pipelined requests sent at once.
pub fn pipelined_writes(server: &Server, n: usize) -> Vec<i64> {
    let mut conn = Conn::open(server.addr("web"));
    let trace = Trace::attach(server.pid(), "sendto");
    let request = "GET /plaintext HTTP/1.1\r\nHost: t\r\n\r\n".repeat(n);
    conn.send(&request).unwrap();
    for _ in 0..n {
        assert_eq!(conn.read_response().unwrap().status, 200);
    }
    // A write reaches the client before strace has logged its return; one more round trip
    // takes the shard (and so strace) past the last of them. HEAD: a shorter response, so it
    // is never taken for one of the n.
    conn.send("HEAD /plaintext HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut chunk = [0u8; 256];
        let n = std::io::Read::read(&mut conn.stream, &mut chunk).unwrap();
        assert!(n > 0, "closed before the HEAD response");
        head.extend_from_slice(&chunk[..n]);
    }
    returns(&trace.finish(), "sendto")
}

#[test]
pub fn pipeline_depth_bounds_responses_per_write() {
    let header = "[listener.limits]\n";
    let one = Server::start(&config(&[(
        header,
        "[listener.limits]\npipeline_depth = 1\n",
    )]));
    let writes = pipelined_writes(&one, 8);
    let response = writes.iter().max().copied().unwrap();
    let whole = writes.iter().filter(|&&n| n == response).count();
    assert_eq!(whole, 8, "one write per response at depth 1: {writes:?}");
    let deep = Server::start(&config(&[]));
    let writes = pipelined_writes(&deep, 8);
    assert!(
        writes.iter().any(|&n| n >= 2 * response),
        "at depth 16 responses share writes ({response} bytes each): {writes:?}"
    );
}

/// The largest read the server asked for while a request came in.
pub fn largest_read(server: &Server, listener: &str) -> u64 {
    let mut conn = connect(server.addr(listener));
    let trace = Trace::attach(server.pid(), "recvfrom");
    echoed(&mut conn, &[b'r'; 100]);
    drop(conn);
    let sizes = length_args(&trace.finish(), "recvfrom");
    sizes.into_iter().max().expect("no recvfrom seen")
}

#[test]
pub fn read_buffer_is_the_read_size() {
    let small = Server::start(&config(&[("read_buffer = \"4KiB\"", "read_buffer = 512")]));
    assert_eq!(largest_read(&small, "echo"), 512);
    let default = Server::start(&config(&[]));
    assert_eq!(largest_read(&default, "echo"), 4096);
}

/// Of 64 MiB written to an echo listener by a client that never reads, how much the server
/// took: everything when it may buffer it all, only what the socket buffers hold otherwise.
/// A write that makes no progress for 3 s ends the count (a stall, not a slow server).
pub fn taken_of_64_mib(server: &Server) -> usize {
    write_without_reading(server.addr("echo"), 64 << 20, Duration::from_secs(3))
}

#[test]
pub fn write_high_water_stops_reading_a_non_reader() {
    let high = "write_high_water = \"1GiB\"";
    let unbounded = Server::start(&config(&[("write_high_water = \"64KiB\"", high)]));
    assert_eq!(taken_of_64_mib(&unbounded), 64 << 20);
    let bounded = Server::start(&config(&[]));
    assert!(taken_of_64_mib(&bounded) < 48 << 20);
}
