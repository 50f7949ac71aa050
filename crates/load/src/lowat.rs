//! Batch mode sleeps through a batch: it cannot write the next batch before
//! every response of this one is in, so a wakeup per response segment (nginx
//! answers each pipelined request in its own segment) is a `recvfrom` and an
//! `epoll_wait` spent for nothing. Once a connection's responses have all had
//! the same size, the socket's `SO_RCVLOWAT` is set to the batch's total, and
//! the kernel wakes the reader once, when the whole batch is queued.
//!
//! Nothing may hang on a mark the responses never reach. The mark drops to 1
//! (the kernel's default) at once when a read leaves the batch unfinished (the
//! responses were larger) or a response of another size completes (which also
//! ends the use of the mark on this connection slot), and a guard timer drops
//! it when the batch has waited several times as long as the last batch took
//! (the responses were smaller, or the server is slower than it was). A FIN or
//! a reset wakes the reader whatever the mark.

use std::time::Duration;

use crate::conn::Conn;

/// Largest mark set: a batch's responses must fit one read of the worker's
/// 64 KiB scratch buffer, and Linux caps the mark at half the receive buffer.
const MAX_MARK: usize = 32 * 1024;
/// The guard waits this many times the last batch's duration...
const GUARD_FACTOR: u32 = 4;
/// ...but at least this...
const GUARD_MIN: Duration = Duration::from_millis(1);
/// ...and at most this (and a quarter of the request timeout), so a stall
/// the mark causes costs one batch at most this much latency.
const GUARD_MAX: Duration = Duration::from_millis(50);

/// What the responses on this slot have looked like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sizes {
    /// No response yet.
    Unknown,
    /// Every response so far had this many bytes (head and body).
    Same(u32),
    /// They differed, or the socket refused the option: no mark on this slot.
    Differ,
}

/// One connection slot's low-water state.
#[derive(Debug)]
pub struct LowWater {
    /// The mark set on the current socket; 1 (the kernel's default) on a new one.
    mark: u32,
    sizes: Sizes,
    /// How long the last whole batch took on this slot.
    last_batch: Duration,
    /// A guard timer for this slot is in the worker's heap.
    pub guard_pending: bool,
}

impl Default for LowWater {
    fn default() -> Self {
        Self {
            mark: 1,
            sizes: Sizes::Unknown,
            last_batch: Duration::ZERO,
            guard_pending: false,
        }
    }
}

impl LowWater {
    /// The slot got a new socket, which starts at the kernel's default.
    pub fn new_socket(&mut self) {
        self.mark = 1;
    }

    /// A response of `bytes` completed.
    pub fn response(&mut self, bytes: u64) {
        self.sizes = match self.sizes {
            Sizes::Unknown => u32::try_from(bytes).map_or(Sizes::Differ, Sizes::Same),
            Sizes::Same(s) if u64::from(s) == bytes => Sizes::Same(s),
            _ => Sizes::Differ,
        };
    }

    /// The last response of a batch completed, `took` after the batch was queued.
    pub fn batch_done(&mut self, took: Duration) {
        self.last_batch = took;
    }

    /// The mark for a batch of `requests`: their total when every response so
    /// far had one size, else 1.
    pub fn want(&self, requests: usize) -> u32 {
        let Sizes::Same(size) = self.sizes else {
            return 1;
        };
        let total = requests.saturating_mul(size as usize);
        if total > MAX_MARK {
            return 1;
        }
        u32::try_from(total).unwrap_or(1).max(1)
    }

    /// The mark in force on the socket.
    pub fn mark(&self) -> u32 {
        self.mark
    }

    /// The socket took `mark`.
    pub fn set(&mut self, mark: u32) {
        self.mark = mark;
    }

    /// The socket refused the option: never try again on this slot.
    pub fn refused(&mut self) {
        self.sizes = Sizes::Differ;
    }

    /// How long a batch may wait under a mark before the mark is dropped.
    pub fn guard(&self, timeout: Duration) -> Duration {
        let most = GUARD_MAX.min(timeout / 4).max(GUARD_MIN);
        (self.last_batch * GUARD_FACTOR).clamp(GUARD_MIN, most)
    }
}

/// A new batch was queued on `conn`: sets its mark; true if one is in force
/// (and a guard must watch it).
pub fn arm(conn: &mut Conn) -> bool {
    let want = conn.low_water.want(conn.in_flight.len());
    if want != conn.low_water.mark() {
        set_mark(conn, want);
    }
    conn.low_water.mark() > 1
}

/// After a read that brought bytes: a batch still unfinished under a mark
/// means the responses grew (or the kernel woke the reader early, under
/// memory pressure); the rest is read segment by segment.
pub fn after_read(conn: &mut Conn) {
    if !conn.in_flight.is_empty() && conn.low_water.mark() > 1 {
        set_mark(conn, 1);
    }
}

