//! Black-box tests over real loopback sockets against an in-process reactor with the HTTP
//! factory. Every wait is bounded by a socket timeout or a deadline; nothing sleeps to sync.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use coreloop_http::{FilesSpec, Handler, HttpConfig, HttpFactory, Route};
use coreloop_reactor::{ListenAddr, ListenerSpec, ReactorConfig, ReactorHandle};

const TIMEOUT: Duration = Duration::from_secs(10);

fn files_root() -> PathBuf {
    let base = std::env::temp_dir().join(format!("coreloop-http-test-{}", std::process::id()));
    let root = base.join("root");
    std::fs::create_dir_all(root.join("sub")).unwrap();
    std::fs::write(root.join("a.txt"), "hello files").unwrap();
    std::fs::write(root.join("sub/index.html"), "<p>index</p>").unwrap();
    std::fs::write(base.join("secret.txt"), "secret").unwrap();
    // Tests run in parallel and share the root: whoever is second finds the link made.
    match std::os::unix::fs::symlink(base.join("secret.txt"), root.join("escape")) {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => panic!("symlink: {e}"),
        _ => {}
    }
    root
}

fn start(offload_threads: usize) -> (ReactorHandle, SocketAddr, Arc<HttpFactory>) {
    let routes = vec![
        Route::get("/plaintext", Handler::text("Hello, World!")),
        Route {
            path: "/echo".into(),
            prefix: false,
            methods: vec!["POST".into()],
            handler: Handler::Echo,
        },
        Route::get("/readyz", Handler::Ready),
        Route::get(
            "/delay",
            Handler::Delay {
                max: Duration::from_secs(5),
            },
        ),
        Route {
            path: "/files".into(),
            prefix: true,
            methods: vec!["GET".into()],
            handler: Handler::Files(FilesSpec {
                root: files_root(),
                index: Some("index.html".into()),
                listing: false,
            }),
        },
    ];
    let config = HttpConfig {
        header_timeout: Duration::from_millis(300),
        max_body_bytes: 1024,
        ..HttpConfig::default()
    };
    let factory = HttpFactory::new(config, routes).unwrap();
    let mut reactor = {
        let mut config = ReactorConfig::default();
        config.shards = 2;
        config.offload_threads = offload_threads;
        config
    };
    reactor.listeners.push(
        ListenerSpec::new(
            "http",
            ListenAddr::Tcp("127.0.0.1:0".parse().unwrap()),
            factory.clone(),
        )
        .with_backlog(1024),
    );
    let handle = coreloop_reactor::start(reactor).unwrap();
    let ListenAddr::Tcp(addr) = handle.local_addrs()[0].clone() else {
        panic!("tcp listener")
    };
    (handle, addr, factory)
}

fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    stream.set_nodelay(true).unwrap();
    stream
}

/// Reads responses from a stream, `chunk` bytes per read.
struct Reader {
    stream: TcpStream,
    buf: Vec<u8>,
    chunk: usize,
}

struct Resp {
    status: u16,
    head: String,
    body: Vec<u8>,
}

impl Reader {
    fn new(stream: TcpStream) -> Self {
        Self {
            stream,
            buf: Vec::new(),
            chunk: 64 * 1024,
        }
    }

    fn fill(&mut self) -> bool {
        let mut tmp = vec![0; self.chunk];
        let n = self.stream.read(&mut tmp).expect("read within the timeout");
        self.buf.extend_from_slice(&tmp[..n]);
        n > 0
    }

    fn response(&mut self) -> Resp {
        let end = loop {
            if let Some(at) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
            assert!(
                self.fill(),
                "eof inside a head: {}",
                String::from_utf8_lossy(&self.buf)
            );
        };
        let head = String::from_utf8_lossy(&self.buf[..end]).into_owned();
        let status = head[9..12].parse().unwrap();
        let length = head
            .lines()
            .find_map(|l| l.strip_prefix("Content-Length: "))
            .map_or(0, |n| n.trim().parse::<usize>().unwrap());
        let length = if status == 304 || head.starts_with("HTTP/1.1 1") {
            0
        } else {
            length
        };
        while self.buf.len() < end + length {
            assert!(self.fill(), "eof inside a body");
        }
        let body = self.buf[end..end + length].to_vec();
        self.buf.drain(..end + length);
        Resp { status, head, body }
    }

