use std::sync::Arc;
use std::time::{Duration, Instant};

use coreloop_config::{Address, Upstream, UpstreamBalance};
use coreloop_metrics::upstream::UpstreamStats;

use super::{ShardUpstream, Tried};

fn upstream(
    n: usize,
    balance: UpstreamBalance,
    max_fails: u32,
) -> (ShardUpstream, Arc<UpstreamStats>) {
    let spec = Upstream {
        name: "app".into(),
        servers: (0..n)
            .map(|i| Address::Tcp(([127, 0, 0, 1], 9000 + i as u16).into()))
            .collect(),
        balance,
        connect_timeout: Duration::from_secs(1),
        max_fails,
        fail_timeout: Duration::from_secs(10),
    };
    let names = spec.servers.iter().map(ToString::to_string).collect();
    let stats = Arc::new(UpstreamStats::new("app", names, 1));
    (ShardUpstream::new(&spec, 0, stats.clone()), stats)
}

fn picks(u: &mut ShardUpstream, now: Instant, n: usize) -> Vec<usize> {
    (0..n)
        .map(|_| u.pick(now, &Tried::default()).unwrap())
        .collect()
}

#[test]
fn round_robin_takes_servers_in_turn_and_skips_the_tried() {
    let (mut u, _) = upstream(3, UpstreamBalance::RoundRobin, 3);
    let now = Instant::now();
    assert_eq!(picks(&mut u, now, 5), [0, 1, 2, 0, 1]);
    let mut tried = Tried::default();
    tried.add(2);
    tried.add(0);
    assert_eq!(u.pick(now, &tried), Some(1));
    tried.add(1);
    assert_eq!(u.pick(now, &tried), None);
}

#[test]
fn max_fails_in_a_row_eject_for_fail_timeout_then_probation() {
    let (mut u, stats) = upstream(2, UpstreamBalance::RoundRobin, 2);
    let now = Instant::now();
    assert!(!u.failed(0, now));
    u.connected(0); // a success in between resets the count
    assert!(!u.failed(0, now));
    assert!(u.failed(0, now));
    assert_eq!(picks(&mut u, now, 3), [1, 1, 1]);
    assert_eq!(stats.snapshot().servers[0].ejected, 1);
    // Back after fail_timeout, on probation: one failure ejects again.
    let later = now + Duration::from_secs(10);
    assert!(picks(&mut u, later, 2).contains(&0));
    assert!(u.failed(0, later));
    assert_eq!(picks(&mut u, later, 2), [1, 1]);
    // A success takes it off probation and out of the gauge.
    let much_later = later + Duration::from_secs(10);
    u.connected(0);
    assert!(!u.failed(0, much_later));
    let snap = stats.snapshot();
    assert_eq!((snap.servers[0].ejected, snap.servers[0].ejections), (0, 2));
}

#[test]
fn all_ejected_leaves_no_server_and_max_fails_zero_never_ejects() {
    let (mut u, _) = upstream(2, UpstreamBalance::RoundRobin, 1);
    let now = Instant::now();
    u.failed(0, now);
    u.failed(1, now);
    assert_eq!(u.pick(now, &Tried::default()), None);
    let (mut never, _) = upstream(1, UpstreamBalance::RoundRobin, 0);
    for _ in 0..100 {
        assert!(!never.failed(0, now));
    }
    assert_eq!(never.pick(now, &Tried::default()), Some(0));
}

#[test]
fn least_requests_picks_the_less_loaded_of_two() {
    let (mut u, stats) = upstream(2, UpstreamBalance::LeastRequests, 3);
    let now = Instant::now();
    // With two servers both are always the two choices: the less loaded one wins.
    let first = u.pick(now, &Tried::default()).unwrap();
    let second = u.pick(now, &Tried::default()).unwrap();
    assert_ne!(first, second);
    u.released(first);
    assert_eq!(u.pick(now, &Tried::default()), Some(first));
    assert_eq!(stats.snapshot().servers[second].active, 1);
}

#[test]
fn least_requests_spreads_over_many_servers() {
    let (mut u, _) = upstream(8, UpstreamBalance::LeastRequests, 3);
    let now = Instant::now();
    picks(&mut u, now, 800);
    let loads: Vec<u32> = u.servers.iter().map(|s| s.in_flight).collect();
    let (min, max) = (loads.iter().min().unwrap(), loads.iter().max().unwrap());
    // Two choices keep the gap to a few connections, where random picks drift by tens.
    assert!(max - min <= 4, "loads {loads:?}");
}
