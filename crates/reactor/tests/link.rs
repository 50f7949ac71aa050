//! Links that cannot be made, over a real reactor: each is reported to the asker as
//! `Protocol::on_unlinked`, and the asker lives on.

mod support;

use std::io::{BufRead, BufReader};
use std::sync::Arc;
use std::time::Duration;

use coreloop_reactor::token::ConnToken;
use coreloop_reactor::{Balance, ConnAddr, ConnInfo, Cx, Protocol, Step, Verb};

/// Which impossible link to ask for on open.
#[derive(Clone, Copy)]
enum Ask {
    Itself,
    GoneConnection,
    AnotherShard,
}

struct Asker {
    ask: Ask,
}

impl Protocol for Asker {
    fn on_open(&mut self, cx: &mut Cx<'_>) -> Verb {
        let own = cx.addr();
        let peer = match self.ask {
            Ask::Itself => own,
            Ask::GoneConnection => ConnAddr {
                shard: own.shard,
                token: ConnToken::new(1000, 99),
            },
            Ask::AnotherShard => ConnAddr {
                shard: (own.shard + 1) % 2,
                token: own.token,
            },
        };
        cx.link(peer);
        Verb::Read
    }

    fn on_input(&mut self, input: &[u8], cx: &mut Cx<'_>) -> Step {
        let linked = if cx.peer_out().is_some() { "yes" } else { "no" };
        cx.out()
            .extend_from_slice(format!("linked={linked}\n").as_bytes());
        Step::new(input.len(), Verb::Read)
    }

    fn on_unlinked(&mut self, cx: &mut Cx<'_>) -> Verb {
        cx.out().extend_from_slice(b"unlinked\n");
        Verb::Read
    }
}

#[test]
fn a_link_that_cannot_be_made_is_reported_as_unlinked_and_the_asker_lives_on() {
    for ask in [Ask::Itself, Ask::GoneConnection, Ask::AnotherShard] {
        let reactor = support::start(
            2,
            Balance::RoundRobin,
            support::loopback(),
            Arc::new(move |_: &ConnInfo| Asker { ask }),
            |_| {},
        );
        let client = support::connect(support::tcp_addr(&reactor));
        let mut reader = BufReader::new(client.try_clone().unwrap());
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        assert_eq!(line, "unlinked\n");
        let mut writer = client;
        support::write_all(&mut writer, b"x");
        line.clear();
        reader.read_line(&mut line).unwrap();
        assert_eq!(line, "linked=no\n");
        drop((reader, writer));
        reactor.shutdown(Duration::from_secs(5));
    }
}
