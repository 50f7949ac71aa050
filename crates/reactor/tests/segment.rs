//! File segments over a real reactor and real sockets: the order of buffer and file bytes,
//! the counters, the lingering close after a segment, and a file handle released when a
//! connection that never reads meets its write timeout.

mod support;

use std::fs::File;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use coreloop_reactor::{Balance, CloseReason, ConnInfo, Cx, Protocol, Step, Verb};

/// Answers any input with `HEAD|`, the whole file by `sendfile`, `|TAIL`, then closes.
struct SendFile {
    file: Arc<File>,
    len: u64,
}

impl Protocol for SendFile {
    fn on_input(&mut self, input: &[u8], cx: &mut Cx<'_>) -> Step {
        cx.out().extend_from_slice(b"HEAD|");
        assert!(cx.can_send_file(), "plain TCP takes sendfile");
        cx.send_file(&self.file, 0, self.len).unwrap();
        assert_eq!(
            cx.send_file(&self.file, 0, 1),
            Err(coreloop_reactor::SendFileRefused::Busy)
        );
        cx.out().extend_from_slice(b"|TAIL");
        assert!(cx.pending_output() >= self.len as usize);
        Step::new(input.len(), Verb::CloseAfterFlush)
    }
}

fn file_of(name: &str, len: usize) -> (PathBuf, Vec<u8>) {
    let path = std::env::temp_dir().join(format!("coreloop-segtest-{name}-{}", std::process::id()));
    let data: Vec<u8> = (0..len).map(|i| (i * 7 % 253) as u8).collect();
    File::create(&path).unwrap().write_all(&data).unwrap();
    (path, data)
}

/// A reactor whose connections each open `path` and keep a weak handle on it in `opened`.
fn serve(
    path: PathBuf,
    opened: Arc<Mutex<Vec<Weak<File>>>>,
    tune: impl FnOnce(&mut coreloop_reactor::ReactorConfig),
) -> coreloop_reactor::ReactorHandle {
    let factory = move |_: &ConnInfo| {
        let file = Arc::new(File::open(&path).unwrap());
        let len = file.metadata().unwrap().len();
        opened.lock().unwrap().push(Arc::downgrade(&file));
        SendFile { file, len }
    };
    support::start(
        1,
        Balance::LeastLoaded,
        support::loopback(),
        Arc::new(factory),
        tune,
    )
}

#[test]
fn buffer_file_buffer_in_order_then_a_clean_close_and_the_counters() {
    let (path, data) = file_of("order", 6 * 1024 * 1024 + 123);
    let opened = Arc::default();
    let reactor = serve(path.clone(), Arc::clone(&opened), |_| {});
    let mut client = support::connect(support::tcp_addr(&reactor));
    support::write_all(&mut client, b"go");
    let got = support::read_to_end(&mut client).expect("a clean end, not a reset");
    // Our FIN ends the server's lingering close.
    drop(client);
    let mut expected = b"HEAD|".to_vec();
    expected.extend_from_slice(&data);
    expected.extend_from_slice(b"|TAIL");
    assert_eq!(got.len(), expected.len());
    assert!(got == expected, "bytes out of order or wrong");
    support::wait_until(Duration::from_secs(10), "the connection to close", || {
        reactor.snapshot().shards[0].listeners[0].closed_for(CloseReason::Done) == 1
    });
    let listener = reactor.snapshot().shards[0].listeners[0].clone();
    assert_eq!(listener.bytes_sendfile, data.len() as u64);
    assert_eq!(listener.bytes_out, expected.len() as u64);
    support::wait_until(Duration::from_secs(10), "the file to be released", || {
        opened.lock().unwrap().iter().all(|w| w.upgrade().is_none())
    });
    reactor.shutdown(Duration::from_secs(1));
    std::fs::remove_file(path).unwrap();
}

#[test]
fn a_reader_that_stops_meets_the_write_timeout_and_the_file_is_released() {
    let (path, _) = file_of("stall", 32 * 1024 * 1024);
    let opened = Arc::default();
    let reactor = serve(path.clone(), Arc::clone(&opened), |c| {
        c.write_timeout = Duration::from_millis(300);
    });
    let mut client = support::connect(support::tcp_addr(&reactor));
    support::write_all(&mut client, b"go");
    // Some of it arrives, then the client reads no more: the segment waits on a full socket.
    let mut first = vec![0u8; 64 * 1024];
    client.read_exact(&mut first).unwrap();
    assert_eq!(&first[..5], b"HEAD|");
    support::wait_until(Duration::from_secs(10), "the write timeout", || {
        reactor.snapshot().shards[0].listeners[0].closed_for(CloseReason::WriteTimeout) == 1
    });
    let sent = reactor.snapshot().shards[0].listeners[0].bytes_sendfile;
    assert!(sent > 0 && sent < 32 * 1024 * 1024, "sent {sent}");
    support::wait_until(Duration::from_secs(10), "the file to be released", || {
        opened.lock().unwrap().iter().all(|w| w.upgrade().is_none())
    });
    drop(client);
    reactor.shutdown(Duration::from_secs(1));
    std::fs::remove_file(path).unwrap();
}
