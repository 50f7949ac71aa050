//! Handshakes that fail, stall or end badly: each closes the connection and is counted by
//! cause; a session that ends well sends close_notify, one the peer cuts is counted.

use std::io::Write;
use std::net::TcpStream;

use super::{client_config, closed_by_server, connect, tls_get, TlsServer};

fn errors(tls: &TlsServer, reason: &str) -> f64 {
    tls.metric(
        "coreloop_tls_handshake_errors_total",
        &[("listener", "web-tls"), ("reason", reason)],
    )
}

/// A TLS record header announcing a ClientHello, and only part of it.
const TRUNCATED: &[u8] = &[
    0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03,
];

/// Garbage, a plaintext request and a truncated ClientHello followed by EOF: closed, counted.
#[test]
pub fn bad_first_bytes_close_and_are_counted_by_cause() {
    let tls = TlsServer::start("", &[]);
    let cases: &[(&[u8], &str)] = &[
        (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "malformed"),
        (&[0xff; 64], "malformed"),
        (TRUNCATED, "eof"),
    ];
    for (i, (bytes, reason)) in cases.iter().enumerate() {
        let mut conn = TcpStream::connect(tls.web()).unwrap();
        conn.write_all(bytes).unwrap();
        if *reason == "eof" {
            conn.shutdown(std::net::Shutdown::Write).unwrap();
        }
        assert!(closed_by_server(&mut conn), "case {i} was not closed");
        assert!(
            crate::support::eventually(|| errors(&tls, reason) >= 1.0),
            "case {i}: no {reason} counted"
        );
    }
    assert_eq!(errors(&tls, "malformed"), 2.0);
    // Half a ClientHello, then a reset (SO_LINGER 0) instead of a FIN.
    let script = r#"
import socket, struct, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
s.sendall(bytes.fromhex(sys.argv[2]))
s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
s.close()
"#;
    let hex: String = TRUNCATED.iter().map(|b| format!("{b:02x}")).collect();
    super::python(script, &[&tls.web().port().to_string(), &hex]);
    assert!(
        crate::support::eventually(|| errors(&tls, "eof") == 2.0),
        "a reset mid-handshake was not counted"
    );
    // A bad handshake harms nobody else.
    let config = client_config(&tls.cert, &["http/1.1"]);
    let mut good = connect(tls.web(), &config).unwrap();
    assert_eq!(tls_get(&mut good, "/plaintext").unwrap().0, 200);
}

/// Opens a silent connection and one that sent half a ClientHello to `addr`; whether the
/// server closed both (within WAIT).
fn stalled_both_reaped(addr: std::net::SocketAddr) -> bool {
    let mut silent = TcpStream::connect(addr).unwrap();
    let mut partial = TcpStream::connect(addr).unwrap();
    partial.write_all(TRUNCATED).unwrap();
    closed_by_server(&mut silent) && closed_by_server(&mut partial)
}

fn timeouts(tls: &TlsServer, listener: &str) -> f64 {
    tls.metric(
        "coreloop_tls_handshake_errors_total",
        &[("listener", listener), ("reason", "timeout")],
    )
}

/// A client that opens TLS and stalls mid-handshake is a slowloris: the header deadline,
/// which runs from the accept, reaps it even when `handshake_timeout` is far away.
#[test]
pub fn stalled_handshakes_are_reaped_at_the_header_deadline() {
    let tls = TlsServer::start(
        ", handshake_timeout = \"60s\"",
        &[("header = \"10s\"", "header = \"1s\"")],
    );
    assert!(
        stalled_both_reaped(tls.web()),
        "a stalled handshake outlived the header deadline"
    );
    assert!(crate::support::eventually(
        || timeouts(&tls, "web-tls") == 2.0
    ));
}

/// `handshake_timeout` reaps stalled handshakes on every listener (echo has no deadline of
/// its own), far before a header deadline.
#[test]
pub fn handshake_timeout_reaps_stalled_handshakes() {
    let tls = TlsServer::start(
        ", handshake_timeout = \"1s\"",
        &[("header = \"10s\"", "header = \"60s\"")],
    );
    for addr in [tls.web(), tls.echo()] {
        assert!(
            stalled_both_reaped(addr),
            "a stalled handshake outlived handshake_timeout"
        );
    }
    assert!(crate::support::eventually(|| timeouts(&tls, "web-tls")
        == 2.0
        && timeouts(&tls, "echo-tls") == 2.0));
}

