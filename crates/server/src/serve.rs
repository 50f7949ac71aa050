//! `coreloop serve`: start, announce, then react to signals until drained.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use coreloop_config::{format_duration, Config};
use coreloop_http::MetricsHook;
use coreloop_metrics::{Scraper, ServerStats, Sources};
use coreloop_reactor::{DrainReport, ListenAddr, ReactorHandle, StartError};

use crate::access_format::Format;
use crate::access_log;
use crate::cli::{self, ServeArgs};
use crate::notify::Notifier;
use crate::reload::{http_stats, tls_stats, Reloader, RunningListener};
use crate::signals::{self, Event};
use crate::{logging, wiring, EXIT_DRAIN_CUT, EXIT_OK, EXIT_RUNTIME, EXIT_USAGE};

/// Runs the server; returns the exit code.
pub(crate) fn run(args: &ServeArgs) -> i32 {
    let config = match cli::load(args) {
        Ok(config) => config,
        Err(errors) => {
            eprint!("{}", cli::with_newline(&errors.to_string()));
            return EXIT_USAGE;
        }
    };
    let log = logging::init(config.log.level, config.log.format);
    for warning in config.warnings() {
        tracing::warn!("{warning}");
    }
    let stats = Arc::new(ServerStats::default());
    let (access_hook, access_writer) = match access_log::start(
        &config.log.access_log,
        Format::of(config.log.access_format, config.log.format),
        config.listeners.iter().map(|l| l.name.clone()).collect(),
        stats.clone(),
    ) {
        Ok(Some((hook, writer))) => (Some(hook), Some(writer)),
        Ok(None) => (None, None),
        Err(e) => {
            tracing::error!(
                "log.access_log: cannot open {:?}: {e}",
                config.log.access_log
            );
            return EXIT_RUNTIME;
        }
    };
    // The metrics route is wired before the reactor exists; its sources arrive after start
    // and change when a reload adds or removes listeners. A scrape renders on its shard from
    // atomics and the process figures this thread refreshes once a second.
    let scraper = Scraper::new();
    if let Err(e) = scraper.spawn_refresher() {
        tracing::warn!("metrics: no process-figures thread ({e}); process_* stay as at start");
    }
    let metrics: MetricsHook = {
        let scraper = scraper.clone();
        Arc::new(move |format| scraper.render(format))
    };
    let wired = match wiring::build(&config, &metrics, access_hook.as_ref()) {
        Ok(wired) => wired,
        Err(message) => {
            tracing::error!("{message}");
            return EXIT_USAGE;
        }
    };
    let (events, inbox) = mpsc::channel();
    // Before anything is announced: from here SIGTERM drains instead of killing.
    if let Err(e) = signals::forward(events.clone()) {
        tracing::error!("installing signal handlers failed: {e}");
        return EXIT_RUNTIME;
    }
    let inherited: Vec<bool> = wired
        .reactor
        .listeners
        .iter()
        .map(|l| matches!(l.addr, ListenAddr::Inherited(_)))
        .collect();
    let max_connections = wired.reactor.max_connections as u64;
    let tls: Vec<_> = wired
        .reactor
        .listeners
        .iter()
        .map(|l| l.tls.clone())
        .collect();
    let handle = match coreloop_reactor::start(wired.reactor) {
        Ok(handle) => handle,
        Err(error) => {
            report_start_error(&config, &error);
            return EXIT_RUNTIME;
        }
    };
    let listeners: Vec<RunningListener> = config
        .listeners
        .iter()
        .enumerate()
        .map(|(id, l)| RunningListener {
            id,
            config: l.clone(),
            http: wired
                .http
                .iter()
                .find(|(i, _)| *i == id)
                .map(|(_, f)| f.clone()),
            tls: tls[id].clone(),
        })
        .collect();
    scraper.set(Sources {
        reactor: handle.stats_reader(),
        listeners: handle.listener_names().to_vec(),
        http: http_stats(&listeners),
        upstreams: wired.upstreams.stats.clone(),
        tls: tls_stats(&listeners),
        server: stats.clone(),
        version: env!("CARGO_PKG_VERSION"),
        max_connections,
    });
    announce(&config, &handle, &inherited);
    let notifier = Notifier::from_env();
    notifier.ready();
    let reloader = Reloader {
        args: args.clone(),
        started: config.clone(),
        current: config,
        listeners,
        metrics,
        access_log: access_hook,
        upstreams: wired.upstreams.clone(),
        log,
        stats,
        scraper,
    };
    let code = main_loop(handle, reloader, &notifier, &events, &inbox);
    if let Some(writer) = access_writer {
        writer.stop();
    }
    code
}

