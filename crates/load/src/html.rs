//! `--report FILE.html`: one self-contained page (no network, no external
//! script: inline SVG drawn by the page's own inline script) showing one or
//! more reports on the same axes: the latency percentile distribution,
//! requests/s and p99 per second, and the status and error breakdown.
//!
//! The page embeds each report exactly as `--json` writes it, plus its
//! percentile distribution, in one `<script type="application/json">`
//! element; the drawing code reads only that.

use std::path::Path;

use serde::Serialize;

use crate::histogram::Hist;
use crate::report::Report;

const PAGE: &str = include_str!("html/page.html");
const SCRIPT: &str = include_str!("html/chart.js");
/// Points per halving of 1 - p in the percentile plot (HdrHistogram's
/// "ticks per half distance").
const TICKS: u32 = 5;

/// What the page draws for one report.
#[derive(Debug, Serialize)]
struct Entry<'a> {
    label: &'a str,
    report: &'a Report,
    /// `[percentile, latency_us]` pairs from the latency histogram.
    distribution: Vec<(f64, u64)>,
}

/// Writes the page for `reports`, each with its label (empty: the target).
pub fn write(path: &Path, reports: &[(String, Report)]) -> std::io::Result<()> {
    std::fs::write(path, page(reports)?)
}

/// The page's text.
pub fn page(reports: &[(String, Report)]) -> std::io::Result<String> {
    let mut entries = Vec::with_capacity(reports.len());
    for (label, r) in reports {
        let hist = Hist::decode(&r.histograms.latency).map_err(std::io::Error::other)?;
        entries.push(Entry {
            label: if label.is_empty() { &r.target } else { label },
            report: r,
            distribution: hist.distribution(TICKS),
        });
    }
    let data = serde_json::to_string(&entries).map_err(std::io::Error::other)?;
    let title = match reports {
        [(_, r)] => format!("coreloop-load: {}", r.target),
        _ => format!("coreloop-load: {} runs compared", reports.len()),
    };
    Ok(PAGE
        .replace("{{TITLE}}", &escape_html(&title))
        .replace("{{SCRIPT}}", SCRIPT)
        .replace("{{DATA}}", &escape_script(&data)))
}

/// JSON inside `<script>`: a `<` in a string (a note, a header) must not
/// close the element; `\u003c` is the same string to a JSON parser.
fn escape_script(json: &str) -> String {
    json.replace('<', "\\u003c")
}

fn escape_html(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The embedded data of a page written by `page`, as JSON (for tests and tools).
pub fn embedded_data(page: &str) -> Option<serde_json::Value> {
    const OPEN: &str = "<script type=\"application/json\" id=\"coreloop-data\">";
    let start = page.find(OPEN)? + OPEN.len();
    let end = start + page[start..].find("</script>")?;
    serde_json::from_str(&page[start..end]).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_text_cannot_close_its_element() {
        let mut r = Report::default();
        r.notes
            .push("</script><script>alert(1)</script>".to_string());
        r.histograms.latency = Hist::default().encode();
        let page = page(&[(String::new(), r.clone())]).unwrap();
        assert_eq!(
            page.matches("</script>").count(),
            2,
            "data and drawing code only"
        );
        let data = embedded_data(&page).unwrap();
        assert_eq!(data[0]["report"], serde_json::to_value(&r).unwrap());
    }

    #[test]
    fn self_contained() {
        let mut r = Report::default();
        r.histograms.latency = Hist::default().encode();
        let page = page(&[(String::new(), r)]).unwrap();
        for banned in ["http://", "https://", "src=", "href=", "@import", "url("] {
            let uses = page.matches(banned).count();
            // The SVG namespace is an identifier, not a fetch.
            let allowed = page.matches("http://www.w3.org/2000/svg").count();
            assert!(banned != "http://" || uses == allowed, "{banned} in page");
            assert!(banned == "http://" || uses == 0, "{banned} in page");
        }
    }
}
