//! The offload pool through a real shard: results come back to their connection, a panicking
//! job is reported as a failure and the shard lives on, a full queue refuses at once, a job
//! past its deadline or cancelled by its connection is dropped unrun, and a protocol waiting for
//! a flush hears of it through `on_flushed`.

mod support;

use std::io::Read;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use coreloop_reactor::{
    Balance, CancelToken, Completion, ConnFactory, ConnInfo, Cx, JobFailure, JobOutput, JobTerms,
    Protocol, ProtocolFactory, Step, Verb,
};

/// Each input byte is an order: `o` a job returning "ok", `p` a job that panics, `b` a job that
/// blocks until released, `e` a job already past its deadline, `c` a job already cancelled, `f`
/// 256 KiB of output and a wait for its flush. Answers one line per order: `ok`, `panicked`,
/// `refused`, `queued`, `expired`, and for `f` the bytes then `flushed`.
struct Orders {
    release: crossbeam_channel::Receiver<()>,
}

const FLUSH_BYTES: usize = 256 * 1024;

impl Protocol for Orders {
    fn on_input(&mut self, input: &[u8], cx: &mut Cx<'_>) -> Step {
        match input[0] {
            b'f' => {
                cx.out().extend_from_slice(&[b'x'; FLUSH_BYTES]);
                return Step::new(1, Verb::WaitFlush);
            }
            b'e' | b'c' => return Step::new(1, voided(input[0], cx)),
            _ => {}
        }
        let job: coreloop_reactor::Job = match input[0] {
            b'o' => Box::new(|| Box::new("ok") as JobOutput),
            b'p' => Box::new(|| panic!("handler bug")),
            _ => {
                let release = self.release.clone();
                Box::new(move || {
                    let _ = release.recv_timeout(Duration::from_secs(20));
                    Box::new("released") as JobOutput
                })
            }
        };
        match cx.offload(job) {
            Ok(_) if input[0] == b'b' => {
                cx.out().extend_from_slice(b"queued\n");
                Step::new(1, Verb::Read)
            }
            Ok(_) => Step::new(1, Verb::AwaitCompletion),
            Err(_) => {
                cx.out().extend_from_slice(b"refused\n");
                Step::new(1, Verb::Read)
            }
        }
    }

    fn on_completion(&mut self, completion: Completion, cx: &mut Cx<'_>) -> Verb {
        let line: &[u8] = match completion.result {
            Ok(output) => match output.downcast::<&str>() {
                Ok(text) if *text == "ok" => b"ok\n",
                _ => b"",
            },
            Err(JobFailure::Panicked(message)) => {
                assert_eq!(message, "handler bug");
                b"panicked\n"
            }
            Err(JobFailure::Expired) => b"expired\n",
        };
        cx.out().extend_from_slice(line);
        Verb::Read
    }

    fn on_flushed(&mut self, cx: &mut Cx<'_>) -> Verb {
        assert_eq!(
            cx.pending_output(),
            0,
            "on_flushed only once everything is written"
        );
        cx.out().extend_from_slice(b"flushed\n");
        Verb::Read
    }
}

/// Offloads a job that must never run: past its deadline (`e`) or cancelled (`c`).
fn voided(order: u8, cx: &mut Cx<'_>) -> Verb {
    let job: coreloop_reactor::Job = Box::new(|| panic!("a voided job ran"));
    let terms = match order {
        b'e' => JobTerms {
            deadline: Some(cx.now()),
            cancel: None,
        },
        _ => {
            let cancel = CancelToken::new();
            cancel.cancel();
            JobTerms {
                deadline: None,
                cancel: Some(cancel),
            }
        }
    };
    match (cx.offload_with(job, terms), order) {
        (Ok(_), b'e') => Verb::AwaitCompletion,
        (Ok(_), _) => {
            cx.out().extend_from_slice(b"queued\n");
            Verb::Read
        }
        (Err(_), _) => {
            cx.out().extend_from_slice(b"refused\n");
            Verb::Read
        }
    }
}

struct OrdersFactory(Mutex<crossbeam_channel::Receiver<()>>);

impl ProtocolFactory for OrdersFactory {
    fn for_shard(&self, _shard: usize) -> Box<dyn ConnFactory> {
        Box::new(OrdersConns(self.0.lock().unwrap().clone()))
    }
}