/// One line per listener that tests and operators can grep, with the real bound address and
/// whether the socket was bound here or inherited (systemd socket activation).
fn announce(config: &Config, handle: &ReactorHandle, inherited: &[bool]) {
    let names = handle.listener_names();
    for (i, (name, addr)) in names.iter().zip(handle.local_addrs()).enumerate() {
        let protocol = config
            .listeners
            .get(i)
            .map_or("?", |l| protocol_name(l.protocol));
        let socket = if inherited.get(i).copied().unwrap_or(false) {
            "inherited"
        } else {
            "bound"
        };
        tracing::info!("listening name={name} protocol={protocol} address={addr} socket={socket}");
    }
    tracing::info!(
        "coreloop {} running: {} shards, pid {}",
        env!("CARGO_PKG_VERSION"),
        handle.shards(),
        std::process::id()
    );
}

pub(crate) fn protocol_name(protocol: coreloop_config::Protocol) -> &'static str {
    match protocol {
        coreloop_config::Protocol::Http => "http",
        coreloop_config::Protocol::Echo => "echo",
        coreloop_config::Protocol::Frame => "frame",
        coreloop_config::Protocol::TcpProxy => "tcp-proxy",
    }
}

/// A bind failure names the listener, the address and where the config set it.
fn report_start_error(config: &Config, error: &StartError) {
    if let StartError::Bind { listener, .. } = error {
        if let Some(i) = config.listeners.iter().position(|l| &l.name == listener) {
            let loc = config.location_of(&format!("listener[{i}].address"));
            tracing::error!("{error} (address set at {loc})");
            return;
        }
    }
    tracing::error!("{error}");
}

fn main_loop(
    handle: ReactorHandle,
    mut reloader: Reloader,
    notifier: &Notifier,
    events: &mpsc::Sender<Event>,
    inbox: &mpsc::Receiver<Event>,
) -> i32 {
    let mut running = Some(handle);
    let report: Arc<Mutex<Option<DrainReport>>> = Arc::default();
    while let Ok(event) = inbox.recv() {
        match event {
            Event::Reload => match running.as_mut() {
                Some(handle) => reloader.reload(handle, notifier),
                None => tracing::warn!("SIGHUP while draining: ignored"),
            },
            Event::Stop(signal) => {
                let Some(mut handle) = running.take() else {
                    tracing::warn!(
                        "second {}: exiting without finishing the drain",
                        signals::name(signal)
                    );
                    return EXIT_RUNTIME;
                };
                // Restart-only by the key table: the deadline the listeners were set up with.
                let drain = reloader.started.timeouts.drain;
                notifier.stopping();
                reloader.stats.begin_drain();
                tracing::info!(
                    "{}: draining (deadline {}); send it again to exit at once",
                    signals::name(signal),
                    format_duration(drain)
                );
                handle.begin_drain(Instant::now() + drain);
                let events = events.clone();
                let report = report.clone();
                std::thread::Builder::new()
                    .name("drain".into())
                    .spawn(move || {
                        let drained = handle.wait();
                        *report.lock().unwrap_or_else(|p| p.into_inner()) = Some(drained);
                        let _ = events.send(Event::Drained);
                    })
                    .map_err(|e| tracing::error!("drain thread: {e}"))
                    .ok();
            }
            Event::Drained => {
                let drained = report.lock().unwrap_or_else(|p| p.into_inner()).take();
                return drain_exit(drained.unwrap_or_default());
            }
        }
    }
    EXIT_RUNTIME
}

/// The final line of a drain, and the exit status: non-zero when connections were cut off
/// at the deadline.
fn drain_exit(report: DrainReport) -> i32 {
    let DrainReport {
        closed_cleanly,
        cut,
    } = report;
    if report.lost_work() {
        tracing::warn!(
            "drained; exiting: connections: {closed_cleanly} closed cleanly, {cut} cut at the \
             drain deadline (exit status {EXIT_DRAIN_CUT})"
        );
        return EXIT_DRAIN_CUT;
    }
    tracing::info!(
        "drained; exiting: connections: {closed_cleanly} closed cleanly, 0 cut at the drain deadline"
    );
    EXIT_OK
}
