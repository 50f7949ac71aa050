//! The timer wheel against a trivial reference (a `BTreeMap` of deadlines): every deadline fires
//! exactly once, never before it is due and at most one tick after; a cancelled one never fires.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use coreloop_reactor::timer::{TimerKey, TimerWheel};
use proptest::prelude::*;

const TICK: Duration = Duration::from_millis(10);
/// A deliberately small wheel (64 slots = 640 ms), so deadlines wrap round it many times.
const SLOTS: usize = 64;

#[derive(Clone, Debug)]
enum Op {
    /// Insert a timer this many ms after the current time (0 = already due).
    Insert(u64),
    /// Cancel the n-th inserted timer (modulo how many there are), fired or not.
    Cancel(usize),
    /// Move the clock on by this many ms and expire.
    Advance(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u64..3_000).prop_map(Op::Insert),
        1 => any::<usize>().prop_map(Op::Cancel),
        3 => (0u64..400).prop_map(Op::Advance),
    ]
}

struct Model {
    /// Live timers: id -> deadline.
    pending: BTreeMap<u64, Instant>,
    keys: Vec<(u64, TimerKey)>,
}

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let start = Instant::now();
    let mut now = start;
    let mut wheel = TimerWheel::new(start, TICK, SLOTS);
    let mut model = Model {
        pending: BTreeMap::new(),
        keys: Vec::new(),
    };
    let mut next_id = 0u64;
    for op in ops {
        match op {
            Op::Insert(after) => {
                let at = now + Duration::from_millis(after);
                let key = wheel.insert(at, next_id);
                model.pending.insert(next_id, at);
                model.keys.push((next_id, key));
                next_id += 1;
            }
            Op::Cancel(n) if !model.keys.is_empty() => {
                let (id, key) = model.keys[n % model.keys.len()];
                let was_pending = model.pending.remove(&id).is_some();
                prop_assert_eq!(wheel.cancel(key), was_pending.then_some(id));
            }
            Op::Cancel(_) => {}
            Op::Advance(ms) => {
                now += Duration::from_millis(ms);
                let mut fired = Vec::new();
                wheel.expire(now, |id| fired.push(id));
                check_expiry(&mut model, &fired, now)?;
            }
        }
        prop_assert_eq!(wheel.len(), model.pending.len());
    }
    // Far in the future everything left fires.
    let end = now + Duration::from_secs(3600);
    let mut fired = Vec::new();
    wheel.expire(end, |id| fired.push(id));
    check_expiry(&mut model, &fired, end)?;
    prop_assert!(model.pending.is_empty());
    Ok(())
}

fn check_expiry(model: &mut Model, fired: &[u64], now: Instant) -> Result<(), TestCaseError> {
    for id in fired {
        let at = model.pending.remove(id);
        prop_assert!(
            at.is_some(),
            "timer {} fired twice, or after being cancelled",
            id
        );
        prop_assert!(at.unwrap() <= now, "timer {} fired early", id);
    }
    for (id, at) in &model.pending {
        prop_assert!(*at + TICK > now, "timer {} is more than a tick overdue", id);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn the_wheel_agrees_with_a_sorted_map(ops in proptest::collection::vec(op(), 1..200)) {
        run(ops)?;
    }
}

#[test]
fn next_expiry_is_never_later_than_the_earliest_deadline() {
    let start = Instant::now();
    let mut wheel = TimerWheel::new(start, TICK, SLOTS);
    assert_eq!(wheel.next_expiry(), None);
    wheel.insert(start + Duration::from_millis(2_000), 1);
    wheel.insert(start + Duration::from_millis(35), 2);
    let next = wheel.next_expiry().expect("a pending timer");
    assert!(
        next <= start + Duration::from_millis(40),
        "{:?}",
        next - start
    );
    assert!(next >= start + Duration::from_millis(35));
}
