//! Walks toml's spanned document tree, recording where every key was
//! written and collecting every error instead of stopping at the first.
//!
//! Why not `#[derive(Deserialize)]`: serde stops at the first error and
//! loses the position of keys it does not know, and we want all unknown
//! keys, each with a suggestion and a `line:col`.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::sync::Arc;

use toml::de::{DeTable, DeValue};
use toml::Spanned;

use crate::error::{ConfigError, ErrorKind, Loc};

/// Where each key path was written, and which paths failed to decode (so
/// that validation does not pile a second error onto a broken value).
#[derive(Debug, Clone, Default)]
pub(crate) struct Locations {
    at: BTreeMap<String, Loc>,
    bad: BTreeSet<String>,
}

impl Locations {
    pub(crate) fn set(&mut self, path: &str, loc: Loc) {
        self.at.insert(path.to_string(), loc);
    }

    /// The position of `path`, else of its nearest recorded parent.
    pub(crate) fn of(&self, path: &str) -> Loc {
        let mut path = path;
        loop {
            if let Some(loc) = self.at.get(path) {
                return loc.clone();
            }
            match path.rfind(['.', '[']) {
                Some(cut) => path = &path[..cut],
                None => break,
            }
        }
        self.at.get("").cloned().unwrap_or(Loc {
            origin: Arc::from("<unknown>"),
            line: 1,
            col: 1,
        })
    }

    pub(crate) fn has(&self, path: &str) -> bool {
        self.at.contains_key(path)
    }

    pub(crate) fn mark_bad(&mut self, path: &str) {
        self.bad.insert(path.to_string());
    }

    pub(crate) fn is_bad(&self, path: &str) -> bool {
        self.bad.contains(path)
    }
}

/// The decoding context: the source for positions and the error list.
pub(crate) struct Cx<'s> {
    src: &'s str,
    origin: Arc<str>,
    pub(crate) errors: Vec<ConfigError>,
    /// What is allowed but likely wrong (an expired certificate).
    pub(crate) warnings: Vec<ConfigError>,
    pub(crate) locs: Locations,
}

impl<'s> Cx<'s> {
    pub(crate) fn new(src: &'s str, origin: &str) -> Self {
        let mut cx = Cx {
            src,
            origin: Arc::from(origin),
            errors: Vec::new(),
            warnings: Vec::new(),
            locs: Locations::default(),
        };
        let root = cx.loc(0..0);
        cx.locs.set("", root);
        cx
    }

    pub(crate) fn loc(&self, span: Range<usize>) -> Loc {
        let start = span.start.min(self.src.len());
        // Spans come from the parser and sit on char boundaries; if one ever
        // did not, round down rather than panic.
        let mut start = start;
        while !self.src.is_char_boundary(start) {
            start -= 1;
        }
        let before = &self.src[..start];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let col = before[line_start..].chars().count() + 1;
        Loc {
            origin: self.origin.clone(),
            line: clamp_u32(line),
            col: clamp_u32(col),
        }
    }

    pub(crate) fn error(&mut self, span: Range<usize>, path: &str, kind: ErrorKind) {
        let loc = self.loc(span);
        self.locs.mark_bad(path);
        self.errors.push(ConfigError {
            loc,
            path: path.to_string(),
            kind,
        });
    }

    /// Like `error`, but the configuration stays valid.
    pub(crate) fn warn(&mut self, span: Range<usize>, path: &str, kind: ErrorKind) {
        let loc = self.loc(span);
        self.warnings.push(ConfigError {
            loc,
            path: path.to_string(),
            kind,
        });
    }

    pub(crate) fn record(&mut self, path: &str, span: Range<usize>) {
        let loc = self.loc(span);
        self.locs.set(path, loc);
    }
}

fn clamp_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// A value as the parser gives it, with its span.
pub(crate) type Value<'i> = Spanned<DeValue<'i>>;

/// One table being read. Keys are taken one by one; `finish` reports the
/// keys nobody asked for, suggesting the closest known key.
pub(crate) struct TableReader<'t, 'i> {
    path: String,
    span: Range<usize>,
    table: Option<&'t DeTable<'i>>,
    asked: Vec<&'static str>,
}

