//! The chat protocol: every line a member sends goes to every other member, on any shard,
//! in order per sender. Shared by `examples/chat.rs` and `tests/chat.rs`.
//!
//! Membership is one `RwLock<Vec<ConnAddr>>` for the whole server: it changes only when a
//! member joins or leaves, and a line takes the read side once, to fan out. The lines
//! themselves travel as reactor messages (an `Arc<[u8]>` per line, one boxed message per
//! receiver), never under the lock.

use std::collections::VecDeque;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use coreloop_reactor::{
    ConnAddr, ConnFactory, ConnInfo, Cx, Message, Protocol, ProtocolFactory, Step, Verb,
};

/// What a member reads first: it is in the room from then on.
pub const WELCOME: &[u8] = b"welcome\n";

/// A line longer than this closes its sender.
const MAX_LINE: usize = 4096;

/// Output a receiver may leave unread before it is dropped as too slow.
const MAX_UNREAD: usize = 4 << 20;

/// How soon a sender whose receivers' queues were full tries again.
const RETRY: Duration = Duration::from_millis(2);

/// Every member, on every shard.
#[derive(Default)]
pub struct Room {
    members: RwLock<Vec<ConnAddr>>,
}

impl Room {
    fn join(&self, member: ConnAddr) {
        self.members.write().expect("room lock").push(member);
    }

    fn leave(&self, member: ConnAddr) {
        let mut members = self.members.write().expect("room lock");
        if let Some(at) = members.iter().position(|m| *m == member) {
            members.swap_remove(at);
        }
    }
}

/// The listener's protocol: one room shared by all shards.
#[derive(Clone, Default)]
pub struct ChatFactory {
    pub room: Arc<Room>,
}

impl ProtocolFactory for ChatFactory {
    fn for_shard(&self, _shard: usize) -> Box<dyn ConnFactory> {
        Box::new(self.clone())
    }
}

impl ConnFactory for ChatFactory {
    fn open(&mut self, _info: &ConnInfo) -> Box<dyn Protocol> {
        Box::new(Member {
            room: self.room.clone(),
            me: None,
            backlog: VecDeque::new(),
        })
    }
}

struct Member {
    room: Arc<Room>,
    me: Option<ConnAddr>,
    /// Lines refused by a full queue, oldest first. While it holds anything every later line
    /// waits behind it (and no input is consumed), so per-receiver order holds.
    backlog: VecDeque<(ConnAddr, Arc<[u8]>)>,
}

impl Member {
    fn fan_out(&mut self, line: Arc<[u8]>, cx: &mut Cx<'_>) {
        let me = cx.addr();
        let room = self.room.clone();
        let members = room.members.read().expect("room lock");
        for &to in members.iter().filter(|m| **m != me) {
            send(&mut self.backlog, to, line.clone(), cx);
        }
    }

    /// Sends what the backlog holds until a queue is full again.
    fn retry(&mut self, cx: &mut Cx<'_>) {
        while let Some((to, line)) = self.backlog.pop_front() {
            if let Err(refused) = cx.send(to, Box::new(line)) {
                let line = refused
                    .into_message()
                    .downcast::<Arc<[u8]>>()
                    .expect("a line");
                self.backlog.push_front((to, *line));
                return;
            }
        }
    }
}

fn send(
    backlog: &mut VecDeque<(ConnAddr, Arc<[u8]>)>,
    to: ConnAddr,
    line: Arc<[u8]>,
    cx: &mut Cx<'_>,
) {
    if !backlog.is_empty() {
        backlog.push_back((to, line));
        return;
    }
    if let Err(refused) = cx.send(to, Box::new(line)) {
        let line = refused
            .into_message()
            .downcast::<Arc<[u8]>>()
            .expect("a line");
        backlog.push_back((to, *line));
    }
}

impl Protocol for Member {
    fn on_open(&mut self, cx: &mut Cx<'_>) -> Verb {
        let me = cx.addr();
        self.room.join(me);
        self.me = Some(me);
        cx.out().extend_from_slice(WELCOME);
        Verb::Read
    }

    fn on_input(&mut self, input: &[u8], cx: &mut Cx<'_>) -> Step {
        if !self.backlog.is_empty() {
            // Input waits in the connection's buffer (bounded by `max_input`) until the
            // backlog is gone; the retry deadline hands it over again.
            return Step::new(0, Verb::Read);
        }
        let mut consumed = 0;
        while let Some(end) = input[consumed..].iter().position(|b| *b == b'\n') {
            let line: Arc<[u8]> = input[consumed..consumed + end + 1].into();
            consumed += end + 1;
            self.fan_out(line, cx);
        }
        if input.len() - consumed > MAX_LINE {
            cx.refuse();
            return Step::new(input.len(), Verb::CloseNow);
        }
        if !self.backlog.is_empty() {
            cx.set_deadline(cx.now() + RETRY);
        }
        Step::new(consumed, Verb::Read)
    }

    fn on_deadline(&mut self, cx: &mut Cx<'_>) -> Verb {
        self.retry(cx);
        if !self.backlog.is_empty() {
            cx.set_deadline(cx.now() + RETRY);
            return Verb::Read;
        }
        // Nothing pending to write: the wait ends at once and the buffered lines are handed
        // over again (the shard re-feeds input after a flush).
        Verb::WaitFlush
    }

    fn on_message(&mut self, message: Message, cx: &mut Cx<'_>) -> Verb {
        let Ok(line) = message.downcast::<Arc<[u8]>>() else {
            return Verb::Read;
        };
        cx.out().extend_from_slice(&line);
        if cx.pending_output() > MAX_UNREAD {
            cx.refuse();
            return Verb::CloseNow;
        }
        Verb::Read
    }

    fn on_eof(&mut self, _unconsumed: &[u8], _cx: &mut Cx<'_>) -> Verb {
        // Lines still in the backlog are lost with the sender; a member that leaves leaves.
        Verb::CloseAfterFlush
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        if let Some(me) = self.me {
            self.room.leave(me);
        }
    }
}
