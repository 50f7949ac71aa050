//! A chat server on the reactor: every line a client sends goes to every other connected
//! client, across all shards, in order per sender.
//!
//! ```text
//! cargo run --release -p coreloop-reactor --example chat -- --addr 127.0.0.1:9000 --shards 4 \
//!     --balance least-loaded        # or round-robin, reuseport; --addr unix:/tmp/chat.sock
//! ```
//!
//! Once bound it prints `listening address=ADDR`; each client first reads `welcome`. On SIGINT
//! or SIGTERM it drains, prints one line per shard `shard=I accepted=A delivered=D stale=S`,
//! and exits 0.

#[path = "chat/room.rs"]
mod room;

use std::sync::Arc;
use std::time::{Duration, Instant};

use coreloop_reactor::{Balance, ListenAddr, ListenerSpec, ReactorConfig};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

const USAGE: &str = "usage: chat [--addr HOST:PORT|unix:/PATH] [--shards N] \
[--balance least-loaded|round-robin|reuseport]";

fn parse_args() -> Result<(ListenAddr, ReactorConfig), String> {
    let mut addr = ListenAddr::parse("127.0.0.1:9000")?;
    let mut config = ReactorConfig::default();
    let mut words = std::env::args().skip(1);
    while let Some(flag) = words.next() {
        let mut value = || {
            words
                .next()
                .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))
        };
        match flag.as_str() {
            "--addr" => addr = ListenAddr::parse(&value()?)?,
            "--shards" => {
                let text = value()?;
                config.shards = text
                    .parse()
                    .map_err(|_| format!("`{text}` is not a number"))?;
            }
            "--balance" => {
                let text = value()?;
                config.balance =
                    Balance::parse(&text).ok_or(format!("unknown balance `{text}`\n{USAGE}"))?;
            }
            "--help" | "-h" => return Err(USAGE.to_owned()),
            other => return Err(format!("unknown argument `{other}`\n{USAGE}")),
        }
    }
    Ok((addr, config))
}

fn main() {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .init();
    let (addr, mut config) = match parse_args() {
        Ok(parsed) => parsed,
        Err(message) => {
            eprintln!("{message}");
            std::process::exit(2);
        }
    };
    config.listeners.push(
        ListenerSpec::new("chat", addr, Arc::new(room::ChatFactory::default())).with_backlog(1024),
    );
    // Registered before the listener exists, so no signal can arrive unhandled.
    let mut signals = Signals::new([SIGINT, SIGTERM]).expect("installing signal handlers");
    let mut reactor = match coreloop_reactor::start(config) {
        Ok(reactor) => reactor,
        Err(error) => {
            eprintln!("chat: {error}");
            std::process::exit(1);
        }
    };
    for addr in reactor.local_addrs() {
        println!("listening address={addr}");
    }
    signals.forever().next();
    let stats = reactor.stats_reader();
    reactor.begin_drain(Instant::now() + Duration::from_secs(5));
    reactor.wait();
    for shard in stats.snapshot().shards {
        println!(
            "shard={} accepted={} delivered={} stale={}",
            shard.shard, shard.accepted, shard.messages_delivered, shard.messages_stale
        );
    }
}
