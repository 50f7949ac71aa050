//! From a parsed head to a response: routing, handler dispatch, what to offload.
//!
//! The exchange decides and the connection acts. [`plan`] routes a head and says what the
//! request needs next ([`Next`]); [`answer`] makes the response of a request whose body is in,
//! writing it when it can be made on the shard and otherwise saying what must happen first
//! ([`Answer`]); [`encode`] writes a handler's [`JobReply`]. None of them knows the request
//! cycle: phases, deadlines, the offload pool, counters and closing are `crate::conn`'s, which
//! calls these with what they need ([`Env`], [`Terms`]) and acts on what they return. Nothing
//! here calls back into the connection.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Duration;

use crate::body::BodyDecoder;
use crate::conn::Scratch;
use crate::error::HttpError;
use crate::factory::{Settings, Shared};
use crate::files::{serve, serve_cached, ConditionFields, FileAsk, FileBody};
use crate::handlers::ExpositionFormat;
use crate::handlers::{
    custom, delay_of, metrics_reply, write_echo, write_json, Compiled, JobReply, Request,
};
use crate::head::{Framing, Head, Method};
use crate::percent::{decode_into, raw_offset};
use crate::proxy::{ProxyExchange, ProxySpec};
use crate::response::{write_reply, write_sized, Finish, Reply};
use crate::router::Lookup;
use crate::stats;

/// Blocking work for the offload pool; its reply is encoded when the completion comes back.
pub(crate) type BlockingWork = Box<dyn FnOnce() -> JobReply + Send>;

/// Where a request goes, decided from its head.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Target {
    Route {
        group: usize,
        entry: usize,
        prefix_len: usize,
    },
    NotAllowed {
        group: usize,
    },
    NotFound,
    OptionsStar,
}

/// What the head prepared for the answer beyond the handler itself: at most one thing.
#[derive(Default)]
pub(crate) enum Work {
    /// The handler answers from the route alone (or from the body).
    #[default]
    None,
    /// A `files` request the open-file cache could not answer.
    Job(BlockingWork),
    /// A `files` answer made on the shard from its open-file cache: no job needed.
    Ready(JobReply),
    /// A custom handler's request, copied out of the head. Boxed: inline it would make every
    /// pooled exchange larger.
    Custom(Box<Request>),
    /// `/delay`: how long, once the body (if any) is in.
    Delay(Duration),
}

/// A request between its head and its response.
pub(crate) struct Exchange {
    pub target: Target,
    pub work: Work,
    pub decoder: Option<BodyDecoder>,
    pub received: u64,
    pub keep_alive: bool,
    pub head_only: bool,
    /// The exposition format `Accept` asked for (read by the metrics route only).
    pub format: ExpositionFormat,
    /// The `method` label slot (`crate::stats::METHOD_LABELS`).
    pub method: usize,
    /// A job in flight, a delay or a file body (`crate::held`).
    pub held: crate::held::Held,
    /// A proxied request (`crate::proxy`).
    pub proxy: Option<Box<ProxyExchange>>,
}

impl Exchange {
    /// An exchange owning nothing, as the pool holds them; [`plan`] sets every plain field.
    pub(crate) fn empty() -> Self {
        Exchange {
            target: Target::NotFound,
            work: Work::None,
            decoder: None,
            received: 0,
            keep_alive: false,
            head_only: false,
            format: ExpositionFormat::Prometheus,
            method: stats::UNKNOWN_METHOD,
            held: crate::held::Held::default(),
            proxy: None,
        }
    }
}

/// What the exchange works with: the request's settings, its shard's state and its buffers.
pub(crate) struct Env<'a> {
    pub settings: &'a Settings,
    pub shared: &'a Shared,
    pub scratch: &'a mut Scratch,
}

/// The connection's side of how a response ends, decided by `crate::conn` (limits, drain,
/// HTTP/1.0, a peer that half-closed) and written by the exchange.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Terms {
    /// The response says `Connection: close`, and the connection closes after it.
    pub close: bool,
    /// An HTTP/1.0 request: say `Connection: keep-alive` (see [`Finish`]).
    pub http10: bool,
}

/// What a planned head needs next.
#[derive(Debug)]
pub(crate) enum Next {
    /// A proxy route: the proxy client takes over (it forwards any body itself).
    Proxy(Arc<ProxySpec>),
    /// Read the body first; `interim`: send `100 Continue` before it (RFC 9110 §10.1.1).
    Body { interim: bool },
    /// Answer now: there is no body, or one the handler does not read that an `Expect` asked
    /// leave to send (then the answer closes instead of reading it, which §10.1.1 allows).
    Answer,
}

