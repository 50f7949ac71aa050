//! Issue 10, §1: sockets passed by systemd that no listener can serve are refused at start
//! (exit status 1) with a message naming the fd, the name and the fix, and the `listening`
//! line says when a socket was inherited rather than bound.

use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{config, TempDir, BIN, WAIT};

fn activator() -> PathBuf {
    let path = std::env::var_os("PATH").expect("PATH");
    std::env::split_paths(&path)
        .map(|dir| dir.join("systemd-socket-activate"))
        .find(|p| p.exists())
        .expect("systemd-socket-activate is missing: .ci/setup installs Debian's systemd package")
}

fn free_port() -> u16 {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    probe.local_addr().unwrap().port()
}

/// Starts the server under the activator (which execs it on the first connection) and makes
/// that first connection; returns the child and the connection.
fn activated(fdname: Option<&str>, dir: &TempDir) -> (Child, u16, std::net::TcpStream) {
    let port = free_port();
    let path = dir.write("coreloop.toml", &config(&[]));
    let mut command = Command::new(activator());
    command.arg(format!("--listen=127.0.0.1:{port}"));
    if let Some(name) = fdname {
        command.arg(format!("--fdname={name}"));
    }
    let child = command
        .arg(BIN)
        .args(["--config", path.to_str().unwrap()])
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("systemd-socket-activate starts");
    let deadline = Instant::now() + WAIT;
    let stream = loop {
        if let Ok(stream) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            break stream;
        }
        assert!(Instant::now() < deadline, "the activator never listened");
        std::thread::sleep(Duration::from_millis(20));
    };
    stream.set_read_timeout(Some(WAIT)).unwrap();
    (child, port, stream)
}

/// Waits (bounded) for the server to exit on its own; its status code and stderr.
fn exit_of(mut child: Child) -> (Option<i32>, String) {
    let deadline = Instant::now() + WAIT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            panic!("the server did not exit on a refused socket");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    (status.code(), stderr)
}

#[test]
fn an_unnamed_passed_socket_is_refused_at_start() {
    let dir = TempDir::new();
    let (child, _, _client) = activated(None, &dir);
    let (code, stderr) = exit_of(child);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("fd 3 without a name"), "{stderr}");
    assert!(stderr.contains("FileDescriptorName="), "{stderr}");
}

#[test]
fn a_passed_socket_named_for_no_listener_is_refused_at_start() {
    let dir = TempDir::new();
    let (child, _, _client) = activated(Some("nobody"), &dir);
    let (code, stderr) = exit_of(child);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("fd 3 named `nobody`, but no listener is called `nobody`"),
        "{stderr}"
    );
}

#[test]
fn the_listening_line_says_which_socket_was_inherited() {
    let dir = TempDir::new();
    let (child, port, mut client) = activated(Some("web"), &dir);
    use std::io::Write;
    client
        .write_all(b"GET /plaintext HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut response = String::new();
    let _ = client.read_to_string(&mut response);
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    let _ = Command::new("kill")
        .args(["-s", "TERM", &child.id().to_string()])
        .status();
    let (code, stderr) = exit_of(child);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "listening name=web protocol=http address=127.0.0.1:{port} socket=inherited"
        )),
        "{stderr}"
    );
    assert!(stderr.contains("socket=bound"), "{stderr}");
}
