//! Diagnostic logging to stderr: text or JSON lines, with a level that changes on reload.
//!
//! `RUST_LOG`, when set, is the filter for the whole run (it can name targets, the config
//! level cannot), and a reload leaves it alone; otherwise `[log] level` applies, live.

use coreloop_config::{Keyword, LogFormat, LogLevel};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, reload, EnvFilter, Registry};

/// Changes the level of the running subscriber.
pub(crate) struct LogControl {
    handle: reload::Handle<EnvFilter, Registry>,
    from_env: bool,
}

/// Installs the global subscriber.
pub(crate) fn init(level: LogLevel, format: LogFormat) -> LogControl {
    let env = std::env::var("RUST_LOG")
        .ok()
        .filter(|v| !v.trim().is_empty());
    let filter = env
        .as_deref()
        .and_then(|v| EnvFilter::try_new(v).ok())
        .unwrap_or_else(|| filter_for(level));
    let (filter, handle) = reload::Layer::new(filter);
    let registry = tracing_subscriber::registry().with(filter);
    // try_init: a second init (tests in one process) keeps the first subscriber.
    let _ = match format {
        LogFormat::Text => registry
            .with(fmt::layer().with_writer(std::io::stderr).with_ansi(false))
            .try_init(),
        LogFormat::Json => registry
            .with(fmt::layer().json().with_writer(std::io::stderr))
            .try_init(),
    };
    LogControl {
        handle,
        from_env: env.is_some(),
    }
}

impl LogControl {
    /// Applies `[log] level` (unless `RUST_LOG` rules); returns whether it was applied.
    pub fn set_level(&self, level: LogLevel) -> bool {
        if self.from_env {
            return false;
        }
        self.handle.reload(filter_for(level)).is_ok()
    }
}

fn filter_for(level: LogLevel) -> EnvFilter {
    EnvFilter::new(level.name())
}
