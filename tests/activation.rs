//! systemd socket activation: under `systemd-socket-activate` the server takes the socket
//! passed for a listener's name instead of binding that listener's address.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{config, TempDir, BIN};

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
