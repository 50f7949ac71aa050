//! Kept-alive upstream connections of one server on one shard (docs/PROXY.md, "Upstream
//! keep-alive"). The server crate owns one [`ServerPool`] per server in each shard's view of
//! an upstream; the connections in it are unlinked outbound connections of that shard, each
//! driven by its own upstream side (`upstream.rs`), which parks itself after a response that
//! allows reuse and leaves when it closes. One thread: `Rc`, `RefCell`, no lock.
//!
//! Who owns what: the pool holds only the [`Parked`] tickets of idle connections (their
//! address and the slot a client puts its request in); each connection is owned by its
//! shard, and its upstream side holds a `Weak` to its pool. So dropping or retiring a pool
//! never closes a socket by itself: each parked connection sees at its next check (at most
//! [`CHECK_EVERY`]) that it is no longer parked, and closes.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use coreloop_reactor::ConnAddr;

use super::upstream::SharedPipe;

/// How often a parked connection looks whether its pool still holds it (a reload retired the
/// pool, or removed its server), at the latest.
pub(crate) const CHECK_EVERY: Duration = Duration::from_secs(1);

/// What the server crate counts of its pools.
pub trait PoolGauges {
    /// A connection was parked (`+1`) or left the pool (`-1`).
    fn idle(&self, delta: i64);
}

/// The idle connections of one server on one shard, newest last.
pub struct ServerPool {
    idle: RefCell<Vec<Rc<Parked>>>,
    /// At most this many idle (`upstream.keepalive`).
    keep: usize,
    /// A parked connection unused this long is closed (`upstream.idle_timeout`).
    pub(crate) idle_timeout: Duration,
    retired: Cell<bool>,
    gauges: Box<dyn PoolGauges>,
}

/// One parked connection, and the request a client gives it when it takes it (the pipe
/// holds the head; its link to the taker says it is there).
pub(crate) struct Parked {
    pub addr: ConnAddr,
    pub next: RefCell<Option<SharedPipe>>,
    /// The pipe of the connection's last exchange, for the taker to use again.
    pub last: RefCell<Option<SharedPipe>>,
}

impl ServerPool {
    /// A pool keeping up to `keep` idle connections for `idle_timeout` each.
    pub fn new(keep: usize, idle_timeout: Duration, gauges: Box<dyn PoolGauges>) -> Self {
        Self {
            idle: RefCell::new(Vec::new()),
            keep,
            idle_timeout,
            retired: Cell::new(false),
            gauges,
        }
    }

    /// Idle connections now.
    pub fn idle_count(&self) -> usize {
        self.idle.borrow().len()
    }

    /// Whether connections should be kept at all (`keepalive` above 0).
    pub fn keeps(&self) -> bool {
        self.keep > 0 && !self.retired.get()
    }

    /// The server left the upstream, or the view holding this pool was replaced (a reload):
    /// no connection is parked any more, and the idle ones close at their next check.
    pub fn retire(&self) {
        self.retired.set(true);
        let gone = std::mem::take(&mut *self.idle.borrow_mut());
        if !gone.is_empty() {
            self.gauges.idle(-(gone.len() as i64));
        }
    }

    /// Parks the connection at `addr`; `None` when the pool is full or retired (the caller
    /// closes it). `spare`: its ticket from an earlier park, used again when nobody else
    /// holds it any more.
    pub(crate) fn park(&self, addr: ConnAddr, spare: Option<Rc<Parked>>) -> Option<Rc<Parked>> {
        let mut idle = self.idle.borrow_mut();
        if self.retired.get() || idle.len() >= self.keep {
            return None;
        }
        let parked = match spare {
            Some(spare) if Rc::strong_count(&spare) == 1 && spare.addr == addr => {
                *spare.next.borrow_mut() = None;
                *spare.last.borrow_mut() = None;
                spare
            }
            _ => Rc::new(Parked {
                addr,
                next: RefCell::new(None),
                last: RefCell::new(None),
            }),
        };
        idle.push(parked.clone());
        self.gauges.idle(1);
        Some(parked)
    }