/// Sets the socket's receive low-water mark; a socket that refuses it is not
/// asked again on this slot (it keeps the kernel's default).
pub fn set_mark(conn: &mut Conn, mark: u32) {
    let Some(stream) = conn.stream.as_ref() else {
        return;
    };
    match stream.set_recv_low_water(mark) {
        Ok(()) => conn.low_water.set(mark),
        Err(_) => conn.low_water.refused(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn after(sizes: &[u64]) -> LowWater {
        let mut l = LowWater::default();
        for &s in sizes {
            l.response(s);
        }
        l
    }

    /// Every class of response history, and batch sizes around the cap.
    #[test]
    fn the_mark_is_the_batch_total_only_while_every_response_had_one_size() {
        let cases: &[(&[u64], usize, u32)] = &[
            (&[], 16, 1),                       // nothing seen yet
            (&[150], 16, 2400),                 // one response seen
            (&[150, 150, 150], 16, 2400),       // stable
            (&[150, 150, 151], 16, 1),          // one larger
            (&[150, 149], 16, 1),               // one smaller
            (&[150, 151, 150], 16, 1),          // differed once: for good
            (&[150], 3, 450),                   // a partial last batch
            (&[2048], 16, 32768),               // exactly the cap
            (&[2049], 16, 1),                   // past the cap
            (&[0], 16, 1),                      // empty echo replies: never 0
            (&[u64::from(u32::MAX) + 1], 1, 1), // does not fit the option
        ];
        for &(sizes, requests, want) in cases {
            assert_eq!(after(sizes).want(requests), want, "{sizes:?} x {requests}");
        }
    }

    #[test]
    fn a_refusal_ends_the_mark_on_the_slot_and_a_new_socket_starts_at_one() {
        let mut l = after(&[100]);
        l.set(1600);
        l.new_socket();
        assert_eq!(l.mark(), 1);
        assert_eq!(l.want(16), 1600);
        l.refused();
        assert_eq!(l.want(16), 1);
        l.response(100);
        assert_eq!(l.want(16), 1);
    }

    #[test]
    fn the_guard_follows_the_last_batch_within_its_bounds() {
        let ms = Duration::from_millis;
        let us = Duration::from_micros;
        let timeout = Duration::from_secs(5);
        let cases = [
            (Duration::ZERO, timeout, GUARD_MIN),
            (us(100), timeout, GUARD_MIN),
            (ms(2), timeout, ms(8)),
            (ms(12), timeout, ms(48)),
            (ms(13), timeout, GUARD_MAX),
            (Duration::from_secs(3), timeout, GUARD_MAX),
            (ms(10), ms(100), ms(25)),  // a quarter of a short timeout
            (ms(10), ms(1), GUARD_MIN), // never under the floor
        ];
        for (last, timeout, want) in cases {
            let mut l = LowWater::default();
            l.batch_done(last);
            assert_eq!(l.guard(timeout), want, "last {last:?} timeout {timeout:?}");
        }
    }

    /// The option does what the module relies on, on a real loopback socket:
    /// bytes under the mark do not make the socket readable, and lowering the
    /// mark makes it readable at once.
    #[test]
    fn bytes_under_the_mark_do_not_wake_and_lowering_it_does() {
        use mio::{Events, Interest, Poll, Token};
        use std::io::Write;
        use std::os::fd::AsFd;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut writer = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (reader, _) = listener.accept().unwrap();
        reader.set_nonblocking(true).unwrap();
        coreloop_reactor::sockopt::set_recv_low_water(reader.as_fd(), 100).unwrap();
        writer.write_all(&[7; 10]).unwrap();
        // A non-blocking peek returns what is queued whatever the mark: wait
        // (bounded) until the 10 bytes are there, so the next check is not vacuous.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        let mut buf = [0u8; 64];
        while reader.peek(&mut buf).map_or(0, |n| n) < 10 {
            assert!(
                std::time::Instant::now() < deadline,
                "10 bytes never arrived"
            );
            std::thread::yield_now();
        }
        let mut reader = mio::net::TcpStream::from_std(reader);
        let mut poll = Poll::new().unwrap();
        poll.registry()
            .register(&mut reader, Token(1), Interest::READABLE)
            .unwrap();
        let mut events = Events::with_capacity(4);
        poll.poll(&mut events, Some(Duration::ZERO)).unwrap();
        assert!(
            events.iter().all(|e| !e.is_readable()),
            "woke under the mark"
        );
        coreloop_reactor::sockopt::set_recv_low_water(reader.as_fd(), 1).unwrap();
        poll.poll(&mut events, Some(Duration::from_secs(5)))
            .unwrap();
        assert!(
            events.iter().any(|e| e.is_readable()),
            "lowering did not wake"
        );
    }
}
