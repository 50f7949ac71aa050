//! `[[upstream]]` keys and `listener.upstream`, through tcp-proxy listeners. One shard where
//! the order of picks matters, so the rotation is the one a test can predict.

use crate::support::{config, eventually, scrape, Server};
use crate::tcp_proxy::{
    backend, closed, connect, dead_addr, full_listener, proxy, proxy_toml_on, round_trip, servers,
    upstream_metric,
};

fn one_shard(upstream: &str, listener: &str) -> Server {
    let base = config(&[("shards = 2", "shards = 1")]);
    Server::start(&proxy_toml_on(base, upstream, listener))
}

fn connects(proxy: &Server, server: &str) -> f64 {
    upstream_metric(proxy, "coreloop_upstream_connects_total", server)
}

fn refused(proxy: &Server, server: &str) -> f64 {
    scrape(proxy.addr("web")).sum(
        "coreloop_upstream_connect_errors_total",
        &[("server", server), ("cause", "refused")],
    )
}

/// Two upstreams; the listener's `upstream` decides which one its bytes reach.
#[test]
pub fn listener_upstream_picks_the_upstream() {
    let backend = backend(true);
    let (one, two) = (backend.addr("echo"), backend.addr("echo2"));
    let other = format!("\n[[upstream]]\nname = \"other\"\nservers = [\"{two}\"]\n");
    let text = proxy_toml_on(config(&[]), &servers(&[one.to_string()]), "")
        .replace("upstream = \"app\"", "upstream = \"other\"")
        + &other;
    let proxy = Server::start(&text);
    round_trip(&mut connect(proxy.addr("db")), b"to the other upstream");
    let to_two = scrape(proxy.addr("web")).sum(
        "coreloop_upstream_connects_total",
        &[("upstream", "other"), ("server", &two.to_string())],
    );
    assert_eq!(to_two, 1.0);
    assert_eq!(connects(&proxy, &one.to_string()), 0.0);
}

#[test]
pub fn name_is_the_metric_label() {
    let backend = backend(false);
    let echo = backend.addr("echo").to_string();
    let proxy = proxy(&servers(&[&echo]), "");
    round_trip(&mut connect(proxy.addr("db")), b"x");
    assert_eq!(connects(&proxy, &echo), 1.0);
}

#[test]
pub fn servers_are_where_connections_go() {
    let backend = backend(true);
    let (one, two) = (
        backend.addr("echo").to_string(),
        backend.addr("echo2").to_string(),
    );
    let proxy = one_shard(&servers(&[&one, &two]), "");
    for _ in 0..4 {
        round_trip(&mut connect(proxy.addr("db")), b"spread");
    }
    assert_eq!((connects(&proxy, &one), connects(&proxy, &two)), (2.0, 2.0));
}

/// One connection held open on the first server; then three in turn, each closed (and seen
/// closed) before the next. Round-robin alternates; least-requests sends all three to the
/// idle server, since with two servers its two choices are always both.
#[test]
pub fn balance_round_robin_alternates_and_least_requests_avoids_the_busy_server() {
    let backend = backend(true);
    let (one, two) = (
        backend.addr("echo").to_string(),
        backend.addr("echo2").to_string(),
    );
    for (balance, expected) in [("round-robin", (2.0, 2.0)), ("least-requests", (1.0, 3.0))] {
        let upstream = servers(&[&one, &two]) + &format!("balance = \"{balance}\"\n");
        let proxy = one_shard(&upstream, "");
        let mut held = connect(proxy.addr("db"));
        round_trip(&mut held, b"held");
        let first = if connects(&proxy, &one) == 1.0 {
            &one
        } else {
            &two
        };
        let second = if first == &one { &two } else { &one };
        for _ in 0..3 {
            let mut conn = connect(proxy.addr("db"));
            round_trip(&mut conn, b"short");
            conn.shutdown(std::net::Shutdown::Write).unwrap();
            assert!(closed(&mut conn));
            let settled = eventually(|| {
                upstream_metric(&proxy, "coreloop_upstream_connections_active", "") == 1.0
            });
            assert!(settled, "{balance}: a closed connection stays active");
        }
        let got = (connects(&proxy, first), connects(&proxy, second));
        assert_eq!(got, expected, "{balance}");
    }
}

#[test]
pub fn connect_timeout_bounds_a_connect() {
    let (full, _socket, _fillers) = full_listener();
    let full = full.to_string();
    let proxy = one_shard(&(servers(&[&full]) + "connect_timeout = \"100ms\"\n"), "");
    let mut conn = connect(proxy.addr("db"));
    assert!(closed(&mut conn));
    let timed_out = scrape(proxy.addr("web")).sum(
        "coreloop_upstream_connect_errors_total",
        &[("server", &full), ("cause", "timed_out")],
    );
    assert_eq!(
        timed_out,
        1.0,
        "{:?}",
        scrape(proxy.addr("web"))
            .samples
            .iter()
            .filter(|s| s.0.contains("upstream"))
            .collect::<Vec<_>>()
    );
}

/// The dead server is first in the rotation every other connection until `max_fails`
/// refusals eject it.
#[test]
pub fn max_fails_is_the_failures_that_eject() {
    let backend = backend(false);
    let echo = backend.addr("echo").to_string();
    let dead = dead_addr().to_string();
    for max_fails in [1.0, 3.0] {
        let upstream = servers(&[&dead, &echo])
            + &format!("max_fails = {max_fails}\nfail_timeout = \"10m\"\n");
        let proxy = one_shard(&upstream, "");
        for _ in 0..8 {
            round_trip(&mut connect(proxy.addr("db")), b"m");
        }
        assert_eq!(refused(&proxy, &dead), max_fails);
        let ejected = upstream_metric(&proxy, "coreloop_upstream_ejected", &dead);
        assert_eq!(ejected, 1.0);
    }
}

/// Ejected for 100ms, the dead server comes back into rotation and is tried (and refuses)
/// again; ejected for 10 minutes, it is not.
#[test]
pub fn fail_timeout_is_how_long_a_server_is_skipped() {
    let backend = backend(false);
    let echo = backend.addr("echo").to_string();
    let dead = dead_addr().to_string();
    let upstream = |timeout: &str| {
        servers(&[&dead, &echo]) + &format!("max_fails = 1\nfail_timeout = \"{timeout}\"\n")
    };
    let short = one_shard(&upstream("100ms"), "");
    let tried_again = eventually(|| {
        round_trip(&mut connect(short.addr("db")), b"f");
        refused(&short, &dead) >= 2.0
    });
    assert!(tried_again, "an ejected server never came back");
    let long = one_shard(&upstream("10m"), "");
    for _ in 0..20 {
        round_trip(&mut connect(long.addr("db")), b"f");
    }
    assert_eq!(refused(&long, &dead), 1.0);
}

/// `[timeouts] idle` on a tcp-proxy listener: a connection quiet both ways is closed.
#[test]
pub fn idle_closes_a_quiet_proxied_connection() {
    let backend = backend(false);
    let echo = backend.addr("echo").to_string();
    let proxy = proxy(
        &servers(&[echo]),
        "\n[listener.timeouts]\nidle = \"300ms\"\n",
    );
    let mut conn = connect(proxy.addr("db"));
    round_trip(&mut conn, b"then quiet");
    assert!(closed(&mut conn), "an idle proxied connection stayed open");
}
