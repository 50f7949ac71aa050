//! Signals become events on the main thread's channel, next to the drain's completion, so one
//! `recv` loop decides everything (no work in a signal handler: signal-hook's iterator thread
//! reads a self-pipe and forwards). The one exception is the second SIGTERM/SIGINT: it must
//! exit whatever any thread is doing, including a main thread blocked in a drain, so the
//! signal thread itself ends the process and joins nothing.

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

/// What the signal thread does with one signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Forward(Event),
    /// The second stop signal: exit with this status, now.
    Exit(i32),
}

/// Decides on `signal`, the `stops`-th stop signal seen so far being counted by the caller.
fn action(signal: i32, stops: &mut u32) -> Action {
    if signal == SIGHUP {
        return Action::Forward(Event::Reload);
    }
    *stops += 1;
    if *stops == 1 {
        Action::Forward(Event::Stop(signal))
    } else {
        Action::Exit(crate::EXIT_RUNTIME)
    }
}

/// Installs the handlers (from now on these signals no longer kill the process) and starts the
/// thread that forwards them.
pub(crate) fn forward(events: Sender<Event>) -> io::Result<()> {
    let mut signals = Signals::new([SIGTERM, SIGINT, SIGHUP])?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let mut stops = 0;
            for signal in signals.forever() {
                match action(signal, &mut stops) {
                    Action::Forward(event) => {
                        // The main loop is gone only when the process is ending anyway.
                        let _ = events.send(event);
                    }
                    Action::Exit(code) => {
                        tracing::warn!(
                            "second {}: exiting without finishing the drain",
                            name(signal)
                        );
                        // Joins no thread and takes no lock a blocked thread may hold (std's
                        // stdout flush at exit only tries its lock).
                        std::process::exit(code);
                    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_second_stop_signal_exits_and_reloads_never_count() {
        let mut stops = 0;
        assert_eq!(action(SIGHUP, &mut stops), Action::Forward(Event::Reload));
        assert_eq!(
            action(SIGTERM, &mut stops),
            Action::Forward(Event::Stop(SIGTERM))
        );
        assert_eq!(action(SIGHUP, &mut stops), Action::Forward(Event::Reload));
        assert_eq!(
            action(SIGINT, &mut stops),
            Action::Exit(crate::EXIT_RUNTIME)
        );
    }
}
