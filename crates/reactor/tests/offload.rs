//! The offload pool through a real shard: results come back to their connection, a panicking
//! job is reported as a failure and the shard lives on, a full queue refuses at once.

mod support;

use std::io::Read;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use coreloop_reactor::{
    Balance, Completion, ConnFactory, ConnInfo, Cx, JobFailure, JobOutput, Protocol,
    ProtocolFactory, Step, Verb,
};

/// Each input byte is an order: `o` a job returning "ok", `p` a job that panics, `b` a job that
/// blocks until released. Answers one line per order: `ok`, `panicked`, `refused`, `queued`.
struct Orders {
    release: crossbeam_channel::Receiver<()>,
}

impl Protocol for Orders {
    fn on_input(&mut self, input: &[u8], cx: &mut Cx<'_>) -> Step {
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
        };
        cx.out().extend_from_slice(line);
        Verb::Read
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
