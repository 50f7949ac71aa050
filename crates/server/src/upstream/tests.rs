use std::sync::Arc;
use std::time::{Duration, Instant};

use coreloop_config::{Address, Upstream, UpstreamBalance};
use coreloop_metrics::upstream::UpstreamStats;

use super::{ShardUpstream, Tried};

fn spec(ports: &[u16], balance: UpstreamBalance, max_fails: u32) -> Upstream {
    Upstream {
        name: "app".into(),
        servers: (ports.iter())
            .map(|p| Address::Tcp(([127, 0, 0, 1], *p).into()))
            .collect(),
        balance,
        connect_timeout: Duration::from_secs(1),
        max_fails,
        fail_timeout: Duration::from_secs(10),
        response_timeout: Duration::from_secs(30),
        keepalive: 32,
        idle_timeout: Duration::from_secs(60),
    }
}

fn stats_of(spec: &Upstream) -> Arc<UpstreamStats> {
    let names: Vec<String> = spec.servers.iter().map(ToString::to_string).collect();
    Arc::new(UpstreamStats::new("app", &names, 1))
}

fn upstream(
    n: u16,
    balance: UpstreamBalance,
    max_fails: u32,
) -> (ShardUpstream, Arc<UpstreamStats>) {
    let ports: Vec<u16> = (9000..9000 + n).collect();
    let spec = spec(&ports, balance, max_fails);
    let stats = stats_of(&spec);
    (ShardUpstream::new(&spec, 0, stats.clone()), stats)
}

/// Indices (in rotation order) of `n` picks, each one kept open.
fn picks(u: &mut ShardUpstream, now: Instant, n: usize) -> Vec<usize> {
    (0..n)
        .map(|_| {
            let s = u.pick(now, &Tried::new()).unwrap();
            u.servers()
                .iter()
                .position(|x| std::rc::Rc::ptr_eq(x, &s))
                .unwrap()
        })
        .collect()
}

#[test]
fn round_robin_takes_servers_in_turn_and_skips_the_tried() {
    let (mut u, _) = upstream(3, UpstreamBalance::RoundRobin, 3);
    let now = Instant::now();
    assert_eq!(picks(&mut u, now, 5), [0, 1, 2, 0, 1]);
    let servers = u.servers().to_vec();
    let mut tried = vec![servers[2].clone(), servers[0].clone()];
    let next = u.pick(now, &tried).unwrap();
    assert!(std::rc::Rc::ptr_eq(&next, &servers[1]));
    tried.push(next);
    assert!(u.pick(now, &tried).is_none());
}

#[test]
fn max_fails_in_a_row_eject_for_fail_timeout_then_probation() {
    let (mut u, stats) = upstream(2, UpstreamBalance::RoundRobin, 2);
    let now = Instant::now();
    let first = u.servers()[0].clone();
    assert!(!u.failed(&first, now));
    u.connected(&first); // a success in between resets the count
    assert!(!u.failed(&first, now));
    assert!(u.failed(&first, now));
    assert_eq!(picks(&mut u, now, 3), [1, 1, 1]);
    assert_eq!(stats.snapshot().servers[0].ejected, 1);
    // Back after fail_timeout, on probation: one failure ejects again.
    let later = now + Duration::from_secs(10);
    assert!(picks(&mut u, later, 2).contains(&0));
    assert!(u.failed(&first, later));
    assert_eq!(picks(&mut u, later, 2), [1, 1]);
    // A success takes it off probation and out of the gauge.
    u.connected(&first);
    assert!(!u.failed(&first, later + Duration::from_secs(10)));
    let snap = stats.snapshot();
    assert_eq!((snap.servers[0].ejected, snap.servers[0].ejections), (0, 2));
}

#[test]
fn all_ejected_leaves_no_server_and_max_fails_zero_never_ejects() {
    let (mut u, _) = upstream(2, UpstreamBalance::RoundRobin, 1);
    let now = Instant::now();
    for s in u.servers().to_vec() {
        u.failed(&s, now);
    }
    assert!(u.pick(now, &Tried::new()).is_none());
    let (mut never, _) = upstream(1, UpstreamBalance::RoundRobin, 0);
    let only = never.servers()[0].clone();
    for _ in 0..100 {
        assert!(!never.failed(&only, now));
    }
    assert!(never.pick(now, &Tried::new()).is_some());
}

#[test]
fn least_requests_picks_the_less_loaded_of_two() {
    let (mut u, stats) = upstream(2, UpstreamBalance::LeastRequests, 3);
    let now = Instant::now();
    // With two servers both are always the two choices: the less loaded one wins.
    let first = u.pick(now, &Tried::new()).unwrap();
    let second = u.pick(now, &Tried::new()).unwrap();
    assert!(!std::rc::Rc::ptr_eq(&first, &second));
    first.release();
    assert!(std::rc::Rc::ptr_eq(
        &u.pick(now, &Tried::new()).unwrap(),
        &first
    ));
    let second_at = u
        .servers()
        .iter()
        .position(|s| std::rc::Rc::ptr_eq(s, &second));
    assert_eq!(stats.snapshot().servers[second_at.unwrap()].active, 1);
}

#[test]
fn least_requests_spreads_over_many_servers() {
    let (mut u, _) = upstream(8, UpstreamBalance::LeastRequests, 3);
    let now = Instant::now();
    picks(&mut u, now, 800);
    let loads: Vec<u32> = u.servers().iter().map(|s| s.in_flight.get()).collect();
    let (min, max) = (loads.iter().min().unwrap(), loads.iter().max().unwrap());
    // Two choices keep the gap to a few connections, where random picks drift by tens.
    assert!(max - min <= 4, "loads {loads:?}");
}

/// A reload keeps a kept server's slot (its open connections and its ejection), adds the
/// new one, and drops the removed one from the rotation while its connection runs on.
#[test]
fn an_update_keeps_kept_servers_and_lets_removed_ones_drain() {
    let old = spec(&[9000, 9001], UpstreamBalance::RoundRobin, 1);
    let stats = stats_of(&old);
    let mut u = ShardUpstream::new(&old, 0, stats.clone());
    let now = Instant::now();
    let on_removed = u.pick(now, &Tried::new()).unwrap(); // 9000
    let kept = u.servers()[1].clone();
    u.failed(&kept, now); // 9001 ejected
    let new = spec(&[9001, 9002], UpstreamBalance::RoundRobin, 1);
    let names: Vec<String> = new.servers.iter().map(ToString::to_string).collect();
    let reshaped = Arc::new(stats.reshaped(&names));
    u.update(&new, reshaped.clone());
    assert!(std::rc::Rc::ptr_eq(&u.servers()[0], &kept));
    // 9001 is still ejected, 9000 is gone: only the new 9002 is picked.
    for _ in 0..3 {
        let s = u.pick(now, &Tried::new()).unwrap();
        assert_eq!(s.addr.to_string(), "127.0.0.1:9002");
    }
    // The connection to the removed server releases its own slot and counters.
    on_removed.release();
    assert_eq!(stats.snapshot().servers[0].active, 0);
    assert_eq!(reshaped.snapshot().servers[0].ejected, 1);
}
