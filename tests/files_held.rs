//! Held responses through the real binary: the offload pool under a burst of stalled jobs,
//! `/delay` on the connection's own deadline, and a client's half-close while a response is
//! held (issue 11 §5, RFC 9112 §9.6).

use std::io::{ErrorKind, Read};
use std::process::Command;

use crate::files::{big_file, get, pattern, response, serve_files, SMALL};
use crate::support::{scrape, Conn, TempDir};

/// Offloaded jobs that block: a files request for a FIFO blocks its worker in `open` until a
/// writer comes. With 2 workers and a short offload timeout, a burst of them leaves queued
/// jobs whose clients already have their 504: those must be dropped, not run (each would block
/// again, since no writer comes for them).
#[test]
fn a_burst_of_stalled_jobs_does_not_clog_the_pool() {
    let dir = TempDir::new();
    dir.write("small.txt", SMALL);
    let fifo = dir.0.join("stall");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let server = serve_files(
        &dir.0,
        &[
            ("offload_threads = 4", "offload_threads = 2"),
            ("offload = \"10s\"", "offload = \"300ms\""),
        ],
    );
    let web = server.addr("web");
    let mut burst: Vec<Conn> = (0..20).map(|_| Conn::open(web)).collect();
    for conn in &mut burst {
        conn.send("GET /files/stall HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
    }
    for conn in &mut burst {
        assert_eq!(response(conn).status, 504);
    }
    drop(burst);
    // Release the two workers blocked in open(2): a writer arrives and leaves at once.
    drop(std::fs::OpenOptions::new().write(true).open(&fifo).unwrap());
    // What was queued behind them is void; the next request is served, not queued behind 18
    // jobs that would each block on the FIFO again.
    let mut conn = Conn::open(web);
    let small = get(&mut conn, "/files/small.txt");
    assert_eq!((small.status, small.text().as_str()), (200, SMALL));
    let dropped = scrape(web).sum("coreloop_offload_jobs_dropped_total", &[]);
    assert!(dropped >= 1.0, "no void job was counted as dropped");
}

/// `/delay` waits on the connection's deadline: 50 of them hold no thread, so a files request
/// sent after them is answered before any of them.
#[test]
fn delays_hold_no_thread() {
    let dir = TempDir::new();
    dir.write("small.txt", SMALL);
    let server = serve_files(&dir.0, &[("offload_threads = 4", "offload_threads = 1")]);
    let web = server.addr("web");
    let mut delays: Vec<Conn> = (0..50).map(|_| Conn::open(web)).collect();
    for conn in &mut delays {
        conn.send("GET /delay?ms=4000 HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
    }
    let small = get(&mut Conn::open(web), "/files/small.txt");
    assert_eq!(small.status, 200);
    for conn in &mut delays {
        conn.stream.set_nonblocking(true).unwrap();
        let mut byte = [0u8; 1];
        let early = conn.stream.read(&mut byte);
        assert!(
            matches!(&early, Err(e) if e.kind() == ErrorKind::WouldBlock),
            "a delay answered before the files request: {early:?}"
        );
        conn.stream.set_nonblocking(false).unwrap();
    }
    for conn in &mut delays {
        assert_eq!(response(conn).status, 200);
    }
}

/// A request pipelined behind a held one (a `/delay`, a streamed file) and then the client's
/// half-close: every complete request before the EOF is answered, in order, as when nothing
/// is held, and the connection closes after the last response. Before, the EOF reached the
/// held request with the second one still buffered, and it was dropped.
#[test]
fn requests_pipelined_behind_a_held_one_are_answered_after_a_half_close() {
    let dir = TempDir::new();
    big_file(&dir, "big.bin", 9);
    let data = pattern(9 << 20);
    let server = serve_files(&dir.0, &[]);
    let cases: [(&str, &str, &[u8]); 4] = [
        ("/delay?ms=100", "/plaintext", b"Hello, World!"),
        ("/files/big.bin", "/plaintext", b"Hello, World!"),
        ("/delay?ms=50", "/delay?ms=50", b"ok\n"),
        ("/plaintext", "/files/big.bin", &data),
    ];
    for (first, second, second_body) in cases {
        let mut conn = Conn::open(server.addr("web"));
        conn.send(&format!(
            "GET {first} HTTP/1.1\r\nHost: t\r\n\r\nGET {second} HTTP/1.1\r\nHost: t\r\n\r\n"
        ))
        .unwrap();
        conn.stream.shutdown(std::net::Shutdown::Write).unwrap();
        let mut next = |which: &str| loop {
            match conn.read_response() {
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                other => {
                    break other.unwrap_or_else(|e| panic!("{first} then {second}: {which}: {e}"))
                }
            }
        };
        let one = next("first");
        assert_eq!(one.status, 200, "{first} then {second}: first");
        let two = next("second");
        assert_eq!(two.status, 200, "{first} then {second}: second");
        assert!(
            two.body == second_body,
            "{first} then {second}: second body of {} bytes",
            two.body.len()
        );
        assert_eq!(
            conn.read_eof().unwrap(),
            0,
            "{first} then {second}: no third"
        );
    }
}

/// HTTP/1.1 lets a client half-close once its request is sent (RFC 9112 §9.6: a server
/// does not take a read EOF for a request to abort): during a `/delay` and during a file
/// download, the shut-down write side still gets the whole response, then the server's end.
#[test]
fn a_client_half_close_still_gets_the_whole_response() {
    let dir = TempDir::new();
    big_file(&dir, "big.bin", 20);
    let data = pattern(20 << 20);
    let server = serve_files(&dir.0, &[]);
    let body_of = |all: &[u8]| {
        let end = all.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        (
            String::from_utf8_lossy(&all[..end]).into_owned(),
            all[end..].to_vec(),
        )
    };
    for path in ["/delay?ms=200", "/files/big.bin"] {
        let mut conn = Conn::open(server.addr("web"));
        conn.send(&format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n"))
            .unwrap();
        conn.stream.shutdown(std::net::Shutdown::Write).unwrap();
        let mut all = Vec::new();
        loop {
            match conn.stream.read_to_end(&mut all) {
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                other => break other.map(drop).unwrap(),
            }
        }
        let (head, body) = body_of(&all);
        assert!(head.starts_with("HTTP/1.1 200"), "{path}: {head}");
        match path {
            "/delay?ms=200" => assert_eq!(body, b"ok\n"),
            _ => assert!(
                body == data,
                "{path}: {} bytes of {}",
                body.len(),
                data.len()
            ),
        }
    }
}
