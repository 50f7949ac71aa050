//! Upstream keep-alive on proxy routes (docs/PROXY.md, "Upstream keep-alive"), through the
//! real binary: the upstream here is a small HTTP/1.1 server on plain sockets that counts the
//! connections it accepts and still has open, so reuse is seen from the upstream's side.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;

use crate::http_proxy::proxy_to;
use crate::support::{eventually, scrape, Conn, Server, WAIT};

/// How the upstream answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// HTTP/1.1, Content-Length, kept open.
    KeepAlive,
    /// As `KeepAlive`, with `Connection: close` (the socket stays open: only the proxy may
    /// end it).
    SaysClose,
    /// An HTTP/1.0 status line (socket kept open, as above).
    Http10,
    /// Closes a connection when its second request arrives, unanswered: a keep-alive
    /// connection closed just as the proxy reused it.
    DropReused,
    /// Answers, then closes the connection at once (without saying so): the proxy finds
    /// its pooled connection closed, before or as it reuses it.
    CloseIdle,
    /// Reads each request and closes without answering.
    Silent,
}

#[derive(Default)]
struct Counts {
    accepted: AtomicUsize,
    open: AtomicUsize,
    requests: AtomicUsize,
    /// Requests that carried `Connection: close`.
    said_close: AtomicUsize,
    /// Requests read and not yet answered, for `gate`.
    pending: Mutex<usize>,
    changed: Condvar,
}

struct Keeper {
    addr: SocketAddr,
    counts: Arc<Counts>,
}

impl Keeper {
    /// `gate`: each answer waits (bounded) until this many requests are in at once.
    fn start(mode: Mode, gate: usize) -> Keeper {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let counts = Arc::new(Counts::default());
        let shared = counts.clone();
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let id = shared.accepted.fetch_add(1, SeqCst);
                shared.open.fetch_add(1, SeqCst);
                let counts = shared.clone();
                thread::spawn(move || {
                    serve(stream, id, mode, gate, &counts);
                    counts.open.fetch_sub(1, SeqCst);
                });
            }
        });
        Keeper { addr, counts }
    }

    fn accepted(&self) -> usize {
        self.counts.accepted.load(SeqCst)
    }

    fn open(&self) -> usize {
        self.counts.open.load(SeqCst)
    }
}

/// One upstream connection: heads with an optional Content-Length body, until EOF.
fn serve(stream: TcpStream, id: usize, mode: Mode, gate: usize, counts: &Counts) {
    stream.set_read_timeout(Some(WAIT * 4)).unwrap();
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    for n in 1.. {
        let mut head = String::new();
        loop {
            let mut line = String::new();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            let end = line == "\r\n";
            head.push_str(&line);
            if end {
                break;
            }
        }
        let lower = head.to_ascii_lowercase();
        let length = (lower.lines())
            .find_map(|l| l.strip_prefix("content-length:"))
            .map_or(0, |v| v.trim().parse().unwrap());
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        counts.requests.fetch_add(1, SeqCst);
        if lower.contains("\r\nconnection: close\r\n") {
            counts.said_close.fetch_add(1, SeqCst);
        }
        if mode == Mode::Silent || (mode == Mode::DropReused && n >= 2) {
            return;
        }
        if gate > 1 {
            let mut pending = counts.pending.lock().unwrap();
            *pending += 1;
            counts.changed.notify_all();
            let (guard, _) = counts
                .changed
                .wait_timeout_while(pending, WAIT, |p| *p < gate)
                .unwrap();
            drop(guard);
        }
        let text = format!("conn={id} n={n} len={length}");
        let (version, extra) = match mode {
            Mode::Http10 => ("HTTP/1.0", ""),
            Mode::SaysClose => ("HTTP/1.1", "Connection: close\r\n"),
            _ => ("HTTP/1.1", ""),
        };
        let response = format!(
            "{version} 200 OK\r\n{extra}Content-Length: {}\r\n\r\n{text}",
            text.len()
        );
        if writer.write_all(response.as_bytes()).is_err() || mode == Mode::CloseIdle {
            return;
        }
    }
}

fn upstream_sum(proxy: &Server, name: &str, server: SocketAddr) -> f64 {
    let server = server.to_string();
    scrape(proxy.addr("web")).sum(name, &[("server", &server)])
}

fn idle(proxy: &Server, server: SocketAddr) -> f64 {
    upstream_sum(proxy, "coreloop_upstream_connections_idle", server)
}

fn get_ok(conn: &mut Conn, path: &str) -> String {
    let response = conn.get(path);
    assert_eq!(response.status, 200, "{}", response.text());
    response.text()
}

