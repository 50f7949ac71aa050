//! The command line: flags into a validated `Config`, and what to print where.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};

use crate::config::{self, Config, ConfigError, PipelineMode};
use crate::target::{self, Protocol};
use crate::tls::{TlsOptions, Verify};

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ProtocolArg {
    Http,
    Echo,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum PipelineModeArg {
    Window,
    Batch,
}

/// Drive HTTP/1.1 or echo load at 10k connections and beyond, and measure
/// latency from the intended send time in open loop (--rate).
#[derive(Debug, Parser)]
#[command(name = "coreloop-load", version)]
pub struct Args {
    /// http://HOST:PORT/PATH, echo://HOST:PORT or unix:/PATH
    target: String,
    /// Connections to keep open, over all threads
    #[arg(short = 'c', long, default_value_t = 100)]
    connections: usize,
    /// Client threads (default: number of cores)
    #[arg(short = 't', long)]
    threads: Option<usize>,
    /// Measured time, e.g. 10s, 500ms, 2m
    #[arg(short = 'd', long, default_value = "10s", value_parser = config::parse_duration)]
    duration: Duration,
    /// Time run but not counted, before the measured time
    #[arg(long, default_value = "2s", value_parser = config::parse_duration)]
    warmup: Duration,
    /// New connections per second while ramping up (default: all at once)
    #[arg(long, value_name = "N/s", value_parser = config::parse_rate)]
    connect_rate: Option<f64>,
    /// Total requests per second: open loop, latency from the intended send time
    #[arg(long, value_name = "R", value_parser = config::parse_rate)]
    rate: Option<f64>,
    /// Requests in flight per connection
    #[arg(long, default_value_t = 1)]
    pipeline: usize,
    /// Closed loop: window = one new request per response; batch = write
    /// --pipeline requests, the next batch when all are answered (like wrk)
    #[arg(long, value_enum, default_value = "window")]
    pipeline_mode: PipelineModeArg,
    /// HTTP method
    #[arg(short = 'm', long, default_value = "GET")]
    method: String,
    /// Extra request header 'Name: value' (repeatable)
    #[arg(short = 'H', long = "header", value_name = "HEADER")]
    headers: Vec<String>,
    /// Request body: a string, or @FILE to read it from a file
    #[arg(long, value_name = "STRING|@FILE")]
    body: Option<String>,
    /// Echo payload bytes per request
    #[arg(long, default_value_t = 64)]
    size: usize,
    /// Protocol for unix: targets (http:// and echo:// imply theirs)
    #[arg(long, value_enum)]
    protocol: Option<ProtocolArg>,
    /// Local source addresses to spread connections over, e.g. 127.0.0.1-127.0.0.16
    #[arg(long, value_name = "RANGE", value_parser = parse_sources)]
    source_addrs: Option<Sources>,
    /// Per-request timeout, counted from when the request is queued
    #[arg(long, default_value = "5s", value_parser = config::parse_duration)]
    timeout: Duration,
    /// Stop after exactly N measured requests in total
    #[arg(long, value_name = "N")]
    requests: Option<u64>,
    /// Write the report as JSON to FILE ('-' for stdout)
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Write a self-contained HTML report (latency distribution, per-second charts)
    #[arg(long, value_name = "FILE.html")]
    report: Option<PathBuf>,
    /// With --report: also draw this earlier JSON report on the same axes (repeatable)
    #[arg(long, value_name = "REPORT.json", requires = "report")]
    compare: Vec<PathBuf>,
    /// Print the full percentile tables
    #[arg(long)]
    latency: bool,
    /// Worker processes, each with its own share of connections, source
    /// addresses and rate (and its own fd limit); one merged report
    #[arg(long, default_value_t = 1, value_name = "N")]
    processes: usize,
    /// Start at this wall-clock time (Unix seconds, e.g. `$(date -d '+30 sec' +%s)`),
    /// so runs started on several machines overlap for `merge`
    #[arg(long, value_name = "UNIX_SECONDS")]
    start_at: Option<u64>,
    /// Internal: run as worker process I of --processes (started by the parent)
    #[arg(long, hide = true, value_name = "I")]
    worker_index: Option<usize>,
    /// Never draw the progress bar
    #[arg(long)]
    no_progress: bool,
    /// https: accept any server certificate (the handshake signature is still checked)
    #[arg(short = 'k', long, conflicts_with = "cacert")]
    insecure: bool,
    /// https: trust only the PEM CA certificates in FILE (default: Mozilla's roots, built in)
    #[arg(long, value_name = "FILE")]
    cacert: Option<PathBuf>,
    /// https: resume TLS sessions on reconnects (default: every connection
    /// makes a full handshake)
    #[arg(long)]
    tls_resume: bool,
}

#[derive(Debug, Clone)]
struct Sources(Vec<IpAddr>);

fn parse_sources(s: &str) -> Result<Sources, String> {
    config::parse_source_addrs(s).map(Sources)
}

/// What to do with the report besides printing it.
#[derive(Debug, Clone, Default)]
pub struct Output {
    pub json: Option<PathBuf>,
    pub html: Option<PathBuf>,
    /// Earlier reports drawn with this one in the HTML report.
    pub compare: Vec<PathBuf>,
    pub latency: bool,
    /// Worker process `I` of `config.processes`: JSON to stdout, nothing else.
    pub worker_index: Option<usize>,
}

impl Args {
    /// Builds and validates the run's config.
    pub fn into_config(self) -> Result<(Config, Output), ConfigError> {
        let target = target::parse(&self.target).map_err(|e| ConfigError(e.to_string()))?;
        let mut c = Config::new(target);
        if let Some(p) = self.protocol {
            c.protocol = match p {
                ProtocolArg::Http => Protocol::Http,
                ProtocolArg::Echo => Protocol::Echo,
            };
        }
        c.connections = self.connections;
        c.threads = self.threads.unwrap_or(c.threads);
        c.duration = self.duration;
        c.warmup = self.warmup;
        c.connect_rate = self.connect_rate;
        c.rate = self.rate;
        c.pipeline = self.pipeline;
        c.pipeline_mode = match self.pipeline_mode {
            PipelineModeArg::Window => PipelineMode::Window,
            PipelineModeArg::Batch => PipelineMode::Batch,
        };
        c.method = self.method;
        c.headers = self.headers;
        c.body = body(self.body.as_deref())?;
        c.size = self.size;
        c.source_addrs = self.source_addrs.map(|s| s.0).unwrap_or_default();
        c.timeout = self.timeout;
        c.requests = self.requests;
        c.progress = !self.no_progress && self.json.as_deref() != Some("-".as_ref());
        c.processes = self.processes;
        c.start_at = self
            .start_at
            .map(|s| std::time::UNIX_EPOCH + Duration::from_secs(s));
        c.tls = TlsOptions {
            verify: match (self.insecure, self.cacert) {
                (true, _) => Verify::Insecure,
                (false, Some(path)) => Verify::CaFile(path),
                (false, None) => Verify::WebPkiRoots,
            },
            resume: self.tls_resume,
        };
        c.validate()?;
        // A malformed -H or method is a command-line error, found before the run.
        crate::request::Batch::new(&c)?;
        // So is a --cacert file without a certificate in it.
        if c.target.tls_host.is_some() {
            crate::tls::client_config(&c.tls).map_err(ConfigError)?;
        }
        Ok((
            c,
            Output {
                json: self.json,
                html: self.report,
                compare: self.compare,
                latency: self.latency,
                worker_index: self.worker_index,
            },
        ))
    }
}

fn body(arg: Option<&str>) -> Result<Vec<u8>, ConfigError> {
    match arg {
        None => Ok(Vec::new()),
        Some(s) => match s.strip_prefix('@') {
            Some(path) => {
                std::fs::read(path).map_err(|e| ConfigError(format!("--body @{path}: {e}")))
            }
            None => Ok(s.as_bytes().to_vec()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(args: &[&str]) -> Result<Config, String> {
        let all = std::iter::once("coreloop-load").chain(args.iter().copied());
        let a = Args::try_parse_from(all).map_err(|e| e.to_string())?;
        a.into_config().map(|(c, _)| c).map_err(|e| e.0)
    }

    #[test]
    fn defaults() {
        let c = config(&["http://127.0.0.1:8080/"]).unwrap();
        assert_eq!(c.connections, 100);
        assert_eq!(c.duration, Duration::from_secs(10));
        assert_eq!(c.warmup, Duration::from_secs(2));
        assert_eq!(c.pipeline, 1);
        assert_eq!(c.pipeline_mode, PipelineMode::Window);
        assert!(c.rate.is_none());
    }

    #[test]
    fn every_flag() {
        let c = config(&[
            "-c",
            "10",
            "-t",
            "2",
            "-d",
            "3s",
            "--warmup",
            "0s",
            "--connect-rate",
            "100/s",
            "--rate",
            "500",
            "--pipeline",
            "4",
            "-m",
            "POST",
            "-H",
            "X-A: 1",
            "--body",
            "hi",
            "--source-addrs",
            "127.0.0.1-127.0.0.4",
            "--timeout",
            "250ms",
            "--requests",
            "99",
            "--no-progress",
            "http://127.0.0.1:1/x",
        ])
        .unwrap();
        assert_eq!((c.connections, c.threads, c.pipeline), (10, 2, 4));
        assert_eq!(c.rate, Some(500.0));
        assert_eq!(c.connect_rate, Some(100.0));
        assert_eq!(c.body, b"hi");
        assert_eq!(c.source_addrs.len(), 4);
        assert_eq!(c.timeout, Duration::from_millis(250));
        assert_eq!(c.requests, Some(99));
        assert!(!c.progress);
    }

    #[test]
    fn pipeline_mode_flag() {
        let check = |mode: &str, expected| {
            let c = config(&[
                "--pipeline",
                "16",
                "--pipeline-mode",
                mode,
                "http://127.0.0.1:1/",
            ]);
            assert_eq!(c.unwrap().pipeline_mode, expected, "--pipeline-mode {mode}");
        };
        check("window", PipelineMode::Window);
        check("batch", PipelineMode::Batch);
    }

    #[test]
    fn pipeline_mode_refusals() {
        let err = config(&["--pipeline-mode", "bulk", "http://127.0.0.1:1/"]).unwrap_err();
        assert!(err.contains("--pipeline-mode"), "{err}");
        let open = [
            "--rate",
            "100",
            "--pipeline-mode",
            "batch",
            "http://127.0.0.1:1/",
        ];
        let err = config(&open).unwrap_err();
        assert!(err.contains("closed loop only"), "{err}");
        let window = [
            "--rate",
            "100",
            "--pipeline-mode",
            "window",
            "http://127.0.0.1:1/",
        ];
        assert!(config(&window).is_ok());
    }

    /// The shipped Kubernetes Job runs a command this parser accepts.
    #[test]
    fn kubernetes_example_command_parses() {
        let yaml = include_str!("../../../config/examples/kubernetes/coreloop-load-job.yaml");
        assert!(yaml.contains("parallelism: 4") && yaml.contains("completionMode: Indexed"));
        let start = yaml.find("exec coreloop-load").expect("the load command");
        let end = start + yaml[start..].find("resources:").expect("after the command");
        let soon = std::time::SystemTime::now() + Duration::from_secs(90);
        let secs = soon
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let command = yaml[start..end]
            .replace("${START_AT}", &secs.to_string())
            .replace("${JOB_COMPLETION_INDEX}", "0")
            // Resolved at parse time; the cluster's name does not resolve here.
            .replace("coreloop.bench.svc.cluster.local", "127.0.0.1")
            .replace('"', "");
        let words: Vec<&str> = command.split_whitespace().skip(2).collect();
        let c = config(&words).unwrap_or_else(|e| panic!("{words:?}: {e}"));
        assert_eq!((c.processes, c.connections), (2, 25_000));
        assert!(c.start_at.is_some());
    }

    #[test]
    fn tls_flags() {
        let c = config(&["https://127.0.0.1:1/"]).unwrap();
        assert_eq!(c.tls, TlsOptions::default());
        let c = config(&["-k", "--tls-resume", "https://127.0.0.1:1/"]).unwrap();
        assert_eq!(c.tls.verify, Verify::Insecure);
        assert!(c.tls.resume);
        let err = config(&["--insecure", "--cacert", "x.pem", "https://127.0.0.1:1/"]);
        assert!(err.unwrap_err().contains("cannot be used with"));
        for plain in [
            &["--insecure"][..],
            &["--tls-resume"],
            &["--cacert", "x.pem"],
        ] {
            let mut args = plain.to_vec();
            args.push("http://127.0.0.1:1/");
            let err = config(&args).unwrap_err();
            assert!(err.contains("https:// targets only"), "{plain:?}: {err}");
        }
        let err = config(&["--cacert", "/nonexistent.pem", "https://127.0.0.1:1/"]).unwrap_err();
        assert!(err.contains("--cacert /nonexistent.pem"), "{err}");
        let empty =
            std::env::temp_dir().join(format!("coreloop-load-empty-{}.pem", std::process::id()));
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let err = config(&["--cacert", empty.to_str().unwrap(), "https://127.0.0.1:1/"]);
        let _ = std::fs::remove_file(&empty);
        assert!(err.unwrap_err().contains("no PEM certificate"));
    }

    #[test]
    fn unix_protocol_flag() {
        let c = config(&["--protocol", "echo", "unix:/tmp/x.sock"]).unwrap();
        assert_eq!(c.protocol, Protocol::Echo);
    }

    #[test]
    fn refusals() {
        assert!(config(&["ftp://x"]).is_err());
        assert!(config(&["--pipeline", "0", "http://127.0.0.1:1/"]).is_err());
        assert!(config(&["--body", "@/nonexistent/file", "http://127.0.0.1:1/"]).is_err());
        assert!(config(&["--rate", "-5", "http://127.0.0.1:1/"]).is_err());
    }
}