/// Handshakes are counted and timed; a peer that closes the TCP connection without
/// close_notify is counted as unclean, and the connection is closed as a normal EOF.
#[test]
pub fn handshakes_are_timed_and_unclean_closes_counted() {
    let tls = TlsServer::start("", &[]);
    let config = client_config(&tls.cert, &["http/1.1"]);
    for _ in 0..3 {
        let mut conn = connect(tls.web(), &config).unwrap();
        assert_eq!(
            tls_get(&mut conn, "/plaintext").unwrap(),
            (200, "Hello, TLS!".into())
        );
        // Dropping the stream closes the socket without close_notify.
    }
    let web = [("listener", "web-tls")];
    let count = || tls.metric("coreloop_tls_handshake_duration_seconds_count", &web);
    assert!(crate::support::eventually(|| count() == 3.0));
    let inf = [("listener", "web-tls"), ("le", "+Inf")];
    assert_eq!(
        tls.metric("coreloop_tls_handshake_duration_seconds_bucket", &inf),
        3.0
    );
    let unclean = || tls.metric("coreloop_tls_unclean_closes_total", &web);
    assert!(
        crate::support::eventually(|| unclean() == 3.0),
        "got {}",
        unclean()
    );
    let errors: f64 = ["malformed", "incompatible", "eof", "timeout", "other"]
        .iter()
        .map(|r| errors(&tls, r))
        .sum();
    assert_eq!(errors, 0.0, "an unclean close is not a handshake error");
}

/// Large transfers go through TLS whole: 4 MiB through the echo listener, the client
/// staying up to 192 KiB behind, so the server's writes come up short and it pauses reading.
#[test]
pub fn large_echo_through_tls_arrives_whole() {
    use std::io::Read;
    let tls = TlsServer::start("", &[]);
    let config = client_config(&tls.cert, &[]);
    let mut conn = connect(tls.echo(), &config).unwrap();
    let payload: Vec<u8> = (0..4u32 << 20).map(|i| (i % 251) as u8).collect();
    let mut back = Vec::with_capacity(payload.len());
    let mut buf = vec![0; 64 * 1024];
    const CHUNK: usize = 64 * 1024;
    for (i, chunk) in payload.chunks(CHUNK).enumerate() {
        conn.write_all(chunk).unwrap();
        let written = i * CHUNK + chunk.len();
        while back.len() + (192 << 10) < written {
            let n = conn.read(&mut buf).unwrap();
            assert!(n > 0, "EOF after {} bytes", back.len());
            back.extend_from_slice(&buf[..n]);
        }
    }
    while back.len() < payload.len() {
        let n = conn.read(&mut buf).unwrap();
        assert!(n > 0, "EOF after {} bytes", back.len());
        back.extend_from_slice(&buf[..n]);
    }
    assert!(back == payload, "the echo differs");
}

/// A TLS peer that sends and never reads: the echo's output backs up past the high-water mark,
/// the server stops reading, and the write deadline closes it, as in plaintext.
#[test]
pub fn a_tls_peer_that_never_reads_meets_the_write_deadline() {
    let tls = TlsServer::start("", &[("write = \"30s\"", "write = \"1s\"")]);
    let config = client_config(&tls.cert, &[]);
    let mut conn = connect(tls.echo(), &config).unwrap();
    conn.sock
        .set_write_timeout(Some(std::time::Duration::from_millis(200)))
        .unwrap();
    // Bounded: at most 64 MiB, until the kernel buffers on both sides are full.
    let chunk = vec![7u8; 64 * 1024];
    for _ in 0..1024 {
        if conn.write_all(&chunk).is_err() {
            break;
        }
    }
    let closed = |reason| {
        tls.metric(
            "coreloop_connections_closed_total",
            &[("listener", "echo-tls"), ("reason", reason)],
        )
    };
    assert!(
        crate::support::eventually(|| closed("write_timeout") == 1.0),
        "not closed by the write deadline"
    );
}
