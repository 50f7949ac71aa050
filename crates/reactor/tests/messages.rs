//! Messages into connections over real sockets: from any thread through a `Messenger`, to a
//! live connection and to one that is gone (dropped and counted, never delivered to the
//! connection that reuses its slot); same-shard sends delivered after the sender's call; a
//! full queue refuses the send and the sender sees it.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::sync::Arc;
use std::time::Duration;

use coreloop_reactor::token::ConnToken;
use coreloop_reactor::{
    Balance, ConnAddr, ConnFactory, ConnInfo, Cx, Message, Protocol, ProtocolFactory, SendError,
    Step, Verb,
};

/// Tells the peer its address, writes every `String` message it gets; on input `self N` it
/// sends itself N messages and reports how many were refused.
struct Mailbox;

impl Protocol for Mailbox {
    fn on_open(&mut self, cx: &mut Cx<'_>) -> Verb {
        let addr = cx.addr();
        let line = format!(
            "{} {} {}\n",
            addr.shard,
            addr.token.index(),
            addr.token.generation()
        );
        cx.out().extend_from_slice(line.as_bytes());
        Verb::Read
    }

    fn on_input(&mut self, input: &[u8], cx: &mut Cx<'_>) -> Step {
        let Some(end) = input.iter().position(|b| *b == b'\n') else {
            return Step::new(0, Verb::Read);
        };
        let text = std::str::from_utf8(&input[..end]).unwrap();
        let count: usize = text.strip_prefix("self ").unwrap().parse().unwrap();
        cx.out().extend_from_slice(b"before ");
        let me = cx.addr();
        let mut refused = 0;
        for i in 0..count {
            match cx.send(me, Box::new(format!("m{i} "))) {
                Ok(()) => {}
                Err(error) => {
                    assert!(error.is_full(), "{error}");
                    refused += 1;
                }
            }
        }
        cx.out()
            .extend_from_slice(format!("refused={refused} ").as_bytes());
        Step::new(end + 1, Verb::Read)
    }

    fn on_message(&mut self, message: Message, cx: &mut Cx<'_>) -> Verb {
        let text = message.downcast::<String>().expect("a String");
        cx.out().extend_from_slice(text.as_bytes());
        Verb::Read
    }
}

struct Factory;

impl ProtocolFactory for Factory {
    fn for_shard(&self, _shard: usize) -> Box<dyn ConnFactory> {
        Box::new(Factory)
    }
}

impl ConnFactory for Factory {
    fn open(&mut self, _info: &ConnInfo) -> Box<dyn Protocol> {
        Box::new(Mailbox)
    }
}

fn read_addr(reader: &mut impl BufRead) -> ConnAddr {
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    let words: Vec<usize> = line
        .split_whitespace()
        .map(|w| w.parse().unwrap())
        .collect();
    ConnAddr {
        shard: words[0],
        token: ConnToken::new(words[1], words[2] as u32),
    }
}

fn read_exactly(reader: &mut impl std::io::Read, n: usize) -> String {
    String::from_utf8(support::read_exact(reader, n)).unwrap()
}

