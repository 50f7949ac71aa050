//! The exchange driven on its own: a head in, the answer it returns out, with no connection,
//! no reactor and no clock. What the connection would do with each answer is its business
//! (`protocol_tests.rs` drives the whole cycle).

use std::sync::Arc;

use crate::conn::Scratch;
use crate::error::HttpError;
use crate::exchange::{self, Answer, Env, Next, Planned, Terms};
use crate::factory::{Settings, Shared};
use crate::response::Finish;
use crate::stats::HttpStats;
use crate::{Handler, Route, RouteTable};

/// What the exchange needs, owned by the test instead of a connection.
struct Desk {
    settings: Settings,
    shared: Shared,
    scratch: Scratch,
}

impl Desk {
    fn new() -> Self {
        let mut routes = crate::protocol_tests::routes();
        let hook: crate::MetricsHook = Arc::new(|_| "up 1\n".to_owned());
        routes.push(Route::get("/metrics", Handler::Metrics(hook)));
        let settings = Settings {
            config: crate::protocol_tests::config(),
            routes: RouteTable::new(routes).unwrap(),
        };
        let shared = Shared::new(settings.clone(), HttpStats::default().for_shard(0), None);
        Desk {
            settings,
            shared,
            scratch: Scratch::default(),
        }
    }

    fn env(&mut self) -> Env<'_> {
        Env {
            settings: &self.settings,
            shared: &self.shared,
            scratch: &mut self.scratch,
        }
    }

    /// Plans `request`'s head, given a `Host` (`more`: bytes follow it in the input).
    fn plan(&mut self, request: &str, more: bool) -> Result<Planned, HttpError> {
        let config = self.settings.config.clone();
        let request = request.replacen("\r\n", "\r\nHost: t\r\n", 1);
        let head = crate::head::parse(request.as_bytes(), &config)?.expect("a whole head");
        exchange::plan(&mut self.env(), &head, more)
    }

    /// The answer to a planned head under `terms`, and what it wrote: a fixed one written
    /// as the connection writes it.
    fn answer(&mut self, planned: &mut Planned, terms: Terms, draining: bool) -> (Answer, String) {
        let mut out = Vec::new();
        let answer = match planned {
            Planned::Exchange(exchange, _) => {
                exchange::answer(&mut self.env(), exchange, &mut out, terms, draining)
            }
            Planned::Fixed(fixed) => {
                let finish = Finish {
                    date: &self.shared.date.get(),
                    close: terms.close,
                    head_only: fixed.head_only,
                    announce_keep_alive: terms.http10,
                };
                let status =
                    exchange::write_fixed(&self.settings, *fixed, &mut out, finish, draining);
                Answer::Written(status)
            }
        };
        (answer, String::from_utf8(out).unwrap())
    }
}

const KEEP: Terms = Terms {
    close: false,
    http10: false,
};

/// What a planned head needs next; a fixed one is answered at once.
fn next_kind(planned: &Planned) -> &'static str {
    let next = match planned {
        Planned::Exchange(_, next) => next,
        Planned::Fixed(_) => return "answer (fixed)",
    };
    match next {
        Next::Proxy(_) => "proxy",
        Next::Body { interim: true } => "body after 100",
        Next::Body { interim: false } => "body",
        Next::Answer => "answer",
    }
}

fn answer_kind(answer: &Answer) -> String {
    match answer {
        Answer::Written(status) => format!("written {status}"),
        Answer::Reply(reply) => format!("reply {}", reply.status),
        Answer::Job(_) => "job".to_owned(),
        Answer::Delay(delay) => format!("delay {delay:?}"),
        Answer::Refusal(error) => format!("refusal {error:?}"),
    }
}

