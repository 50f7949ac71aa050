//! HTTP: the head parser, the chunked decoder and the whole protocol through the reactor's
//! test harness.

use std::sync::Arc;
use std::time::Duration;

use coreloop_http::{
    parse_head, BodyDecoder, Framing, Handler, HttpConfig, HttpError, HttpFactory, Request,
    Response, Route,
};
use coreloop_reactor::testing::Harness;
use coreloop_reactor::{ConnInfo, Protocol, ProtocolFactory, Verb};

use crate::response::check_responses;
use crate::split::{pieces, Rng};

/// Small limits, so that inputs of a few hundred bytes reach every refusal.
fn small_config() -> HttpConfig {
    HttpConfig {
        max_body_bytes: 64,
        max_uri_bytes: 64,
        max_header_bytes: 256,
        max_headers: 8,
        max_pipeline_depth: 4,
        max_pending_output: 1024,
        max_requests_per_connection: 6,
        ..HttpConfig::default()
    }
}

/// `parse_head` under the default and the small limits: never panics; a complete head lies
/// within the input and the limits, ends in an empty line, and parses the same from exactly its
/// own bytes, and every prefix of it is merely incomplete (segmentation never changes the
/// answer); an incomplete one is within `max_header_bytes`.
pub fn http_head(data: &[u8]) {
    for config in [HttpConfig::default(), small_config()] {
        let head = match parse_head(data, &config) {
            Ok(Some(head)) => head,
            Ok(None) => {
                assert!(
                    data.len() <= config.max_header_bytes,
                    "incomplete past the limit"
                );
                continue;
            }
            Err(_) => continue,
        };
        assert!(head.len <= data.len() && head.len <= config.max_header_bytes);
        assert!(
            ends_in_empty_line(&data[..head.len]),
            "head does not end in an empty line"
        );
        assert!(head.path.len() + head.query.len() < config.max_uri_bytes + 1);
        assert!(head.minor <= 1, "minor version {}", head.minor);
        if head.minor == 0 {
            assert_ne!(head.framing, Framing::Chunked, "chunked in HTTP/1.0");
        }
        // Segmentation must not matter: every prefix of a complete head is just incomplete.
        let mut rng = Rng::from_data(data);
        for _ in 0..4 {
            let cut = rng.below(head.len as u64) as usize;
            let prefix = parse_head(&data[..cut], &config).map(|h| h.map(|h| h.len));
            assert_eq!(
                prefix,
                Ok(None),
                "prefix of {cut} bytes of a {}-byte head",
                head.len
            );
        }
        let again = parse_head(&data[..head.len], &config);
        let again = again.map(|h| h.map(|h| format!("{h:?}")));
        assert_eq!(
            again,
            Ok(Some(format!("{head:?}"))),
            "reparse of the head alone"
        );
    }
}

/// A line end (CRLF or bare LF, RFC 9112 §2.2) right after another one.
fn ends_in_empty_line(head: &[u8]) -> bool {
    let Some(rest) = head.strip_suffix(b"\n") else {
        return false;
    };
    rest.strip_suffix(b"\r").unwrap_or(rest).ends_with(b"\n")
}

/// The chunked decoder fed `data` cut at random points, each call seeing what the previous one
/// left unconsumed (as the connection buffers it): never panics, never consumes more than it was
/// given, never yields more body bytes than it consumed, and decodes exactly as it does from
/// the whole input at once.
pub fn http_chunked(data: &[u8]) {
    let whole = decode_chunked(&[data]);
    let mut rng = Rng::from_data(data);
    let split = decode_chunked(&pieces(data, &mut rng));
    assert_eq!(whole, split, "split decoding differs from whole");
}

/// The outcome of decoding a chunked body: the result (done or not), the body so far and the
/// bytes consumed (when the result is `Ok`).
type Decoded = (Result<bool, HttpError>, Vec<u8>, Option<usize>);

