//! From a parsed head to a response: routing, handler dispatch, offload.

use std::rc::Rc;

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};

use coreloop_reactor::{Cx, Job};

use crate::body::BodyDecoder;
use crate::conn::{scratch_of, Exchange, Flow, HttpConn, Phase, Target};
use crate::error::HttpError;
use crate::factory::Settings;
use crate::files::{serve, serve_cached, ConditionFields, FileAsk};
use crate::handlers::ExpositionFormat;
use crate::handlers::{
    custom, delay_of, metrics_reply, write_echo, write_json, Compiled, JobReply, Request,
};
use crate::head::{Framing, Head, Method};
use crate::percent::{decode_into, raw_offset};
use crate::response::{write_reply, Finish, Reply};
use crate::router::Lookup;

impl HttpConn {
    /// Routes the head and prepares what its response needs once the body is in.
    ///
    /// Filled in place in a pooled box ([`crate::factory::Shared::take_exchange`] hands it back with nothing
    /// owned in it): building it on the stack and moving it in cost about 100 instructions
    /// per request.
    pub(crate) fn plan(&mut self, head: &Head<'_>) -> Result<Box<Exchange>, HttpError> {
        let target = self.route(head)?;
        if let Framing::Length(length) = head.framing {
            // A proxied body streams through: only the upstream limits it.
            if length > self.settings.config.max_body_bytes && self.proxy_spec(target).is_none() {
                return Err(HttpError::BodyTooLarge);
            }
        }
        let mut exchange = self.shared.take_exchange();
        exchange.target = target;
        exchange.decoder = BodyDecoder::new(head.framing);
        exchange.received = 0;
        exchange.keep_alive = head.keep_alive;
        exchange.head_only = head.method == Method::Head;
        exchange.format = ExpositionFormat::Prometheus;
        exchange.method = crate::stats::method_index(head.method);
        exchange.skip_body = false;
        self.prepare(head, &mut exchange);
        if head.expect_continue && exchange.decoder.is_some() && !self.reads_body(target) {
            exchange.skip_body = true;
            exchange.keep_alive = false;
        }
        Ok(exchange)
    }

    fn route(&mut self, head: &Head<'_>) -> Result<Target, HttpError> {
        if head.path == b"*" {
            return Ok(Target::OptionsStar);
        }
        let path: &[u8] = if head.path_encoded {
            let decoded = &mut scratch_of(&mut self.scratch, &self.shared).path;
            if !decode_into(head.path, decoded) {
                return Err(HttpError::InvalidTarget);
            }
            decoded
        } else {
            head.path
        };
        Ok(match self.settings.routes.lookup(path, head.method_token) {
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
        })
    }

    fn handler(&self, target: Target) -> Option<&Compiled> {
        handler_of(&self.settings, target)
    }

    pub(crate) fn proxy_spec(
        &self,
        target: Target,
    ) -> Option<std::sync::Arc<crate::proxy::ProxySpec>> {
        match self.handler(target) {
            Some(Compiled::Proxy(spec)) => Some(spec.clone()),
            _ => None,
        }
    }

    pub(crate) fn reads_body(&self, target: Target) -> bool {
        self.handler(target).is_some_and(Compiled::reads_body)
    }

