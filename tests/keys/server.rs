//! `[server]`: threads, balancing, connection limits, the offload pool.

use std::net::TcpStream;
use std::os::unix::fs::OpenOptionsExt;
use std::process::Command;

use super::{connect, count_threads, echoed, eventually, metric};
use crate::support::{config, Conn, Server, TempDir};

#[test]
pub fn shards_is_the_number_of_shard_threads() {
    let server = Server::start(&config(&[("shards = 2", "shards = 3")]));
    assert_eq!(count_threads(server.pid(), "coreloop-shard"), 3);
    assert_eq!(metric(server.addr("web"), "coreloop_shards", &[]), 3.0);
}

/// Open connections per shard, from a scrape on `scraper` (itself a connection).
fn per_shard(scraper: &mut Conn) -> Vec<f64> {
    let text = scraper.get("/metrics").text();
    let e = crate::support::Exposition::parse(&text);
    (0..2)
        .map(|s| e.sum("coreloop_connections_active", &[("shard", &s.to_string())]))
        .collect()
}

/// Which shard each connection lands on, for a sequence where the policies differ: with the
/// scraper on shard 0 and a connection that came and went on shard 1, least-loaded sends the
/// next one to the empty shard 1, round-robin to shard 0 (its turn).
fn third_connection_lands(balance: &str) -> Vec<f64> {
    let server = Server::start(&config(&[(
        "balance = \"least-loaded\"",
        &format!("balance = \"{balance}\""),
    )]));
    let mut scraper = Conn::open(server.addr("web"));
    assert_eq!(per_shard(&mut scraper), [1.0, 0.0]);
    let mut first = super::connect(server.addr("echo"));
    echoed(&mut first, b"1");
    assert_eq!(per_shard(&mut scraper), [1.0, 1.0]);
    drop(first);
    assert!(eventually(|| per_shard(&mut scraper) == [1.0, 0.0]));
    let mut third: TcpStream = connect(server.addr("echo"));
    echoed(&mut third, b"3");
    per_shard(&mut scraper)
}

#[test]
pub fn least_loaded_and_round_robin_pick_differently() {
    assert_eq!(third_connection_lands("least-loaded"), [1.0, 1.0]);
    assert_eq!(third_connection_lands("round-robin"), [2.0, 0.0]);
}

#[test]
pub fn reuseport_runs_no_acceptor() {
    let acceptor = |balance: &str| {
        let edit = format!("balance = \"{balance}\"");
        let server = Server::start(&config(&[("balance = \"least-loaded\"", &edit)]));
        count_threads(server.pid(), "coreloop-accept")
    };
    assert_eq!(acceptor("least-loaded"), 1);
    assert_eq!(acceptor("reuseport"), 0);
}

#[test]
pub fn pin_cores_gives_each_shard_one_cpu() {
    let cpus = |pin: &str| {
        let server = Server::start(&config(&[
            ("shards = 2", "shards = 1"),
            ("pin_cores = false", pin),
        ]));
        let all = super::named_threads(server.pid());
        let shard = all
            .iter()
            .find(|(c, _)| c.starts_with("coreloop-shard"))
            .unwrap();
        shard.1.clone()
    };
    assert_eq!(cpus("pin_cores = true"), "0");
    let free = cpus("pin_cores = false");
    assert!(
        free != "0" || std::thread::available_parallelism().unwrap().get() == 1,
        "an unpinned shard may run on every CPU, found {free}"
    );
}

/// Fills the server with `held` echo connections beside the scraper: accepting pauses when
/// the limit is reached, and one more connection is served only once one of them goes.
fn limit_holds(edits: &[(&str, &str)], held: usize) {
    let server = Server::start(&config(edits));
    let mut scraper = Conn::open(server.addr("web"));
    let mut paused = || {
        let e = crate::support::Exposition::parse(&scraper.get("/metrics").text());
        e.sum(
            "coreloop_accept_paused_total",
            &[("cause", "connection_limit")],
        )
    };
    assert_eq!(paused(), 0.0);
    let mut conns: Vec<TcpStream> = (0..held).map(|_| connect(server.addr("echo"))).collect();
    for conn in &mut conns {
        echoed(conn, b"x");
    }
    let mut waiting = connect(server.addr("echo"));
    assert!(eventually(|| paused() >= 1.0), "accepting never paused");
    let mut gauges = || {
        let e = crate::support::Exposition::parse(&scraper.get("/metrics").text());
        let free = e.sum("coreloop_connection_slots_free", &[]);
        let max = e.sum("coreloop_max_connections", &[]);
        let active = e.sum("coreloop_connections_active", &[]);
        assert_eq!(free, (max - active).max(0.0), "slots free");
        let cause = [("cause", "connection_limit")];
        e.sum("coreloop_accepting_paused", &cause)
    };
    assert_eq!(gauges(), 1.0, "the paused gauge is 1 while paused");
    drop(conns.pop());
    echoed(&mut waiting, b"served once a slot is free");
    // `waiting` took the freed slot: at the limit again. With room, the pause ends once the
    // acceptor next looks, which a connection waiting to be accepted makes it do.
    drop(conns);
    drop(waiting);
    let mut again = connect(server.addr("echo"));
    echoed(&mut again, b"accepted with room");
    assert!(
        eventually(|| gauges() == 0.0),
        "the paused gauge went back to 0"
    );
}

