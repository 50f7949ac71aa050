//! The command line: `serve` (the default), `check-config`, `print-config`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use coreloop_config::{Config, Override};

use crate::{serve, EXIT_OK, EXIT_USAGE};

#[derive(Parser, Debug)]
#[command(
    name = "coreloop",
    version,
    about = "A sharded multi-reactor network server for Linux",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the server (the default when no command is given).
    Serve(ServeArgs),
    /// Validate a configuration file with the same overrides `serve` takes: exit 0 and a
    /// one-line summary, or exit 2 and every error.
    CheckConfig {
        /// The file to check.
        path: PathBuf,
        #[command(flatten)]
        overrides: Overrides,
    },
    /// Print the embedded default configuration, documented key by key.
    PrintConfig,
    /// Print every configuration key: whether a reload applies it, whether it may be set per
    /// listener, and which protocols it acts on.
    PrintKeys,
}

/// What `serve` takes: a file and overrides of a few keys.
#[derive(Args, Debug, Clone, Default)]
pub(crate) struct ServeArgs {
    /// The configuration file; without it the embedded default (`coreloop print-config`) runs.
    #[arg(long, short = 'c', value_name = "PATH")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    overrides: Overrides,
}

/// The keys the command line may override, for `serve` and `check-config` alike.
#[derive(Args, Debug, Clone, Default)]
pub(crate) struct Overrides {
    /// Override `server.shards`: "auto" or a number.
    #[arg(long, value_name = "auto|N")]
    shards: Option<String>,
    /// Override `server.balance`.
    #[arg(long, value_name = "least-loaded|round-robin|reuseport")]
    balance: Option<String>,
    /// Rebind the listener NAME to ADDR (repeatable).
    #[arg(long, value_name = "NAME=ADDR")]
    listen: Vec<String>,
    /// Override `log.level` (RUST_LOG, when set, wins over both).
    #[arg(long, value_name = "trace|debug|info|warn|error")]
    log_level: Option<String>,
}

impl ServeArgs {
    /// The overrides, in a fixed order (they are applied again at every reload).
    pub fn overrides(&self) -> Vec<Override> {
        self.overrides.list()
    }
}

impl Overrides {
    fn list(&self) -> Vec<Override> {
        let mut overrides = Vec::new();
        overrides.extend(self.shards.clone().map(Override::Shards));
        overrides.extend(self.balance.clone().map(Override::Balance));
        overrides.extend(self.listen.iter().cloned().map(Override::Listen));
        overrides.extend(self.log_level.clone().map(Override::LogLevel));
        overrides
    }
}

/// Parses the command line and runs the command.
pub(crate) fn run() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            let _ = error.print();
            // --help and --version are "errors" to clap that go to stdout: not failures.
            return if error.use_stderr() {
                EXIT_USAGE
            } else {
                EXIT_OK
            };
        }
    };
    match cli.command {
        None => serve::run(&cli.serve),
        Some(Command::Serve(args)) => serve::run(&args),
        Some(Command::CheckConfig { path, overrides }) => check_config(path, overrides),
        Some(Command::PrintConfig) => {
            print!("{}", Config::default_toml());
            EXIT_OK
        }
        Some(Command::PrintKeys) => {
            print!("{}", coreloop_config::key_table());
            EXIT_OK
        }
    }
}

/// Checks what `serve` with the same file and overrides would run, by the same loader.
fn check_config(path: PathBuf, overrides: Overrides) -> i32 {
    let args = ServeArgs {
        config: Some(path),
        overrides,
    };
    match load(&args) {
        Ok(config) => {
            for warning in config.warnings() {
                eprintln!("warning: {warning}");
            }
            println!("{}", config.summary());
            EXIT_OK
        }
        Err(errors) => {
            eprint!("{}", with_newline(&errors.to_string()));
            EXIT_USAGE
        }
    }
}

/// `text` ending in exactly one newline.
pub(crate) fn with_newline(text: &str) -> String {
    format!("{}\n", text.trim_end_matches('\n'))
}

/// Loads the file (or the embedded default) and applies the command-line overrides.
pub(crate) fn load(args: &ServeArgs) -> Result<Config, coreloop_config::ConfigErrors> {
    let base = match &args.config {
        Some(path) => Config::load(path)?,
        None => Config::embedded_default(),
    };
    let overrides = args.overrides();
    if overrides.is_empty() {
        Ok(base)
    } else {
        base.with_overrides(&overrides)
    }
}