/// What [`plan`] made of a head.
pub(crate) enum Planned {
    /// A request with state to carry to its answer, and what it needs next.
    Exchange(Box<Exchange>, Next),
    /// A bodiless request to a route with a pre-encoded response (`static`, `/readyz`):
    /// answered at once by [`write_fixed`], with no exchange (taking, filling and giving back
    /// one cost about 150 instructions per pipelined request in callgrind).
    Fixed(Fixed),
}

/// The route a [`Planned::Fixed`] request is answered from, and its `method` label slot.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Fixed {
    group: usize,
    entry: usize,
    pub method: usize,
    /// HEAD: the answer's headers only.
    pub head_only: bool,
}

impl Fixed {
    /// The `route` label slot of the route that answers.
    pub(crate) fn route_slot(self, settings: &Settings) -> usize {
        settings.routes.slot(self.group, self.entry)
    }
}

/// What a request whose body is in is answered with.
pub(crate) enum Answer {
    /// A whole response with this status is in the output.
    Written(u16),
    /// A reply made on the shard, for [`encode`].
    Reply(JobReply),
    /// Blocking work for the offload pool; its reply goes to [`encode`] at completion.
    Job(BlockingWork),
    /// `/delay`: answer 200 after this long, holding no thread.
    Delay(Duration),
    /// The request fails: answer with this error's refusal.
    Refusal(HttpError),
}

impl std::fmt::Debug for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Written(status) => f.debug_tuple("Written").field(status).finish(),
            Self::Reply(reply) => f.debug_tuple("Reply").field(&reply.status).finish(),
            Self::Job(_) => f.write_str("Job"),
            Self::Delay(delay) => f.debug_tuple("Delay").field(delay).finish(),
            Self::Refusal(error) => f.debug_tuple("Refusal").field(error).finish(),
        }
    }
}

/// A reply encoded by [`encode`]: its status, and the file body that follows the head, if any
/// (sent one window at a time by `crate::held`).
pub(crate) struct Encoded {
    pub status: u16,
    pub rest: Option<Box<FileBody>>,
}

/// Routes the head and copies out of it what the answer needs once the head's bytes are gone.
/// `more`: input follows the head already (then a `100 Continue` would only be noise).
///
/// Filled in place in a pooled box ([`Shared::take_exchange`] hands it back with nothing owned
/// in it): building it on the stack and moving it in cost about 100 instructions per request.
pub(crate) fn plan(env: &mut Env<'_>, head: &Head<'_>, more: bool) -> Result<Planned, HttpError> {
    let target = route(env, head)?;
    let handler = handler_of(env.settings, target);
    if let (Target::Route { group, entry, .. }, Framing::Empty) = (target, head.framing) {
        if matches!(
            handler,
            Some(Compiled::Prepared(_) | Compiled::Ready { .. })
        ) {
            let method = stats::method_index(head.method);
            return Ok(Planned::Fixed(Fixed {
                group,
                entry,
                method,
                head_only: head.method == Method::Head,
            }));
        }
    }
    let proxy = match handler {
        Some(Compiled::Proxy(spec)) => Some(spec),
        _ => None,
    };
    if let Framing::Length(length) = head.framing {
        // A proxied body streams through: only the upstream limits it.
        if length > env.settings.config.max_body_bytes && proxy.is_none() {
            return Err(HttpError::BodyTooLarge);
        }
    }
    let mut exchange = env.shared.take_exchange();
    exchange.target = target;
    exchange.decoder = BodyDecoder::new(head.framing);
    exchange.received = 0;
    exchange.keep_alive = head.keep_alive;
    exchange.head_only = head.method == Method::Head;
    exchange.format = ExpositionFormat::Prometheus;
    exchange.method = stats::method_index(head.method);
    env.scratch.body.clear();
    if let (Some(handler), Target::Route { prefix_len, .. }) = (handler, target) {
        prepare(env, handler, prefix_len, head, &mut exchange);
    }
    let next = match proxy {
        Some(spec) => Next::Proxy(spec.clone()),
        None if exchange.decoder.is_none() => Next::Answer,
        None => match handler.is_some_and(Compiled::reads_body) {
            true => Next::Body {
                interim: head.expect_continue && !more,
            },
            false if head.expect_continue => {
                exchange.keep_alive = false;
                Next::Answer
            }
            false => Next::Body { interim: false },
        },
    };
    Ok(Planned::Exchange(exchange, next))
}

/// Writes the answer of a [`Planned::Fixed`] request: what [`answer`] writes for its route.
pub(crate) fn write_fixed(
    settings: &Settings,
    fixed: Fixed,
    out: &mut Vec<u8>,
    finish: Finish<'_>,
    draining: bool,
) -> u16 {
    let prepared = match settings.routes.handler(fixed.group, fixed.entry) {
        Some(Compiled::Prepared(prepared)) => prepared,
        Some(Compiled::Ready {
            ready,
            draining: no,
        }) => match draining {
            true => no,
            false => ready,
        },
        // `plan` names only those two; answer rather than panic.
        _ => return write_text(out, 500, b"", finish),
    };
    prepared.write(out, finish);
    prepared.status()
}

