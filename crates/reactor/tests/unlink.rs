//! `Cx::unlink` over a real reactor: an outbound connection leaves one client connection and
//! is linked to another on the same shard (a proxy's pooled upstream connection), a stale
//! end-of-link never ends a newer link of the same pair, an unlinked connection still reads
//! its socket (bytes or an EOF while idle close it), and a stale address never links. Each
//! link made is heard on both sides (`on_linked`, with the peer's output usable), in order.

mod support;

use std::cell::RefCell;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use coreloop_reactor::{
    Balance, ConnAddr, ConnFactory, ConnInfo, ConnectOutcome, Cx, ListenAddr, Message, Protocol,
    ProtocolFactory, Step, Verb,
};

/// The shard's one backend connection, once dialed; kept after it closes, on purpose, so a
/// later client asks for a link to a stale address.
#[derive(Default)]
struct Board {
    backend: Option<ConnAddr>,
    /// The newest client connection (the one `swap` relinks).
    client: Option<ConnAddr>,
}

type Shared = Rc<RefCell<Board>>;

/// A message from the backend side to its client: link to me again.
struct Relink(ConnAddr);

/// A client connection: linked to the backend connection, dialed by the first client.
struct Front {
    board: Shared,
    backend: std::net::SocketAddr,
}

impl Protocol for Front {
    fn on_open(&mut self, cx: &mut Cx<'_>) -> Verb {
        self.board.borrow_mut().client = Some(cx.addr());
        let known = self.board.borrow().backend;
        match known {
            Some(addr) => cx.link(addr),
            None => {
                let back = Back {
                    board: self.board.clone(),
                };
                let target = ListenAddr::Tcp(self.backend);
                cx.connect(target, Duration::from_secs(5), Box::new(back));
            }
        }
        Verb::Read
    }

    fn on_connect(&mut self, outcome: ConnectOutcome, cx: &mut Cx<'_>) -> Verb {
        let Ok(addr) = outcome.result else {
            return Verb::CloseNow;
        };
        self.board.borrow_mut().backend = Some(addr);
        cx.link(addr);
        Verb::Read
    }

    fn on_input(&mut self, input: &[u8], cx: &mut Cx<'_>) -> Step {
        match cx.peer_out() {
            Some(out) => {
                out.extend_from_slice(input);
                Step::new(input.len(), Verb::Read)
            }
            None => Step::new(0, Verb::Read),
        }
    }

    fn on_message(&mut self, message: Message, cx: &mut Cx<'_>) -> Verb {
        if let Ok(relink) = message.downcast::<Relink>() {
            cx.link(relink.0);
        }
        Verb::Read
    }

    fn on_unlinked(&mut self, cx: &mut Cx<'_>) -> Verb {
        cx.out().extend_from_slice(b"unlinked\n");
        Verb::Read
    }
}

/// The backend connection: forwards lines to its client; `part` unlinks, `swap` unlinks and
/// asks the client to link again at once. Unlinked, any byte or an EOF closes it.
struct Back {
    board: Shared,
}

impl Protocol for Back {
    fn on_input(&mut self, input: &[u8], cx: &mut Cx<'_>) -> Step {
        let Some(end) = input.iter().position(|&b| b == b'\n') else {
            return Step::new(0, Verb::Read);
        };
        let line = &input[..=end];
        let Some(out) = cx.peer_out() else {
            // Idle: nothing may arrive between requests.
            return Step::new(input.len(), Verb::CloseNow);
        };
        out.extend_from_slice(line);
        match line {
            b"part\n" => cx.unlink(),
            b"swap\n" => {
                cx.unlink();
                let me = cx.addr();
                if let Some(client) = self.board.borrow().client {
                    let _ = cx.send(client, Box::new(Relink(me)));
                }
            }
            _ => {}
        }
        Step::new(end + 1, Verb::Read)
    }

    fn on_eof(&mut self, _unconsumed: &[u8], cx: &mut Cx<'_>) -> Verb {
        if cx.peer_out().is_some() {
            cx.shutdown_peer_write();
            return Verb::Read;
        }
        Verb::CloseNow
    }

    /// Greets each client it is linked to, through the link (so `peer_out` works there).
    fn on_linked(&mut self, cx: &mut Cx<'_>) -> Verb {
        if let Some(out) = cx.peer_out() {
            out.extend_from_slice(b"linked\n");
        }
        Verb::Read
    }

