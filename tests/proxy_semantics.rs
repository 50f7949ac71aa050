//! HTTP proxy routes through the real binary: `set_headers`, `Via` on responses,
//! `Max-Forwards`, failed responses in passive health and the upstream latency histogram.
//! The upstream is [`Recorder`], a plain-socket server that keeps every request head it reads
//! and answers as a test tells it to.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use crate::http_proxy::{proxy_toml, PyUpstream};
use crate::support::{eventually, scrape, Conn, Server, WAIT};

/// How [`Recorder`] answers the next connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Answer {
    /// 200 with the request head as its body.
    Echo = 0,
    /// Bytes that are no HTTP response.
    Garbage = 1,
    /// Part of a head, then a reset.
    ResetMidHead = 2,
    /// Nothing, until the proxy gives up and closes.
    Stall = 3,
}

/// An upstream on a plain socket that records each request head (through the empty line).
pub struct Recorder {
    pub addr: SocketAddr,
    pub heads: Arc<Mutex<Vec<String>>>,
    answer: Arc<AtomicU8>,
}

impl Recorder {
    pub fn start(answer: Answer) -> Recorder {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let heads = Arc::new(Mutex::new(Vec::new()));
        let mode = Arc::new(AtomicU8::new(answer as u8));
        let (h, m) = (heads.clone(), mode.clone());
        thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { return };
                let (h, m) = (h.clone(), m.clone());
                thread::spawn(move || serve(conn, &h, m.load(Ordering::SeqCst)));
            }
        });
        Recorder {
            addr,
            heads,
            answer: mode,
        }
    }

    pub fn answer(&self, answer: Answer) {
        self.answer.store(answer as u8, Ordering::SeqCst);
    }

    pub fn last_head(&self) -> String {
        self.heads
            .lock()
            .unwrap()
            .last()
            .cloned()
            .unwrap_or_default()
    }
}

fn serve(mut conn: TcpStream, heads: &Mutex<Vec<String>>, answer: u8) {
    conn.set_read_timeout(Some(WAIT)).unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 65536 {
        match conn.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return,
        }
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    heads.lock().unwrap().push(text.clone());
    match answer {
        0 => {
            let reply = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{text}",
                text.len()
            );
            let _ = conn.write_all(reply.as_bytes());
        }
        1 => {
            let _ = conn.write_all(b"garbage\r\n\r\n");
        }
        2 => {
            let _ = conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Le");
            let _ = socket2::SockRef::from(&conn).set_linger(Some(Duration::ZERO));
        }
        _ => {
            let mut sink = [0u8; 1024];
            while conn.read(&mut sink).is_ok_and(|n| n > 0) {}
        }
    }
}

/// The proxy config of `crate::http_proxy` with a route that also takes OPTIONS and the
/// route's `proxy` table `proxy`.
fn proxy_with(servers: &[SocketAddr], proxy: &str, upstream_extra: &str) -> Server {
    let list: Vec<String> = servers.iter().map(|a| format!("\"{a}\"")).collect();
    let text = proxy_toml(&format!(
        "servers = [{}]\n{upstream_extra}",
        list.join(", ")
    ))
    .replace(
        "proxy = { upstream = \"app\" }",
        &format!("proxy = {proxy}"),
    )
    .replace(
        "methods = [\"GET\", \"HEAD\", \"POST\"]",
        "methods = [\"GET\", \"HEAD\", \"POST\", \"OPTIONS\"]",
    );
    Server::start(&text)
}

fn lower_lines(text: &str) -> Vec<String> {
    text.lines().map(str::to_ascii_lowercase).collect()
}

/// `set_headers`: a configured field replaces every client field of its name and the one the
/// proxy would add; an empty value removes it, the forwarding fields and `Via` included.
#[test]
pub fn set_headers_replace_the_clients_fields_and_can_remove_the_forwarding_ones() {
    let upstream = PyUpstream::start();
    let set = "{ upstream = \"app\", set_headers = { \"X-Real-IP\" = \"203.0.113.1\", \
               \"X-Forwarded-For\" = \"\", \"X-Forwarded-Host\" = \"\", Via = \"\", \
               Cookie = \"\", Host = \"app.internal\" } }";
    let proxy = proxy_with(&[upstream.addr], set, "");
    let mut conn = Conn::open(proxy.addr("web"));
    conn.send(
        "GET /app/headers HTTP/1.1\r\nHost: front.example\r\nX-Real-IP: 6.6.6.6\r\n\
         x-real-ip: 7.7.7.7\r\nCookie: secret=1\r\nX-Forwarded-For: 10.0.0.1\r\nAccept: */*\r\n\r\n",
    )
    .unwrap();
    let response = conn.read_response().unwrap();
    assert_eq!(response.status, 200);
    let seen = lower_lines(&response.text());
    for want in [
        "host: app.internal",
        "x-real-ip: 203.0.113.1",
        "accept: */*",
        "x-forwarded-proto: http",
    ] {
        assert_eq!(
            seen.iter()
                .filter(|l| l.starts_with(&want[..want.find(':').unwrap() + 1]))
                .count(),
            1,
            "{want}: {seen:?}"
        );
        assert!(seen.iter().any(|l| l == want), "{want}: {seen:?}");
    }
    for gone in ["cookie:", "x-forwarded-for:", "x-forwarded-host:", "via:"] {
        assert!(
            !seen.iter().any(|l| l.starts_with(gone)),
            "{gone} sent: {seen:?}"
        );
    }
    // The response still says it passed here (set_headers is about the request).
    assert_eq!(response.header("via"), Some("1.1 coreloop"));
}

