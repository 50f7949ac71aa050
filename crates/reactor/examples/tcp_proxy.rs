//! A TCP proxy on linked connections: every accepted connection is spliced to a new
//! connection to the upstream, both directions, half-close passed through.
//!
//! ```text
//! cargo run --release -p coreloop-reactor --example tcp_proxy -- --addr 127.0.0.1:9000 \
//!     --upstream 127.0.0.1:9001 --shards 4
//! ```
//!
//! Once bound it prints `listening address=ADDR`. An upstream that refuses or does not answer
//! within `--connect-timeout` closes the client; on SIGINT or SIGTERM it drains and prints one
//! line per shard: `shard=I accepted=A connected=C refused=R timed_out=T failed=F`.

use std::sync::Arc;
use std::time::Duration;

use coreloop_reactor::splice::SpliceFactory;
use coreloop_reactor::{ListenAddr, ListenerSpec, ReactorConfig};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

const USAGE: &str = "usage: tcp_proxy --upstream HOST:PORT|unix:/PATH [--addr HOST:PORT] \
[--shards N] [--connect-timeout MILLISECONDS] [--drain SECONDS]";

struct Args {
    addr: ListenAddr,
    upstream: Option<ListenAddr>,
    config: ReactorConfig,
    connect_timeout: Duration,
    drain: Duration,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        addr: ListenAddr::parse("127.0.0.1:9000")?,
        upstream: None,
        config: ReactorConfig::default(),
        connect_timeout: Duration::from_secs(5),
        drain: Duration::from_secs(10),
    };
    let mut words = std::env::args().skip(1);
    while let Some(flag) = words.next() {
        let mut value = || {
            words
                .next()
                .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))
        };
        match flag.as_str() {
            "--addr" => args.addr = ListenAddr::parse(&value()?)?,
            "--upstream" => args.upstream = Some(ListenAddr::parse(&value()?)?),
            "--shards" => args.config.shards = number(&value()?)?,
            "--connect-timeout" => {
                args.connect_timeout = Duration::from_millis(number(&value()?)? as u64)
            }
            "--drain" => args.drain = Duration::from_secs(number(&value()?)? as u64),
            "--help" | "-h" => return Err(USAGE.to_owned()),
            other => return Err(format!("unknown argument `{other}`\n{USAGE}")),
        }
    }
    Ok(args)
}

fn number(text: &str) -> Result<usize, String> {
    text.parse()
        .map_err(|_| format!("`{text}` is not a number"))
}

fn main() {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .init();
    let mut args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            std::process::exit(2);
        }
    };
    let Some(upstream) = args.upstream.take() else {
        eprintln!("--upstream is required\n{USAGE}");
        std::process::exit(2);
    };
    let factory = SpliceFactory {
        upstream,
        connect_timeout: args.connect_timeout,
    };
    args.config
        .listeners
        .push(ListenerSpec::new("proxy", args.addr, Arc::new(factory)).with_backlog(1024));
    // Registered before the listener exists, so no signal can arrive unhandled.
    let mut signals = Signals::new([SIGINT, SIGTERM]).expect("installing signal handlers");
    let mut reactor = match coreloop_reactor::start(args.config) {
        Ok(reactor) => reactor,
        Err(error) => {
            eprintln!("tcp_proxy: {error}");
            std::process::exit(1);
        }
    };
    for addr in reactor.local_addrs() {
        println!("listening address={addr}");
    }
    signals.forever().next();
    let stats = reactor.stats_reader();
    reactor.begin_drain(std::time::Instant::now() + args.drain);
    reactor.wait();
    for shard in stats.snapshot().shards {
        let out = &shard.outbound;
        println!(
            "shard={} accepted={} connected={} refused={} timed_out={} failed={}",
            shard.shard, shard.accepted, out.connected, out.refused, out.timed_out, out.failed
        );
    }
}