    /// The newest idle connection (the others age towards `idle_timeout`, so a quiet period
    /// shrinks the pool), taken out.
    pub(crate) fn take(&self) -> Option<Rc<Parked>> {
        let parked = self.idle.borrow_mut().pop()?;
        self.gauges.idle(-1);
        Some(parked)
    }

    /// Removes `parked` if it is still idle here (it closes). `try_borrow`: a connection
    /// dropped while the list is borrowed is never in it (only `park`/`take` borrow it, and
    /// neither drops a connection).
    pub(crate) fn remove(&self, parked: &Rc<Parked>) {
        let Ok(mut idle) = self.idle.try_borrow_mut() else {
            return;
        };
        if let Some(at) = idle.iter().position(|p| Rc::ptr_eq(p, parked)) {
            idle.remove(at);
            self.gauges.idle(-1);
        }
    }

    /// Whether `parked` is still idle here.
    pub(crate) fn holds(&self, parked: &Rc<Parked>) -> bool {
        self.idle.borrow().iter().any(|p| Rc::ptr_eq(p, parked))
    }
}

impl std::fmt::Debug for ServerPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerPool")
            .field("idle", &self.idle_count())
            .field("keep", &self.keep)
            .field("retired", &self.retired.get())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coreloop_reactor::token::ConnToken;

    struct Count(Rc<Cell<i64>>);

    impl PoolGauges for Count {
        fn idle(&self, delta: i64) {
            self.0.set(self.0.get() + delta);
        }
    }

    fn addr(i: usize) -> ConnAddr {
        ConnAddr {
            shard: 0,
            token: ConnToken::new(i, 1),
        }
    }

    #[test]
    fn the_pool_keeps_up_to_its_cap_hands_out_the_newest_and_forgets_on_retire() {
        let gauge = Rc::new(Cell::new(0));
        let pool = ServerPool::new(2, CHECK_EVERY, Box::new(Count(gauge.clone())));
        let first = pool.park(addr(1), None).unwrap();
        let second = pool.park(addr(2), None).unwrap();
        assert!(pool.park(addr(3), None).is_none(), "over keepalive");
        assert_eq!(gauge.get(), 2);
        assert_eq!(pool.take().unwrap().addr, second.addr, "newest first");
        assert!(pool.holds(&first) && !pool.holds(&second));
        pool.remove(&second); // not idle: nothing moves
        assert_eq!(gauge.get(), 1);
        pool.retire();
        assert_eq!((pool.idle_count(), gauge.get()), (0, 0));
        assert!(!pool.holds(&first) && pool.park(addr(4), None).is_none() && !pool.keeps());
    }

    #[test]
    fn a_connections_ticket_is_parked_again_once_nobody_else_holds_it() {
        let pool = ServerPool::new(2, CHECK_EVERY, Box::new(Count(Rc::default())));
        let first = pool.park(addr(1), None).unwrap();
        let taken = pool.take().unwrap();
        *taken.next.borrow_mut() = None;
        drop(taken);
        let again = pool.park(addr(1), Some(first.clone())).unwrap();
        assert!(
            !Rc::ptr_eq(&first, &again),
            "still held by the caller: a new one"
        );
        drop(again);
        let taken = pool.take().unwrap();
        drop(taken);
        let ptr = Rc::as_ptr(&first);
        let again = pool.park(addr(1), Some(first)).unwrap();
        assert_eq!(Rc::as_ptr(&again), ptr, "the same ticket");
        assert!(again.next.borrow().is_none() && pool.holds(&again));
        let other = pool.park(
            addr(2),
            Some(Rc::new(Parked {
                addr: addr(3),
                next: RefCell::new(None),
                last: RefCell::new(None),
            })),
        );
        assert_eq!(
            other.unwrap().addr,
            addr(2),
            "another address's ticket is not used"
        );
    }

    #[test]
    fn keepalive_zero_parks_nothing() {
        let pool = ServerPool::new(0, CHECK_EVERY, Box::new(Count(Rc::default())));
        assert!(!pool.keeps());
        assert!(pool.park(addr(1), None).is_none());
    }
}