#[test]
pub fn sequential_requests_share_one_upstream_connection() {
    let up = Keeper::start(Mode::KeepAlive, 1);
    let proxy = proxy_to(&[up.addr], "keepalive = 4\n");
    let web = proxy.addr("web");
    let mut conn = Conn::open(web);
    for i in 1..=20 {
        let text = get_ok(&mut conn, "/app/x");
        assert_eq!(text, format!("conn=0 n={i} len=0"));
    }
    // Other client connections of the shard take the same pooled connection.
    for i in 21..=25 {
        let text = get_ok(&mut Conn::open(web), "/app/x");
        assert_eq!(text, format!("conn=0 n={i} len=0"));
    }
    // A request body goes after the head on a pooled connection, and the connection stays.
    for (i, body) in [(26, "abc"), (27, "hello world")] {
        let request = format!(
            "POST /app/up HTTP/1.1\r\nHost: a\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        conn.send(&request).unwrap();
        let response = conn.read_response().unwrap();
        let expected = format!("conn=0 n={i} len={}", body.len());
        assert_eq!((response.status, response.text()), (200, expected));
    }
    // Pipelined requests take the connection their predecessor just gave back.
    conn.send(&"GET /app/p HTTP/1.1\r\nHost: a\r\n\r\n".repeat(3))
        .unwrap();
    for i in 28..=30 {
        let response = conn.read_response().unwrap();
        assert_eq!(response.text(), format!("conn=0 n={i} len=0"));
    }
    assert_eq!(
        up.accepted(),
        1,
        "one upstream connection for every request"
    );
    assert_eq!(
        up.counts.said_close.load(SeqCst),
        0,
        "pooled requests keep alive"
    );
    assert_eq!(
        upstream_sum(&proxy, "coreloop_upstream_connects_total", up.addr),
        1.0
    );
    assert_eq!(
        upstream_sum(&proxy, "coreloop_upstream_reused_total", up.addr),
        29.0
    );
    assert_eq!(
        upstream_sum(&proxy, "coreloop_upstream_requests_total", up.addr),
        30.0
    );
    assert_eq!(idle(&proxy, up.addr), 1.0);
}

#[test]
pub fn keepalive_caps_the_idle_connections_per_server() {
    let up = Keeper::start(Mode::KeepAlive, 4);
    let proxy = proxy_to(&[up.addr], "keepalive = 2\n");
    let web = proxy.addr("web");
    // Four requests at once: the upstream answers none until all four are in, so four
    // connections are open; afterwards the pool keeps two.
    let clients: Vec<_> = (0..4)
        .map(|_| {
            thread::spawn(move || {
                let mut conn = Conn::open(web);
                let response = conn.get("/app/x");
                assert_eq!(response.status, 200, "{}", response.text());
            })
        })
        .collect();
    for client in clients {
        client.join().unwrap();
    }
    assert_eq!(up.accepted(), 4);
    assert!(
        eventually(|| up.open() == 2),
        "open upstream connections: {}",
        up.open()
    );
    assert_eq!(idle(&proxy, up.addr), 2.0);

    // keepalive = 0: no pool, and every request says so.
    let none = Keeper::start(Mode::KeepAlive, 1);
    let proxy = proxy_to(&[none.addr], "keepalive = 0\n");
    let mut conn = Conn::open(proxy.addr("web"));
    for _ in 0..3 {
        get_ok(&mut conn, "/app/x");
    }
    assert_eq!(none.accepted(), 3);
    assert_eq!(none.counts.said_close.load(SeqCst), 3);
    assert!(eventually(|| none.open() == 0));
}

#[test]
pub fn idle_timeout_closes_a_pooled_connection() {
    let up = Keeper::start(Mode::KeepAlive, 1);
    let proxy = proxy_to(&[up.addr], "idle_timeout = \"300ms\"\n");
    let mut conn = Conn::open(proxy.addr("web"));
    get_ok(&mut conn, "/app/x");
    assert_eq!(idle(&proxy, up.addr), 1.0);
    assert!(
        eventually(|| up.open() == 0),
        "the pooled connection outlived idle_timeout"
    );
    assert_eq!(idle(&proxy, up.addr), 0.0);
    // The next request dials again.
    assert_eq!(get_ok(&mut conn, "/app/x"), "conn=1 n=1 len=0");
}

#[test]
fn a_pooled_connection_closed_as_it_is_reused_costs_no_client_error() {
    for mode in [Mode::DropReused, Mode::CloseIdle] {
        let up = Keeper::start(mode, 1);
        let proxy = proxy_to(&[up.addr], "");
        let mut conn = Conn::open(proxy.addr("web"));
        for _ in 0..20 {
            let text = get_ok(&mut conn, "/app/x");
            assert!(text.ends_with("n=1 len=0"), "{mode:?}: {text}");
        }
        if mode == Mode::DropReused {
            // Every reuse met a closing connection and was redialed: counted as retries.
            let retries = upstream_sum(&proxy, "coreloop_upstream_retries_total", up.addr);
            assert_eq!(retries, 19.0, "{mode:?}");
            // A request that sent its body on the reused connection is not sent again.
            conn.send("POST /app/up HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n\r\nx")
                .unwrap();
            assert_eq!(conn.read_response().unwrap().status, 502);
        }
    }
}

#[test]
fn responses_that_end_the_connection_are_not_pooled() {
    for mode in [Mode::SaysClose, Mode::Http10] {
        let up = Keeper::start(mode, 1);
        let proxy = proxy_to(&[up.addr], "");
        let mut conn = Conn::open(proxy.addr("web"));
        for _ in 0..3 {
            let text = get_ok(&mut conn, "/app/x");
            assert!(text.ends_with("n=1 len=0"), "{mode:?}: {text}");
        }
        assert_eq!(up.accepted(), 3, "{mode:?}");
        assert!(eventually(|| up.open() == 0), "{mode:?}");
        assert_eq!(idle(&proxy, up.addr), 0.0, "{mode:?}");
    }
}

#[test]
fn a_reload_that_removes_a_server_closes_its_pooled_connections() {
    let (a, b) = (
        Keeper::start(Mode::KeepAlive, 1),
        Keeper::start(Mode::KeepAlive, 1),
    );
    let proxy = proxy_to(&[a.addr, b.addr], "");
    let web = proxy.addr("web");
    let mut conn = Conn::open(web);
    for _ in 0..4 {
        get_ok(&mut conn, "/app/x");
    }
    assert_eq!((a.accepted(), b.accepted()), (1, 1), "round robin, pooled");
    assert_eq!((a.open(), b.open()), (1, 1));
    let toml = crate::http_proxy::proxy_toml(&format!("servers = [\"{}\"]\n", a.addr));
    std::fs::write(&proxy.config, toml).unwrap();
    proxy.signal("HUP");
    proxy.wait_for("configuration reloaded", 1);
    assert!(
        eventually(|| b.open() == 0),
        "the removed server's pooled connection stayed open"
    );
    for _ in 0..4 {
        let text = get_ok(&mut conn, "/app/x");
        assert!(text.starts_with("conn="), "{text}");
    }
    assert_eq!(b.accepted(), 1, "no request went to the removed server");
    assert_eq!(idle(&proxy, b.addr), 0.0);
}

#[test]
fn an_idempotent_request_closed_unanswered_is_retried_on_another_server() {
    let (silent, good) = (
        Keeper::start(Mode::Silent, 1),
        Keeper::start(Mode::KeepAlive, 1),
    );
    // Each unanswered request is a failure for passive health too; the silent server must
    // stay in rotation for the POSTs below to reach it.
    let proxy = proxy_to(&[silent.addr, good.addr], "max_fails = 0");
    let web = proxy.addr("web");
    for _ in 0..4 {
        get_ok(&mut Conn::open(web), "/app/x");
    }
    assert!(
        silent.accepted() >= 1,
        "round robin reached the silent server"
    );
    let retries = upstream_sum(&proxy, "coreloop_upstream_retries_total", good.addr);
    assert_eq!(retries, silent.accepted() as f64);
    let no_server = scrape(web).sum("coreloop_upstream_no_server_total", &[]);
    assert_eq!(no_server, 0.0);
    // A POST is not sent twice: on the silent server it is a 502.
    let statuses: Vec<u16> = (0..2)
        .map(|_| {
            let mut conn = Conn::open(web);
            conn.send("POST /app/x HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n")
                .unwrap();
            conn.read_response().unwrap().status
        })
        .collect();
    assert!(
        statuses.contains(&502) && statuses.contains(&200),
        "{statuses:?}"
    );
}

#[test]
fn a_drain_closes_pooled_connections_and_cuts_nothing() {
    let up = Keeper::start(Mode::KeepAlive, 1);
    let mut proxy = proxy_to(&[up.addr], "");
    get_ok(&mut Conn::open(proxy.addr("web")), "/app/x");
    assert_eq!(up.open(), 1);
    proxy.signal("TERM");
    let status = proxy.wait_exit(WAIT);
    assert_eq!(status.code(), Some(0), "{}", proxy.stderr());
    assert!(eventually(|| up.open() == 0));
}