/// RFC 9110 §7.6.3 on responses, and §7.6.2: OPTIONS with `Max-Forwards: 0` is answered
/// here (no connect), a larger value is counted down, an invalid one is a 400; TRACE never
/// reaches a proxy route (routes cannot list it).
#[test]
fn responses_carry_via_and_max_forwards_is_counted_down() {
    let upstream = Recorder::start(Answer::Echo);
    let proxy = proxy_with(&[upstream.addr], "{ upstream = \"app\" }", "");
    let web = proxy.addr("web");
    let mut conn = Conn::open(web);
    conn.send("OPTIONS /app/x HTTP/1.1\r\nHost: a\r\nMax-Forwards: 0\r\n\r\n")
        .unwrap();
    let here = conn.read_response().unwrap();
    assert_eq!(here.status, 200);
    assert_eq!(here.header("allow"), Some("GET, HEAD, POST, OPTIONS"));
    assert_eq!(
        scrape(web).sum("coreloop_upstream_connects_total", &[]),
        0.0
    );
    conn.send("OPTIONS /app/x HTTP/1.1\r\nHost: a\r\nMax-Forwards: 5\r\n\r\n")
        .unwrap();
    let forwarded = conn.read_response().unwrap();
    assert_eq!(forwarded.status, 200);
    let seen = lower_lines(&upstream.last_head());
    assert!(seen.iter().any(|l| l == "max-forwards: 4"), "{seen:?}");
    assert_eq!(forwarded.header("via"), Some("1.1 coreloop"));
    let mut bad = Conn::open(web);
    bad.send("OPTIONS /app/x HTTP/1.1\r\nHost: a\r\nMax-Forwards: -1\r\n\r\n")
        .unwrap();
    assert_eq!(bad.read_response().unwrap().status, 400);
    let mut trace = Conn::open(web);
    trace
        .send("TRACE /app/x HTTP/1.1\r\nHost: a\r\nMax-Forwards: 0\r\n\r\n")
        .unwrap();
    assert_eq!(trace.read_response().unwrap().status, 405);
    assert_eq!(
        scrape(web).sum("coreloop_upstream_connects_total", &[]),
        1.0
    );
}

fn status_of(addr: SocketAddr) -> u16 {
    let mut conn = Conn::open(addr);
    conn.send("GET /app/x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        .unwrap();
    conn.read_response().map(|r| r.status).unwrap_or(0)
}

/// A server that connects but answers badly fails like one that refuses: `max_fails` bad
/// responses in a row eject it (then 503), a complete response in between clears the count,
/// and after `fail_timeout` it is tried again. Every exchange that connected is timed.
#[test]
fn failed_responses_eject_the_server_until_fail_timeout() {
    for (bad, status) in [
        (Answer::Garbage, 502),
        (Answer::ResetMidHead, 502),
        (Answer::Stall, 504),
    ] {
        let upstream = Recorder::start(bad);
        let extra = "max_fails = 2\nfail_timeout = \"300ms\"\nresponse_timeout = \"200ms\"\n";
        let proxy = proxy_with(&[upstream.addr], "{ upstream = \"app\" }", extra);
        let web = proxy.addr("web");
        assert_eq!(status_of(web), status, "{bad:?}");
        upstream.answer(Answer::Echo);
        assert_eq!(status_of(web), 200, "{bad:?}: a success clears the count");
        upstream.answer(bad);
        assert_eq!(status_of(web), status, "{bad:?}");
        assert_eq!(
            status_of(web),
            status,
            "{bad:?}: the second in a row ejects"
        );
        assert_eq!(status_of(web), 503, "{bad:?}: ejected, no server left");
        let server = upstream.addr.to_string();
        let metrics = scrape(web);
        let of = [("server", server.as_str())];
        assert_eq!(metrics.sum("coreloop_upstream_ejections_total", &of), 1.0);
        assert_eq!(metrics.sum("coreloop_upstream_connects_total", &of), 4.0);
        let timed = "coreloop_upstream_response_duration_seconds_count";
        assert_eq!(
            metrics.sum(timed, &of),
            4.0,
            "each connected exchange timed"
        );
        let sum = "coreloop_upstream_response_duration_seconds_sum";
        assert!(metrics.sum(sum, &of) > 0.0);
        upstream.answer(Answer::Echo);
        assert!(
            eventually(|| status_of(web) == 200),
            "{bad:?}: back after fail_timeout"
        );
    }
}