fn decode_chunked(parts: &[&[u8]]) -> Decoded {
    const LIMIT: u64 = 4096;
    let mut decoder = BodyDecoder::new(Framing::Chunked).expect("chunked has a body");
    let (mut body, mut received, mut buffered, mut total) = (Vec::new(), 0u64, Vec::new(), 0);
    let (mut outcome, mut given) = (Ok(false), 0);
    for part in parts {
        buffered.extend_from_slice(part);
        given += part.len();
        let result = decoder.decode(&buffered, &mut Some(&mut body), &mut received, LIMIT);
        outcome = result.map(|progress| {
            assert!(
                progress.consumed <= buffered.len(),
                "consumed more than given"
            );
            buffered.drain(..progress.consumed);
            total += progress.consumed;
            progress.done
        });
        // On an error nothing says how much was consumed: compare with what was given.
        let used = if outcome.is_ok() { total } else { given };
        assert!(
            body.len() <= used,
            "{} body bytes from {used} input bytes",
            body.len()
        );
        assert_eq!(
            received,
            body.len() as u64,
            "received count differs from the body"
        );
        assert!(received <= LIMIT, "body past its limit");
        if outcome != Ok(false) {
            break;
        }
    }
    // After an error nothing says how much was consumed, so only `Ok` counts are compared.
    let total = outcome.is_ok().then_some(total);
    (outcome, body, total)
}

/// Routes covering every inline and offloaded path that cannot panic (libFuzzer's panic hook
/// aborts even on a panic the protocol catches, so the panicking handlers stay in the unit tests).
fn routes() -> Vec<Route> {
    let reflect: coreloop_http::CustomFn = Arc::new(|request: &Request| -> Response {
        // The status and a header come from the request: the crate must refuse what it
        // cannot encode (a 1xx, CR/LF in a value) instead of writing it.
        let status = request
            .query
            .strip_prefix("s=")
            .and_then(|s| s.parse().ok())
            .unwrap_or(200);
        Response {
            status,
            content_type: request.content_type.clone(),
            headers: vec![("X-Path".into(), request.path.clone())],
            body: request.body.clone(),
        }
    });
    vec![
        Route::get("/plaintext", Handler::text("Hello, World!")),
        Route::get("/json", Handler::Json),
        Route {
            path: "/echo".into(),
            prefix: false,
            methods: vec!["POST".into(), "PUT".into()],
            handler: Handler::Echo,
        },
        Route::get("/readyz", Handler::Ready),
        Route::get("/healthz", Handler::Health),
        Route::get(
            "/delay",
            Handler::Delay {
                max: Duration::ZERO,
            },
        ),
        Route {
            path: "/custom".into(),
            prefix: true,
            methods: vec!["GET".into(), "POST".into()],
            handler: Handler::Custom {
                func: reflect.clone(),
                blocking: true,
            },
        },
        Route {
            path: "/inline".into(),
            prefix: true,
            methods: vec!["GET".into(), "POST".into()],
            handler: Handler::Custom {
                func: reflect,
                blocking: false,
            },
        },
    ]
}

/// One connection of the HTTP protocol through `Harness`, driven the way a shard drives it.
struct Driver {
    harness: Harness,
    conn: Box<dyn Protocol>,
    out: Vec<u8>,
    /// Output length when the protocol first asked to close; nothing may follow.
    closed_at: Option<usize>,
}

impl Driver {
    fn new(config: HttpConfig) -> Self {
        let factory = HttpFactory::new(config, routes()).expect("the fuzz routes compile");
        let mut conn = factory.for_shard(0).open(&ConnInfo {
            listener: 0,
            peer: None,
            shard: 0,
        });
        let mut harness = Harness::new();
        let verb = harness.open(conn.as_mut());
        let mut driver = Self {
            harness,
            conn,
            out: Vec::new(),
            closed_at: None,
        };
        driver.settle(verb);
        driver
    }

