//! Issue 10, §4: a drain says how it ended. One final line counts the connections closed
//! cleanly and those cut at the deadline, and a drain that cut work exits with status 3.

use std::io::{Read, Write};
use std::time::Duration;

use crate::support::{config, Conn, Server};

#[test]
fn a_drain_that_cuts_a_connection_says_so_and_exits_3() {
    let mut server = Server::start(&config(&[("drain = \"30s\"", "drain = \"300ms\"")]));
    // Echo keeps a connection open through a drain until its peer closes: this one is cut.
    let mut echo = std::net::TcpStream::connect(server.addr("echo")).unwrap();
    echo.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    echo.write_all(b"ping").unwrap();
    let mut back = [0u8; 4];
    echo.read_exact(&mut back).unwrap();
    server.signal("TERM");
    let status = server.wait_exit(Duration::from_secs(10));
    let stderr = server.stderr();
    assert_eq!(status.code(), Some(3), "{stderr}");
    assert!(
        stderr
            .contains("connections: 0 closed cleanly, 1 cut at the drain deadline (exit status 3)"),
        "{stderr}"
    );
}

#[test]
fn a_drain_that_finishes_everything_says_so_and_exits_0() {
    let mut server = Server::start(&config(&[]));
    let mut idle = Conn::open(server.addr("web"));
    assert_eq!(idle.get("/plaintext").status, 200);
    server.signal("TERM");
    // The idle keep-alive connection is closed within the drain grace: nothing is cut.
    assert_eq!(idle.read_eof().unwrap(), 0);
    let status = server.wait_exit(Duration::from_secs(10));
    let stderr = server.stderr();
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("connections: 1 closed cleanly, 0 cut at the drain deadline"),
        "{stderr}"
    );
}
