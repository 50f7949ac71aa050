//! Out of file descriptors: the server (in a child process with a low RLIMIT_NOFILE) pauses
//! accepting on a timer instead of spinning, and serves the waiting clients once fds free up.
//!
//! The child is this same test binary, started with `CORELOOP_EMFILE_CHILD` set: the test then
//! plays `child_server`, which lowers its own limit, fills its fd table with /dev/null handles,
//! and takes orders on stdin (`free`, `stats`, `quit`). No helper test passes by doing nothing.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use coreloop_reactor::echo::EchoFactory;
use coreloop_reactor::Balance;

const CHILD_ENV: &str = "CORELOOP_EMFILE_CHILD";
const FD_LIMIT: u64 = 160;
const SPARE_FDS: usize = 3;
const CLIENTS: usize = 40;

/// The server side, in the child process.
fn child_server() {
    rlimit::setrlimit(rlimit::Resource::NOFILE, FD_LIMIT, FD_LIMIT).expect("lowering the fd limit");
    let reactor = support::start(
        1,
        Balance::LeastLoaded,
        support::loopback(),
        Arc::new(EchoFactory),
        |c| {
            c.max_connections = 64;
            c.offload_threads = 1;
            c.accept_backoff = Duration::from_millis(50);
        },
    );
    let mut hoard = Vec::new();
    while let Ok(file) = std::fs::File::open("/dev/null") {
        hoard.push(file);
    }
    hoard.truncate(hoard.len() - SPARE_FDS);
    println!("addr={}", support::tcp_addr(&reactor));
    for line in std::io::stdin().lines() {
        match line.as_deref().unwrap_or("quit") {
            "free" => hoard.clear(),
            "stats" => {
                let snapshot = reactor.snapshot();
                println!(
                    "paused={} active={}",
                    snapshot.accept.paused[0],
                    snapshot.active()
                );
            }
            _ => break,
        }
    }
    reactor.shutdown(Duration::from_secs(1));
}

/// User plus system CPU seconds of a process, from /proc/PID/stat (fields 14 and 15, in ticks).
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc/PID/stat");
    let after_name = &stat[stat.rfind(')').expect("a stat line") + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    ticks as f64 / 100.0
}

#[test]
fn out_of_fds_pauses_without_spinning_and_recovers_when_fds_free_up() {
    if std::env::var_os(CHILD_ENV).is_some() {
        return child_server();
    }
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "out_of_fds_pauses_without_spinning_and_recovers_when_fds_free_up",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("the child server starts");
    let mut orders = child.stdin.take().unwrap();
    let mut replies = BufReader::new(child.stdout.take().unwrap()).lines();
    // The test harness prints around the child's lines (`test out_of_fds_... ... addr=...`).
    let mut reply = move || loop {
        let line = replies.next().expect("the child answers").expect("a line");
        if let Some(at) = line.find("addr=").or_else(|| line.find("paused=")) {
            return line[at..].to_owned();
        }
    };
    let addr: std::net::SocketAddr = reply()
        .trim_start_matches("addr=")
        .parse()
        .expect("an address");

    // More clients than fds: the kernel's backlog holds those the server cannot take.
    let mut clients: Vec<_> = (0..CLIENTS).map(|_| support::connect(addr)).collect();
    let mut stats = || {
        writeln!(orders, "stats").unwrap();
        let line = reply();
        let number = |key: &str| -> u64 {
            line.split_whitespace()
                .find_map(|kv| kv.strip_prefix(key))
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("no {key} in {line:?}"))
        };
        (number("paused="), number("active="))
    };
    support::wait_until(
        Duration::from_secs(10),
        "accepting to pause on EMFILE",
        || stats().0 >= 1,
    );

    // Saturated: one second of wall time should cost the child almost no CPU.
    let before = cpu_seconds(child.id());
    std::thread::sleep(Duration::from_secs(1));
    let spent = cpu_seconds(child.id()) - before;
    assert!(
        spent < 0.25,
        "the child spent {spent}s of CPU in 1s while out of fds: a busy loop"
    );
    let (_, active) = stats();
    assert!(
        active < CLIENTS as u64,
        "only {SPARE_FDS} spare fds, yet {active} connections"
    );

    writeln!(orders, "free").unwrap();
    for (i, client) in clients.iter_mut().enumerate() {
        let message = format!("client {i}");
        support::write_all(client, message.as_bytes());
        assert_eq!(
            support::read_exact(client, message.len()),
            message.as_bytes()
        );
    }
    writeln!(orders, "quit").unwrap();
    let status = child.wait().expect("the child exits");
    assert!(status.success(), "child exit: {status}");
}
