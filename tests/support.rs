//! Starting the binary on a config of our own, finding its addresses, and a small HTTP client.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_coreloop");
/// The longest any single wait in these tests may take.
pub const WAIT: Duration = Duration::from_secs(10);

/// Polls `done` every 10 ms until it holds, for at most [`WAIT`]; whether it did. For states
/// the server reaches a moment after the event a test can see (a socket closed by another
/// thread, a counter published by a shard).
pub fn eventually(mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    done()
}

/// A fresh directory under the system temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new() -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("coreloop-test-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The embedded default with every listener on port 0, two shards and a modest connection
/// limit (the test machine's fd limit is not ours to assume), then `edits` applied in order.
pub fn config(edits: &[(&str, &str)]) -> String {
    let mut text = default_toml()
        .replace("127.0.0.1:8080", "127.0.0.1:0")
        .replace("127.0.0.1:9000", "127.0.0.1:0")
        .replace("shards = \"auto\"", "shards = 2")
        .replace("max_connections = \"auto\"", "max_connections = 2000");
    for (from, to) in edits {
        assert!(text.contains(from), "config edit: `{from}` not found");
        text = text.replacen(from, to, 1);
    }
    text
}

pub fn default_toml() -> String {
    let out = run(&["print-config"]);
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

/// Runs the binary to completion (for commands that do not serve).
pub fn run(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().unwrap()
}

/// The server's stderr, shared with the thread that reads it.
#[derive(Default)]
struct Log {
    text: Mutex<(String, bool)>,
    changed: Condvar,
}

/// A running `coreloop`; killed on drop, which prints its stderr tail if the test failed.
pub struct Server {
    child: Child,
    log: Arc<Log>,
    pub addrs: HashMap<String, SocketAddr>,
    pub config: PathBuf,
    /// Holds the config file; removed with the server.
    _dir: TempDir,
    status: Option<ExitStatus>,
}

impl Server {
    /// Writes `toml` to a temp dir and serves it; waits for every `listening` line.
    pub fn start(toml: &str) -> Server {
        let dir = TempDir::new();
        let config = dir.write("coreloop.toml", toml);
        let path = config.to_str().unwrap().to_owned();
        let listeners = toml.matches("[[listener]]").count();
        Server::spawn(&["--config", &path], dir, config, listeners)
    }

    /// Runs the binary with `args` and waits for `listeners` announcements.
    pub fn spawn(args: &[&str], dir: TempDir, config: PathBuf, listeners: usize) -> Server {
        let mut command = Command::new(BIN);
        command.args(args);
        Server::spawn_command(command, dir, config, listeners)
    }

    /// Serves `toml` with the binary run by `wrapper` (e.g. `["prlimit", "--nofile=256:256"]`,
    /// which execs it: the pid stays the server's).
    pub fn start_under(wrapper: &[&str], toml: &str) -> Server {
        let dir = TempDir::new();
        let config = dir.write("coreloop.toml", toml);
        let listeners = toml.matches("[[listener]]").count();
        let mut command = Command::new(wrapper[0]);
        command
            .args(&wrapper[1..])
            .arg(BIN)
            .arg("--config")
            .arg(&config);
        Server::spawn_command(command, dir, config, listeners)
    }

    /// Runs `command` (the binary, perhaps behind a wrapper) and waits for `listeners`
    /// announcements.
    pub fn spawn_command(
        mut command: Command,
        dir: TempDir,
        config: PathBuf,
        listeners: usize,
    ) -> Server {
        let mut child = command
            .env_remove("RUST_LOG")
            .env_remove("NOTIFY_SOCKET")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let log = Arc::new(Log::default());
        let stderr = child.stderr.take().unwrap();
        let reader = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let mut text = reader.text.lock().unwrap();
                text.0.push_str(&line);
                text.0.push('\n');
                reader.changed.notify_all();
            }
            reader.text.lock().unwrap().1 = true;
            reader.changed.notify_all();
        });
        let mut server = Server {
            child,
            log,
            addrs: HashMap::new(),
            config,
            _dir: dir,
            status: None,
        };
        let ready = server.wait_log(|text| text.matches("listening name=").count() >= listeners);
        assert!(ready, "the server did not announce {listeners} listener(s)");
        server.addrs = parse_listening(&server.stderr());
        server
    }

    pub fn addr(&self, name: &str) -> SocketAddr {
        self.addrs[name]
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal by name (TERM, INT, HUP) with kill(1): no libc in tests either.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args(["-s", name, &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -s {name} failed");
    }

    pub fn stderr(&self) -> String {
        self.log.text.lock().unwrap().0.clone()
    }

    /// Waits (bounded by [`WAIT`]) until `done` holds for the stderr so far, or stderr ends.
    pub fn wait_log(&self, done: impl Fn(&str) -> bool) -> bool {
        let deadline = Instant::now() + WAIT;
        let mut text = self.log.text.lock().unwrap();
        loop {
            if done(&text.0) {
                return true;
            }
            let now = Instant::now();
            if text.1 || now >= deadline {
                return false;
            }
            text = self
                .log
                .changed
                .wait_timeout(text, deadline - now)
                .unwrap()
                .0;
        }
    }

    /// Waits for `needle` to appear `count` times in stderr.
    pub fn wait_for(&self, needle: &str, count: usize) {
        let found = self.wait_log(|t| t.matches(needle).count() >= count);
        assert!(
            found,
            "`{needle}` x{count} never appeared in the server's stderr"
        );
    }

    /// Waits for the process to exit: its stderr closes first, then `wait` is immediate.
    pub fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        let start = Instant::now();
        let deadline = start + within;
        let mut text = self.log.text.lock().unwrap();
        while !text.1 && Instant::now() < deadline {
            let left = deadline.saturating_duration_since(Instant::now());
            text = self.log.changed.wait_timeout(text, left).unwrap().0;
        }
        let closed = text.1;
        drop(text);
        assert!(closed, "the server did not exit within {within:?}");
        let status = self.child.wait().unwrap();
        self.status = Some(status);
        status
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.status.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if std::thread::panicking() {
            let text = self.stderr();
            let lines: Vec<&str> = text.lines().collect();
            let tail = lines[lines.len().saturating_sub(40)..].join("\n");
            eprintln!(
                "--- coreloop --config {} : stderr tail ---\n{tail}\n--- config ---\n{}",
                self.config.display(),
                std::fs::read_to_string(&self.config).unwrap_or_default()
            );
        }
    }
}

