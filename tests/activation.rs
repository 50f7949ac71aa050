//! systemd socket activation: under `systemd-socket-activate` the server takes the socket
//! passed for a listener's name instead of binding that listener's address.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{config, TempDir, BIN, WAIT};

fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.exists())
}

#[test]
fn a_listener_adopts_the_socket_passed_under_its_name() {
    let tool = which("systemd-socket-activate")
        .expect("systemd-socket-activate is missing: .ci/setup installs Debian's systemd package");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = TempDir::new();
    // The file says port 0 for `web`; the passed socket on `port` must win.
    let path = dir.write("coreloop.toml", &config(&[]));
    let activator = Command::new(tool)
        .arg(format!("--listen=127.0.0.1:{port}"))
        .arg("--fdname=web")
        .arg(BIN)
        .args(["--config", path.to_str().unwrap()])
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("systemd-socket-activate starts");
    // The activator starts the server on the first connection; keep trying until it listens.
    let deadline = Instant::now() + Duration::from_secs(10);
    let response = loop {
        assert!(
            Instant::now() < deadline,
            "no answer through the activated socket"
        );
        if let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            stream
                .set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            use std::io::{Read, Write};
            stream
                .write_all(b"GET /plaintext HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
                .unwrap();
            let mut text = String::new();
            let _ = stream.read_to_string(&mut text);
            break text;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.ends_with("Hello, World!"), "{response}");
    let _ = Command::new("kill")
        .args(["-s", "TERM", &activator.id().to_string()])
        .status();
    let output = activator.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "listening name=web protocol=http address=127.0.0.1:{port}"
        )),
        "{stderr}"
    );
    assert!(output.status.success(), "{stderr}");
}

/// Issue 10 section 1: passed sockets the server cannot use are refused at start, exit 1, with
/// a message naming the fd and the name, and the `listening` line says when a socket was
/// inherited.
mod refusals {
    use std::net::{TcpStream, UdpSocket};
    use std::process::{Command, Output, Stdio};
    use std::time::Instant;

    use super::{config, which, Duration, TempDir, BIN, WAIT};

    /// Runs the server under systemd-socket-activate with `activate` options on a fresh port,
    /// pokes the socket (`udp` for a datagram one) so the activator execs it, and returns its
    /// output once it exits (killed after [`WAIT`] if it does not).
    fn activated(activate: &[&str], udp: bool) -> (Output, bool) {
        let tool = which("systemd-socket-activate").expect("systemd-socket-activate is missing");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = TempDir::new();
        let path = dir.write("coreloop.toml", &config(&[]));
        let mut child = Command::new(tool)
            .arg(format!("--listen=127.0.0.1:{port}"))
            .args(activate)
            .arg(BIN)
            .args(["--config", path.to_str().unwrap()])
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + WAIT;
        let mut exited = false;
        while Instant::now() < deadline {
            if udp {
                let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
                let _ = socket.send_to(b"x", ("127.0.0.1", port));
            } else {
                let _ = TcpStream::connect(("127.0.0.1", port));
            }
            if child.try_wait().unwrap().is_some() {
                exited = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        if !exited {
            let _ = child.kill();
        }
        (child.wait_with_output().unwrap(), exited)
    }

    fn refused(activate: &[&str], udp: bool, names: &[&str]) {
        let (out, exited) = activated(activate, udp);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            exited,
            "the server ran on with an unusable passed socket:\n{stderr}"
        );
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains("fd 3") || stderr.contains("fd=3"),
            "no fd named:\n{stderr}"
        );
        for name in names {
            assert!(stderr.contains(name), "{name} not named:\n{stderr}");
        }
    }

    #[test]
    fn a_passed_socket_whose_name_matches_no_listener_is_refused() {
        refused(&["--fdname=nomatch"], false, &["nomatch"]);
    }

    #[test]
    fn an_unnamed_passed_socket_is_refused() {
        refused(&[], false, &[]);
    }

    #[test]
    fn a_passed_socket_that_is_not_listening_is_refused() {
        refused(&["--datagram", "--fdname=web"], true, &["web"]);
    }

    #[test]
    fn the_listening_line_says_the_socket_was_inherited() {
        use std::io::{BufRead, BufReader};
        let tool = which("systemd-socket-activate").expect("systemd-socket-activate is missing");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = TempDir::new();
        let path = dir.write("coreloop.toml", &config(&[]));
        let mut child = Command::new(tool)
            .arg(format!("--listen=127.0.0.1:{port}"))
            .arg("--fdname=web")
            .arg(BIN)
            .args(["--config", path.to_str().unwrap()])
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        // The first connection makes the activator exec the server.
        let deadline = Instant::now() + WAIT;
        let poke = loop {
            match TcpStream::connect(("127.0.0.1", port)) {
                Ok(stream) => break Some(stream),
                Err(_) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                Err(_) => break None,
            }
        };
        let mut line = String::new();
        while let Ok(next) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            if next.contains("listening name=web") {
                line = next;
                break;
            }
        }
        // Nothing may panic before the activator (the server, once exec'd) is gone.
        let listened = poke.is_some();
        drop(poke);
        let _ = child.kill();
        let _ = child.wait();
        assert!(listened, "the activator never listened on 127.0.0.1:{port}");
        assert!(line.contains("inherited"), "the listening line: {line:?}");
    }
}
