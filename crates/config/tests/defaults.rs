//! The embedded default and the shipped examples are valid, and the
//! default file says what the built-in defaults are.

use std::path::{Path, PathBuf};
use std::time::Duration;

use coreloop_config::{Config, Handler, Host, Method, RoutePath};

const HOST: Host = Host {
    cpus: 2,
    fd_hard_limit: 1_000_000,
};

fn parse(text: &str) -> Config {
    Config::from_toml_str_on(text, "test.toml", HOST).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn embedded_default_validates() {
    let config = parse(Config::default_toml());
    assert_eq!(
        config.summary(),
        "ok: 2 listeners (web http 127.0.0.1:8080, echo echo 127.0.0.1:9000), 7 routes, \
         shards=auto(2), balance=least-loaded, max_connections=auto(999924)"
    );
    // And on this machine, whatever its limits.
    assert_eq!(Config::embedded_default().listeners.len(), 2);
}

#[test]
fn embedded_default_routes() {
    let config = parse(Config::default_toml());
    let web = config
        .listener("web")
        .unwrap_or_else(|| panic!("no web listener"));
    let routes: Vec<(String, Vec<Method>, &str)> = web
        .routes
        .iter()
        .map(|r| (r.path.to_string(), r.methods.clone(), r.handler.kind()))
        .collect();
    let get = vec![Method::Get, Method::Head];
    assert_eq!(
        routes,
        [
            ("/plaintext".to_string(), get.clone(), "static"),
            ("/json".to_string(), get.clone(), "json"),
            ("/echo".to_string(), vec![Method::Post], "echo"),
            ("/delay".to_string(), get.clone(), "delay"),
            ("/healthz".to_string(), get.clone(), "health"),
            ("/readyz".to_string(), get.clone(), "health"),
            ("/metrics".to_string(), get, "metrics"),
        ]
    );
    let Handler::Static(plaintext) = &web.routes[0].handler else {
        panic!("not static")
    };
    assert_eq!(
        (plaintext.status, plaintext.body.as_str()),
        (200, "Hello, World!")
    );
    assert_eq!(plaintext.content_type, "text/plain");
    assert_eq!(
        web.routes[3].handler,
        Handler::Delay {
            max: Duration::from_secs(10)
        }
    );
}

/// Every value written in config/coreloop.toml equals the value the key
/// takes when absent, so the file documents the real defaults.
#[test]
fn default_file_matches_built_in_defaults() {
    let written = parse(Config::default_toml());
    let minimal = parse(
        "[[listener]]\nname = \"web\"\naddress = \"127.0.0.1:8080\"\n\
         [[listener.route]]\npath = \"/\"\njson = {}\n",
    );
    assert_eq!(written.server, minimal.server);
    assert_eq!(written.timeouts, minimal.timeouts);
    assert_eq!(written.limits, minimal.limits);
    assert_eq!(written.log, minimal.log);
    let (a, b) = (&written.listeners[0], &minimal.listeners[0]);
    assert_eq!(
        (a.backlog, a.effective_limits(), a.effective_timeouts()),
        (b.backlog, b.effective_limits(), b.effective_timeouts())
    );
}

fn examples() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/examples");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    paths.sort();
    paths
}

#[test]
fn every_example_validates() {
    let paths = examples();
    assert!(
        paths.len() >= 3,
        "expected at least 3 examples, found {paths:?}"
    );
    for path in paths {
        if let Err(e) = Config::load_on(&path, HOST) {
            panic!("{} does not validate:\n{e}", path.display());
        }
    }
}

#[test]
fn example_overrides_are_merged() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/examples");
    let config =
        Config::load_on(dir.join("unix-socket.toml"), HOST).unwrap_or_else(|e| panic!("{e}"));
    let http = config
        .listener("http")
        .unwrap_or_else(|| panic!("no http listener"));
    assert_eq!(http.effective_limits().header_bytes, 16 << 10);
    assert_eq!(http.effective_limits().frame_max, config.limits.frame_max);
    let frames = config
        .listener("frames")
        .unwrap_or_else(|| panic!("no frames listener"));
    assert_eq!(frames.effective_limits().frame_max, 64 << 10);
    assert_eq!(frames.effective_timeouts().write, Duration::from_secs(300));
    assert_eq!(frames.effective_timeouts().header, config.timeouts.header);

    let files = Config::load_on(dir.join("files.toml"), HOST).unwrap_or_else(|e| panic!("{e}"));
    let route = &files.listeners[0].routes[0];
    assert_eq!(route.path, RoutePath::Prefix("/docs/".into()));
    let Handler::Files(f) = &route.handler else {
        panic!("not files")
    };
    assert!(
        f.root.ends_with("docs") && f.root.is_dir(),
        "{}",
        f.root.display()
    );
}

#[test]
fn load_reports_a_missing_file() {
    let e = Config::load_on("/nonexistent/coreloop.toml", HOST).unwrap_err();
    assert_eq!(
        e.to_string(),
        "/nonexistent/coreloop.toml:1:1: cannot read the file: No such file or directory (os error 2)"
    );
}