impl<'t, 'i> TableReader<'t, 'i> {
    /// Reads `value` as a table at `path`; a non-table is reported and read
    /// as empty so the caller can go on with defaults.
    pub(crate) fn new(cx: &mut Cx<'_>, path: &str, value: &'t Value<'i>) -> Self {
        cx.record(path, value.span());
        let table = match value.get_ref() {
            DeValue::Table(table) => Some(table),
            other => {
                let found = type_name(other);
                cx.error(
                    value.span(),
                    path,
                    ErrorKind::WrongType {
                        expected: "a table",
                        found,
                    },
                );
                None
            }
        };
        TableReader {
            path: path.to_string(),
            span: value.span(),
            table,
            asked: Vec::new(),
        }
    }

    pub(crate) fn span(&self) -> Range<usize> {
        self.span.clone()
    }

    /// The path of `key` in this table.
    pub(crate) fn child(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    /// The value of `key`, if present; records its position.
    pub(crate) fn take(&mut self, cx: &mut Cx<'_>, key: &'static str) -> Option<&'t Value<'i>> {
        self.asked.push(key);
        let value = self.table?.get(key)?;
        cx.record(&self.child(key), value.span());
        Some(value)
    }

    /// Whether `key` is present, without consuming it.
    pub(crate) fn has(&self, key: &str) -> bool {
        self.table.is_some_and(|t| t.contains_key(key))
    }

    /// Reports every key that was not asked for.
    pub(crate) fn finish(self, cx: &mut Cx<'_>) {
        let Some(table) = self.table else { return };
        for (key, _) in table.iter() {
            let name: &str = key.get_ref();
            if self.asked.contains(&name) {
                continue;
            }
            let suggestion = suggest(name, &self.asked).map(str::to_string);
            let allowed = self.asked.iter().map(|k| k.to_string()).collect();
            let kind = ErrorKind::UnknownKey {
                key: name.to_string(),
                suggestion,
                allowed,
            };
            cx.error(key.span(), &self.child(name), kind);
        }
    }
}

/// TOML's name for a value's type, as used in "found ..." messages.
pub(crate) fn type_name(value: &DeValue<'_>) -> &'static str {
    match value {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a datetime",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

/// The known word closest to `word`, if it is close enough to be a typo:
/// an edit distance of at most a third of the word (at least 1), or a
/// difference in case only.
pub(crate) fn suggest<'a>(word: &str, known: &[&'a str]) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).max(1);
    known
        .iter()
        .map(|k| {
            (
                edit_distance(&word.to_ascii_lowercase(), &k.to_ascii_lowercase()),
                *k,
            )
        })
        .filter(|&(d, _)| d <= limit)
        .min_by_key(|&(d, _)| d)
        .map(|(_, k)| k)
}

/// Edit distance over chars where swapping two neighbours costs one, as
/// typing does (optimal string alignment).
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let width = b.len() + 1;
    let mut d: Vec<usize> = vec![0; (a.len() + 1) * width];
    for i in 0..=a.len() {
        d[i * width] = i;
    }
    for (j, cell) in d.iter_mut().enumerate().take(width) {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[(i - 1) * width + j] + 1)
                .min(d[i * width + j - 1] + 1)
                .min(d[(i - 1) * width + j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[(i - 2) * width + j - 2] + 1);
            }
            d[i * width + j] = best;
        }
    }
    d[a.len() * width + b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        let known = ["shards", "balance", "pin_cores", "max_connections"];
        for (word, expected) in [
            ("shard", Some("shards")),
            ("Shards", Some("shards")),
            ("balanse", Some("balance")),
            ("max_conections", Some("max_connections")),
            ("pincores", Some("pin_cores")),
            ("threads", None),
            ("x", None),
        ] {
            assert_eq!(suggest(word, &known), expected, "suggest({word:?})");
        }
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("wbe", "web"), 1);
    }
}