#[test]
fn a_head_plans_what_comes_next_and_the_answer_it_gets() {
    // (request, bytes follow the head, what comes next, then the answer without a body)
    let cases: &[(&str, bool, &str, &str)] = &[
        (
            "GET /plaintext HTTP/1.1\r\n\r\n",
            false,
            "answer (fixed)",
            "written 200",
        ),
        (
            "HEAD /plaintext HTTP/1.1\r\n\r\n",
            false,
            "answer (fixed)",
            "written 200",
        ),
        ("GET /json HTTP/1.1\r\n\r\n", false, "answer", "written 200"),
        (
            "GET /missing HTTP/1.1\r\n\r\n",
            false,
            "answer",
            "written 404",
        ),
        (
            "DELETE /plaintext HTTP/1.1\r\n\r\n",
            false,
            "answer",
            "written 405",
        ),
        ("OPTIONS * HTTP/1.1\r\n\r\n", false, "answer", "written 200"),
        (
            "GET /readyz HTTP/1.1\r\n\r\n",
            false,
            "answer (fixed)",
            "written 200",
        ),
        (
            "GET /metrics HTTP/1.1\r\n\r\n",
            false,
            "answer",
            "reply 200",
        ),
        (
            "GET /delay?ms=5 HTTP/1.1\r\n\r\n",
            false,
            "answer",
            "delay 5ms",
        ),
        ("GET /blocking HTTP/1.1\r\n\r\n", false, "answer", "job"),
        (
            "GET /panic-inline HTTP/1.1\r\n\r\n",
            false,
            "answer",
            "refusal HandlerPanicked",
        ),
        (
            "POST /echo HTTP/1.1\r\nContent-Length: 3\r\n\r\n",
            false,
            "body",
            "written 200",
        ),
        (
            "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
            true,
            "body",
            "written 200",
        ),
        // RFC 9110 §10.1.1: a handler that reads the body earns a 100, unless the body is
        // already arriving.
        (
            "POST /echo HTTP/1.1\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n",
            false,
            "body after 100",
            "written 200",
        ),
        (
            "POST /echo HTTP/1.1\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n",
            true,
            "body",
            "written 200",
        ),
        // A body nobody reads: decoded and dropped, or, when the client waits for leave to
        // send it, answered at once (and the connection closes).
        (
            "GET /plaintext HTTP/1.1\r\nContent-Length: 3\r\n\r\n",
            false,
            "body",
            "written 200",
        ),
        (
            "GET /plaintext HTTP/1.1\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n",
            false,
            "answer",
            "written 200",
        ),
    ];
    for (request, more, want_next, want_answer) in cases {
        let mut desk = Desk::new();
        let mut planned = desk.plan(request, *more).unwrap();
        assert_eq!(next_kind(&planned), *want_next, "{request:?}");
        let (answer, out) = desk.answer(&mut planned, KEEP, false);
        assert_eq!(answer_kind(&answer), *want_answer, "{request:?}");
        // Only a written answer wrote anything.
        let status = match answer {
            Answer::Written(status) => status,
            _ => {
                assert_eq!(out, "", "{request:?}");
                continue;
            }
        };
        assert!(out.starts_with(&format!("HTTP/1.1 {status} ")), "{out}");
    }
}

#[test]
fn a_head_the_exchange_refuses_returns_the_error() {
    let cases: &[(&str, HttpError)] = &[
        ("GET /%zz HTTP/1.1\r\n\r\n", HttpError::InvalidTarget),
        // `max_body_bytes` is 64 in the test config.
        (
            "POST /echo HTTP/1.1\r\nContent-Length: 65\r\n\r\n",
            HttpError::BodyTooLarge,
        ),
    ];
    for (request, want) in cases {
        let got = Desk::new().plan(request, false).err();
        assert_eq!(got, Some(*want), "{request:?}");
    }
}

#[test]
fn the_answer_follows_the_terms_the_connection_sets() {
    let mut desk = Desk::new();
    let mut planned = desk.plan("GET /plaintext HTTP/1.1\r\n\r\n", false).unwrap();
    let close = Terms {
        close: true,
        ..KEEP
    };
    let (_, out) = desk.answer(&mut planned, close, false);
    assert!(out.contains("\r\nConnection: close\r\n"), "{out}");

    let mut planned = desk.plan("GET /plaintext HTTP/1.0\r\n\r\n", false).unwrap();
    let http10 = Terms {
        http10: true,
        ..KEEP
    };
    let (_, out) = desk.answer(&mut planned, http10, false);
    assert!(out.contains("\r\nConnection: keep-alive\r\n"), "{out}");

    let mut planned = desk.plan("GET /readyz HTTP/1.1\r\n\r\n", false).unwrap();
    let (answer, _) = desk.answer(&mut planned, KEEP, true);
    assert_eq!(answer_kind(&answer), "written 503");

    // An `Expect` to a handler that ignores the body: answered now, and it may not keep the
    // connection (the unread body is still on it).
    let request = "GET /plaintext HTTP/1.1\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n";
    let Planned::Exchange(exchange, _) = desk.plan(request, false).unwrap() else {
        panic!("a request with a body is planned with an exchange");
    };
    assert!(!exchange.keep_alive);
}

/// The one-direction rule, checked on the source: the exchange names neither the connection,
/// its cycle types nor the reactor's context, so it cannot reach back into the cycle (it gets
/// the connection's scratch buffers, a plain value, through `Env`).
#[test]
fn the_exchange_knows_no_connection() {
    let source = include_str!("exchange.rs");
    for name in [
        "HttpConn",
        "Cx<",
        "coreloop_reactor",
        "Phase::",
        "Flow::",
        "Verb",
    ] {
        assert!(!source.contains(name), "exchange.rs names `{name}`");
    }
}