    /// Copies out of the head what a handler needs after the head's bytes are gone.
    fn prepare(&mut self, head: &Head<'_>, exchange: &mut Exchange) {
        self.scratch().body.clear();
        let Target::Route { prefix_len, .. } = exchange.target else {
            return;
        };
        // Borrowed through our own handle on the settings (an `Rc` clone, no atomics), not
        // cloned: cloning a compiled handler bumped an `Arc` on every request.
        let settings = Rc::clone(&self.settings);
        match handler_of(&settings, exchange.target) {
            Some(Compiled::Files(root)) => {
                let rest = &head.path[raw_offset(head.path, prefix_len)..];
                let fields = conditions(head);
                let send_file = self.shared.send_file.get();
                if send_file {
                    let mut cache = self.shared.open_files.borrow_mut();
                    exchange.ready = serve_cached(&mut cache, root, rest, head.method, &fields);
                    if exchange.ready.is_some() {
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
                exchange.job = Some(Box::new(move || serve(&ask)));
            }
            Some(Compiled::Delay { max }) => {
                exchange.held.plan_delay(Some(delay_of(head.query, *max)));
            }
            Some(Compiled::Metrics(_)) => {
                exchange.format = ExpositionFormat::from_accept(head.accept);
            }
            Some(Compiled::Echo) => {
                let echo_type = &mut self.scratch().echo_type;
                echo_type.clear();
                echo_type.extend_from_slice(head.content_type.unwrap_or_default());
            }
            Some(Compiled::Custom { .. }) => {
                exchange.custom = Some(Box::new(custom_request(head, &self.scratch().path)))
            }
            _ => {}
        }
    }

    /// The body is in (or there is none): answer, inline or through the offload pool.
    pub(crate) fn finish(&mut self, cx: &mut Cx<'_>) -> Flow {
        let Some(exchange) = self.exchange.as_mut() else {
            return self.refuse(HttpError::MalformedRequestLine, cx);
        };
        let (target, head_only, keep_alive, format) = (
            exchange.target,
            exchange.head_only,
            exchange.keep_alive,
            exchange.format,
        );
        if let Some(reply) = exchange.ready.take() {
            return self.answer_job(Ok(reply), cx);
        }
        if let Some(job) = exchange.job.take() {
            return self.submit(job, cx);
        }
        if let Some(delay) = exchange.held.plan_delay(None) {
            return self.hold_delay(delay, cx);
        }
        let close = !keep_alive || self.must_close(cx);
        let finish = Finish {
            date: &self.shared.date.get(),
            close,
            head_only,
            announce_keep_alive: self.http10,
        };
        let settings = Rc::clone(&self.settings);
        let status = match handler_of(&settings, target) {
            Some(Compiled::Custom { func, blocking }) => {
                return self.run_custom(func.clone(), *blocking, cx)
            }
            Some(Compiled::Metrics(hook)) => {
                let reply = metrics_reply(hook, format, head_only);
                return self.answer_job(Ok(reply), cx);
            }
            Some(handler) => self.inline(handler, finish, cx),
            None => self.unrouted(target, finish, cx),
        };
        self.done(status, close, cx)
    }

    fn inline(&mut self, handler: &Compiled, finish: Finish<'_>, cx: &mut Cx<'_>) -> u16 {
        match handler {
            Compiled::Prepared(prepared) => {
                prepared.write(cx.out(), finish);
                prepared.status()
            }
            Compiled::Ready { ready, draining } => {
                let prepared = if cx.is_draining() || self.draining {
                    draining
                } else {
                    ready
                };
                prepared.write(cx.out(), finish);
                prepared.status()
            }
            Compiled::Json => write_json(cx.out(), &mut self.shared.scratch.borrow_mut(), finish),
            Compiled::Echo => {
                let scratch = scratch_of(&mut self.scratch, &self.shared);
                write_echo(cx.out(), &scratch.echo_type, &scratch.body, finish)
            }
            // Offloaded and held handlers never get here; answer rather than panic.
            Compiled::Metrics(_)
            | Compiled::Files(_)
            | Compiled::Delay { .. }
            | Compiled::Custom { .. }
            | Compiled::Proxy(_) => write_text(cx.out(), 500, b"", finish),
        }
    }

    fn unrouted(&self, target: Target, finish: Finish<'_>, cx: &mut Cx<'_>) -> u16 {
        match target {
            Target::NotAllowed { group } => {
                write_text(cx.out(), 405, self.settings.routes.allow(group), finish)
            }
            Target::OptionsStar => write_text(
                cx.out(),
                200,
                b"Allow: GET, HEAD, POST, PUT, DELETE, OPTIONS\r\n",
                finish,
            ),
            Target::Route { .. } | Target::NotFound => write_text(cx.out(), 404, b"", finish),
        }
    }

    fn submit(&mut self, work: Box<dyn FnOnce() -> JobReply + Send>, cx: &mut Cx<'_>) -> Flow {
        let job: Job = Box::new(move || Box::new(work()) as Box<dyn Any + Send>);
        match self.offload(job, cx) {
            Ok(id) => {
                self.phase = Phase::Awaiting(id);
                self.arm_offload(cx);
                Flow::Await
            }
            Err(_) => self.refuse(HttpError::Overloaded, cx),
        }
    }

    fn run_custom(&mut self, func: custom::CustomFn, blocking: bool, cx: &mut Cx<'_>) -> Flow {
        let Some(exchange) = self.exchange.as_mut() else {
            return self.refuse(HttpError::HandlerPanicked, cx);
        };
        let head_only = exchange.head_only;
        let mut request = *exchange.custom.take().unwrap_or_default();
        request.body = std::mem::take(&mut self.scratch().body);
        if blocking {
            return self.submit(
                Box::new(move || custom::run(&func, &request, head_only)),
                cx,
            );
        }
        // Inline, a panic must not take the shard down: it fails this request alone.
        match catch_unwind(AssertUnwindSafe(|| custom::run(&func, &request, head_only))) {
            Ok(reply) => self.answer_job(Ok(reply), cx),
            Err(_) => self.refuse(HttpError::HandlerPanicked, cx),
        }
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