#[test]
fn a_message_reaches_its_live_connection_and_a_stale_one_is_counted_not_delivered() {
    let reactor = support::start(
        2,
        Balance::RoundRobin,
        support::loopback(),
        Arc::new(Factory),
        |_| {},
    );
    let addr = support::tcp_addr(&reactor);
    let messenger = reactor.messenger();
    let mut first = BufReader::new(support::connect(addr));
    let gone = read_addr(&mut first);
    messenger
        .send(gone, Box::new("hello\n".to_owned()))
        .unwrap();
    assert_eq!(read_exactly(&mut first, 6), "hello\n");
    drop(first);
    support::wait_until(
        Duration::from_secs(10),
        "the first connection closed",
        || reactor.snapshot().shards.iter().all(|s| s.active == 0),
    );
    // Reconnect until a connection reuses the closed one's slot on its shard.
    let mut reused = None;
    let mut others = Vec::new();
    for _ in 0..16 {
        let mut conn = BufReader::new(support::connect(addr));
        let at = read_addr(&mut conn);
        if at.shard == gone.shard && at.token.index() == gone.token.index() {
            reused = Some((conn, at));
            break;
        }
        others.push(conn);
    }
    let (mut conn, at) = reused.expect("a slot is reused");
    assert_ne!(at.token, gone.token, "the generation tells them apart");
    messenger
        .send(gone, Box::new("stale\n".to_owned()))
        .unwrap();
    support::wait_until(Duration::from_secs(10), "the stale message counted", || {
        reactor
            .snapshot()
            .shards
            .iter()
            .map(|s| s.messages_stale)
            .sum::<u64>()
            == 1
    });
    messenger.send(at, Box::new("live\n".to_owned())).unwrap();
    assert_eq!(read_exactly(&mut conn, 5), "live\n", "no stale bytes first");
    support::wait_until(Duration::from_secs(10), "two delivered", || {
        reactor
            .snapshot()
            .shards
            .iter()
            .map(|s| s.messages_delivered)
            .sum::<u64>()
            == 2
    });
    let no_shard = ConnAddr {
        shard: 7,
        token: at.token,
    };
    assert!(matches!(
        messenger.send(no_shard, Box::new(())),
        Err(SendError::NoSuchShard(_))
    ));
    drop(others);
    reactor.shutdown(Duration::from_secs(5));
}

#[test]
fn same_shard_sends_arrive_after_the_call_and_a_full_queue_refuses() {
    let reactor = support::start(
        1,
        Balance::LeastLoaded,
        support::loopback(),
        Arc::new(Factory),
        |config| config.message_capacity = 3,
    );
    let addr = support::tcp_addr(&reactor);
    let mut conn = BufReader::new(support::connect(addr));
    read_addr(&mut conn);
    conn.get_mut().write_all(b"self 5\n").unwrap();
    // The three that fit are delivered in order, after what the sending call wrote.
    let expected = "before refused=2 m0 m1 m2 ";
    assert_eq!(read_exactly(&mut conn, expected.len()), expected);
    // Counted after the delivering call wrote (and the peer could read).
    support::wait_until(Duration::from_secs(10), "three delivered", || {
        reactor.snapshot().shards[0].messages_delivered == 3
    });
    assert_eq!(reactor.snapshot().shards[0].messages_refused, 2);
    reactor.shutdown(Duration::from_secs(5));
}

#[test]
fn a_batch_from_another_thread_costs_its_shard_one_wake() {
    let reactor = support::start(
        1,
        Balance::LeastLoaded,
        support::loopback(),
        Arc::new(Factory),
        |_| {},
    );
    let mut conn = BufReader::new(support::connect(support::tcp_addr(&reactor)));
    let to = read_addr(&mut conn);
    let before = reactor.snapshot().shards[0].wakes;
    let messenger = reactor.messenger();
    let mut batch = messenger.batch();
    for _ in 0..1000 {
        batch.send(to, Box::new("x".to_owned())).unwrap();
    }
    batch.finish();
    assert_eq!(read_exactly(&mut conn, 1000), "x".repeat(1000));
    support::wait_until(Duration::from_secs(10), "1000 delivered", || {
        reactor.snapshot().shards[0].messages_delivered == 1000
    });
    assert_eq!(reactor.snapshot().shards[0].wakes - before, 1);
    reactor.shutdown(Duration::from_secs(5));
}

/// On `wait`, offloads a job that blocks until the test releases it; writes each message,
/// `done ` on the completion and `in ` for any later input.
struct Waits {
    started: crossbeam_channel::Sender<()>,
    release: crossbeam_channel::Receiver<()>,
    waiting: bool,
}

impl Protocol for Waits {
    fn on_open(&mut self, cx: &mut Cx<'_>) -> Verb {
        Mailbox.on_open(cx)
    }

