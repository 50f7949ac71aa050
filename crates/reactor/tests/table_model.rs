//! The connection table against a trivial reference (a `HashMap` of live tokens): a token
//! reaches its own value while it lives, and nothing after its slot was freed and reused.

use std::collections::HashMap;

use coreloop_reactor::table::{ConnTable, Keyed};
use coreloop_reactor::token::ConnToken;
use proptest::prelude::*;

#[derive(Debug, PartialEq)]
struct Item {
    token: ConnToken,
    value: u64,
}

impl Keyed for Item {
    fn token(&self) -> ConnToken {
        self.token
    }
}

#[derive(Clone, Debug)]
enum Op {
    /// Store a new value (declined when the flag is set, as a failed registration is).
    Insert(u64, bool),
    /// Remove by the n-th token ever issued (modulo), live or stale.
    Remove(usize),
    /// Look up by the n-th token ever issued (modulo), live or stale.
    Get(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (any::<u64>(), prop::bool::weighted(0.1)).prop_map(|(v, d)| Op::Insert(v, d)),
        2 => any::<usize>().prop_map(Op::Remove),
        3 => any::<usize>().prop_map(Op::Get),
    ]
}

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let mut table = ConnTable::with_capacity(4);
    let mut live: HashMap<ConnToken, u64> = HashMap::new();
    let mut issued: Vec<ConnToken> = Vec::new();
    for op in ops {
        match op {
            Op::Insert(value, decline) => {
                let token = table.insert_with(|token| (!decline).then_some(Item { token, value }));
                prop_assert_eq!(token.is_some(), !decline);
                if let Some(token) = token {
                    prop_assert!(!live.contains_key(&token), "a live token was issued twice");
                    live.insert(token, value);
                    issued.push(token);
                }
            }
            Op::Remove(n) if !issued.is_empty() => {
                let token = issued[n % issued.len()];
                let removed = table.remove(token).map(|item| item.value);
                prop_assert_eq!(removed, live.remove(&token));
            }
            Op::Get(n) if !issued.is_empty() => {
                let token = issued[n % issued.len()];
                let got = table.get_mut(token).map(|item| item.value);
                prop_assert_eq!(got, live.get(&token).copied());
            }
            Op::Remove(_) | Op::Get(_) => {}
        }
        prop_assert_eq!(table.len(), live.len());
    }
    let mut tokens = table.tokens();
    tokens.sort_by_key(|t| (t.index(), t.generation()));
    let mut expected: Vec<ConnToken> = live.keys().copied().collect();
    expected.sort_by_key(|t| (t.index(), t.generation()));
    prop_assert_eq!(tokens, expected);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn the_table_agrees_with_a_map_of_live_tokens(ops in proptest::collection::vec(op(), 1..300)) {
        run(ops)?;
    }
}

#[test]
fn a_stale_token_misses_the_slot_s_new_occupant() {
    let mut table = ConnTable::with_capacity(1);
    let first = table
        .insert_with(|token| Some(Item { token, value: 1 }))
        .unwrap();
    assert!(table.remove(first).is_some());
    let second = table
        .insert_with(|token| Some(Item { token, value: 2 }))
        .unwrap();
    assert_eq!(first.index(), second.index(), "the slot is reused");
    assert!(table.get_mut(first).is_none());
    assert!(table.remove(first).is_none());
    assert_eq!(table.get_mut(second).map(|i| i.value), Some(2));
}