    /// The client went: say so to the backend socket, and stay for the next client.
    fn on_unlinked(&mut self, cx: &mut Cx<'_>) -> Verb {
        cx.out().extend_from_slice(b"client gone\n");
        Verb::Read
    }
}

struct Factory {
    backend: std::net::SocketAddr,
}

struct ShardFactory {
    board: Shared,
    backend: std::net::SocketAddr,
}

impl ProtocolFactory for Factory {
    fn for_shard(&self, _shard: usize) -> Box<dyn ConnFactory> {
        Box::new(ShardFactory {
            board: Shared::default(),
            backend: self.backend,
        })
    }
}

impl ConnFactory for ShardFactory {
    fn open(&mut self, _info: &ConnInfo) -> Box<dyn Protocol> {
        Box::new(Front {
            board: self.board.clone(),
            backend: self.backend,
        })
    }
}

struct Client {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Client {
    fn open(addr: std::net::SocketAddr) -> Client {
        let stream = support::connect(addr);
        Client {
            reader: BufReader::new(stream.try_clone().unwrap()),
            writer: stream,
        }
    }

    fn line(&mut self) -> String {
        let mut line = String::new();
        self.reader.read_line(&mut line).unwrap();
        line
    }

    fn send(&mut self, text: &str) {
        support::write_all(&mut self.writer, text.as_bytes());
    }
}

fn backend_line(reader: &mut BufReader<TcpStream>) -> String {
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    line
}

#[test]
fn an_unlinked_connection_serves_the_next_client_and_stale_ends_of_links_are_ignored() {
    let backend = TcpListener::bind("127.0.0.1:0").unwrap();
    let factory = Arc::new(Factory {
        backend: backend.local_addr().unwrap(),
    });
    let reactor = support::start(1, Balance::RoundRobin, support::loopback(), factory, |_| {});
    let addr = support::tcp_addr(&reactor);

    // Client A dials the backend and is linked to it.
    let mut a = Client::open(addr);
    a.send("from-a\n");
    let (upstream, _) = backend.accept().unwrap();
    upstream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut up_reader = BufReader::new(upstream.try_clone().unwrap());
    let mut up = upstream;
    assert_eq!(backend_line(&mut up_reader), "from-a\n");
    up.write_all(b"to-a\n").unwrap();
    assert_eq!(a.line(), "linked\n");
    assert_eq!(a.line(), "to-a\n");

    // `swap`: unlink, then link again to the same client in the same turn. The end of the
    // first link, still queued when the second is made, must not end the second.
    up.write_all(b"swap\n").unwrap();
    assert_eq!(a.line(), "swap\n");
    assert_eq!(a.line(), "linked\n", "the new link is heard too");
    up.write_all(b"after-swap\n").unwrap();
    assert_eq!(
        a.line(),
        "after-swap\n",
        "the relinked backend side still writes to A"
    );
    a.send("a-again\n");
    assert_eq!(
        backend_line(&mut up_reader),
        "a-again\n",
        "A's side of the new link"
    );

    // `part`: A is told, and lives on unlinked.
    up.write_all(b"part\n").unwrap();
    assert_eq!(a.line(), "part\n");
    assert_eq!(a.line(), "unlinked\n");

    // Client B takes the same backend connection: no second accept, the bytes flow both ways.
    let mut b = Client::open(addr);
    b.send("from-b\n");
    assert_eq!(backend_line(&mut up_reader), "from-b\n");
    up.write_all(b"to-b\n").unwrap();
    assert_eq!(b.line(), "linked\n");
    assert_eq!(b.line(), "to-b\n");
    backend.set_nonblocking(true).unwrap();
    assert!(
        backend.accept().is_err(),
        "B reused the connection, no new dial"
    );

    // Closing a side of a live link still tells the other: B goes, the backend side hears.
    drop(b);
    assert_eq!(backend_line(&mut up_reader), "client gone\n");

    // Unlinked and idle, it still reads: a byte closes it.
    up.write_all(b"junk\n").unwrap();
    let mut rest = Vec::new();
    let _ = up_reader.read_to_end(&mut rest);
    assert!(rest.is_empty(), "closed without writing: {rest:?}");

    // Its address is stale now: a link to it is refused, whichever connection took its slot.
    let mut c = Client::open(addr);
    assert_eq!(c.line(), "unlinked\n");
    drop((a, c));
    reactor.shutdown(Duration::from_secs(5));
}
