//! A panicking custom handler, inline on the shard and offloaded to the pool, against a real
//! reactor over loopback: the request gets 500, the same connection and every other one live
//! on, and the offload counter moves. (protocol_tests.rs covers the same through the Harness;
//! this proves the shard thread itself survives.)

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use coreloop_http::{CustomFn, Handler, HttpConfig, HttpFactory, Request, Response, Route};
use coreloop_reactor::{ListenAddr, ListenerSpec, ReactorConfig, ReactorHandle};

const TIMEOUT: Duration = Duration::from_secs(10);

fn start() -> (ReactorHandle, SocketAddr) {
    let panics: CustomFn = Arc::new(|_: &Request| -> Response { panic!("handler bug") });
    let routes = vec![
        Route::get("/plaintext", Handler::text("Hello, World!")),
        Route::get(
            "/panic-inline",
            Handler::Custom {
                func: panics.clone(),
                blocking: false,
            },
        ),
        Route::get(
            "/panic-offload",
            Handler::Custom {
                func: panics,
                blocking: true,
            },
        ),
    ];
    let factory = HttpFactory::new(HttpConfig::default(), routes).unwrap();
    let mut reactor = {
        let mut config = ReactorConfig::default();
        config.shards = 1;
        config.offload_threads = 1;
        config
    };
    reactor.listeners.push(
        ListenerSpec::new(
            "http",
            ListenAddr::Tcp("127.0.0.1:0".parse().unwrap()),
            factory,
        )
        .with_backlog(128),
    );
    let handle = coreloop_reactor::start(reactor).unwrap();
    let ListenAddr::Tcp(addr) = handle.local_addrs()[0].clone() else {
        panic!("tcp listener")
    };
    (handle, addr)
}

/// Sends `GET path` on `stream` and returns the status and whether it said `close`.
fn get(stream: &mut TcpStream, path: &str) -> (u16, bool) {
    let request = format!("GET {path} HTTP/1.1\r\nHost: a\r\n\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let end = loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let n = stream
            .read(&mut chunk)
            .expect("a response within the timeout");
        assert!(n > 0, "eof before a response to {path}");
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .map_or(0, |n| n.trim().parse().unwrap());
    while buf.len() < end + length {
        let n = stream.read(&mut chunk).unwrap();
        assert!(n > 0, "eof inside a body");
        buf.extend_from_slice(&chunk[..n]);
    }
    (
        head[9..12].parse().unwrap(),
        head.contains("Connection: close"),
    )
}

fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    stream
}

#[test]
fn a_panicking_handler_fails_its_request_alone() {
    let (handle, addr) = start();
    let mut bystander = connect(addr);
    assert_eq!(get(&mut bystander, "/plaintext"), (200, false));
    let mut victim = connect(addr);
    for round in 0..3 {
        for path in ["/panic-inline", "/panic-offload"] {
            let (status, _) = get(&mut victim, path);
            assert_eq!(status, 500, "{path}, round {round}");
            // The same connection, and one the panic never touched, are served on.
            assert_eq!(get(&mut victim, "/plaintext"), (200, false), "{path}");
            assert_eq!(get(&mut bystander, "/plaintext"), (200, false), "{path}");
        }
    }
    // The only shard is alive: a fresh connection is accepted and served.
    assert_eq!(get(&mut connect(addr), "/plaintext"), (200, false));
    let deadline = Instant::now() + TIMEOUT;
    while handle.snapshot().offload_panicked < 3 {
        assert!(Instant::now() < deadline, "offload panics were not counted");
        std::thread::yield_now();
    }
    handle.shutdown(Duration::from_secs(1));
}