    fn closed(&mut self) -> bool {
        self.buf.is_empty() && !self.fill()
    }
}

fn exchange(addr: SocketAddr, request: &[u8]) -> Resp {
    let mut stream = connect(addr);
    stream.write_all(request).unwrap();
    Reader::new(stream).response()
}

#[test]
fn a_thousand_pipelined_requests_in_one_write_come_back_in_order() {
    let (handle, addr, factory) = start(2);
    let mut stream = connect(addr);
    let mut batch = Vec::new();
    for i in 0..1000 {
        let path = if i % 2 == 0 { "/plaintext" } else { "/missing" };
        batch.extend_from_slice(format!("GET {path}?i={i} HTTP/1.1\r\nHost: a\r\n\r\n").as_bytes());
    }
    stream.write_all(&batch).unwrap();
    let mut reader = Reader::new(stream);
    for i in 0..1000 {
        let response = reader.response();
        assert_eq!(
            response.status,
            if i % 2 == 0 { 200 } else { 404 },
            "response {i}"
        );
    }
    let served: u64 = factory
        .stats()
        .snapshot()
        .iter()
        .flat_map(|s| s.series.iter().flat_map(|series| series.codes.iter()))
        .filter(|(code, _)| coreloop_http::CODE_LABELS[*code].starts_with('2'))
        .map(|(_, n)| n)
        .sum();
    assert!(served >= 500, "stats counted {served}");
    handle.shutdown(Duration::from_secs(1));
}

#[test]
fn a_body_one_byte_at_a_time_and_a_reader_one_byte_at_a_time() {
    let (handle, addr, _) = start(2);
    let mut stream = connect(addr);
    let request = b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Type: text/x\r\nContent-Length: 11\r\n\r\nhello world";
    for byte in request {
        stream.write_all(&[*byte]).unwrap();
    }
    let mut reader = Reader::new(stream);
    reader.chunk = 1;
    let response = reader.response();
    assert_eq!(
        (response.status, response.body.as_slice()),
        (200, &b"hello world"[..])
    );
    assert!(response.head.contains("Content-Type: text/x\r\n"));
    handle.shutdown(Duration::from_secs(1));
}