    /// Follows a verb as the shard would: writes the output, runs offloaded jobs and hands
    /// over buffered input again, until the protocol waits for more bytes or closes.
    fn settle(&mut self, mut verb: Verb) {
        for _ in 0..10_000 {
            self.collect();
            verb = match verb {
                Verb::Read => return,
                Verb::CloseAfterFlush | Verb::CloseNow => {
                    self.closed_at.get_or_insert(self.out.len());
                    return;
                }
                Verb::WaitFlush => {
                    let step = self.harness.feed(self.conn.as_mut());
                    step.verb
                }
                Verb::AwaitCompletion => {
                    let completions = self.harness.run_jobs();
                    if completions.is_empty() {
                        // Waiting on its own deadline (a /delay after the peer's EOF): only the
                        // timer can end the wait, so the clock runs to it. With no deadline
                        // either, nothing could ever wake the connection.
                        let Some(at) = self.harness.deadline() else {
                            panic!("AwaitCompletion with no job queued and no deadline");
                        };
                        let by = at.saturating_duration_since(self.harness.now);
                        self.harness.advance(by);
                        verb = self
                            .harness
                            .fire_due_deadline(self.conn.as_mut())
                            .expect("the deadline is due");
                        continue;
                    }
                    let mut last = Verb::Read;
                    for completion in completions {
                        last = self.harness.complete(self.conn.as_mut(), completion);
                    }
                    if last == Verb::Read && self.harness.buffered() > 0 {
                        self.harness.feed(self.conn.as_mut()).verb
                    } else {
                        last
                    }
                }
            };
        }
        panic!("the connection never settles (last verb {verb:?})");
    }

    /// Takes what the protocol wrote, checking that nothing comes after a close.
    fn collect(&mut self) {
        let new = self.harness.take_output();
        if let (Some(at), false) = (self.closed_at, new.is_empty()) {
            panic!(
                "{} bytes written after the close at byte {at}:\n{}",
                new.len(),
                String::from_utf8_lossy(&new)
            );
        }
        self.out.extend_from_slice(&new);
    }

    fn push(&mut self, bytes: &[u8]) {
        let verb = self.harness.push(self.conn.as_mut(), bytes);
        self.settle(verb);
    }

    /// Moves the clock on and fires the deadline if it is due.
    fn wait(&mut self, by: Duration) {
        self.harness.advance(by);
        if let Some(verb) = self.harness.fire_due_deadline(self.conn.as_mut()) {
            self.settle(verb);
        }
    }
}

/// The HTTP protocol fed `data` cut at random points, with the clock moved on, the offload
/// queue made to refuse, or the server drained between some of the pieces, and EOF at the end.
/// Never panics; the output is always a sequence of well-formed responses; after the protocol
/// asks to close, nothing more is written.
///
/// Once a verb says close, the shard feeds no more input; but while the output is still being
/// flushed to a slow reader, the protocol's deadline can still fire (reactor `conn.rs`
/// `on_timer`), so the driver sometimes lets the clock run out then.
pub fn http_protocol(data: &[u8]) {
    let mut rng = Rng::from_data(data);
    let config = if rng.below(4) == 0 {
        HttpConfig::default()
    } else {
        small_config()
    };
    let mut driver = Driver::new(config);
    for piece in pieces(data, &mut rng) {
        if driver.closed_at.is_some() {
            break;
        }
        driver.push(piece);
        match rng.below(16) {
            0 => driver.wait(Duration::from_secs(rng.below(90))),
            1 => driver.harness.refuse_jobs(rng.below(2) == 0),
            2 if driver.closed_at.is_none() => {
                let verb = driver.harness.drain(driver.conn.as_mut());
                driver.settle(verb);
            }
            _ => {}
        }
    }
    if driver.closed_at.is_none() {
        let verb = driver.harness.eof(driver.conn.as_mut());
        driver.settle(verb);
    }
    // With nothing written there is nothing to flush: the shard goes straight to lingering
    // close, which cancels the protocol's deadline.
    let may_pend = driver.closed_at.is_none() || !driver.out.is_empty();
    if rng.below(2) == 0 && may_pend {
        driver.wait(Duration::from_secs(120));
    }
    driver.collect();
    check_responses(&driver.out);
}
