//! The shard's open-file cache through the real binary: a file served once is answered on the
//! shard with no offload job, a file replaced, rewritten or deleted on disk is noticed within
//! the cache's validity (1 s; bounded waits of several seconds here), a file evicted from the
//! page cache goes back to pool reads, and the open fds stay within the cache's bound however
//! many files are served.

use std::fs::File;
use std::time::{Duration, SystemTime};

use crate::files::{big_file, evict, get, pattern, poll_until, sendfile_bytes, serve_files};
use crate::support::{scrape, Conn, Server, TempDir};

/// `crates/http/src/files/cache.rs`: `OPEN_FILES` per shard and listener.
const OPEN_FILES: usize = 64;

/// Longer than the cache's validity (1 s) many times over, for a loaded machine.
const NOTICED_WITHIN: Duration = Duration::from_secs(10);

fn offload_jobs(server: &Server) -> f64 {
    scrape(server.addr("web")).sum("coreloop_offload_jobs_total", &[])
}

fn fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

/// Writes `text` to `name` with its modification time set to `secs` after the epoch.
fn write_dated(dir: &TempDir, name: &str, text: &str, secs: u64) {
    let path = dir.write(name, text);
    let when = SystemTime::UNIX_EPOCH + Duration::from_secs(secs);
    File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(when)
        .unwrap();
}

/// The HTTP dates of the modification times used here.
fn http_date(secs: u64) -> &'static str {
    match secs {
        1_100_000_000 => "Tue, 09 Nov 2004 11:33:20 GMT",
        1_200_000_000 => "Thu, 10 Jan 2008 21:20:00 GMT",
        _ => unreachable!("no date for {secs}"),
    }
}

#[test]
fn a_file_served_again_needs_no_offload_job() {
    let dir = TempDir::new();
    dir.write("a.txt", "cached body");
    let server = serve_files(&dir.0, &[]);
    let mut conn = Conn::open(server.addr("web"));
    assert_eq!(get(&mut conn, "/files/a.txt").text(), "cached body");
    let before = offload_jobs(&server);
    const AGAIN: usize = 20;
    for _ in 0..AGAIN {
        let again = get(&mut conn, "/files/a.txt");
        assert_eq!((again.status, again.text().as_str()), (200, "cached body"));
    }
    let jobs = offload_jobs(&server) - before;
    eprintln!("files: {AGAIN} requests for a cached file took {jobs} offload jobs");
    // Each entry is valid for 1 s: only a machine that stalls between requests refreshes it.
    assert!(
        jobs < (AGAIN / 2) as f64,
        "{jobs} offload jobs for {AGAIN} cached requests"
    );
}

#[test]
fn a_replaced_rewritten_or_deleted_file_is_noticed() {
    let dir = TempDir::new();
    write_dated(&dir, "f.txt", "old", 1_000_000_000);
    let server = serve_files(&dir.0, &[]);
    let mut conn = Conn::open(server.addr("web"));
    let old = get(&mut conn, "/files/f.txt");
    assert_eq!(old.text(), "old");
    let old_tag = old.header("etag").unwrap().to_owned();

    // Replaced by a rename: another inode.
    write_dated(&dir, "next.tmp", "replaced", 1_100_000_000);
    std::fs::rename(dir.0.join("next.tmp"), dir.0.join("f.txt")).unwrap();
    let mut last = None;
    let noticed = poll_until(NOTICED_WITHIN, || {
        let now = get(&mut conn, "/files/f.txt");
        let fresh = now.text() == "replaced";
        last = Some(now);
        fresh
    });
    assert!(noticed, "the replaced file was not noticed");
    let new = last.take().unwrap();
    assert_ne!(new.header("etag").unwrap(), old_tag);
    assert_eq!(
        new.header("last-modified").unwrap(),
        http_date(1_100_000_000)
    );
    assert_eq!(new.header("content-length").unwrap(), "8");

    // Rewritten in place, longer: the same inode, a new length and date.
    write_dated(&dir, "f.txt", "rewritten in place", 1_200_000_000);
    let noticed = poll_until(NOTICED_WITHIN, || {
        let now = get(&mut conn, "/files/f.txt");
        let fresh = now.header("last-modified") == Some(http_date(1_200_000_000));
        last = Some(now);
        fresh
    });
    assert!(noticed, "the rewritten file was not noticed");
    assert_eq!(last.take().unwrap().text(), "rewritten in place");

    std::fs::remove_file(dir.0.join("f.txt")).unwrap();
    let noticed = poll_until(NOTICED_WITHIN, || {
        get(&mut conn, "/files/f.txt").status == 404
    });
    assert!(noticed, "the deleted file is still served");
}

#[test]
fn open_fds_stay_within_the_cache_bound() {
    const FILES: usize = 3 * OPEN_FILES;
    let dir = TempDir::new();
    for i in 0..FILES {
        dir.write(&format!("{i}.txt"), &format!("file {i}"));
    }
    let server = serve_files(&dir.0, &[]);
    let mut conn = Conn::open(server.addr("web"));
    // Answered once, so that the server has surely accepted the connection.
    assert_eq!(get(&mut conn, "/healthz").status, 200);
    let baseline = fds(server.pid());
    let mut most = baseline;
    for i in 0..FILES {
        let got = get(&mut conn, &format!("/files/{i}.txt"));
        assert_eq!(got.text(), format!("file {i}"));
        most = most.max(fds(server.pid()));
    }
    eprintln!("files: {FILES} files served, fds {baseline} before, at most {most}");

    // One more than the cache's bound: the file a request has just opened, before its entry
    // takes the place of the oldest.
    assert!(
        most <= baseline + OPEN_FILES + 1,
        "{most} fds open, {baseline} before: more than the cache's {OPEN_FILES}"
    );
    // Served again: the cache still answers, at the same bound.
    for i in 0..FILES {
        assert_eq!(get(&mut conn, &format!("/files/{i}.txt")).status, 200);
    }
    assert!(fds(server.pid()) <= baseline + OPEN_FILES + 1);
    // Nobody asks for them any more: the shard's clock tick closes them all.
    let closed = poll_until(NOTICED_WITHIN, || fds(server.pid()) <= baseline);
    assert!(closed, "the cache kept its files open while idle");
}

/// A cached file found wholly in the page cache is sent with no residency check for a second
/// (`OpenFile::trust`); once that lapses, a file evicted meanwhile is noticed and read on the
/// pool again, not sent from the shard.
#[test]
fn an_evicted_cached_file_goes_back_to_the_pool() {
    let dir = TempDir::new();
    big_file(&dir, "hot.bin", 8);
    let data = pattern(8 << 20);
    let server = serve_files(&dir.0, &[]);
    let mut conn = Conn::open(server.addr("web"));
    for _ in 0..2 {
        assert!(get(&mut conn, "/files/hot.bin").body == data);
    }
    evict(&dir.0.join("hot.bin"));
    let noticed = poll_until(NOTICED_WITHIN, || {
        let before = sendfile_bytes(&server);
        let got = get(&mut conn, "/files/hot.bin");
        assert!(got.body == data, "the body differs from the file");
        let by_sendfile = sendfile_bytes(&server) - before;
        // Read back in by then, the file may be sent whole again: evict it for the next try.
        evict(&dir.0.join("hot.bin"));
        by_sendfile < data.len() as f64
    });
    assert!(
        noticed,
        "an evicted file was still sent whole from the shard"
    );
}