struct OrdersConns(crossbeam_channel::Receiver<()>);

impl ConnFactory for OrdersConns {
    fn open(&mut self, _info: &ConnInfo) -> Box<dyn Protocol> {
        Box::new(Orders {
            release: self.0.clone(),
        })
    }
}

fn line(stream: &mut impl Read) -> String {
    let mut out = Vec::new();
    let mut byte = [0u8];
    while byte[0] != b'\n' {
        stream.read_exact(&mut byte).expect("a line");
        out.push(byte[0]);
    }
    String::from_utf8(out).unwrap()
}

#[test]
fn results_panics_and_refusals_reach_the_right_connection() {
    let (release, released) = crossbeam_channel::unbounded();
    let factory = Arc::new(OrdersFactory(Mutex::new(released)));
    let reactor = support::start(1, Balance::LeastLoaded, support::loopback(), factory, |c| {
        c.offload_threads = 1;
        c.offload_queue = 1;
    });
    let addr = support::tcp_addr(&reactor);
    let mut client = support::connect(addr);

    support::write_all(&mut client, b"o");
    assert_eq!(line(&mut client), "ok\n");
    support::write_all(&mut client, b"p");
    assert_eq!(
        line(&mut client),
        "panicked\n",
        "a panicking job is reported, not fatal"
    );
    support::write_all(&mut client, b"o");
    assert_eq!(line(&mut client), "ok\n", "the pool and the shard live on");

    // One blocked job occupies the only worker, a second fills the queue of one: the third
    // order is refused at once instead of waiting.
    support::write_all(&mut client, b"b");
    assert_eq!(line(&mut client), "queued\n");
    support::wait_until(
        Duration::from_secs(10),
        "the worker to pick up the blocked job",
        || reactor.snapshot().offload_queue_depth == 0,
    );
    support::write_all(&mut client, b"b");
    assert_eq!(line(&mut client), "queued\n");
    support::write_all(&mut client, b"o");
    assert_eq!(line(&mut client), "refused\n");

    let snapshot = reactor.snapshot();
    assert_eq!(snapshot.offload_panicked, 1);
    assert_eq!(snapshot.offload_refused, 1);
    release.send(()).unwrap();
    release.send(()).unwrap();
    reactor.shutdown(Duration::from_secs(2));
}

#[test]
fn expired_and_cancelled_jobs_are_dropped_unrun_and_counted() {
    let (_release, released) = crossbeam_channel::unbounded();
    let factory = Arc::new(OrdersFactory(Mutex::new(released)));
    let reactor = support::start(1, Balance::LeastLoaded, support::loopback(), factory, |c| {
        c.offload_threads = 1;
    });
    let mut client = support::connect(support::tcp_addr(&reactor));
    support::write_all(&mut client, b"e");
    assert_eq!(
        line(&mut client),
        "expired\n",
        "the expired job's connection is told"
    );
    support::write_all(&mut client, b"c");
    assert_eq!(line(&mut client), "queued\n");
    support::wait_until(
        Duration::from_secs(10),
        "the cancelled job to be dropped",
        || reactor.snapshot().offload_dropped_closed == 1,
    );
    let snapshot = reactor.snapshot();
    assert_eq!(snapshot.offload_dropped_deadline, 1);
    assert_eq!(snapshot.offload_panicked, 0, "neither voided job ran");
    assert_eq!(snapshot.offload_completed, 0);
    support::write_all(&mut client, b"o");
    assert_eq!(line(&mut client), "ok\n", "the worker goes on");
    reactor.shutdown(Duration::from_secs(2));
}

#[test]
fn on_flushed_comes_once_a_wait_flush_has_written_everything() {
    let (_release, released) = crossbeam_channel::unbounded();
    let factory = Arc::new(OrdersFactory(Mutex::new(released)));
    let reactor = support::start(
        1,
        Balance::LeastLoaded,
        support::loopback(),
        factory,
        |_| {},
    );
    let mut client = support::connect(support::tcp_addr(&reactor));
    for _ in 0..2 {
        support::write_all(&mut client, b"f");
        let text = line(&mut client);
        assert_eq!(text.len(), FLUSH_BYTES + "flushed\n".len());
        assert!(text.ends_with("xflushed\n"));
    }
    reactor.shutdown(Duration::from_secs(2));
}
