//! The second SIGTERM/SIGINT exits at once, whatever the drain is waiting for.

use std::io::{Read, Write};
use std::net::TcpStream;

use crate::support::{config, Server, WAIT};

/// Sends `bytes` on the echo connection and reads them back.
fn echoed(conn: &mut TcpStream, bytes: &[u8]) {
    conn.write_all(bytes).unwrap();
    let mut back = vec![0; bytes.len()];
    conn.read_exact(&mut back).unwrap();
    assert_eq!(back, bytes);
}

/// Issue 10 section 1: the second signal must not wait on any thread. An echo connection
/// that its client keeps open holds the drain until its deadline, two minutes away, so an
/// exit within [`WAIT`] can only be the second signal's.
#[test]
fn a_second_sigterm_ends_a_long_drain_with_status_1() {
    let mut server = Server::start(&config(&[("drain = \"30s\"", "drain = \"2m\"")]));
    let mut held = TcpStream::connect(server.addr("echo")).unwrap();
    held.set_read_timeout(Some(WAIT)).unwrap();
    echoed(&mut held, b"before");
    server.signal("TERM");
    server.wait_for("draining (deadline 2m)", 1);
    // Still draining: the echo connection is served, the process has not exited.
    echoed(&mut held, b"during");
    server.signal("TERM");
    let status = server.wait_exit(WAIT);
    assert_eq!(
        status.code(),
        Some(1),
        "the documented status of a cut drain"
    );
    server.wait_for("second SIGTERM: exiting without finishing the drain", 1);
    let mut rest = Vec::new();
    assert_eq!(
        held.read_to_end(&mut rest).map(|_| rest.len()).unwrap_or(0),
        0
    );
}
