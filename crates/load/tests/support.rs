//! A tiny single-threaded mio server with scripted behaviours, on 127.0.0.1
//! port 0, that counts what it received. Being one thread, a stall stalls
//! every connection, as a stuck server would.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use coreloop_load::Config;
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};

const LISTENER: Token = Token(usize::MAX - 1);
const WAKER: Token = Token(usize::MAX - 2);

/// How the server answers.
#[derive(Debug, Clone)]
pub enum Behaviour {
    /// One fixed response per request head; close after it if `close`.
    Http { response: Vec<u8>, close: bool },
    /// Sends back every byte.
    Echo,
    /// Sends back every byte plus one: an echo server that corrupts.
    CorruptEcho,
    /// Answers 200, but once, after `after` requests, sleeps for `stall`.
    StallOnce { after: u64, stall: Duration },
    /// Writes half a response and closes.
    CloseMidResponse,
    /// Reads and never answers.
    Blackhole,
    /// Answers 200 to each request `service` after it arrived, all
    /// connections at once: a server with a known service time, whose
    /// throughput is `connections / service` at one request in flight each.
    Delay { service: Duration },
    /// Answers 200, except every `n`-th request, which is never answered.
    SilentEvery(u64),
    /// Answers each request with the status of the next entry, in turn.
    Statuses(Vec<u16>),
    /// Answers request `n` (counted over all connections, from 1) with a
    /// 200 whose body is `len` bytes of the first `(last, len)` with
    /// `n <= last` (the last entry's past the end), each response written
    /// on its own, as nginx answers a pipeline: one segment per response.
    BodySizes(Vec<(u64, usize)>),
}

impl Behaviour {
    pub fn ok() -> Self {
        Self::http(OK, false)
    }

    pub fn http(response: &str, close: bool) -> Self {
        Self::Http {
            response: response.as_bytes().to_vec(),
            close,
        }
    }
}

/// The response `BodySizes(phases)` gives request `n`.
pub fn sized_response(phases: &[(u64, usize)], n: u64) -> Vec<u8> {
    let len = phases
        .iter()
        .find(|&&(last, _)| n <= last)
        .or(phases.last())
        .map_or(0, |&(_, len)| len);
    let mut r = format!("HTTP/1.1 200 OK\r\nContent-Length: {len}\r\n\r\n").into_bytes();
    r.resize(r.len() + len, b'x');
    r
}

pub const OK: &str = "HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\nHello, World!";

/// A running test server; stops and joins on drop.
pub struct Server {
    pub addr: SocketAddr,
    received: Arc<AtomicU64>,
    bytes: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    waker: Arc<Waker>,
    handle: Option<JoinHandle<()>>,
}