#[test]
fn error_statuses_close_the_connection() {
    let (handle, addr, _) = start(2);
    let long = format!("GET /{} HTTP/1.1\r\nHost: a\r\n\r\n", "a".repeat(9000));
    let cases: [(&[u8], u16); 8] = [
        (b"GET / HTTP/1.1\r\n\r\n", 400),
        (
            b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
            400,
        ),
        (
            b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 2000\r\n\r\n",
            413,
        ),
        (long.as_bytes(), 414),
        (
            b"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: br, chunked\r\n\r\n",
            501,
        ),
        (b"GET / HTTP/3.0\r\nHost: a\r\n\r\n", 505),
        (b"GET /readyz HTTP/1.1\r\nHost: a\r\nX: y\r\n", 408),
        (b"", 408),
    ];
    for (request, status) in cases {
        let mut stream = connect(addr);
        stream.write_all(request).unwrap();
        let mut reader = Reader::new(stream);
        let response = reader.response();
        assert_eq!(
            response.status,
            status,
            "{}",
            String::from_utf8_lossy(request)
        );
        assert!(response.head.contains("Connection: close\r\n"));
        assert!(reader.closed(), "connection stays open after {status}");
    }
    let nf = exchange(addr, b"GET /nope HTTP/1.1\r\nHost: a\r\n\r\n");
    let na = exchange(addr, b"PUT /plaintext HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!((nf.status, na.status), (404, 405));
    assert!(na.head.contains("Allow: GET, HEAD\r\n"));
    handle.shutdown(Duration::from_secs(1));
}

#[test]
fn files_conditional_range_and_containment() {
    let (handle, addr, _) = start(2);
    let get = |path: &str, extra: &str| {
        exchange(
            addr,
            format!("GET {path} HTTP/1.1\r\nHost: a\r\n{extra}\r\n").as_bytes(),
        )
    };
    let full = get("/files/a.txt", "");
    assert_eq!(
        (full.status, full.body.as_slice()),
        (200, &b"hello files"[..])
    );
    assert!(
        full.head
            .contains("Content-Type: text/plain; charset=utf-8\r\n"),
        "{}",
        full.head
    );
    let etag = full
        .head
        .lines()
        .find_map(|l| l.strip_prefix("ETag: "))
        .unwrap()
        .to_owned();
    let modified = full
        .head
        .lines()
        .find_map(|l| l.strip_prefix("Last-Modified: "))
        .unwrap()
        .to_owned();
    assert_eq!(
        get("/files/a.txt", &format!("If-None-Match: {etag}\r\n")).status,
        304
    );
    assert_eq!(
        get(
            "/files/a.txt",
            &format!("If-Modified-Since: {modified}\r\n")
        )
        .status,
        304
    );
    let part = get("/files/a.txt", "Range: bytes=0-4\r\n");
    assert_eq!((part.status, part.body.as_slice()), (206, &b"hello"[..]));
    assert!(part.head.contains("Content-Range: bytes 0-4/11\r\n"));
    assert_eq!(get("/files/a.txt", "Range: bytes=50-\r\n").status, 416);
    assert_eq!(get("/files/sub/", "").body, b"<p>index</p>");
    for escape in [
        "/files/../secret.txt",
        "/files/%2e%2e/secret.txt",
        "/files/..%2fsecret.txt",
        "/files/escape",
        "/files/sub/%2E%2E/%2e%2e/secret.txt",
        "/files/nope",
    ] {
        assert_eq!(get(escape, "").status, 404, "{escape}");
    }
    handle.shutdown(Duration::from_secs(1));
}

/// Waits (bounded) until the shards have read `bytes` in all.
fn wait_bytes_in(handle: &ReactorHandle, bytes: u64) {
    let deadline = Instant::now() + TIMEOUT;
    while handle
        .snapshot()
        .shards
        .iter()
        .map(|s| s.bytes_in)
        .sum::<u64>()
        < bytes
    {
        assert!(
            Instant::now() < deadline,
            "the shards never read the request"
        );
        std::thread::yield_now();
    }
}

#[test]
fn readyz_flips_to_503_during_drain() {
    let (mut handle, addr, _) = start(2);
    assert_eq!(
        exchange(addr, b"GET /readyz HTTP/1.1\r\nHost: a\r\n\r\n").status,
        200
    );
    let before: u64 = handle.snapshot().shards.iter().map(|s| s.bytes_in).sum();
    let mut stream = connect(addr);
    let first = b"GET /readyz HTTP/1.1\r\n";
    stream.write_all(first).unwrap();
    wait_bytes_in(&handle, before + first.len() as u64);
    handle.begin_drain(Instant::now() + Duration::from_secs(5));
    stream.write_all(b"Host: a\r\n\r\n").unwrap();
    let mut reader = Reader::new(stream);
    let response = reader.response();
    assert_eq!(response.status, 503);
    assert!(response.head.contains("Connection: close\r\n"));
    assert!(reader.closed());
    handle.wait();
}

/// Ordering, not a wall-clock bound (a debug build on a shared runner has no stable latency):
/// a thousand fast requests on the same shard are all answered while every slow one is still
/// outstanding.
#[test]
fn slow_requests_never_stall_other_connections_of_their_shard() {
    let (handle, addr, _) = start(10);
    let mut slow: Vec<TcpStream> = (0..10).map(|_| connect(addr)).collect();
    for stream in &mut slow {
        stream
            .write_all(b"GET /delay?ms=5000 HTTP/1.1\r\nHost: a\r\n\r\n")
            .unwrap();
    }
    let began = Instant::now();
    let mut fast: Vec<Reader> = (0..10).map(|_| Reader::new(connect(addr))).collect();
    for i in 0..1000 {
        let reader = &mut fast[i % 10];
        reader
            .stream
            .write_all(b"GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n")
            .unwrap();
        assert_eq!(reader.response().status, 200);
    }
    for stream in &slow {
        stream.set_nonblocking(true).unwrap();
        let mut byte = [0u8; 1];
        let peeked = stream.peek(&mut byte);
        assert!(
            matches!(&peeked, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
            "a slow response came before the fast ones were all served: {peeked:?}"
        );
        stream.set_nonblocking(false).unwrap();
    }
    for stream in slow {
        let response = Reader::new(stream).response();
        assert_eq!(response.status, 200);
    }
    // The delay really delayed (a lower bound: it cannot flake on a slow machine).
    assert!(began.elapsed() >= Duration::from_millis(4900));
    handle.shutdown(Duration::from_secs(1));
}
