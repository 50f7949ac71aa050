//! A drain answers what already arrived (issue 10 §4), over real sockets: 128 connections
//! each have 16 pipelined requests in the kernel when the drain reaches their shard, and every
//! one is answered, the last with `Connection: close`, then the connection closes.
//!
//! Order without sleeps: the only shard is held inside an inline handler; the drain is begun
//! (its waker is the first ready event), then the requests are written, then the handler is
//! let go. The shard's next poll sees the drain before the reads, so the requests are read by
//! the drain itself, the case that used to answer one request and drop fifteen.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use coreloop_http::{Handler, HttpConfig, HttpFactory, Request, Response, Route};
use coreloop_reactor::{ListenAddr, ListenerSpec, ReactorConfig, ReactorHandle};

const TIMEOUT: Duration = Duration::from_secs(10);
const CONNS: usize = 128;
const DEPTH: usize = 16;
const REQUEST: &[u8] = b"GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n";

/// The handler that holds the shard: says it entered, then waits to be let go.
fn holding(entered: mpsc::Sender<()>, release: mpsc::Receiver<()>) -> Handler {
    let gate = Arc::new(Mutex::new((entered, release)));
    Handler::Custom {
        func: Arc::new(move |_: &Request| {
            let gate = gate.lock().unwrap();
            let _ = gate.0.send(());
            let _ = gate.1.recv_timeout(TIMEOUT);
            Response {
                status: 200,
                content_type: None,
                headers: Vec::new(),
                body: b"held".to_vec(),
            }
        }),
        blocking: false,
    }
}

fn start(hold: Handler) -> (ReactorHandle, SocketAddr) {
    let routes = vec![
        Route::get("/plaintext", Handler::text("Hello, World!")),
        Route::get("/hold", hold),
    ];
    let factory = HttpFactory::new(HttpConfig::default(), routes).unwrap();
    let mut reactor = {
        let mut config = ReactorConfig::default();
        config.shards = 1;
        config
    };
    reactor.listeners.push(
        ListenerSpec::new(
            "http",
            ListenAddr::Tcp("127.0.0.1:0".parse().unwrap()),
            factory,
        )
        .with_backlog(1024),
    );
    let handle = coreloop_reactor::start(reactor).unwrap();
    let ListenAddr::Tcp(addr) = handle.local_addrs()[0].clone() else {
        panic!("tcp listener")
    };
    (handle, addr)
}

fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    stream
}

/// Reads to EOF and splits the responses: (status line, has `Connection: close`) each.
fn responses(mut stream: TcpStream) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    stream.read_to_end(&mut out).unwrap();
    let text = String::from_utf8_lossy(&out).into_owned();
    text.split("HTTP/1.1 ")
        .skip(1)
        .map(|r| {
            let head = r.split("\r\n\r\n").next().unwrap_or("");
            (
                r.get(..3).unwrap_or("").to_owned(),
                head.contains("\r\nConnection: close"),
            )
        })
        .collect()
}

#[test]
fn every_request_in_the_buffer_when_the_drain_starts_is_answered() {
    let (entered_tx, entered) = mpsc::channel();
    let (release, release_rx) = mpsc::channel();
    let (mut handle, addr) = start(holding(entered_tx, release_rx));
    // Accepted and idle first: one answered request each.
    let mut conns: Vec<TcpStream> = (0..CONNS).map(|_| connect(addr)).collect();
    for stream in &mut conns {
        stream.write_all(REQUEST).unwrap();
        let mut first = [0u8; 12];
        stream.read_exact(&mut first).unwrap();
        assert_eq!(&first, b"HTTP/1.1 200");
        let mut rest = [0u8; 121];
        stream.read_exact(&mut rest).unwrap();
        assert!(rest.ends_with(b"Hello, World!"));
    }
    let mut holder = connect(addr);
    holder
        .write_all(b"GET /hold HTTP/1.1\r\nHost: a\r\n\r\n")
        .unwrap();
    entered
        .recv_timeout(TIMEOUT)
        .expect("the shard enters the handler");
    let began = Instant::now();
    handle.begin_drain(began + TIMEOUT);
    let batch = REQUEST.repeat(DEPTH);
    for stream in &mut conns {
        stream.write_all(&batch).unwrap();
    }
    release.send(()).unwrap();

    let mut cut = Vec::new();
    for (i, stream) in conns.into_iter().enumerate() {
        let got = responses(stream);
        let closes: Vec<usize> = (0..got.len()).filter(|&j| got[j].1).collect();
        let all_ok = got.iter().all(|(status, _)| status == "200");
        if got.len() != DEPTH || !all_ok || closes != [DEPTH - 1] {
            cut.push(format!("conn {i}: {got:?}"));
        }
    }
    assert!(
        cut.is_empty(),
        "{} of {CONNS} connections lost answers or the close: {:?}",
        cut.len(),
        &cut[..cut.len().min(3)]
    );
    let held = responses(holder);
    // Answered before the drain reached the shard; closed by the drain after it.
    assert_eq!(held.len(), 1);
    assert_eq!(held[0].0, "200");
    handle.wait();
}
