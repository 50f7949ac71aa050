//! Command-line overrides, decoded by the same functions as the file and
//! validated with it as a whole (a `--listen` may clash with another
//! listener's address).
//!
//! Errors are located in a reconstruction of the overrides as one command
//! line, `<command line>:1:COL`, COL pointing at the offending value.

use std::borrow::Cow;
use std::ops::Range;

use toml::de::DeValue;
use toml::Spanned;

use crate::decode::shards;
use crate::error::{ConfigErrors, ErrorKind};
use crate::listener::address;
use crate::reader::{suggest, Cx, Value};
use crate::values::keyword;
use crate::Config;

/// One command-line override.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Override {
    /// `--shards auto|N`: `server.shards`.
    Shards(String),
    /// `--balance least-loaded|round-robin|reuseport`: `server.balance`.
    Balance(String),
    /// `--listen NAME=ADDRESS`: rebinds the listener called NAME.
    Listen(String),
    /// `--log-level trace|debug|info|warn|error`: `log.level`.
    LogLevel(String),
}

impl Override {
    fn flag(&self) -> (&'static str, &str) {
        match self {
            Override::Shards(v) => ("--shards", v),
            Override::Balance(v) => ("--balance", v),
            Override::Listen(v) => ("--listen", v),
            Override::LogLevel(v) => ("--log-level", v),
        }
    }
}

impl Config {
    /// This configuration with `overrides` applied in order, validated again.
    pub fn with_overrides(&self, overrides: &[Override]) -> Result<Config, ConfigErrors> {
        let line = command_line(overrides);
        let mut cx = Cx::new(&line.text, "<command line>");
        let mut config = self.clone();
        cx.locs = std::mem::take(&mut config.locs);
        for (item, span) in overrides.iter().zip(line.spans) {
            apply(&mut cx, &mut config, item, span);
        }
        config.locs = std::mem::take(&mut cx.locs);
        let mut errors = cx.errors;
        errors.extend(config.validate());
        if errors.is_empty() {
            Ok(config)
        } else {
            Err(ConfigErrors::new(errors))
        }
    }
}

struct CommandLine {
    text: String,
    /// The span of each override's value in `text`.
    spans: Vec<Range<usize>>,
}

fn command_line(overrides: &[Override]) -> CommandLine {
    let mut text = String::new();
    let mut spans = Vec::with_capacity(overrides.len());
    for item in overrides {
        let (flag, value) = item.flag();
        if !text.is_empty() {
            text.push(' ');
        }
        text.push_str(flag);
        text.push(' ');
        spans.push(text.len()..text.len() + value.len());
        text.push_str(value);
    }
    CommandLine { text, spans }
}

fn apply(cx: &mut Cx<'_>, config: &mut Config, item: &Override, span: Range<usize>) {
    match item {
        Override::Shards(text) => {
            let v = value(text, span.clone());
            cx.record("server.shards", span);
            if let Some(s) = shards(cx, "server.shards", &v) {
                config.server.shards = s;
            }
        }
        Override::Balance(text) => {
            cx.record("server.balance", span.clone());
            if let Some(b) = keyword(cx, "server.balance", &value(text, span)) {
                config.server.balance = b;
            }
        }
        Override::LogLevel(text) => {
            cx.record("log.level", span.clone());
            if let Some(level) = keyword(cx, "log.level", &value(text, span)) {
                config.log.level = level;
            }
        }
        Override::Listen(text) => listen(cx, config, text, span),
    }
}

fn listen(cx: &mut Cx<'_>, config: &mut Config, text: &str, span: Range<usize>) {
    let Some((name, addr)) = text.split_once('=') else {
        cx.error(
            span,
            "listener",
            ErrorKind::Rule("--listen takes NAME=ADDRESS, e.g. web=0.0.0.0:8080"),
        );
        return;
    };
    let Some(i) = config.listeners.iter().position(|l| l.name == name) else {
        let known: Vec<String> = config.listeners.iter().map(|l| l.name.clone()).collect();
        let names: Vec<&str> = known.iter().map(String::as_str).collect();
        let suggestion = suggest(name, &names).map(str::to_string);
        let kind = ErrorKind::UnknownListener {
            name: name.to_string(),
            suggestion,
            known,
        };
        cx.error(span.start..span.start + name.len(), "listener", kind);
        return;
    };
    let path = format!("listener[{i}].address");
    let addr_span = span.start + name.len() + 1..span.end;
    cx.record(&path, addr_span.clone());
    if let Some(a) = address(cx, &path, &value(addr, addr_span)) {
        config.listeners[i].address = a;
    }
}

/// An override's text as a TOML value: an integer when it reads as one
/// (so `--shards 4` means 4), otherwise a string.
fn value(text: &str, span: Range<usize>) -> Value<'_> {
    let is_integer = !text.is_empty() && text.chars().all(|c| c.is_ascii_digit() || c == '-');
    let parsed = match DeValue::parse(text) {
        Ok(v) if is_integer && v.get_ref().is_integer() => Some(v.into_inner()),
        _ => None,
    };
    let v = parsed.unwrap_or(DeValue::String(Cow::Borrowed(text)));
    Spanned::new(span, v)
}