/// `name -> address` from `listening name=N protocol=P address=A` lines (text or JSON).
pub fn parse_listening(text: &str) -> HashMap<String, SocketAddr> {
    let mut addrs = HashMap::new();
    for line in text.lines() {
        let Some(at) = line.find("listening name=") else {
            continue;
        };
        let rest = &line[at + "listening name=".len()..];
        let name = rest.split(' ').next().unwrap().to_owned();
        let address = rest.split("address=").nth(1).unwrap();
        let address: String = address
            .chars()
            .take_while(|c| !c.is_whitespace() && *c != '"')
            .collect();
        // Unix socket listeners (`unix:/path`) have no SocketAddr; tests use their path.
        if let Ok(address) = address.parse() {
            addrs.insert(name, address);
        }
    }
    addrs
}

/// A response: status, lower-cased header names, body.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A keep-alive HTTP/1.1 client connection.
pub struct Conn {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    pub fn open(addr: SocketAddr) -> Conn {
        let stream = TcpStream::connect_timeout(&addr, WAIT).unwrap();
        stream.set_read_timeout(Some(WAIT)).unwrap();
        stream.set_write_timeout(Some(WAIT)).unwrap();
        Conn {
            stream,
            buf: Vec::new(),
        }
    }

    pub fn send(&mut self, request: &str) -> std::io::Result<()> {
        self.stream.write_all(request.as_bytes())
    }

    pub fn get(&mut self, path: &str) -> Response {
        self.send(&format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n"))
            .unwrap();
        self.read_response().unwrap()
    }

    /// Reads one whole response (Content-Length framing, which is all coreloop writes).
    pub fn read_response(&mut self) -> std::io::Result<Response> {
        let head_end = loop {
            if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                break i + 4;
            }
            self.fill()?;
        };
        let head = String::from_utf8_lossy(&self.buf[..head_end]).into_owned();
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .unwrap()
            .split(' ')
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        let headers: Vec<(String, String)> = lines
            .filter(|l| !l.is_empty())
            .map(|l| {
                let (n, v) = l.split_once(':').unwrap();
                (n.trim().to_ascii_lowercase(), v.trim().to_owned())
            })
            .collect();
        let length: usize = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .map_or(0, |(_, v)| v.parse().unwrap());
        while self.buf.len() < head_end + length {
            self.fill()?;
        }
        let body = self.buf[head_end..head_end + length].to_vec();
        self.buf.drain(..head_end + length);
        Ok(Response {
            status,
            headers,
            body,
        })
    }