/// Whether the route's handler reads the request body (else it is decoded and dropped).
pub(crate) fn reads_body(settings: &Settings, target: Target) -> bool {
    handler_of(settings, target).is_some_and(Compiled::reads_body)
}

/// The answer of a request whose body is in (or that has none). `out` is the connection's
/// output; nothing is written to it unless the answer is [`Answer::Written`]. `draining`: the
/// server drains (`/readyz` answers 503).
pub(crate) fn answer(
    env: &mut Env<'_>,
    exchange: &mut Exchange,
    out: &mut Vec<u8>,
    terms: Terms,
    draining: bool,
) -> Answer {
    // The common request prepared nothing: test before taking (a move of the whole enum).
    if !matches!(exchange.work, Work::None | Work::Custom(_)) {
        match std::mem::take(&mut exchange.work) {
            Work::Ready(reply) => return Answer::Reply(reply),
            Work::Job(work) => return Answer::Job(work),
            Work::Delay(delay) => return Answer::Delay(delay),
            Work::None | Work::Custom(_) => {}
        }
    }
    let finish = Finish {
        date: &env.shared.date.get(),
        close: terms.close,
        head_only: exchange.head_only,
        announce_keep_alive: terms.http10,
    };
    let status = match handler_of(env.settings, exchange.target) {
        Some(Compiled::Custom { func, blocking }) => {
            return run_custom(env, exchange, func, *blocking)
        }
        Some(Compiled::Metrics(hook)) => {
            return Answer::Reply(metrics_reply(hook, exchange.format, exchange.head_only))
        }
        Some(handler) => inline(env, handler, out, finish, draining),
        None => unrouted(env.settings, exchange.target, out, finish),
    };
    Answer::Written(status)
}

/// Writes a handler's reply (made on the shard or by a job), keeping the file it opened in the
/// shard's open-file cache.
pub(crate) fn encode(
    shared: &Shared,
    mut reply: JobReply,
    head_only: bool,
    out: &mut Vec<u8>,
    terms: Terms,
) -> Encoded {
    if let Some(open) = reply.open.take() {
        shared.open_files.borrow_mut().insert(*open);
    }
    let view = Reply {
        status: reply.status,
        content_type: reply.content_type.as_deref(),
        extra: &reply.extra,
        body: &reply.body,
    };
    let finish = Finish {
        date: &shared.date.get(),
        close: terms.close,
        head_only,
        announce_keep_alive: terms.http10,
    };
    write_sized(out, &view, reply.length, finish);
    Encoded {
        status: reply.status,
        rest: reply.stream,
    }
}

fn route(env: &mut Env<'_>, head: &Head<'_>) -> Result<Target, HttpError> {
    if head.path == b"*" {
        return Ok(Target::OptionsStar);
    }
    let path: &[u8] = if head.path_encoded {
        let decoded = &mut env.scratch.path;
        if !decode_into(head.path, decoded) {
            return Err(HttpError::InvalidTarget);
        }
        decoded
    } else {
        head.path
    };
    Ok(
        match (env.settings.routes).lookup(path, head.method, head.method_token) {
            Lookup::Found {
                group,
                entry,
                prefix_len,
            } => Target::Route {
                group,
                entry,
                prefix_len,
            },
            Lookup::NotAllowed { group } => Target::NotAllowed { group },
            Lookup::NotFound => Target::NotFound,
        },
    )
}

/// Copies out of the head what `handler` needs after the head's bytes are gone.
fn prepare(
    env: &mut Env<'_>,
    handler: &Compiled,
    prefix_len: usize,
    head: &Head<'_>,
    exchange: &mut Exchange,
) {
    match handler {
        Compiled::Files(root) => {
            let rest = &head.path[raw_offset(head.path, prefix_len)..];
            let fields = conditions(head);
            let send_file = env.shared.send_file.get();
            if send_file {
                let mut cache = env.shared.open_files.borrow_mut();
                if let Some(reply) = serve_cached(&mut cache, root, rest, head.method, &fields) {
                    exchange.work = Work::Ready(reply);
                    return;
                }
            }
            let ask = FileAsk {
                root: root.clone(),
                rest: rest.to_vec(),
                method: head.method,
                fields,
                send_file,
            };
            exchange.work = Work::Job(Box::new(move || serve(&ask)));
        }
        Compiled::Delay { max } => exchange.work = Work::Delay(delay_of(head.query, *max)),
        Compiled::Metrics(_) => exchange.format = ExpositionFormat::from_accept(head.accept),
        Compiled::Echo => {
            let echo_type = &mut env.scratch.echo_type;
            echo_type.clear();
            echo_type.extend_from_slice(head.content_type.unwrap_or_default());
        }
        Compiled::Custom { .. } => {
            exchange.work = Work::Custom(Box::new(custom_request(head, &env.scratch.path)))
        }
        Compiled::Prepared(_) | Compiled::Json | Compiled::Ready { .. } | Compiled::Proxy(_) => {}
    }
}

