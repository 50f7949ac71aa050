//! `--report FILE.html` (issue 12, section 4): one self-contained page whose
//! embedded data is the JSON report, through the real binary.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use crate::support::{run_bin, Behaviour, Server};

const BOUND: Duration = Duration::from_secs(60);

fn temp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("coreloop-load-{}-{name}", std::process::id()))
}

fn read_json(p: &PathBuf) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

/// No fetch of any kind: scripts, styles, images and frames are inline.
fn assert_self_contained(page: &str) {
    for banned in [
        "<script src",
        "<link",
        "<img",
        "<iframe",
        "url(",
        "@import",
        "fetch(",
        "XMLHttpRequest",
        "import(",
    ] {
        assert!(!page.contains(banned), "{banned} in the page");
    }
    assert!(
        page.contains("<svg") || page.contains("createElementNS"),
        "draws SVG"
    );
}

fn page_data(path: &PathBuf) -> (String, Value) {
    let page = std::fs::read_to_string(path).unwrap();
    let data = coreloop_load::html::embedded_data(&page).expect("embedded data");
    (page, data)
}

#[test]
fn html_report_embeds_exactly_the_json_report() {
    let server = Server::start(Behaviour::Statuses(vec![200, 200, 200, 404]));
    let url = server.http_url();
    let (json, html) = (temp("run.json"), temp("run.html"));
    let (j, h) = (json.to_string_lossy(), html.to_string_lossy());
    let args = [
        "-c",
        "2",
        "-t",
        "1",
        "--warmup",
        "0s",
        "-d",
        "1500ms",
        "--rate",
        "400",
        "--no-progress",
        "--json",
        &j,
        "--report",
        &h,
        &url,
    ];
    assert_eq!(run_bin(&args, BOUND).code, Some(0));
    let report = read_json(&json);
    let (page, data) = page_data(&html);
    assert_self_contained(&page);
    let entries = data.as_array().unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(
        entries[0]["report"], report,
        "the page draws the JSON report"
    );
    // The distribution is the latency histogram's: rising, ending at the max.
    let points = entries[0]["distribution"].as_array().unwrap();
    assert!(points.len() > 5, "{points:?}");
    let values: Vec<u64> = points.iter().map(|p| p[1].as_u64().unwrap()).collect();
    assert!(values.windows(2).all(|w| w[0] <= w[1]), "{values:?}");
    assert_eq!(
        *values.last().unwrap(),
        report["latency"]["max_us"].as_u64().unwrap()
    );
    assert_eq!(points.last().unwrap()[0].as_f64().unwrap(), 100.0);
    assert!(
        report["series"].as_array().unwrap().len() >= 2,
        "per-second data to draw"
    );
    for id in ["percentiles", "rps", "p99", "breakdown"] {
        assert!(page.contains(&format!("id=\"{id}\"")), "no #{id}");
    }
    let _ = std::fs::remove_file(&json);
    let _ = std::fs::remove_file(&html);
}

#[test]
fn several_reports_on_the_same_axes() {
    let server = Server::start(Behaviour::ok());
    let url = server.http_url();
    let files: Vec<PathBuf> = ["x.json", "y.json"].iter().map(|f| temp(f)).collect();
    for f in &files {
        let p = f.to_string_lossy();
        let args = [
            "-c",
            "1",
            "-t",
            "1",
            "--warmup",
            "0s",
            "--requests",
            "200",
            "--no-progress",
            "--json",
            &p,
            &url,
        ];
        assert_eq!(run_bin(&args, BOUND).code, Some(0));
    }
    let (a, b) = (files[0].to_string_lossy(), files[1].to_string_lossy());
    // merge --side-by-side: each report drawn, none merged.
    let cmp = temp("cmp.html");
    let c = cmp.to_string_lossy();
    assert_eq!(
        run_bin(&["merge", "--side-by-side", &a, &b, "--report", &c], BOUND).code,
        Some(0)
    );
    let (page, data) = page_data(&cmp);
    assert_self_contained(&page);
    assert_eq!(data[0]["report"], read_json(&files[0]));
    assert_eq!(data[1]["report"], read_json(&files[1]));
    assert_eq!(data[0]["label"], a.as_ref());
    // A run with --compare: this run first, then the earlier one.
    let run_html = temp("compare.html");
    let r = run_html.to_string_lossy();
    let args = [
        "-c",
        "1",
        "-t",
        "1",
        "--warmup",
        "0s",
        "--requests",
        "100",
        "--no-progress",
        "--report",
        &r,
        "--compare",
        &a,
        &url,
    ];
    assert_eq!(run_bin(&args, BOUND).code, Some(0));
    let (_, data) = page_data(&run_html);
    assert_eq!(data.as_array().unwrap().len(), 2);
    assert_eq!(data[0]["label"], "this run");
    assert_eq!(data[0]["report"]["requests"]["completed"], 100);
    assert_eq!(data[1]["report"], read_json(&files[0]));
    for f in files.iter().chain([&cmp, &run_html]) {
        let _ = std::fs::remove_file(f);
    }
}
