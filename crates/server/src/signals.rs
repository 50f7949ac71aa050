//! Signals become events on the main thread's channel, next to the drain's completion, so one
//! `recv` loop decides everything (no work in a signal handler: signal-hook's iterator thread
//! reads a self-pipe and forwards).

use std::io;
use std::sync::mpsc::Sender;

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

/// What the main loop reacts to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Event {
    /// SIGTERM or SIGINT (the number): drain, or at the second one, exit at once.
    Stop(i32),
    /// SIGHUP: reload the configuration.
    Reload,
    /// Every shard has finished draining.
    Drained,
}

/// Installs the handlers (from now on these signals no longer kill the process) and starts the
/// thread that forwards them.
pub(crate) fn forward(events: Sender<Event>) -> io::Result<()> {
    let mut signals = Signals::new([SIGTERM, SIGINT, SIGHUP])?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for signal in signals.forever() {
                let event = if signal == SIGHUP {
                    Event::Reload
                } else {
                    Event::Stop(signal)
                };
                if events.send(event).is_err() {
                    return;
                }
            }
        })?;
    Ok(())
}

/// A signal's name for logs.
pub(crate) fn name(signal: i32) -> &'static str {
    match signal {
        SIGTERM => "SIGTERM",
        SIGINT => "SIGINT",
        SIGHUP => "SIGHUP",
        _ => "signal",
    }
}
