//! Configuration errors: where (`file:line:col`), which key, what was wrong
//! and what is allowed. Every phrase is fixed here, so tests can pin the
//! exact message and users can grep for it.

use std::fmt;
use std::sync::Arc;

use crate::units::{UnitError, DURATION_FORMS, SIZE_FORMS};

/// A position in a named source: a file, `<embedded>` or `<command line>`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Loc {
    /// The file name as given to the loader.
    pub origin: Arc<str>,
    /// 1-based line.
    pub line: u32,
    /// 1-based column, counted in characters.
    pub col: u32,
}

impl fmt::Display for Loc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.origin, self.line, self.col)
    }
}

/// One thing wrong with a configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Where the offending key or value is.
    pub loc: Loc,
    /// The key path, e.g. `listener[1].route[0].static.status`; empty for
    /// the document as a whole.
    pub path: String,
    /// What was wrong.
    pub kind: ErrorKind,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}: {}", self.loc, self.kind)
        } else {
            write!(f, "{}: {}: {}", self.loc, self.path, self.kind)
        }
    }
}

/// What was wrong, with a fixed phrase per variant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorKind {
    /// The file could not be read.
    Io(String),
    /// TOML syntax, as reported by the parser.
    Syntax(String),
    /// A key this table does not have.
    UnknownKey {
        key: String,
        suggestion: Option<String>,
        allowed: Vec<String>,
    },
    /// A required key is absent.
    Missing { expected: &'static str },
    /// A value of the wrong TOML type.
    WrongType {
        expected: &'static str,
        found: &'static str,
    },
    /// A duration string that does not parse.
    BadDuration { text: String, reason: UnitError },
    /// A size string that does not parse.
    BadSize { text: String, reason: UnitError },
    /// A listen address that does not parse.
    BadAddress { text: String, reason: &'static str },
    /// A word that is not one of a closed set.
    UnknownWord {
        found: String,
        allowed: &'static [&'static str],
        suggestion: Option<String>,
    },
    /// A number outside its allowed range.
    OutOfRange { value: i128, min: u64, max: u64 },
    /// `shards = 0`.
    ZeroShards,
    /// Two listeners with one name.
    DuplicateName { name: String, first: Loc },
    /// Two listeners that would bind the same address.
    DuplicateAddress {
        address: String,
        first_name: String,
        first: Loc,
    },
    /// Two routes on one listener with the same path and a common method.
    DuplicateRoute {
        path: String,
        methods: Vec<String>,
        first: Loc,
    },
    /// A route table with zero or several handlers.
    HandlerCount { found: Vec<String> },
    /// Routes on a listener whose protocol is not http.
    RoutesNeedHttp { protocol: &'static str },
    /// A `files` root that is missing or not a directory.
    FilesRoot { root: String, reason: String },
    /// A TLS certificate or key file that cannot be used (or, as a warning, has expired).
    Tls(String),
    /// An HTTP status outside 100..=599.
    Status { status: i128 },
    /// max_connections the fd limit cannot hold.
    FdLimit {
        max_connections: u64,
        needed: u64,
        margin: u64,
        hard_limit: u64,
    },
    /// `--listen NAME=...` for a NAME no listener has.
    UnknownListener {
        name: String,
        suggestion: Option<String>,
        known: Vec<String>,
    },
    /// A server-wide key written in `[listener.limits]` or `[listener.timeouts]`.
    NotPerListener { key: &'static str },
    /// A per-listener key on a listener whose protocol it does not act on.
    WrongProtocol {
        key: &'static str,
        applies: &'static str,
        protocol: &'static str,
    },
    /// One server twice in an upstream's `servers`.
    DuplicateServer { server: String },
    /// Two upstreams with one name.
    DuplicateUpstream { name: String, first: Loc },
    /// A listener or route naming an upstream that no `[[upstream]]` defines.
    UnknownUpstream {
        name: String,
        suggestion: Option<String>,
        known: Vec<String>,
    },
    /// A rule with a fixed explanation (see the `rule` constants in validate.rs).
    Rule(&'static str),
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use ErrorKind::*;
        match self {
            Io(reason) => write!(f, "cannot read the file: {reason}"),
            Syntax(message) => write!(f, "TOML syntax error: {message}"),
            UnknownKey {
                key,
                suggestion,
                allowed,
            } => unknown_key(f, key, suggestion, allowed),
            Missing { expected } => write!(f, "missing required key; expected {expected}"),
            WrongType { expected, found } => write!(f, "expected {expected}, found {found}"),
            BadDuration { text, reason } => {
                write!(
                    f,
                    "bad duration {text:?}: {reason}; expected {DURATION_FORMS}"
                )
            }
            BadSize { text, reason } => {
                write!(f, "bad size {text:?}: {reason}; expected {SIZE_FORMS}")
            }
            BadAddress { text, reason } => write!(
                f,
                "bad address {text:?}: {reason}; expected \"host:port\" with an IP or \
                 localhost, \"[::1]:port\" or \"unix:/path\""
            ),
            UnknownWord {
                found,
                allowed,
                suggestion,
            } => unknown_word(f, found, allowed, suggestion),
            OutOfRange { value, min, max } => {
                write!(f, "{value} is out of range; allowed {min}..={max}")
            }
            ZeroShards => f.write_str("shards must be \"auto\" or a number >= 1, found 0"),
            DuplicateName { name, first } => {
                write!(
                    f,
                    "duplicate listener name {name:?}; first defined at {first}"
                )
            }
            DuplicateAddress {
                address,
                first_name,
                first,
            } => write!(
                f,
                "address {address} is already used by listener {first_name:?} at {first}"
            ),
            DuplicateRoute {
                path,
                methods,
                first,
            } => write!(
                f,
                "duplicate route {path:?} for {}; first defined at {first}",
                methods.join(", ")
            ),
            HandlerCount { found } => handler_count(f, found),
            RoutesNeedHttp { protocol } => write!(
                f,
                "routes are only allowed on protocol = \"http\" listeners, this one is {protocol:?}"
            ),
            FilesRoot { root, reason } => write!(f, "files root {root:?} {reason}"),
            Tls(reason) => write!(f, "tls: {reason}"),
            Status { status } => write!(f, "status {status} is outside 100..=599"),
            FdLimit {
                max_connections,
                needed,
                margin,
                hard_limit,
            } => write!(
                f,
                "max_connections = {max_connections} needs {needed} file descriptors \
                 (one per connection plus {margin} for listeners, epoll and wakers) but the \
                 hard RLIMIT_NOFILE is {hard_limit}; raise it (ulimit -Hn as root, \
                 LimitNOFILE= in a systemd unit, nofile in /etc/security/limits.conf) \
                 or lower max_connections"
            ),
            DuplicateServer { server } => {
                write!(f, "server {server} is listed twice; list each server once")
            }
            DuplicateUpstream { name, first } => {
                write!(
                    f,
                    "duplicate upstream name {name:?}; first defined at {first}"
                )
            }
            UnknownUpstream {
                name,
                suggestion,
                known,
            } => {
                write!(f, "no [[upstream]] is called {name:?}")?;
                match (suggestion, known.is_empty()) {
                    (Some(s), _) => write!(f, "; did you mean {s:?}?"),
                    (None, true) => write!(f, "; add an [[upstream]] table with that name"),
                    (None, false) => write!(f, "; upstreams: {}", known.join(", ")),
                }
            }
            UnknownListener {
                name,
                suggestion,
                known,
            } => {
                write!(f, "no listener is called {name:?}")?;
                match suggestion {
                    Some(s) => write!(f, "; did you mean {s:?}?"),
                    None => write!(f, "; listeners: {}", known.join(", ")),
                }
            }
            NotPerListener { key } => write!(
                f,
                "{key} is server-wide and cannot be set per listener; set it in [{}]",
                key.split('.').next().unwrap_or_default()
            ),
            WrongProtocol {
                key,
                applies,
                protocol,
            } => write!(
                f,
                "{key} acts on protocol = \"{}\" listeners only, and this one is \
                 \"{protocol}\": it would do nothing here",
                applies.replace(',', "\" or \"")
            ),
            Rule(text) => f.write_str(text),
        }
    }
}

fn unknown_key(
    f: &mut fmt::Formatter<'_>,
    key: &str,
    suggestion: &Option<String>,
    allowed: &[String],
) -> fmt::Result {
    write!(f, "unknown key {key:?}")?;
    match suggestion {
        Some(s) => write!(f, "; did you mean {s:?}?"),
        None if allowed.is_empty() => f.write_str("; this table takes no keys"),
        None => write!(f, "; allowed keys: {}", allowed.join(", ")),
    }
}

fn unknown_word(
    f: &mut fmt::Formatter<'_>,
    found: &str,
    allowed: &[&str],
    suggestion: &Option<String>,
) -> fmt::Result {
    let quoted: Vec<String> = allowed.iter().map(|w| format!("{w:?}")).collect();
    write!(
        f,
        "unknown value {found:?}; expected one of {}",
        quoted.join(", ")
    )?;
    match suggestion {
        Some(s) => write!(f, " (did you mean {s:?}?)"),
        None => Ok(()),
    }
}

fn handler_count(f: &mut fmt::Formatter<'_>, found: &[String]) -> fmt::Result {
    let all = "static, json, echo, files, health, metrics, delay, proxy";
    if found.is_empty() {
        write!(f, "a route needs exactly one handler ({all}); found none")
    } else {
        write!(
            f,
            "a route needs exactly one handler ({all}); found {}: {}",
            found.len(),
            found.join(", ")
        )
    }
}

/// Everything wrong with one configuration, in source order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors {
    errors: Vec<ConfigError>,
}

impl ConfigErrors {
    pub(crate) fn new(mut errors: Vec<ConfigError>) -> Self {
        // Stable sort: two errors at one spot keep the order they were found in.
        errors.sort_by(|a, b| a.loc.cmp(&b.loc));
        errors.dedup();
        ConfigErrors { errors }
    }

    /// The individual errors, sorted by position.
    pub fn errors(&self) -> &[ConfigError] {
        &self.errors
    }

    /// How many errors there are (at least one).
    pub fn len(&self) -> usize {
        self.errors.len()
    }

    /// Always false: a `ConfigErrors` holds at least one error.
    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }
}

/// One error per line: `file:line:col: key.path: message`.
impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.errors.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}
