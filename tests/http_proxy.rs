//! Proxy routes (`proxy = { upstream = "app" }`) through the real binary. Upstreams: Python's
//! `http.server` (tests/http_proxy/upstream.py), a second coreloop, and failing servers
//! written here on plain sockets.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::thread;

use crate::support::{config, repo_file, scrape, Conn, Server, WAIT};
use crate::tcp_proxy::dead_addr;

/// Python's http.server on a free port, killed on drop.
pub struct PyUpstream {
    child: Child,
    pub addr: SocketAddr,
}

impl PyUpstream {
    pub fn start() -> PyUpstream {
        let mut child = Command::new("python3")
            .arg(repo_file("tests/http_proxy/upstream.py"))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 runs");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port: u16 = line.trim().parse().expect("the upstream prints its port");
        PyUpstream {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        }
    }
}

impl Drop for PyUpstream {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The default config (one shard) with upstream "app" (`upstream`: its lines after the name)
/// and a route `/app/*` on listener "web" proxying to it.
pub fn proxy_toml(upstream: &str) -> String {
    let base = config(&[("shards = 2", "shards = 1")]);
    let route = "[[listener.route]]\npath = \"/app/*\"\nmethods = [\"GET\", \"HEAD\", \"POST\"]\n\
                 proxy = { upstream = \"app\" }\n\n[[listener]]\nname = \"echo\"";
    let base = base.replacen("[[listener]]\nname = \"echo\"", route, 1);
    base + "\n[[upstream]]\nname = \"app\"\n" + upstream
}

pub fn proxy_to(addrs: &[SocketAddr], extra: &str) -> Server {
    let list: Vec<String> = addrs.iter().map(|a| format!("\"{a}\"")).collect();
    Server::start(&proxy_toml(&format!(
        "servers = [{}]\n{extra}",
        list.join(", ")
    )))
}

fn stream(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect_timeout(&addr, WAIT).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    stream.set_write_timeout(Some(WAIT)).unwrap();
    stream
}

/// Sends `request` on a new connection and reads until the proxy closes it.
fn exchange(addr: SocketAddr, request: &str) -> String {
    let mut conn = stream(addr);
    conn.write_all(request.as_bytes()).unwrap();
    let mut out = Vec::new();
    let _ = conn.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

fn get_close(addr: SocketAddr, path: &str, extra: &str) -> String {
    exchange(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: front\r\n{extra}Connection: close\r\n\r\n"),
    )
}

#[test]
pub fn hop_by_hop_fields_are_removed_and_forwarding_fields_added() {
    let upstream = PyUpstream::start();
    let proxy = proxy_to(&[upstream.addr], "");
    let extra = "Connection: X-Secret\r\nX-Secret: 1\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\n\
                 Upgrade: websocket\r\nProxy-Authorization: basic x\r\nProxy-Connection: x\r\n\
                 X-Forwarded-For: 203.0.113.9\r\nX-Forwarded-Host: evil\r\nAccept: text/plain\r\n";
    let mut conn = Conn::open(proxy.addr("web"));
    conn.send(&format!(
        "GET /app/headers?q=1 HTTP/1.1\r\nHost: front.example\r\n{extra}\r\n"
    ))
    .unwrap();
    let response = conn.read_response().unwrap();
    assert_eq!(response.status, 200);
    let seen = response.text().to_ascii_lowercase();
    assert!(
        seen.starts_with("get /app/headers?q=1 http/1.1\r\n"),
        "{seen}"
    );
    for gone in ["x-secret", "keep-alive", "te:", "upgrade", "proxy-", "evil"] {
        assert!(!seen.contains(gone), "{gone} reached the upstream: {seen}");
    }
    for kept in [
        "host: front.example",
        "accept: text/plain",
        "x-forwarded-for: 203.0.113.9, 127.0.0.1",
        "x-forwarded-proto: http",
        "x-forwarded-host: front.example",
        "via: 1.1 coreloop",
    ] {
        assert!(seen.contains(kept), "{kept} missing: {seen}");
    }
    // The same client connection goes on (keep-alive to the client).
    assert_eq!(conn.get("/app/fixed").text(), "hello");
    let server = upstream.addr.to_string();
    let metrics = scrape(proxy.addr("web"));
    let ok = [("server", server.as_str()), ("class", "2xx")];
    assert_eq!(metrics.sum("coreloop_upstream_responses_total", &ok), 2.0);
}

#[test]
pub fn response_bodies_are_reframed_for_the_client() {
    let upstream = PyUpstream::start();
    let proxy = proxy_to(&[upstream.addr], "");
    let web = proxy.addr("web");
    let chunked = get_close(web, "/app/chunked", "");
    assert!(
        chunked.contains("Transfer-Encoding: chunked\r\n"),
        "{chunked}"
    );
    assert!(
        chunked.ends_with("\r\n\r\n3\r\nhel\r\n2\r\nlo\r\n0\r\n\r\n"),
        "{chunked}"
    );
    // Close-delimited: chunked to a 1.1 client, which may keep its connection...
    let mut conn = stream(web);
    conn.write_all(b"GET /app/close HTTP/1.1\r\nHost: a\r\n\r\nGET /app/fixed HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut both = String::new();
    let _ = conn.read_to_string(&mut both);
    assert!(
        both.contains(
            "Transfer-Encoding: chunked\r\n\r\nb\r\nuntil close\r\n0\r\n\r\nHTTP/1.1 200 OK"
        ),
        "{both}"
    );
    assert!(
        both.ends_with("\r\n\r\nhello"),
        "pipelined answers in order: {both}"
    );
    // ...and closed after the body to a 1.0 one, as chunked bodies are (decoded).
    let closed = exchange(web, "GET /app/close HTTP/1.0\r\n\r\n");
    assert!(
        closed.ends_with("Connection: close\r\n\r\nuntil close"),
        "{closed}"
    );
    let decoded = exchange(web, "GET /app/chunked HTTP/1.0\r\n\r\n");
    assert!(
        decoded.ends_with("\r\n\r\nhello") && !decoded.contains("chunked"),
        "{decoded}"
    );
    // HEAD and 204: no body whatever the upstream sends.
    let head = exchange(
        web,
        "HEAD /app/fixed HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    );
    assert!(
        head.ends_with("Content-Length: 5\r\nVia: 1.1 coreloop\r\nConnection: close\r\n\r\n"),
        "{head}"
    );
    let mut conn = Conn::open(web);
    conn.send("GET /app/nocontent HTTP/1.1\r\nHost: a\r\n\r\n")
        .unwrap();
    let none = conn.read_response().unwrap();
    assert_eq!((none.status, none.body.len()), (204, 0));
    assert_eq!(none.header("content-length"), None);
    // The upstream's stray body bytes did not leak into the next response.
    assert_eq!(conn.get("/app/fixed").text(), "hello");
}

fn pattern(len: usize) -> Vec<u8> {
    let block: Vec<u8> = (0..=255u8).cycle().take(65536).collect();
    block.iter().copied().cycle().take(len).collect()
}

fn sha256_hex(bytes: &[u8]) -> String {
    let mut child = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let data = bytes.to_vec();
    let writer = thread::spawn(move || stdin.write_all(&data));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    String::from_utf8(out.stdout).unwrap()[..64].to_owned()
}

fn rss_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with(field)).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn uploads_stream_in_both_framings_and_a_large_download_keeps_memory_bounded() {
    let upstream = PyUpstream::start();
    let proxy = proxy_to(&[upstream.addr], "");
    let web = proxy.addr("web");
    // Past limits.body_bytes (1 MiB by default): a proxied body streams, it is not kept.
    let body = pattern(8 << 20);
    let want = format!("{} {}", body.len(), sha256_hex(&body));
    let mut conn = Conn::open(web);
    let head = format!(
        "POST /app/upload HTTP/1.1\r\nHost: a\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    conn.stream.write_all(head.as_bytes()).unwrap();
    conn.stream.write_all(&body).unwrap();
    assert_eq!(conn.read_response().unwrap().text(), want);
    let mut chunked =
        b"POST /app/upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for piece in body.chunks(100_000) {
        chunked.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        chunked.extend_from_slice(piece);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    conn.stream.write_all(&chunked).unwrap();
    assert_eq!(conn.read_response().unwrap().text(), want);

    let before = rss_kib(proxy.pid(), "VmRSS:");
    let len = 64 << 20;
    let mut down = stream(web);
    down.write_all(
        format!("GET /app/big?n={len} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .unwrap();
    let mut got = Vec::with_capacity(len + 4096);
    down.read_to_end(&mut got).unwrap();
    let at = got.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    assert!(String::from_utf8_lossy(&got[..at]).contains(&format!("Content-Length: {len}")));
    assert!(got[at..] == pattern(len)[..], "64 MiB arrive intact");
    let peak = rss_kib(proxy.pid(), "VmHWM:");
    eprintln!("proxy RSS before the download {before} KiB, peak after {peak} KiB");
    assert!(
        peak < before + 16 * 1024,
        "the proxy's peak RSS grew by {} KiB",
        peak - before
    );
}

#[test]
fn a_second_coreloop_is_an_upstream() {
    let backend = Server::start(&config(&[(
        "[[listener.route]]\npath = \"/json\"",
        "[[listener.route]]\npath = \"/app/*\"\nmethods = [\"POST\"]\necho = {}\n\n[[listener.route]]\npath = \"/json\"",
    )]));
    let proxy = proxy_to(&[backend.addr("web")], "");
    let mut conn = Conn::open(proxy.addr("web"));
    conn.send("POST /app/x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello")
        .unwrap();
    let echoed = conn.read_response().unwrap();
    assert_eq!((echoed.status, echoed.text().as_str()), (200, "hello"));
    conn.send(
        "POST /app/x HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n",
    )
    .unwrap();
    // Answered here, once; the upstream never sees the expectation.
    let mut continued = [0u8; 25];
    conn.stream.read_exact(&mut continued).unwrap();
    assert_eq!(&continued, b"HTTP/1.1 100 Continue\r\n\r\n");
    conn.send("ok").unwrap();
    assert_eq!(conn.read_response().unwrap().text(), "ok");
}

/// A server that answers each connection with `answer` (after reading its request head),
/// then closes: by reset when `reset`, once `gate` says so (a reset can discard data the
/// proxy has not read yet, so a reset mid-body waits until the client saw that part).
fn scripted(
    answer: &'static [u8],
    reset: bool,
    gate: Option<std::sync::mpsc::Receiver<()>>,
) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            conn.set_read_timeout(Some(WAIT)).unwrap();
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && conn.read(&mut byte).is_ok_and(|n| n == 1) {
                head.push(byte[0]);
            }
            let _ = conn.write_all(answer);
            if let Some(gate) = &gate {
                let _ = gate.recv_timeout(WAIT);
            }
            if reset {
                let _ = socket2::SockRef::from(&conn).set_linger(Some(std::time::Duration::ZERO));
            }
        }
    });
    addr
}

/// A server that reads requests and never answers.
fn stalling() -> (SocketAddr, thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let handle = thread::spawn(move || {
        if let Ok((mut conn, _)) = listener.accept() {
            let mut sink = [0u8; 1024];
            while conn.read(&mut sink).is_ok_and(|n| n > 0) {}
        }
    });
    (addr, handle)
}

fn status_of(response: &str) -> u16 {
    response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

#[test]
fn upstream_failures_map_to_502_and_504() {
    let cases: &[(&[u8], bool, u16)] = &[
        (b"HTTP/1.1 200 OK\r\nContent-Le", true, 502),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\nabc",
            false,
            502,
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabc",
            false,
            502,
        ),
        (
            b"HTTP/1.1 200 OK\r\nX: a\r\n b\r\nContent-Length: 0\r\n\r\n",
            false,
            502,
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            false,
            200,
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten b",
            true,
            200,
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten b",
            false,
            200,
        ),
        (b"garbage\r\n\r\n", false, 502),
    ];
    for (answer, reset, status) in cases {
        let partial = *reset && *status == 200;
        let (open, gate) = std::sync::mpsc::channel();
        let proxy = proxy_to(&[scripted(answer, *reset, partial.then_some(gate))], "");
        let mut conn = Conn::open(proxy.addr("web"));
        conn.send("GET /app/x HTTP/1.1\r\nHost: a\r\n\r\n").unwrap();
        let mut got = Vec::new();
        let mut chunk = [0u8; 4096];
        // Read until the proxy answers an error (and keeps the connection) or closes it.
        while let Ok(n) = conn.stream.read(&mut chunk) {
            if n == 0 {
                break;
            }
            got.extend_from_slice(&chunk[..n]);
            if got.ends_with(b"only ten b") {
                let _ = open.send(());
            }
            if got.ends_with(b"bad gateway") {
                break;
            }
        }
        let text = String::from_utf8_lossy(&got).into_owned();
        assert_eq!(status_of(&text), *status, "{answer:?}: {text}");
        let cause = if *reset { "closed" } else { "invalid" };
        let cause = if answer.ends_with(b"ten b") {
            "closed"
        } else {
            cause
        };
        let failed = || {
            scrape(proxy.addr("web")).sum(
                "coreloop_upstream_response_errors_total",
                &[("cause", cause)],
            ) == 1.0
        };
        assert!(
            crate::support::eventually(failed),
            "{answer:?}: counted as {cause}"
        );
        if *status == 200 {
            // Part of a response went out and the rest never will: the client is closed,
            // with no complete response the client could take for the whole.
            assert!(!text.ends_with("0\r\n\r\n"), "{text}");
            let ten = String::from_utf8_lossy(answer).contains("ten b");
            assert!(!ten || text.ends_with("only ten b"), "{text}");
        } else {
            // Nothing of a response was sent: the client connection goes on.
            conn.send("GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n")
                .unwrap();
            let next = conn.read_response();
            assert_eq!(next.map(|r| r.status).ok(), Some(200), "{answer:?}: {text}");
        }
    }
    let refused = proxy_to(&[dead_addr()], "max_fails = 0\n");
    assert_eq!(
        status_of(&get_close(refused.addr("web"), "/app/x", "")),
        502
    );
}

/// A server that takes the request and never answers: 504 at `response_timeout`, and the
/// client connection goes on.
#[test]
pub fn response_timeout_answers_504() {
    let (addr, _stall) = stalling();
    let stalled = proxy_to(&[addr], "response_timeout = \"300ms\"\n");
    let mut conn = Conn::open(stalled.addr("web"));
    conn.send("GET /app/x HTTP/1.1\r\nHost: a\r\n\r\n").unwrap();
    assert_eq!(conn.read_response().unwrap().status, 504);
    assert_eq!(conn.get("/healthz").status, 200);
    let timed_out = scrape(stalled.addr("web")).sum(
        "coreloop_upstream_response_errors_total",
        &[("cause", "timed_out")],
    );
    assert_eq!(timed_out, 1.0);
}

#[test]
fn a_refusing_server_is_retried_elsewhere_then_ejected_until_none_is_left() {
    let upstream = PyUpstream::start();
    let dead = dead_addr();
    let proxy = proxy_to(
        &[dead, upstream.addr],
        "max_fails = 1\nfail_timeout = \"1h\"\n",
    );
    let web = proxy.addr("web");
    for _ in 0..3 {
        let text = get_close(web, "/app/fixed", "");
        assert!(text.ends_with("hello"), "{text}");
    }
    let metrics = scrape(web);
    let dead = dead.to_string();
    let refused = metrics.sum(
        "coreloop_upstream_connect_errors_total",
        &[("server", &dead), ("cause", "refused")],
    );
    assert_eq!(refused, 1.0, "ejected after one failure, not tried again");
    assert_eq!(metrics.sum("coreloop_upstream_retries_total", &[]), 1.0);
    drop(upstream);
    // The live server goes too: the first request fails it (502), then none is left (503).
    let first = get_close(web, "/app/fixed", "");
    assert_eq!(status_of(&first), 502, "{first}");
    let then = get_close(web, "/app/fixed", "");
    assert_eq!(status_of(&then), 503, "{then}");
    assert!(scrape(web).sum("coreloop_upstream_no_server_total", &[]) >= 1.0);
}

#[test]
fn interim_responses_reach_http11_clients_only_and_a_bad_request_chunk_is_400() {
    let hints = b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    let proxy = proxy_to(&[scripted(hints, false, None)], "");
    let web = proxy.addr("web");
    let eleven = get_close(web, "/app/x", "");
    assert!(
        eleven.starts_with(
            "HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\nVia: 1.1 coreloop\r\n\r\nHTTP/1.1 200 OK\r\n"
        ),
        "{eleven}"
    );
    assert!(eleven.ends_with("\r\n\r\nok"), "{eleven}");
    let ten = exchange(web, "GET /app/x HTTP/1.0\r\n\r\n");
    assert!(
        ten.starts_with("HTTP/1.1 200 OK\r\n") && !ten.contains("103"),
        "{ten}"
    );
    let upstream = PyUpstream::start();
    let proxy = proxy_to(&[upstream.addr], "");
    let bad = exchange(
        proxy.addr("web"),
        "POST /app/upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n",
    );
    assert_eq!(status_of(&bad), 400, "{bad}");
}

/// `strip_prefix` takes the route's prefix off the path (whole segments only).
#[test]
pub fn strip_prefix_is_taken_off_the_path() {
    let upstream = PyUpstream::start();
    let text = proxy_toml(&format!("servers = [\"{}\"]\n", upstream.addr)).replace(
        "proxy = { upstream = \"app\" }",
        "proxy = { upstream = \"app\", strip_prefix = \"/app\" }",
    );
    let proxy = Server::start(&text);
    let mut conn = Conn::open(proxy.addr("web"));
    let seen = conn.get("/app/headers?x=1").text();
    assert!(seen.starts_with("GET /headers?x=1 HTTP/1.1\r\n"), "{seen}");
}

/// Smuggling shapes and invalid framing are refused by the request parser before a server is
/// picked: nothing of them reaches the upstream (not even a connect).
#[test]
fn ambiguous_requests_never_reach_the_upstream() {
    let upstream = PyUpstream::start();
    let proxy = proxy_to(&[upstream.addr], "");
    let web = proxy.addr("web");
    let shapes = [
        "POST /app/upload HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "POST /app/upload HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
        "POST /app/upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n",
        "POST /app/upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
        "POST /app/upload HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "POST /app/upload HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n",
        "GET /app/fixed HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        "GET /app/fixed HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n",
        "GET /app/fixed HTTP/1.1\r\nHost : a\r\n\r\n",
    ];
    for shape in shapes {
        let answer = exchange(web, shape);
        let status = status_of(&answer);
        assert!((400..=501).contains(&status), "{shape:?}: {answer}");
    }
    let connects = scrape(web).sum("coreloop_upstream_connects_total", &[]);
    assert_eq!(connects, 0.0, "an ambiguous request reached the upstream");
}
