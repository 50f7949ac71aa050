//! systemd socket activation: under `systemd-socket-activate` the reactor adopts the passed
//! listening socket by its name and serves on it.
//!
//! The server is this same test binary, started by `systemd-socket-activate` with
//! `CORELOOP_ACTIVATED_CHILD` set: the test itself then plays the server (no helper test that
//! passes by doing nothing in a normal run), and stops when its stdin closes.

mod support;

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use coreloop_reactor::echo::EchoFactory;
use coreloop_reactor::{activation, Balance, ListenAddr};

const CHILD_ENV: &str = "CORELOOP_ACTIVATED_CHILD";

/// The server side, in the child process.
fn activated_child() {
    assert_eq!(activation::inherited_names(), ["greeting"]);
    let addr = ListenAddr::Inherited("greeting".into());
    let reactor = support::start(2, Balance::ReusePort, addr, Arc::new(EchoFactory), |_| {});
    let _ = std::io::stdin().read_line(&mut String::new());
    reactor.shutdown(Duration::from_secs(1));
}

fn free_port() -> u16 {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    probe.local_addr().unwrap().port()
}

#[test]
fn an_inherited_socket_is_adopted_by_name_and_served() {
    if std::env::var_os(CHILD_ENV).is_some() {
        return activated_child();
    }
    let Ok(tool) = which("systemd-socket-activate") else {
        panic!("systemd-socket-activate is missing: .ci/setup installs Debian's systemd package");
    };
    let port = free_port();
    let mut activator = Command::new(tool)
        .arg(format!("--listen=127.0.0.1:{port}"))
        .arg("--fdname=greeting")
        .arg(format!("--setenv={CHILD_ENV}=1"))
        .arg(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "an_inherited_socket_is_adopted_by_name_and_served",
            "--nocapture",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("systemd-socket-activate starts");
    // The activator listens at once and starts the server on the first connection.
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut client = None;
    support::wait_until(Duration::from_secs(10), "the activator to listen", || {
        client = std::net::TcpStream::connect(addr).ok();
        client.is_some()
    });
    let mut client = client.unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    support::write_all(&mut client, b"activated");
    assert_eq!(support::read_exact(&mut client, 9), b"activated");
    drop(client);
    drop(activator.stdin.take());
    let output = activator.wait_with_output().expect("the server exits");
    assert!(
        output.status.success(),
        "server failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn which(name: &str) -> Result<std::path::PathBuf, ()> {
    let path = std::env::var_os("PATH").ok_or(())?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.exists())
        .ok_or(())
}

/// Issue 10, §1: accept on a socket that is not listening fails at once and forever, so one
/// is refused at start, with its fd, its name and the fix.
#[test]
fn a_passed_socket_that_is_not_listening_is_refused_with_its_fd_and_name() {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    socket
        .bind(
            &"127.0.0.1:0"
                .parse::<std::net::SocketAddr>()
                .unwrap()
                .into(),
        )
        .unwrap();
    let fd = std::os::fd::AsRawFd::as_raw_fd(&socket);
    assert!(activation::offer("quiet", socket.into()).is_ok());
    let mut config = {
        let mut config = coreloop_reactor::ReactorConfig::default();
        config.shards = 1;
        config.offload_threads = 1;
        config
    };
    config.listeners.push(
        coreloop_reactor::ListenerSpec::new(
            "quiet",
            ListenAddr::Inherited("quiet".into()),
            Arc::new(EchoFactory),
        )
        .with_backlog(16),
    );
    let Err(error) = coreloop_reactor::start(config) else {
        panic!("a socket that is not listening was adopted");
    };
    let message = error.to_string();
    assert!(
        message.contains(&format!(
            "fd {fd} (`quiet`) is not listening (SO_ACCEPTCONN is 0)"
        )),
        "{message}"
    );
    assert!(message.contains("ListenStream="), "{message}");
}
