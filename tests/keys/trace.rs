//! Watching the server's socket calls with strace(1), for keys whose only outside effect is
//! how the server reads and writes (buffer sizes, responses per write). .ci/setup installs it.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;

use crate::support::{TempDir, WAIT};

/// strace attached to every thread of a running server.
pub struct Trace {
    child: Child,
    dir: TempDir,
}

impl Trace {
    /// Attaches to `pid` for the calls in `syscalls` (e.g. `"sendto,recvfrom"`); returns once
    /// every thread is attached, so what the test does next is seen.
    pub fn attach(pid: u32, syscalls: &str) -> Trace {
        let dir = TempDir::new();
        let mut child = Command::new("strace")
            .args(["-f", "-p", &pid.to_string(), "-e"])
            .arg(format!("trace={syscalls}"))
            .arg("-o")
            .arg(dir.0.join("trace"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("strace is missing: .ci/setup installs it");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        // "Process N attached with K threads" comes once all K are seized.
        let line = rx.recv_timeout(WAIT).expect("strace did not attach");
        assert!(line.contains("attached"), "strace: {line}");
        Trace { child, dir }
    }

    /// Detaches and returns the calls seen, one per line as strace writes them.
    pub fn finish(mut self) -> String {
        let status = Command::new("kill")
            .args(["-s", "INT", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let _ = self.child.wait();
        std::fs::read_to_string(self.dir.0.join("trace")).unwrap()
    }
}

impl Drop for Trace {
    /// A test that failed while tracing must not leave strace attached.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The return values of every completed `call` in `trace` (e.g. bytes written by `sendto`).
pub fn returns(trace: &str, call: &str) -> Vec<i64> {
    trace
        .lines()
        .filter(|l| {
            l.contains(&format!(" {call}(")) || l.contains(&format!("<... {call} resumed>"))
        })
        .filter_map(|l| {
            l.rsplit_once(") = ")
                .and_then(|(_, r)| r.split(' ').next()?.parse().ok())
        })
        .collect()
}

/// The length argument (the one after the buffer) of every `call` in `trace`, e.g.
/// `recvfrom`'s buffer size. A call interrupted by another thread's line is read from its
/// `resumed` half.
pub fn length_args(trace: &str, call: &str) -> Vec<u64> {
    let (start, resumed) = (format!(" {call}("), format!("<... {call} resumed>"));
    trace
        .lines()
        .filter_map(|l| {
            l.split_once(&start)
                .or_else(|| l.split_once(&resumed))
                .map(|(_, rest)| rest)
        })
        .filter_map(|rest| {
            // `fd, "data"..., LEN, ...`: the length follows the buffer's (elided) string.
            let after = &rest[rest.rfind('"')? + 1..];
            let after = after.strip_prefix("...").unwrap_or(after);
            after
                .strip_prefix(", ")?
                .split(',')
                .next()?
                .trim()
                .parse()
                .ok()
        })
        .collect()
}