    /// Reads until the peer closes; `Ok` only for a clean FIN with nothing unread.
    pub fn read_eof(&mut self) -> std::io::Result<usize> {
        let mut rest = Vec::new();
        self.stream.read_to_end(&mut rest)?;
        Ok(rest.len() + self.buf.len())
    }

    fn fill(&mut self) -> std::io::Result<()> {
        let mut chunk = [0u8; 16 * 1024];
        // A read with SO_RCVTIMEO is not restarted after a signal or a ptrace stop (the key
        // tests run strace): EINTR means "read again", the timeout still bounds the wait.
        let n = loop {
            match self.stream.read(&mut chunk) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                other => break other?,
            }
        };
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(())
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// One request on a fresh connection.
pub fn get(addr: SocketAddr, path: &str) -> Response {
    Conn::open(addr).get(path)
}

/// A sample: name, sorted labels, value.
pub type Sample = (String, Vec<(String, String)>, f64);

/// Families and samples of an OpenMetrics/Prometheus text exposition.
#[derive(Debug, Default)]
pub struct Exposition {
    /// family name -> type
    pub types: HashMap<String, String>,
    /// (sample name, sorted labels, value)
    pub samples: Vec<Sample>,
}

impl Exposition {
    /// Parses the 0.0.4 text format strictly enough to catch a malformed line: every sample
    /// belongs to a declared family, labels are `k="v"` pairs, values are numbers, and there
    /// is no OpenMetrics `# EOF`.
    pub fn parse(text: &str) -> Exposition {
        let mut e = Exposition::default();
        for line in text.lines() {
            assert_ne!(line, "# EOF", "OpenMetrics text where 0.0.4 was promised");
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').unwrap();
                e.types.insert(name.to_owned(), kind.to_owned());
            } else if line.starts_with("# HELP ") || line.starts_with("# UNIT ") {
            } else {
                e.samples.push(parse_sample(line));
            }
        }
        for (name, _, _) in &e.samples {
            assert!(e.family_of(name).is_some(), "sample {name} has no # TYPE");
        }
        e
    }

    /// The family a sample name belongs to (`x_total` -> `x`, `x_bucket` -> `x`, ...).
    pub fn family_of(&self, sample: &str) -> Option<String> {
        if self.types.contains_key(sample) {
            return Some(sample.to_owned());
        }
        ["_total", "_bucket", "_sum", "_count", "_created", "_info"]
            .iter()
            .filter_map(|s| sample.strip_suffix(s))
            .find(|f| self.types.contains_key(*f))
            .map(str::to_owned)
    }

    /// Sum of every sample called `name` whose labels include all of `with`.
    pub fn sum(&self, name: &str, with: &[(&str, &str)]) -> f64 {
        self.samples
            .iter()
            .filter(|(n, labels, _)| {
                n == name
                    && with
                        .iter()
                        .all(|(k, v)| labels.iter().any(|(lk, lv)| lk == k && lv == v))
            })
            .map(|(_, _, v)| v)
            .sum()
    }
}

fn parse_sample(line: &str) -> Sample {
    let (name, labels, value) = match line.find('{') {
        Some(open) => {
            let close = line.rfind('}').expect("unclosed labels");
            let labels = &line[open + 1..close];
            (&line[..open], labels, line[close + 1..].trim())
        }
        None => {
            let (name, value) = line.split_once(' ').expect("a sample has a value");
            (name, "", value.trim())
        }
    };
    assert!(
        name.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
        "bad metric name in {line}"
    );
    let mut parsed = Vec::new();
    for pair in labels.split("\",").filter(|p| !p.is_empty()) {
        let (k, v) = pair
            .split_once("=\"")
            .unwrap_or_else(|| panic!("bad label in {line}"));
        parsed.push((k.to_owned(), v.trim_end_matches('"').to_owned()));
    }
    parsed.sort();
    let value: f64 = match value {
        "+Inf" => f64::INFINITY,
        v => v.parse().unwrap_or_else(|_| panic!("bad value in {line}")),
    };
    (name.to_owned(), parsed, value)
}

/// Scrapes `/metrics` on `addr` over a fresh connection and parses it.
pub fn scrape(addr: SocketAddr) -> Exposition {
    let response = get(addr, "/metrics");
    assert_eq!(response.status, 200);
    Exposition::parse(&response.text())
}

pub fn repo_file(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}
