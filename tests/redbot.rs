//! REDbot (PyPI `redbot`, installed by `.ci/setup`), HTTP's lint, against a `files` route: it
//! checks framing, dates, caching, conditional requests and ranges, and must report no BAD
//! note. Each file also has to earn REDbot's GOOD notes for If-None-Match, If-Modified-Since
//! and ranges, so that a run that skipped those checks cannot pass.

use std::process::Command;

use crate::support::{config, Server, TempDir};

fn redbot(url: &str) -> String {
    let out = Command::new("redbot")
        .args(["-o", "har", url])
        .output()
        .expect("redbot is not installed: run .ci/setup (pip install redbot)");
    assert!(
        out.status.success(),
        "redbot {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `(level, note_id)` of every note in REDbot's HAR output.
fn notes(har: &str) -> Vec<(String, String)> {
    let field = |chunk: &str, name: &str| {
        let at = chunk.find(&format!("\"{name}\": \""))? + name.len() + 5;
        Some(chunk[at..].split('"').next()?.to_owned())
    };
    har.split("\"note_id\"")
        .skip(1)
        .filter_map(|chunk| {
            let chunk = format!("\"note_id\"{chunk}");
            Some((field(&chunk, "level")?, field(&chunk, "note_id")?))
        })
        .collect()
}

#[test]
fn redbot_finds_nothing_bad_in_a_files_route() {
    let dir = TempDir::new();
    dir.write("hello.txt", "hello, world\n");
    dir.write(
        "index.html",
        "<!doctype html>\n<title>t</title>\n<p>hi</p>\n",
    );
    let big: String = (0..300_000)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    dir.write("big.txt", &big);
    let route = format!(
        "[[listener.route]]\npath = \"/files/*\"\nfiles = {{ root = \"{}\", index = \"index.html\" }}\n\n\
         [[listener.route]]\npath = \"/delay\"",
        dir.0.display()
    );
    let server = Server::start(&config(&[(
        "[[listener.route]]\npath = \"/delay\"",
        &route,
    )]));
    let web = server.addr("web");
    for path in ["/files/hello.txt", "/files/big.txt", "/files/"] {
        let har = redbot(&format!("http://{web}{path}"));
        let notes = notes(&har);
        let bad: Vec<_> = notes.iter().filter(|(level, _)| level == "BAD").collect();
        assert!(bad.is_empty(), "REDbot on {path}: {bad:?}");
        for good in ["INM_304", "IMS_304", "RANGE_CORRECT"] {
            assert!(
                notes
                    .iter()
                    .any(|(level, id)| level == "GOOD" && id == good),
                "REDbot on {path} did not confirm {good}: {notes:?}"
            );
        }
    }
}