#[test]
pub fn max_connections_pauses_accepting() {
    limit_holds(&[("max_connections = 2000", "max_connections = 3")], 2);
}

#[test]
pub fn max_connections_per_shard_pauses_accepting() {
    let edit = "max_connections_per_shard = 2\n";
    limit_holds(&[("# max_connections_per_shard = 25000\n", edit)], 3);
}

#[test]
pub fn offload_threads_is_the_pool_size() {
    let dir = TempDir::new();
    dir.write("page", "hello");
    let route = format!(
        "[[listener.route]]\npath = \"/files/*\"\nfiles = {{ root = \"{}\" }}\n\n\
         [[listener.route]]\npath = \"/delay\"",
        dir.0.display()
    );
    let server = Server::start(&config(&[
        ("offload_threads = 4", "offload_threads = 2"),
        ("[[listener.route]]\npath = \"/delay\"", route.as_str()),
    ]));
    // The pool's threads start with the first blocking job (issue 13 §3): none before it.
    assert_eq!(count_threads(server.pid(), "coreloop-offl"), 0);
    let mut conn = Conn::open(server.addr("web"));
    assert_eq!(conn.get("/files/page").status, 200);
    // A thread takes its name once it runs: the one that served the job has, the other may
    // not have yet.
    let started = || count_threads(server.pid(), "coreloop-offl");
    assert!(eventually(|| started() == 2), "{} pool threads", started());
}

/// One thread and a queue of one hold two jobs: files requests for a FIFO block the thread in
/// `open(2)` until a writer comes, so of three sent at once at least one is refused with 503 at
/// once (which one depends on how fast the thread takes the first); the held ones get 504 at
/// the offload timeout.
#[test]
pub fn a_full_offload_queue_refuses_with_503() {
    let dir = TempDir::new();
    let fifo = dir.0.join("stall");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let route = format!(
        "[[listener.route]]\npath = \"/files/*\"\nfiles = {{ root = \"{}\" }}\n\n\
         [[listener.route]]\npath = \"/delay\"",
        dir.0.display()
    );
    let server = Server::start(&config(&[
        ("offload_threads = 4", "offload_threads = 1"),
        ("offload_queue = 1024", "offload_queue = 1"),
        ("offload = \"10s\"", "offload = \"1s\""),
        ("[[listener.route]]\npath = \"/delay\"", route.as_str()),
    ]));
    let web = server.addr("web");
    let mut jobs: Vec<Conn> = (0..3).map(|_| Conn::open(web)).collect();
    for conn in &mut jobs {
        conn.send("GET /files/stall HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
    }
    let statuses: Vec<u16> = jobs
        .iter_mut()
        .map(|conn| conn.read_response().unwrap().status)
        .collect();
    let refused = statuses.iter().filter(|&&s| s == 503).count();
    assert!(refused >= 1, "none of three refused: {statuses:?}");
    assert!(
        statuses.iter().all(|&s| s == 503 || s == 504),
        "{statuses:?}"
    );
    // Let the blocked thread go (a writer that opens and leaves), so the scrape has a thread.
    let writer = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc_nonblock())
        .open(&fifo);
    drop(writer);
    let counted = metric(
        web,
        "coreloop_offload_jobs_total",
        &[("outcome", "refused")],
    );
    assert_eq!(counted, refused as f64, "refusals counted: {statuses:?}");
}

/// `O_NONBLOCK`: opening a FIFO for writing with no reader fails at once (ENXIO) instead of
/// waiting for one; the held job may already have been dropped.
fn libc_nonblock() -> i32 {
    0o4000
}