impl Server {
    pub fn start(behaviour: Behaviour) -> Server {
        let mut listener =
            TcpListener::bind("127.0.0.1:0".parse().unwrap()).expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().unwrap();
        let poll = Poll::new().unwrap();
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)
            .unwrap();
        let waker = Arc::new(Waker::new(poll.registry(), WAKER).unwrap());
        let received = Arc::new(AtomicU64::new(0));
        let bytes = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let mut state = Loop {
            poll,
            listener,
            conns: Vec::new(),
            behaviour,
            received: Arc::clone(&received),
            bytes: Arc::clone(&bytes),
            stop: Arc::clone(&stop),
            stalled: false,
            delayed: VecDeque::new(),
            current: 0,
        };
        let handle = std::thread::spawn(move || state.run());
        Server {
            addr,
            received,
            bytes,
            stop,
            waker,
            handle: Some(handle),
        }
    }

    /// Request heads (HTTP) received so far.
    pub fn received(&self) -> u64 {
        self.received.load(Ordering::SeqCst)
    }

    /// Bytes received so far.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::SeqCst)
    }

    pub fn http_url(&self) -> String {
        format!("http://{}/plaintext", self.addr)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.waker.wake();
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

struct Conn {
    stream: TcpStream,
    input: Vec<u8>,
    out: Vec<u8>,
    closing: bool,
    shut: bool,
}

struct Loop {
    poll: Poll,
    listener: TcpListener,
    conns: Vec<Option<Conn>>,
    behaviour: Behaviour,
    received: Arc<AtomicU64>,
    bytes: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    stalled: bool,
    /// `Delay`: (when to answer, connection index), in arrival order.
    delayed: VecDeque<(Instant, usize)>,
    /// The connection `serve` is working on.
    current: usize,
}

impl Loop {
    fn run(&mut self) {
        let mut events = Events::with_capacity(256);
        // Bounded: the test that owns the server drops it, which sets `stop`.
        while !self.stop.load(Ordering::SeqCst) {
            let mut wait = Duration::from_millis(100);
            if let Some((due, _)) = self.delayed.front() {
                wait = wait.min(due.saturating_duration_since(Instant::now()));
            }
            let polled = self.poll.poll(&mut events, Some(wait));
            self.answer_delayed();
            if polled.is_err() {
                continue;
            }
            for ev in events.iter() {
                match ev.token() {
                    LISTENER => self.accept(),
                    WAKER => {}
                    Token(i) => self.serve(i),
                }
            }
        }
    }

    /// Writes the answers whose service time is over.
    fn answer_delayed(&mut self) {
        let now = Instant::now();
        while let Some(&(due, i)) = self.delayed.front() {
            if due > now {
                return;
            }
            self.delayed.pop_front();
            if let Some(conn) = self.conns.get_mut(i).and_then(Option::as_mut) {
                conn.out.extend_from_slice(OK.as_bytes());
            }
            self.serve(i);
        }
    }

    fn accept(&mut self) {
        loop {
            match self.listener.accept() {
                Ok((mut stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    let i = self
                        .conns
                        .iter()
                        .position(Option::is_none)
                        .unwrap_or(self.conns.len());
                    if i == self.conns.len() {
                        self.conns.push(None);
                    }
                    let interest = Interest::READABLE | Interest::WRITABLE;
                    self.poll
                        .registry()
                        .register(&mut stream, Token(i), interest)
                        .unwrap();
                    self.conns[i] = Some(Conn {
                        stream,
                        input: Vec::new(),
                        out: Vec::new(),
                        closing: false,
                        shut: false,
                    });
                    self.serve(i);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(_) => return,
            }
        }
    }

    fn serve(&mut self, i: usize) {
        let Some(mut conn) = self.conns.get_mut(i).and_then(Option::take) else {
            return;
        };
        self.current = i;
        let alive = self.read_all(&mut conn) && flush(&mut conn);
        if alive && conn.closing && conn.out.is_empty() && !conn.shut {
            // Lingering close: FIN after the response, then drain until the
            // client closes, so unread input does not turn into a reset.
            let _ = conn.stream.shutdown(std::net::Shutdown::Write);
            conn.shut = true;
        }
        if alive {
            self.conns[i] = Some(conn);
        } else {
            let _ = self.poll.registry().deregister(&mut conn.stream);
        }
    }

    /// Reads until WouldBlock; false once the peer is gone.
    fn read_all(&mut self, conn: &mut Conn) -> bool {
        let mut buf = [0u8; 16 * 1024];
        loop {
            match conn.stream.read(&mut buf) {
                Ok(0) => return false,
                Ok(n) => {
                    self.bytes.fetch_add(n as u64, Ordering::SeqCst);
                    if conn.closing {
                        continue;
                    }
                    conn.input.extend_from_slice(&buf[..n]);
                    self.answer(conn);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
    }

    fn answer(&mut self, conn: &mut Conn) {
        match self.behaviour {
            Behaviour::Echo => return conn.out.append(&mut conn.input),
            Behaviour::CorruptEcho => {
                conn.out
                    .extend(conn.input.drain(..).map(|b| b.wrapping_add(1)));
                return;
            }
            _ => {}
        }
        while let Some(end) = find(&conn.input, b"\r\n\r\n") {
            conn.input.drain(..end + 4);
            let n = self.received.fetch_add(1, Ordering::SeqCst) + 1;
            if self.respond(conn, n) {
                conn.closing = true;
                return;
            }
        }
    }

    /// Appends the answer to request number `n`; true if the connection must close.
    fn respond(&mut self, conn: &mut Conn, n: u64) -> bool {
        match &self.behaviour {
            Behaviour::Http { response, close } => {
                conn.out.extend_from_slice(response);
                *close
            }
            Behaviour::StallOnce { after, stall } => {
                if n >= *after && !self.stalled {
                    self.stalled = true;
                    // The behaviour under test: a server that stops for a while.
                    std::thread::sleep(*stall);
                }
                conn.out.extend_from_slice(OK.as_bytes());
                false
            }
            Behaviour::CloseMidResponse => {
                conn.out.extend_from_slice(&OK.as_bytes()[..OK.len() / 2]);
                true
            }
            Behaviour::Delay { service } => {
                let due = Instant::now() + *service;
                self.delayed.push_back((due, self.current));
                false
            }
            Behaviour::SilentEvery(k) => {
                if n % k != 0 {
                    conn.out.extend_from_slice(OK.as_bytes());
                }
                false
            }
            Behaviour::Statuses(codes) => {
                let code = codes[(n as usize - 1) % codes.len()];
                let r = format!("HTTP/1.1 {code} X\r\nContent-Length: 0\r\n\r\n");
                conn.out.extend_from_slice(r.as_bytes());
                false
            }
            Behaviour::BodySizes(phases) => {
                conn.out.extend_from_slice(&sized_response(phases, n));
                // A failed write shows as the client's read error.
                flush(conn);
                false
            }
            Behaviour::Blackhole | Behaviour::Echo | Behaviour::CorruptEcho => false,
        }
    }
}

/// Writes pending output; false if the peer is gone.
fn flush(conn: &mut Conn) -> bool {
    while !conn.out.is_empty() {
        match conn.stream.write(&conn.out) {
            Ok(n) => {
                conn.out.drain(..n);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
    true
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A quick test config: no warm-up, 2 threads, a bounded duration.
pub fn config(url: &str) -> Config {
    let mut c = Config::new(coreloop_load::target::parse(url).expect("test url"));
    c.warmup = Duration::ZERO;
    c.duration = Duration::from_secs(10);
    c.threads = 2;
    c.connections = 4;
    c.timeout = Duration::from_secs(3);
    c
}

/// Runs and returns the report, printing it so a failure shows the figures.
pub fn run(c: &Config) -> coreloop_load::Report {
    let r = coreloop_load::run(c).expect("run");
    eprintln!("{}", r.text(true));
    r
}

/// The coreloop-load binary built with this crate (the same entry point as
/// the workspace's `coreloop-load`).
pub const BIN: &str = env!("CARGO_BIN_EXE_coreloop-load-dev");

/// A finished run of the real binary.
#[derive(Debug)]
pub struct Outcome {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Outcome {
    /// The JSON report the run wrote with `--json -`.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:?}"))
    }
}

/// Runs the binary to the end, with a bound on how long that may take.
pub fn run_bin(args: &[&str], bound: Duration) -> Outcome {
    let child = std::process::Command::new(BIN)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start coreloop-load");
    wait_bounded(child, bound, args)
}

/// Waits for `child`, killing it (and failing) past `bound`.
pub fn wait_bounded(mut child: std::process::Child, bound: Duration, what: &[&str]) -> Outcome {
    let deadline = Instant::now() + bound;
    let mut out = child.stdout.take().expect("piped stdout");
    let mut err = child.stderr.take().expect("piped stderr");
    let o = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let e = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait") {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("coreloop-load {what:?} ran past {bound:?}");
        }
        // Polling a child's exit status: std has no wait with a timeout.
        std::thread::sleep(Duration::from_millis(20));
    };
    let outcome = Outcome {
        code: status.code(),
        stdout: o.join().unwrap_or_default(),
        stderr: e.join().unwrap_or_default(),
    };
    eprintln!(
        "coreloop-load {what:?} -> {:?}\n{}",
        outcome.code, outcome.stderr
    );
    outcome
}
