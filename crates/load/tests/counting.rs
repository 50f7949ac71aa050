//! Exact counting: every request sent is a response counted, and the server
//! saw exactly as many.

use coreloop_load::config::PipelineMode;

use crate::support::{config, run, sized_response, Behaviour, Server};

#[test]
fn keep_alive_counts_exactly() {
    let server = Server::start(Behaviour::ok());
    let mut c = config(&server.http_url());
    c.connections = 8;
    c.requests = Some(1000);
    let r = run(&c);
    assert_eq!(r.requests.sent, 1000);
    assert_eq!(r.requests.completed, 1000);
    assert_eq!(r.requests.ok, 1000);
    assert_eq!(r.errors.total(), 0);
    assert_eq!(server.received(), 1000);
    assert_eq!(r.latency.count, 1000);
}

#[test]
fn pipelined_depth_16_counts_exactly() {
    let server = Server::start(Behaviour::ok());
    let mut c = config(&server.http_url());
    c.connections = 4;
    c.pipeline = 16;
    c.requests = Some(2003);
    let r = run(&c);
    assert_eq!(r.requests.sent, 2003);
    assert_eq!(r.requests.completed, 2003);
    assert_eq!(r.errors.total(), 0);
    assert_eq!(server.received(), 2003);
    assert_eq!(r.bytes_read, 2003 * crate::support::OK.len() as u64);
}

#[test]
fn pipelined_batch_mode_counts_exactly() {
    let server = Server::start(Behaviour::ok());
    let mut c = config(&server.http_url());
    c.connections = 4;
    c.pipeline = 16;
    c.pipeline_mode = PipelineMode::Batch;
    // Not a multiple of 16: the last batch of some connection is partial.
    c.requests = Some(2003);
    let r = run(&c);
    assert_eq!(r.pipeline_mode, "batch");
    assert_eq!(r.requests.sent, 2003);
    assert_eq!(r.requests.completed, 2003);
    assert_eq!(r.requests.failed + r.requests.unfinished, 0);
    assert_eq!(r.errors.total(), 0);
    assert_eq!(server.received(), 2003);
    assert_eq!(r.latency.count, 2003);
    assert_eq!(r.bytes_read, 2003 * crate::support::OK.len() as u64);
}

#[test]
fn pipelined_batch_mode_duration_run_adds_up() {
    let server = Server::start(Behaviour::ok());
    let mut c = config(&server.http_url());
    c.connections = 4;
    c.pipeline = 16;
    c.pipeline_mode = PipelineMode::Batch;
    c.duration = std::time::Duration::from_millis(200);
    c.warmup = std::time::Duration::from_millis(50);
    let r = run(&c);
    assert!(r.requests.completed > 0);
    assert_eq!(
        r.requests.completed + r.requests.failed + r.requests.unfinished,
        r.requests.sent
    );
    assert_eq!(r.latency.count, r.requests.completed);
}

/// Batch mode sleeps until a batch's bytes are in (docs/LOAD.md) once the
/// responses have had one size. Every way the size can change under it,
/// with each response in its own segment: the mark must never leave a batch
/// waiting for bytes that do not come (a stall would end in timeouts, and
/// the guard's wait is at most a quarter of the timeout), and must never
/// cost a response.
#[test]
fn batch_mode_counts_exactly_when_response_sizes_change() {
    let cases: &[(&str, Vec<(u64, usize)>)] = &[
        ("constant", vec![(u64::MAX, 13)]),
        (
            "shrinks: the guard must drop the mark",
            vec![(600, 200), (u64::MAX, 5)],
        ),
        ("shrinks to empty", vec![(600, 100), (u64::MAX, 0)]),
        (
            "grows: a read shows the batch unfinished",
            vec![(600, 5), (u64::MAX, 300)],
        ),
        (
            "one odd response",
            vec![(599, 40), (600, 41), (u64::MAX, 40)],
        ),
        (
            "grows past the mark's cap",
            vec![(600, 10), (u64::MAX, 4000)],
        ),
        (
            "alternates",
            vec![(300, 10), (600, 90), (900, 10), (u64::MAX, 90)],
        ),
    ];
    for (what, phases) in cases {
        let server = Server::start(Behaviour::BodySizes(phases.clone()));
        let mut c = config(&server.http_url());
        c.connections = 4;
        c.pipeline = 16;
        c.pipeline_mode = PipelineMode::Batch;
        c.timeout = std::time::Duration::from_millis(400);
        let n = 2003;
        c.requests = Some(n);
        let r = run(&c);
        let bytes: u64 = (1..=n)
            .map(|i| sized_response(phases, i).len() as u64)
            .sum();
        assert_eq!(r.requests.sent, n, "{what}");
        assert_eq!(r.requests.completed, n, "{what}");
        assert_eq!(r.errors.total(), 0, "{what}: {:?}", r.errors);
        assert_eq!(server.received(), n, "{what}");
        assert_eq!(r.bytes_read, bytes, "{what}");
        assert_eq!(r.latency.count, n, "{what}");
    }
}

