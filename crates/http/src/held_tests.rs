//! What a connection holds outside the request cycle (`crate::held`), through the reactor's
//! `Harness`: `/delay` on the connection's deadline, file bodies window by window.

use std::path::PathBuf;
use std::time::Duration;

use coreloop_reactor::testing::Harness;
use coreloop_reactor::{ConnInfo, Protocol, ProtocolFactory, Verb};

use crate::files::FilesSpec;
use crate::{Handler, HttpConfig, HttpFactory, Route};

const WINDOW: usize = 128 * 1024;

/// A directory holding `big.bin` of two and a half windows.
struct Dir(PathBuf);

impl Dir {
    fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("coreloop-held-{}-{tag}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("big.bin"), data()).unwrap();
        Self(dir)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn data() -> Vec<u8> {
    (0..WINDOW * 5 / 2).map(|i| (i % 253) as u8).collect()
}

fn open(dir: &Dir) -> (Harness, Box<dyn Protocol>) {
    let routes = vec![
        Route::get("/plaintext", Handler::text("hi")),
        Route::get(
            "/delay",
            Handler::Delay {
                max: Duration::from_secs(20),
            },
        ),
        Route {
            prefix: true,
            ..Route::get(
                "/files/",
                Handler::Files(FilesSpec {
                    root: dir.0.clone(),
                    index: None,
                    listing: false,
                }),
            )
        },
    ];
    let config = HttpConfig {
        offload_timeout: Duration::from_secs(5),
        ..HttpConfig::default()
    };
    let factory = HttpFactory::new(config, routes).unwrap();
    let mut protocol = factory.for_shard(0).open(&ConnInfo {
        listener: 0,
        peer: None,
        shard: 0,
    });
    let mut harness = Harness::new();
    harness.open(protocol.as_mut());
    (harness, protocol)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs the one queued job and delivers it.
fn run_one(harness: &mut Harness, protocol: &mut dyn Protocol) -> Verb {
    let mut done = harness.run_jobs();
    assert_eq!(done.len(), 1, "one job queued");
    harness.complete(protocol, done.remove(0))
}

#[test]
fn a_delay_is_the_connections_deadline_not_a_job() {
    let dir = Dir::new("delay");
    let (mut harness, mut protocol) = open(&dir);
    let two =
        b"GET /delay?ms=500 HTTP/1.1\r\nHost: a\r\n\r\nGET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n";
    // A wait on the connection's own deadline: the reactor reads nothing more meanwhile.
    assert_eq!(harness.push(protocol.as_mut(), two), Verb::AwaitCompletion);
    assert_eq!(harness.queued_jobs(), 0, "no thread is held");
    assert!(harness.take_output().is_empty());
    // Bytes arriving meanwhile wait behind the delay.
    assert_eq!(harness.feed(protocol.as_mut()).consumed, 0);
    harness.advance(Duration::from_millis(499));
    assert_eq!(harness.fire_due_deadline(protocol.as_mut()), None);
    harness.advance(Duration::from_millis(1));
    // Answered; WaitFlush so that the buffered request is handed over once this is written.
    assert_eq!(
        harness.fire_due_deadline(protocol.as_mut()),
        Some(Verb::WaitFlush)
    );
    let output = text(&harness.take_output());
    assert!(
        output.starts_with("HTTP/1.1 200 ") && output.ends_with("ok\n"),
        "{output}"
    );
    assert_eq!(harness.flushed(protocol.as_mut()), Verb::Read);
    assert_eq!(harness.feed(protocol.as_mut()).verb, Verb::Read);
    assert!(text(&harness.take_output()).ends_with("hi"));
}

#[test]
fn a_delay_past_the_offload_timeout_is_504_at_that_timeout() {
    let dir = Dir::new("delay504");
    let (mut harness, mut protocol) = open(&dir);
    let request = b"GET /delay?ms=9000 HTTP/1.1\r\nHost: a\r\n\r\n";
    assert_eq!(
        harness.push(protocol.as_mut(), request),
        Verb::AwaitCompletion
    );
    harness.advance(Duration::from_secs(5));
    assert_eq!(
        harness.fire_due_deadline(protocol.as_mut()),
        Some(Verb::CloseAfterFlush)
    );
    assert!(text(&harness.take_output()).starts_with("HTTP/1.1 504 "));
}

#[test]
fn a_file_body_is_read_one_window_per_flush() {
    let dir = Dir::new("stream");
    let (mut harness, mut protocol) = open(&dir);
    let two =
        b"GET /files/big.bin HTTP/1.1\r\nHost: a\r\n\r\nGET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n";
    let verb = harness.push(protocol.as_mut(), two);
    assert_eq!(
        verb,
        Verb::AwaitCompletion,
        "{}",
        text(&harness.take_output())
    );
    assert_eq!(run_one(&mut harness, protocol.as_mut()), Verb::WaitFlush);
    let first = harness.take_output();
    let head_end = first.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let head = text(&first[..head_end]);
    assert!(
        head.contains(&format!("Content-Length: {}\r\n", data().len())),
        "{head}"
    );
    let mut body = first[head_end..].to_vec();
    assert_eq!(body.len(), WINDOW, "the head goes out with one window");
    assert_eq!(
        harness.queued_jobs(),
        0,
        "nothing more is read before the flush"
    );
    // Window two, then the last half window; the pipelined request waits throughout.
    assert_eq!(harness.flushed(protocol.as_mut()), Verb::AwaitCompletion);
    assert_eq!(run_one(&mut harness, protocol.as_mut()), Verb::WaitFlush);
    body.extend(harness.take_output());
    assert_eq!(harness.flushed(protocol.as_mut()), Verb::AwaitCompletion);
    assert_eq!(run_one(&mut harness, protocol.as_mut()), Verb::WaitFlush);
    body.extend(harness.take_output());
    assert_eq!(body, data());
    assert_eq!(harness.flushed(protocol.as_mut()), Verb::Read);
    assert_eq!(harness.feed(protocol.as_mut()).verb, Verb::Read);
    assert!(text(&harness.take_output()).ends_with("hi"));
}

#[test]
fn a_refused_window_read_is_retried_and_a_failed_one_cuts_the_body() {
    let dir = Dir::new("retry");
    let (mut harness, mut protocol) = open(&dir);
    let request = b"GET /files/big.bin HTTP/1.1\r\nHost: a\r\n\r\n";
    harness.push(protocol.as_mut(), request);
    run_one(&mut harness, protocol.as_mut());
    harness.take_output();
    harness.refuse_jobs(true);
    assert_eq!(harness.flushed(protocol.as_mut()), Verb::Read);
    harness.refuse_jobs(false);
    harness.advance(Duration::from_millis(10));
    assert_eq!(
        harness.fire_due_deadline(protocol.as_mut()),
        Some(Verb::AwaitCompletion),
        "retried once the queue has room"
    );
    // The file shrinks under the download: the rest cannot be sent honestly.
    std::fs::write(dir.0.join("big.bin"), b"short").unwrap();
    assert_eq!(
        run_one(&mut harness, protocol.as_mut()),
        Verb::CloseAfterFlush
    );
    assert!(harness.refused());
    assert!(harness.take_output().is_empty());
}

#[test]
fn a_drain_mid_body_finishes_the_body_then_closes() {
    let dir = Dir::new("drain");
    let (mut harness, mut protocol) = open(&dir);
    harness.push(
        protocol.as_mut(),
        b"GET /files/big.bin HTTP/1.1\r\nHost: a\r\n\r\n",
    );
    run_one(&mut harness, protocol.as_mut());
    assert_eq!(harness.drain(protocol.as_mut()), Verb::WaitFlush);
    harness.take_output();
    assert_eq!(harness.flushed(protocol.as_mut()), Verb::AwaitCompletion);
    assert_eq!(harness.drain(protocol.as_mut()), Verb::AwaitCompletion);
    assert_eq!(run_one(&mut harness, protocol.as_mut()), Verb::WaitFlush);
    harness.take_output();
    assert_eq!(harness.flushed(protocol.as_mut()), Verb::AwaitCompletion);
    assert_eq!(
        run_one(&mut harness, protocol.as_mut()),
        Verb::CloseAfterFlush
    );
}

/// docs/ARCHITECTURE.md counts 56 bytes per idle `HttpConn` (a 64-byte glibc chunk; 57
/// would take 80): what a request holds lives in its pooled exchange and scratch, not in the
/// connection. A guard, not a timing.
#[test]
fn an_idle_connection_holds_nothing_extra() {
    let size = std::mem::size_of::<crate::HttpConn>();
    assert!(size <= 56, "HttpConn grew to {size} bytes");
}

/// RFC 9112 §9.6: an EOF after the request is a half-close, not an abort. A delay waits on
/// for its deadline, a file body whose window read is in flight for its read, and each
/// response is then written whole and closes the connection.
#[test]
fn a_half_close_while_something_is_held_still_gets_the_response() {
    let dir = Dir::new("halfclose");
    let (mut harness, mut protocol) = open(&dir);
    let delay = b"GET /delay?ms=300 HTTP/1.1\r\nHost: a\r\n\r\n";
    assert_eq!(
        harness.push(protocol.as_mut(), delay),
        Verb::AwaitCompletion
    );
    assert_eq!(harness.eof(protocol.as_mut()), Verb::AwaitCompletion);
    assert!(harness.take_output().is_empty());
    harness.advance(Duration::from_millis(300));
    assert_eq!(
        harness.fire_due_deadline(protocol.as_mut()),
        Some(Verb::CloseAfterFlush)
    );
    assert!(text(&harness.take_output()).ends_with("ok\n"));

    let (mut harness, mut protocol) = open(&dir);
    let file = b"GET /files/big.bin HTTP/1.1\r\nHost: a\r\n\r\n";
    assert_eq!(harness.push(protocol.as_mut(), file), Verb::AwaitCompletion);
    assert_eq!(run_one(&mut harness, protocol.as_mut()), Verb::WaitFlush);
    let mut got = harness.take_output();
    // The harness cannot sendfile: the next window is read on the pool, and the EOF that
    // arrives meanwhile waits for it.
    assert_eq!(harness.flushed(protocol.as_mut()), Verb::AwaitCompletion);
    assert_eq!(harness.eof(protocol.as_mut()), Verb::AwaitCompletion);
    let mut verb = run_one(&mut harness, protocol.as_mut());
    while verb != Verb::CloseAfterFlush {
        got.extend_from_slice(&harness.take_output());
        assert_eq!(verb, Verb::WaitFlush);
        assert_eq!(harness.flushed(protocol.as_mut()), Verb::AwaitCompletion);
        verb = run_one(&mut harness, protocol.as_mut());
    }
    got.extend_from_slice(&harness.take_output());
    let text = text(&got);
    let body = &got[text.find("\r\n\r\n").unwrap() + 4..];
    assert!(body == data(), "{} bytes of {}", body.len(), data().len());
}
