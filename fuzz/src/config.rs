//! The TOML config loader.

use coreloop_config::Config;

/// Any UTF-8 text: `Config::from_toml_str` returns a config or at least one error, never
/// panics, and every error's `line:col` lies inside the text (a column may be one past the end
/// of its line, where a missing value or the end of the file is reported).
pub fn config_toml(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Err(errors) = Config::from_toml_str(text, "fuzz.toml") else {
        return;
    };
    assert!(!errors.is_empty(), "Err with no error in it");
    let lines: Vec<&str> = text.split('\n').collect();
    for error in errors.errors() {
        let (line, col) = (error.loc.line as usize, error.loc.col as usize);
        assert!(
            line >= 1 && line <= lines.len(),
            "line out of the text: {error}"
        );
        let width = lines[line - 1].chars().count();
        assert!(
            col >= 1 && col <= width + 1,
            "column out of line {line} ({width} chars): {error}"
        );
        let _ = error.to_string();
    }
}
