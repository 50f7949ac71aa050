//! An echo server on the reactor, to try it by hand:
//!
//! ```text
//! cargo run --release -p coreloop-reactor --example echo -- --addr 127.0.0.1:9000 --shards 4 \
//!     --balance least-loaded        # or round-robin, reuseport; --addr unix:/tmp/echo.sock
//! ```
//!
//! Once bound it prints `listening address=ADDR`. On SIGINT or SIGTERM it drains, prints one
//! line per shard `shard=I accepted=A closed=C`, and exits 0.

use std::sync::Arc;
use std::time::Duration;

use coreloop_reactor::echo::EchoFactory;
use coreloop_reactor::frame::FrameEchoFactory;
use coreloop_reactor::{Balance, ListenAddr, ListenerSpec, ProtocolFactory, ReactorConfig};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

const USAGE: &str = "usage: echo [--addr HOST:PORT|unix:/PATH] [--shards N] \
[--balance least-loaded|round-robin|reuseport] [--protocol echo|frame] [--max-connections N] \
[--drain SECONDS]";

struct Args {
    addr: ListenAddr,
    config: ReactorConfig,
    frame: bool,
    drain: Duration,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        addr: ListenAddr::parse("127.0.0.1:9000")?,
        config: ReactorConfig::default(),
        frame: false,
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
            "--shards" => args.config.shards = number(&value()?)?,
            "--balance" => {
                let text = value()?;
                args.config.balance =
                    Balance::parse(&text).ok_or(format!("unknown balance `{text}`\n{USAGE}"))?;
            }
            "--protocol" => args.frame = value()? == "frame",
            "--max-connections" => args.config.max_connections = number(&value()?)?,
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
    let protocol: Arc<dyn ProtocolFactory> = if args.frame {
        Arc::new(FrameEchoFactory { max: 1 << 20 })
    } else {
        Arc::new(EchoFactory)
    };
    args.config
        .listeners
        .push(ListenerSpec::new("echo", args.addr, protocol).with_backlog(1024));
    // Registered before the listener exists, so no signal can arrive unhandled.
    let mut signals = Signals::new([SIGINT, SIGTERM]).expect("installing signal handlers");
    let mut reactor = match coreloop_reactor::start(args.config) {
        Ok(reactor) => reactor,
        Err(error) => {
            eprintln!("echo: {error}");
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
        let closed: u64 = shard.closed.iter().sum();
        println!(
            "shard={} accepted={} closed={}",
            shard.shard, shard.accepted, closed
        );
    }
}