fn inline(
    env: &mut Env<'_>,
    handler: &Compiled,
    out: &mut Vec<u8>,
    finish: Finish<'_>,
    draining: bool,
) -> u16 {
    match handler {
        Compiled::Prepared(prepared) => {
            prepared.write(out, finish);
            prepared.status()
        }
        Compiled::Ready {
            ready,
            draining: no,
        } => {
            let prepared = if draining { no } else { ready };
            prepared.write(out, finish);
            prepared.status()
        }
        Compiled::Json => write_json(out, &mut env.shared.scratch.borrow_mut(), finish),
        Compiled::Echo => write_echo(out, &env.scratch.echo_type, &env.scratch.body, finish),
        // Offloaded and held handlers never get here; answer rather than panic.
        Compiled::Metrics(_)
        | Compiled::Files(_)
        | Compiled::Delay { .. }
        | Compiled::Custom { .. }
        | Compiled::Proxy(_) => write_text(out, 500, b"", finish),
    }
}

fn unrouted(settings: &Settings, target: Target, out: &mut Vec<u8>, finish: Finish<'_>) -> u16 {
    match target {
        Target::NotAllowed { group } => write_text(out, 405, settings.routes.allow(group), finish),
        Target::OptionsStar => write_text(
            out,
            200,
            b"Allow: GET, HEAD, POST, PUT, DELETE, OPTIONS\r\n",
            finish,
        ),
        Target::Route { .. } | Target::NotFound => write_text(out, 404, b"", finish),
    }
}

fn run_custom(
    env: &mut Env<'_>,
    exchange: &mut Exchange,
    func: &custom::CustomFn,
    blocking: bool,
) -> Answer {
    let head_only = exchange.head_only;
    let mut request = match std::mem::take(&mut exchange.work) {
        Work::Custom(request) => *request,
        _ => Request::default(),
    };
    request.body = std::mem::take(&mut env.scratch.body);
    if blocking {
        let func = func.clone();
        return Answer::Job(Box::new(move || custom::run(&func, &request, head_only)));
    }
    // Inline, a panic must not take the shard down: it fails this request alone.
    match catch_unwind(AssertUnwindSafe(|| custom::run(func, &request, head_only))) {
        Ok(reply) => Answer::Reply(reply),
        Err(_) => Answer::Refusal(HttpError::HandlerPanicked),
    }
}

fn write_text(out: &mut Vec<u8>, status: u16, extra: &[u8], finish: Finish<'_>) -> u16 {
    let body: &[u8] = match status {
        404 => b"not found\n",
        405 => b"method not allowed\n",
        500 => b"internal error\n",
        _ => b"",
    };
    write_reply(
        out,
        &Reply {
            status,
            content_type: Some(b"text/plain"),
            extra,
            body,
        },
        finish,
    );
    status
}

fn custom_request(head: &Head<'_>, decoded: &[u8]) -> Request {
    let path = if head.path_encoded {
        decoded
    } else {
        head.path
    };
    Request {
        method: head.method_token.to_owned(),
        path: String::from_utf8_lossy(path).into_owned(),
        query: String::from_utf8_lossy(head.query).into_owned(),
        content_type: head
            .content_type
            .map(|t| String::from_utf8_lossy(t).into_owned()),
        body: Vec::new(),
    }
}

/// The conditional fields a files request is judged by (RFC 9110 §13), copied out of the head.
fn conditions(head: &Head<'_>) -> ConditionFields {
    let own = |field: Option<&[u8]>| field.map(<[u8]>::to_vec);
    // RFC 9110 §13.1.1, §13.1.2: lists, so several lines are one combined list (§5.3).
    let list = |field: Option<&[u8]>, repeated: bool, name: &str| match repeated {
        true => Some(head.combined(name)),
        false => own(field),
    };
    ConditionFields {
        if_match: list(head.if_match, head.repeated.if_match, "if-match"),
        if_unmodified_since: own(head.if_unmodified_since),
        if_none_match: list(
            head.if_none_match,
            head.repeated.if_none_match,
            "if-none-match",
        ),
        if_modified_since: own(head.if_modified_since),
        if_range: own(head.if_range),
        range: own(head.range),
    }
}

/// The compiled handler a routed target names.
fn handler_of(settings: &Settings, target: Target) -> Option<&Compiled> {
    match target {
        Target::Route { group, entry, .. } => settings.routes.handler(group, entry),
        _ => None,
    }
}