/// The mark on the other paths batch mode takes: echo replies (one size by
/// construction), and a server that closes after every response, so each
/// new socket starts at the kernel's default and the FIN, not the mark's
/// bytes, ends every batch (the unanswered rest is written again).
#[test]
fn batch_mode_with_the_mark_counts_exactly_on_echo_and_on_closes() {
    let echo = Server::start(Behaviour::Echo);
    let mut c = config(&format!("echo://{}", echo.addr));
    c.connections = 4;
    c.pipeline = 16;
    c.pipeline_mode = PipelineMode::Batch;
    c.size = 100;
    c.timeout = std::time::Duration::from_millis(400);
    c.requests = Some(2003);
    let r = run(&c);
    assert_eq!(r.requests.completed, 2003);
    assert_eq!(r.errors.total(), 0, "{:?}", r.errors);
    assert_eq!(r.bytes_read, 100 * 2003);

    let announced = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
    let closing = Server::start(Behaviour::http(announced, true));
    let mut c = config(&closing.http_url());
    c.connections = 4;
    c.pipeline = 16;
    c.pipeline_mode = PipelineMode::Batch;
    // The guard is at most 50 ms whatever the timeout; a short timeout here only risks a
    // request timing out while the rest of the suite loads the machine (seen once).
    c.timeout = std::time::Duration::from_secs(3);
    c.requests = Some(203);
    let r = run(&c);
    assert_eq!(r.requests.completed, 203);
    assert_eq!(r.errors.total(), 0, "{:?}", r.errors);
    // The server reads no head after the one it closes on.
    assert_eq!(closing.received(), 203);
    assert!(r.requests.retried > 0);
}

#[test]
fn echo_counts_exactly() {
    let server = Server::start(Behaviour::Echo);
    let mut c = config(&format!("echo://{}", server.addr));
    c.connections = 4;
    c.pipeline = 4;
    c.size = 100;
    c.requests = Some(1000);
    let r = run(&c);
    assert_eq!(r.requests.sent, 1000);
    assert_eq!(r.requests.completed, 1000);
    assert_eq!(r.errors.total(), 0);
    assert_eq!(server.bytes(), 100 * 1000);
    assert_eq!(r.bytes_read, 100 * 1000);
}

#[test]
fn open_loop_counts_exactly_and_reports_rate() {
    let server = Server::start(Behaviour::ok());
    let mut c = config(&server.http_url());
    c.rate = Some(1000.0);
    c.requests = Some(300);
    let r = run(&c);
    assert_eq!(r.requests.completed, 300);
    assert_eq!(server.received(), 300);
    let rate = r.rate.expect("open loop reports its rate");
    assert_eq!(rate.requested_per_s, 1000.0);
    // 300 requests at 1000/s take about 0.3 s; a generous band for a busy machine.
    assert!(
        rate.sent_per_s > 500.0 && rate.sent_per_s < 1500.0,
        "sent {}/s",
        rate.sent_per_s
    );
}

#[test]
fn duration_run_stops_on_time() {
    let server = Server::start(Behaviour::ok());
    let mut c = config(&server.http_url());
    c.duration = std::time::Duration::from_millis(300);
    c.warmup = std::time::Duration::from_millis(100);
    let started = std::time::Instant::now();
    let r = run(&c);
    assert!(started.elapsed() < std::time::Duration::from_secs(3));
    assert!(r.requests.completed > 0);
    assert_eq!(
        r.requests.completed + r.requests.failed + r.requests.unfinished,
        r.requests.sent
    );
    assert!(
        r.elapsed_s >= 0.3 && r.elapsed_s < 2.0,
        "elapsed {}",
        r.elapsed_s
    );
    // The server also answered warm-up requests, which are not counted.
    assert!(server.received() >= r.requests.completed);
}

/// The drain keeps the requests a slot is reconnecting to write again when the run ends.
/// Against a server that closes after every response, 32 connections are always
/// reconnecting somewhere, so the end of the duration finds slots mid-connect with
/// pipelined requests to write again: they are answered in the drain, not failed as read
/// errors (which is what the run counted before the drain kept them).
#[test]
fn requests_a_reconnecting_slot_holds_when_the_run_ends_are_answered() {
    let announced = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
    let closing = Server::start(Behaviour::http(announced, true));
    let mut c = config(&closing.http_url());
    c.connections = 32;
    c.pipeline = 4;
    c.duration = std::time::Duration::from_millis(300);
    let r = run(&c);
    assert!(r.requests.retried > 0, "no request was written again");
    assert_eq!(r.errors.total(), 0, "{:?}", r.errors);
    assert_eq!(r.requests.completed, r.requests.sent);
    assert_eq!(closing.received(), r.requests.completed);
}
