//! docs/CONFIG.md says, for every key, what a reload does with it and whether it may be set
//! per listener; the key table in the code decides. This test fails when they disagree.

use std::collections::BTreeMap;

use coreloop_config::KEYS;

/// `(key path -> (reload, per listener))` from every key table of docs/CONFIG.md.
fn documented() -> BTreeMap<String, (String, String)> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/CONFIG.md");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut rows = BTreeMap::new();
    let mut section: Option<&str> = None;
    let mut columns: Vec<String> = Vec::new();
    for line in text.lines() {
        if let Some(heading) = line.strip_prefix("## ") {
            section = match heading.trim_matches('`') {
                "[server]" => Some("server"),
                "[timeouts]" => Some("timeouts"),
                "[limits]" => Some("limits"),
                "[log]" => Some("log"),
                "[[listener]]" => Some("listener"),
                "[[listener.route]]" => Some("listener.route"),
                "[[upstream]]" => Some("upstream"),
                _ => None,
            };
            continue;
        }
        let Some(section) = section else { continue };
        let Some(row) = line.strip_prefix('|') else {
            columns.clear();
            continue;
        };
        let cells: Vec<String> = split_row(row);
        if columns.is_empty() {
            columns = cells;
            continue;
        }
        if cells.iter().all(|c| c.starts_with("---")) {
            continue;
        }
        let column = |name: &str| {
            let i = columns.iter().position(|c| c == name);
            i.and_then(|i| cells.get(i)).cloned()
        };
        let (Some(reload), Some(per_listener)) = (column("reload"), column("per listener")) else {
            panic!("a key table in [{section}] without reload and per listener columns: {line}");
        };
        let key = format!("{section}.{}", cells[0].trim_matches('`'));
        assert!(
            rows.insert(key.clone(), (reload, per_listener)).is_none(),
            "{key} twice"
        );
    }
    rows
}

/// Cells of a table row, splitting at `|` but not at `\|` (escaped in a cell).
fn split_row(row: &str) -> Vec<String> {
    let mut cells = vec![String::new()];
    let mut chars = row.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'|') => {
                cells.last_mut().unwrap().push('|');
                chars.next();
            }
            '|' => cells.push(String::new()),
            c => cells.last_mut().unwrap().push(c),
        }
    }
    cells.pop();
    cells.into_iter().map(|c| c.trim().to_string()).collect()
}

#[test]
fn the_reload_and_per_listener_columns_agree_with_the_key_table() {
    let mut doc = documented();
    let mut wrong = Vec::new();
    for key in KEYS {
        let expected = (key.reload.word().to_string(), key.scope.word().to_string());
        match doc.remove(key.path) {
            Some(found) if found == expected => {}
            Some(found) => wrong.push(format!(
                "{}: doc says {found:?}, code {expected:?}",
                key.path
            )),
            None => wrong.push(format!("{}: not documented", key.path)),
        }
    }
    for path in doc.keys() {
        wrong.push(format!("{path}: documented but not in the key table"));
    }
    assert!(
        wrong.is_empty(),
        "docs/CONFIG.md vs KEYS:\n{}",
        wrong.join("\n")
    );
}
