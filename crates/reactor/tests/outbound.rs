//! Outbound connections over real sockets: a protocol asks its shard to connect; the new
//! connection writes and reads like an accepted one; refused, timed-out and missing targets
//! reach the asker with their cause, and every outcome is counted.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use coreloop_reactor::{
    Balance, ConnAddr, ConnInfo, ConnectError, ConnectOutcome, Cx, ListenAddr, Message, Protocol,
    ReactorHandle, Step, Verb,
};

/// The outbound side: greets the upstream, hands what it reads to the dialer as messages.
struct Upstream {
    dialer: ConnAddr,
}

impl Protocol for Upstream {
    fn on_open(&mut self, cx: &mut Cx<'_>) -> Verb {
        cx.out().extend_from_slice(b"hello upstream\n");
        Verb::Read
    }

    fn on_input(&mut self, input: &[u8], cx: &mut Cx<'_>) -> Step {
        cx.send(self.dialer, Box::new(input.to_vec()))
            .expect("room in the local queue");
        Step::new(input.len(), Verb::Read)
    }
}

/// The accepted side: dials `target` on open, reports the outcome and relays messages.
struct Dialer {
    target: ListenAddr,
    timeout: Duration,
}

impl Protocol for Dialer {
    fn on_open(&mut self, cx: &mut Cx<'_>) -> Verb {
        let upstream = Upstream { dialer: cx.addr() };
        cx.connect(self.target.clone(), self.timeout, Box::new(upstream));
        Verb::Read
    }

    fn on_input(&mut self, input: &[u8], _cx: &mut Cx<'_>) -> Step {
        Step::new(input.len(), Verb::Read)
    }

    fn on_connect(&mut self, outcome: ConnectOutcome, cx: &mut Cx<'_>) -> Verb {
        let line = match outcome.result {
            Ok(_) => "up\n".to_owned(),
            Err(error) => format!("{error:?}\n"),
        };
        cx.out().extend_from_slice(line.as_bytes());
        if outcome.result.is_ok() {
            Verb::Read
        } else {
            Verb::CloseAfterFlush
        }
    }

    fn on_message(&mut self, message: Message, cx: &mut Cx<'_>) -> Verb {
        if let Ok(bytes) = message.downcast::<Vec<u8>>() {
            cx.out().extend_from_slice(&bytes);
        }
        Verb::Read
    }
}

fn dialing(target: ListenAddr, timeout: Duration) -> ReactorHandle {
    dialing_with(target, timeout, |_| {})
}

fn dialing_with(
    target: ListenAddr,
    timeout: Duration,
    tune: impl FnOnce(&mut coreloop_reactor::ReactorConfig),
) -> ReactorHandle {
    support::start(
        2,
        Balance::RoundRobin,
        support::loopback(),
        Arc::new(move |_: &ConnInfo| Dialer {
            target: target.clone(),
            timeout,
        }),
        tune,
    )
}

fn first_line(reactor: &ReactorHandle) -> (BufReader<TcpStream>, String) {
    let mut client = BufReader::new(support::connect(support::tcp_addr(reactor)));
    let mut line = String::new();
    client.read_line(&mut line).unwrap();
    (client, line)
}

fn outbound(reactor: &ReactorHandle) -> coreloop_reactor::stats::OutboundSnapshot {
    let mut sum = coreloop_reactor::stats::OutboundSnapshot::default();
    for shard in reactor.snapshot().shards {
        let o = shard.outbound;
        sum.connects += o.connects;
        sum.connected += o.connected;
        sum.refused += o.refused;
        sum.timed_out += o.timed_out;
        sum.failed += o.failed;
        sum.active += o.active;
    }
    sum
}

#[test]
fn a_connected_outbound_connection_writes_and_reads_like_an_accepted_one() {
    let upstream = TcpListener::bind("127.0.0.1:0").unwrap();
    let reactor = dialing(
        ListenAddr::Tcp(upstream.local_addr().unwrap()),
        Duration::from_secs(5),
    );
    let (mut client, line) = first_line(&reactor);
    assert_eq!(line, "up\n");
    let (mut far, _) = upstream.accept().unwrap();
    far.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    assert_eq!(support::read_exact(&mut far, 15), b"hello upstream\n");
    far.write_all(b"from upstream").unwrap();
    assert_eq!(support::read_exact(&mut client, 13), b"from upstream");
    let counted = outbound(&reactor);
    assert_eq!(
        (counted.connects, counted.connected, counted.active),
        (1, 1, 1)
    );
    // The upstream closes: the outbound connection sees EOF and closes like any other.
    drop(far);
    support::wait_until(Duration::from_secs(10), "the outbound closed", || {
        outbound(&reactor).active == 0
    });
    drop(client);
    reactor.shutdown(Duration::from_secs(5));
}

#[test]
fn a_refused_connect_reaches_the_asker_and_is_counted() {
    let closed: SocketAddr = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let reactor = dialing(ListenAddr::Tcp(closed), Duration::from_secs(5));
    let (mut client, line) = first_line(&reactor);
    assert_eq!(line, "Refused\n");
    assert_eq!(support::read_to_end(&mut client).unwrap(), b"");
    let counted = outbound(&reactor);
    assert_eq!((counted.connects, counted.refused), (1, 1));
    support::wait_until(Duration::from_secs(10), "nothing left open", || {
        outbound(&reactor).active == 0
    });
    reactor.shutdown(Duration::from_secs(5));
}

#[test]
fn a_missing_unix_socket_is_refused() {
    let path = std::env::temp_dir().join(format!("coreloop-{}-nobody.sock", std::process::id()));
    let reactor = dialing(ListenAddr::Unix(path), Duration::from_secs(5));
    let (_client, line) = first_line(&reactor);
    assert_eq!(line, "Refused\n");
    assert_eq!(outbound(&reactor).refused, 1);
    reactor.shutdown(Duration::from_secs(5));
}

#[test]
fn a_connect_past_its_timeout_reaches_the_asker_as_timed_out() {
    // A listener that never accepts, its accept queue filled: the kernel drops further SYNs,
    // so a connect to it can only time out.
    let (full, _socket, fillers) = support::full_listener();
    let reactor = dialing(ListenAddr::Tcp(full), Duration::from_millis(200));
    let (_client, line) = first_line(&reactor);
    assert_eq!(line, format!("{:?}\n", ConnectError::TimedOut));
    let counted = outbound(&reactor);
    assert_eq!((counted.connects, counted.timed_out), (1, 1));
    support::wait_until(Duration::from_secs(10), "nothing left open", || {
        outbound(&reactor).active == 0
    });
    reactor.shutdown(Duration::from_secs(5));
    drop(fillers);
}

#[test]
fn an_outbound_connect_past_max_connections_is_not_started() {
    let upstream = TcpListener::bind("127.0.0.1:0").unwrap();
    let reactor = dialing_with(
        ListenAddr::Tcp(upstream.local_addr().unwrap()),
        Duration::from_secs(5),
        |config| config.max_connections = 1,
    );
    // The one accepted connection takes the one place: its own connect finds no room.
    let (_client, line) = first_line(&reactor);
    assert_eq!(line, format!("{:?}\n", ConnectError::NoRoom));
    let counted = outbound(&reactor);
    assert_eq!(
        (counted.connects, counted.failed, counted.active),
        (1, 1, 0)
    );
    reactor.shutdown(Duration::from_secs(5));
}