    fn on_input(&mut self, input: &[u8], cx: &mut Cx<'_>) -> Step {
        if !self.waiting && input.starts_with(b"wait") {
            self.waiting = true;
            let release = self.release.clone();
            let started = self.started.clone();
            cx.offload(Box::new(move || {
                let _ = started.send(());
                let _ = release.recv_timeout(Duration::from_secs(20));
                Box::new(())
            }))
            .expect("the pool takes the job");
            return Step::new(input.len(), Verb::AwaitCompletion);
        }
        cx.out().extend_from_slice(b"in ");
        Step::new(input.len(), Verb::Read)
    }

    fn on_completion(
        &mut self,
        _completion: coreloop_reactor::Completion,
        cx: &mut Cx<'_>,
    ) -> Verb {
        cx.out().extend_from_slice(b"done ");
        Verb::Read
    }

    fn on_message(&mut self, message: Message, cx: &mut Cx<'_>) -> Verb {
        Mailbox.on_message(message, cx)
    }
}

#[test]
fn a_message_reaches_a_connection_awaiting_a_job_and_it_keeps_waiting() {
    let (release_tx, release) = crossbeam_channel::bounded::<()>(1);
    let (started, started_rx) = crossbeam_channel::bounded::<()>(1);
    let reactor = support::start(
        1,
        Balance::LeastLoaded,
        support::loopback(),
        Arc::new(move |_: &ConnInfo| Waits {
            started: started.clone(),
            release: release.clone(),
            waiting: false,
        }),
        |_| {},
    );
    let mut conn = BufReader::new(support::connect(support::tcp_addr(&reactor)));
    let to = read_addr(&mut conn);
    conn.get_mut().write_all(b"wait").unwrap();
    started_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the job runs");
    reactor
        .messenger()
        .send(to, Box::new("m ".to_owned()))
        .unwrap();
    assert_eq!(read_exactly(&mut conn, 2), "m ");
    // Input sent while the job runs waits for its completion.
    conn.get_mut().write_all(b"more").unwrap();
    release_tx.send(()).unwrap();
    assert_eq!(read_exactly(&mut conn, 8), "done in ");
    reactor.shutdown(Duration::from_secs(5));
}

/// On `park`, waits with `AwaitCompletion` for nothing but its own two messages: `stay`
/// (answered without `Cx::resume`, so the wait goes on) and `go` (which resumes). Input after
/// `park` is answered `in ` once handed over.
struct Parks {
    parked: bool,
}

impl Protocol for Parks {
    fn on_open(&mut self, cx: &mut Cx<'_>) -> Verb {
        Mailbox.on_open(cx)
    }

    fn on_input(&mut self, input: &[u8], cx: &mut Cx<'_>) -> Step {
        if !self.parked && input.starts_with(b"park") {
            self.parked = true;
            let me = cx.addr();
            cx.send(me, Box::new("stay")).unwrap();
            cx.send(me, Box::new("go")).unwrap();
            return Step::new(4, Verb::AwaitCompletion);
        }
        cx.out().extend_from_slice(b"in ");
        Step::new(input.len(), Verb::Read)
    }

    fn on_message(&mut self, message: Message, cx: &mut Cx<'_>) -> Verb {
        let word = *message.downcast::<&str>().unwrap();
        cx.out().extend_from_slice(word.as_bytes());
        cx.out().push(b' ');
        if word == "go" {
            cx.resume();
        }
        Verb::Read
    }
}

#[test]
fn a_message_that_resumes_ends_a_completion_wait_and_hands_buffered_input_over() {
    let reactor = support::start(
        1,
        Balance::LeastLoaded,
        support::loopback(),
        Arc::new(|_: &ConnInfo| Parks { parked: false }),
        |_| {},
    );
    let mut conn = BufReader::new(support::connect(support::tcp_addr(&reactor)));
    let _ = read_addr(&mut conn);
    // One write: `x` is buffered behind `park` and must wait for `go`, not `stay`.
    conn.get_mut().write_all(b"parkx").unwrap();
    assert_eq!(read_exactly(&mut conn, 11), "stay go in ");
    reactor.shutdown(Duration::from_secs(5));
}
