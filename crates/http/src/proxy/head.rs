//! The two heads a proxy writes: the request head sent upstream (RFC 9110 §7.6.1 hop-by-hop
//! fields removed, `X-Forwarded-*` and `Via` added, the route's `set_headers` applied,
//! `Max-Forwards` counted down) and the response head sent back to the client, from an
//! upstream head parsed as strictly as a request (RFC 9112 §6.3: an ambiguous framing is an
//! error, never a guess), so that no upstream can desync the client connection; it carries
//! `Via` too (RFC 9110 §7.6.3).

use std::mem::MaybeUninit;
use std::net::IpAddr;

use crate::body::BodyDecoder;
use crate::head::{trim, Framing};
use crate::response::push_decimal;

/// Upstream response heads with more fields than this are refused (502).
const MAX_FIELDS: usize = 128;

/// Room for one head's fields. Left uninitialised: httparse writes the ones it parses, and
/// filling 128 empty fields first cost more than parsing a short head.
pub(crate) type Fields<'b> = [MaybeUninit<httparse::Header<'b>>; MAX_FIELDS];

/// An empty [`Fields`].
pub(crate) fn fields<'b>() -> Fields<'b> {
    [const { MaybeUninit::uninit() }; MAX_FIELDS]
}

/// What the client asked and is, as the rewritten heads need it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ClientSide<'a> {
    pub addr: Option<std::net::IpAddr>,
    /// `https` behind a TLS listener, else `http`.
    pub proto: &'a str,
    /// The request's Host value (or authority of an absolute target).
    pub host: &'a [u8],
    pub framing: Framing,
    /// The route's `set_headers`: each replaces the client's fields of that name and the one
    /// the proxy would add; an empty value only removes. Names are validated tokens, never
    /// hop-by-hop or framing fields (crates/config refuses those).
    pub set: &'a [(String, String)],
}

/// What [`write_request`] made of the client's head.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Rewrite {
    /// The head for the upstream is written.
    Forward,
    /// OPTIONS or TRACE with `Max-Forwards: 0`: this proxy is the final recipient and
    /// answers itself (RFC 9110 §7.6.2); nothing usable is written.
    AnswerHere,
    /// A `Max-Forwards` that is not one `1*DIGIT` on an OPTIONS or TRACE (400).
    BadMaxForwards,
    /// The head does not parse again (cannot happen for a head the request parser took).
    Unparsable,
}

/// True for the fields that are about one connection and never forwarded (RFC 9110 §7.6.1),
/// and for the framing and forwarding fields the proxy writes itself.
fn not_forwarded(name: &str) -> bool {
    const FIELDS: [&str; 10] = [
        "connection",
        "keep-alive",
        "te",
        "transfer-encoding",
        "upgrade",
        "content-length",
        "expect",
        "x-forwarded-proto",
        "x-forwarded-host",
        "http2-settings",
    ];
    FIELDS.iter().any(|f| name.eq_ignore_ascii_case(f))
        || name.len() >= 6 && name[..6].eq_ignore_ascii_case("proxy-")
}

/// The tokens of every `Connection` field: the fields they name are hop-by-hop too.
fn named_by_connection<'a>(headers: &[httparse::Header<'a>]) -> Vec<&'a [u8]> {
    headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("connection"))
        .flat_map(|h| h.value.split(|&b| b == b',').map(trim))
        .filter(|t| !t.is_empty())
        .collect()
}

fn is_named(name: &str, named: &[&[u8]]) -> bool {
    named
        .iter()
        .any(|t| t.eq_ignore_ascii_case(name.as_bytes()))
}

/// RFC 9110 §7.6.2: `Max-Forwards` counts hops for OPTIONS and TRACE only (other methods
/// forward it as any end-to-end field). `Ok(None)`: absent; `Ok(Some(n))`: the value to
/// forward; `Err`: this proxy answers (`AnswerHere`) or refuses (`BadMaxForwards`).
fn max_forwards(method: &str, headers: &[httparse::Header<'_>]) -> Result<Option<u64>, Rewrite> {
    if method != "OPTIONS" && method != "TRACE" {
        return Ok(None);
    }
    let mut fields = headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("max-forwards"));
    let Some(field) = fields.next() else {
        return Ok(None);
    };
    let digits = trim(field.value);
    if fields.next().is_some() || digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Err(Rewrite::BadMaxForwards);
    }
    // Past u64 the count is as good as infinite: saturate rather than refuse.
    let hops = digits.iter().fold(0u64, |n, d| {
        n.saturating_mul(10).saturating_add(u64::from(d - b'0'))
    });
    match hops {
        0 => Err(Rewrite::AnswerHere),
        n => Ok(Some(n - 1)),
    }
}

/// The route's value for `name`, if `set_headers` names it (`Some("")`: removed).
fn configured<'s>(set: &'s [(String, String)], name: &str) -> Option<&'s str> {
    set.iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Writes the request head for the upstream from the client's raw, already validated head.
/// Only [`Rewrite::Forward`] leaves a usable head in `out`.
pub(crate) fn write_request(
    raw: &[u8],
    target: &[u8],
    client: &ClientSide<'_>,
    out: &mut Vec<u8>,
) -> Rewrite {
    let mut storage = fields();
    let mut request = httparse::Request::new(&mut []);
    let Ok(httparse::Status::Complete(_)) = request.parse_with_uninit_headers(raw, &mut storage)
    else {
        return Rewrite::Unparsable;
    };
    let Some(method) = request.method else {
        return Rewrite::Unparsable;
    };
    let hops = match max_forwards(method, request.headers) {
        Ok(hops) => hops,
        Err(answer) => return answer,
    };
    let named = named_by_connection(request.headers);
    let set = client.set;
    out.extend_from_slice(method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(target);
    out.extend_from_slice(b" HTTP/1.1\r\n");
    let mut forwarded_for: Option<&[u8]> = None;
    let mut has_host = false;
    for header in request.headers.iter() {
        let name = header.name;
        if not_forwarded(name) || is_named(name, &named) || configured(set, name).is_some() {
            continue;
        }
        if hops.is_some() && name.eq_ignore_ascii_case("max-forwards") {
            continue;
        }
        if name.eq_ignore_ascii_case("x-forwarded-for") {
            // The client's own claim: kept in front of the address we saw (the last
            // one is the only one this proxy vouches for). Several fields: the last wins.
            forwarded_for = Some(header.value);
            continue;
        }
        has_host |= name.eq_ignore_ascii_case("host");
        push_field(out, name.as_bytes(), header.value);
    }
    if !has_host && configured(set, "host").is_none() {
        // An absolute-form target's authority is the Host (RFC 9112 §3.2.2).
        push_field(out, b"Host", client.host);
    }
    if let Some(hops) = hops {
        out.extend_from_slice(b"Max-Forwards: ");
        push_decimal(out, hops);
        out.extend_from_slice(b"\r\n");
    }
    if configured(set, "x-forwarded-for").is_none() {
        out.extend_from_slice(b"X-Forwarded-For: ");
        if let Some(earlier) = forwarded_for {
            out.extend_from_slice(trim(earlier));
            out.extend_from_slice(b", ");
        }
        match client.addr {
            Some(ip) => push_ip(out, ip),
            None => out.extend_from_slice(b"unknown"),
        }
        out.extend_from_slice(b"\r\n");
    }
    if configured(set, "x-forwarded-proto").is_none() {
        push_field(out, b"X-Forwarded-Proto", client.proto.as_bytes());
    }
    if configured(set, "x-forwarded-host").is_none() {
        push_field(out, b"X-Forwarded-Host", client.host);
    }
    // RFC 9110 §7.6.3: a gateway MUST send Via in each request it forwards: the protocol it
    // received the request with and a pseudonym. Via fields the client sent went through
    // above, ahead of this one, so the list stays in hop order. (`set_headers` may replace
    // or remove it: the operator's call, documented in docs/PROXY.md.)
    if configured(set, "via").is_none() {
        push_field(out, b"Via", via(request.version));
    }
    for (name, value) in set.iter().filter(|(_, v)| !v.is_empty()) {
        push_field(out, name.as_bytes(), value.as_bytes());
    }
    match client.framing {
        Framing::Empty => {}
        Framing::Length(n) => {
            out.extend_from_slice(b"Content-Length: ");
            push_decimal(out, n);
            out.extend_from_slice(b"\r\n");
        }
        Framing::Chunked => push_field(out, b"Transfer-Encoding", b"chunked"),
    }
    // The head's end waits for the server: whether it may be kept decides `Connection`.
    Rewrite::Forward
}

/// Ends a head [`write_request`] wrote. `reuse`: the upstream connection may be kept for
/// another request (`upstream.keepalive` > 0), so no `Connection: close` (HTTP/1.1 persists
/// by default, RFC 9112 §9.3); without a pool, say so, so that the upstream closes and never
/// waits for a next request. Apart from `write_request` because it depends on the server
/// picked, and a request answered here (`Max-Forwards: 0`) must not pick one.
pub(crate) fn end_request(out: &mut Vec<u8>, reuse: bool) {
    if !reuse {
        out.extend_from_slice(b"Connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// This hop's `Via` entry: the protocol version the message was received with.
fn via(version: Option<u8>) -> &'static [u8] {
    if version == Some(0) {
        b"1.0 coreloop"
    } else {
        b"1.1 coreloop"
    }
}

/// `n` in lowercase hexadecimal (a chunk size), formatted on the stack.
pub(crate) fn push_hex(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 16];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b"0123456789abcdef"[(n & 15) as usize];
        n >>= 4;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

/// The client's address as `Display` writes it. IPv4 by hand: the formatter's padding
/// support made it a tenth of a proxied request's instructions.
fn push_ip(out: &mut Vec<u8>, ip: IpAddr) {
    match ip {
        IpAddr::V4(v4) => {
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push(b'.');
                }
                if octet >= 100 {
                    out.push(b'0' + octet / 100);
                }
                if octet >= 10 {
                    out.push(b'0' + octet / 10 % 10);
                }
                out.push(b'0' + octet % 10);
            }
        }
        IpAddr::V6(v6) => {
            use std::io::Write;
            // Writing to a Vec cannot fail.
            let _ = write!(out, "{v6}");
        }
    }
}

fn push_field(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// How the upstream's response body is delimited.
#[derive(Clone, Debug)]
pub(crate) enum Body {
    /// None, whatever the upstream sent (HEAD, 204, 304; RFC 9110 §6.4.1).
    None,
    /// Content-Length or chunked, decoded (and so validated) as it passes.
    Framed(BodyDecoder),
    /// Until the upstream closes (RFC 9112 §6.3 rule 8).
    UntilClose,
}

/// Why an upstream response head is refused (each is a 502 and the upstream closed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BadResponse {
    /// httparse refused it: bad status line, bad field syntax, obs-fold, bare LF...
    Syntax,
    /// Content-Length together with Transfer-Encoding.
    LengthAndCoding,
    /// More than one Content-Length, or one that is not a plain decimal.
    Length,
    /// A Transfer-Encoding whose last coding is not `chunked`, chunked twice, or another coding.
    Coding,
    /// 101 (Switching Protocols): upgrades are not proxied.
    Upgrade,
    /// Too many fields, or longer than the head limit.
    TooLarge,
}

/// An upstream response head, with its fields as parsed (written out again for the client
/// without a second parse).
#[derive(Debug)]
pub(crate) struct Response<'h, 'b> {
    pub len: usize,
    pub status: u16,
    pub reason: &'b str,
    /// `1` for HTTP/1.1, `0` for HTTP/1.0.
    pub version: u8,
    pub headers: &'h [httparse::Header<'b>],
    pub body: Body,
    /// The upstream lets its connection persist after this response: HTTP/1.1 without a
    /// `close` connection option (RFC 9112 §9.3), and no body announced where none may
    /// come. An HTTP/1.0 upstream is never reused.
    pub reusable: bool,
}

/// Parses an upstream response head. `Ok(None)`: incomplete. `head_only`: the request was
/// HEAD. 1xx heads come back as themselves (status < 200, `Body::None`). The fields are
/// parsed into `storage`.
pub(crate) fn parse_response<'h, 'b>(
    input: &'b [u8],
    head_only: bool,
    storage: &'h mut Fields<'b>,
) -> Result<Option<Response<'h, 'b>>, BadResponse> {
    let mut response = httparse::Response::new(&mut []);
    let parsed = httparse::ParserConfig::default().parse_response_with_uninit_headers(
        &mut response,
        input,
        storage,
    );
    let len = match parsed {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(BadResponse::TooLarge),
        Err(_) => return Err(BadResponse::Syntax),
    };
    let status = response.code.ok_or(BadResponse::Syntax)?;
    if !(100..=599).contains(&status) {
        return Err(BadResponse::Syntax);
    }
    if status == 101 {
        return Err(BadResponse::Upgrade);
    }
    let framing = framing_of(response.headers)?;
    let bodiless = head_only || status < 200 || status == 204 || status == 304;
    let body = match (bodiless, framing) {
        (true, _) => Body::None,
        (false, Some(framing)) => BodyDecoder::new(framing).map_or(Body::None, Body::Framed),
        (false, None) => Body::UntilClose,
    };
    let closes = named_by_connection(response.headers)
        .iter()
        .any(|t| t.eq_ignore_ascii_case(b"close"));
    // A bodiless response whose head announces a body (HEAD with a length, a 204 or 304
    // with framing fields) leaves the connection unsure: an upstream that sends the body
    // anyway would have it read as the next response. Only a close makes that safe.
    let announced = matches!(framing, Some(Framing::Length(_) | Framing::Chunked));
    let reusable = response.version == Some(1) && !closes && !(bodiless && announced);
    Ok(Some(Response {
        len,
        status,
        reason: response.reason.unwrap_or(""),
        version: response.version.unwrap_or(1),
        headers: response.headers,
        body,
        reusable,
    }))
}

/// RFC 9112 §6.3 applied to a response: `None` when neither field is present.
fn framing_of(headers: &[httparse::Header<'_>]) -> Result<Option<Framing>, BadResponse> {
    let (mut lengths, mut length, mut codings) = (0u32, 0u64, Vec::new());
    for header in headers {
        if header.name.eq_ignore_ascii_case("content-length") {
            lengths += 1;
            let digits = trim(header.value);
            if digits.is_empty() || digits.len() > 18 || !digits.iter().all(u8::is_ascii_digit) {
                return Err(BadResponse::Length);
            }
            length = digits.iter().fold(0, |n, d| n * 10 + u64::from(d - b'0'));
        } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
            codings.extend(
                header
                    .value
                    .split(|&b| b == b',')
                    .map(trim)
                    .filter(|c| !c.is_empty()),
            );
        }
    }
    if lengths > 0 && !codings.is_empty() {
        return Err(BadResponse::LengthAndCoding);
    }
    if lengths > 1 {
        return Err(BadResponse::Length);
    }
    if !codings.is_empty() {
        let chunked = codings
            .iter()
            .filter(|c| c.eq_ignore_ascii_case(b"chunked"))
            .count();
        return match (chunked, codings.len()) {
            (1, 1) => Ok(Some(Framing::Chunked)),
            _ => Err(BadResponse::Coding),
        };
    }
    Ok((lengths == 1).then_some(if length == 0 {
        Framing::Empty
    } else {
        Framing::Length(length)
    }))
}

/// How the client's response is framed, from the upstream's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reframe {
    /// No body.
    None,
    /// The upstream's framed bytes pass as they are (Content-Length, or chunked to 1.1).
    Pass,
    /// Decoded data only, delimited by closing the client (chunked or close-delimited to 1.0).
    DecodeAndClose,
    /// A close-delimited body re-framed as chunks (1.1 clients), so the client stays open.
    Chunk,
}

/// Writes the client's response head from the upstream's, and says how the body goes.
/// `keep_alive`: the client connection may stay open after this response (the caller's
/// choice); it is forced off when only a close can end the body.
pub(crate) fn write_response(
    response: &Response<'_, '_>,
    http10: bool,
    keep_alive: bool,
    out: &mut Vec<u8>,
) -> (Reframe, bool) {
    let reframe = match (&response.body, http10) {
        (Body::None, _) => Reframe::None,
        (Body::Framed(BodyDecoder::Length(_)), _) => Reframe::Pass,
        (Body::Framed(BodyDecoder::Chunked(_)), false) => Reframe::Pass,
        (Body::Framed(BodyDecoder::Chunked(_)), true) | (Body::UntilClose, true) => {
            Reframe::DecodeAndClose
        }
        (Body::UntilClose, false) => Reframe::Chunk,
    };
    let keep_alive = keep_alive && reframe != Reframe::DecodeAndClose && response.status >= 200;
    out.extend_from_slice(b"HTTP/1.1 ");
    push_decimal(out, u64::from(response.status));
    out.push(b' ');
    out.extend_from_slice(response.reason.as_bytes());
    out.extend_from_slice(b"\r\n");
    let named = named_by_connection(response.headers);
    let chunked_out = matches!(reframe, Reframe::Chunk)
        || matches!(
            (reframe, &response.body),
            (Reframe::Pass, Body::Framed(BodyDecoder::Chunked(_)))
        );
    for header in response.headers {
        let name = header.name;
        let length = name.eq_ignore_ascii_case("content-length");
        // A bodiless response keeps its Content-Length (HEAD, 304: the size it would have),
        // except where RFC 9110 §8.6 forbids one: 1xx and 204.
        let allowed = response.status >= 200 && response.status != 204;
        let keep_length = length && allowed && matches!(reframe, Reframe::Pass | Reframe::None);
        if (not_forwarded(name) && !keep_length) || is_named(name, &named) {
            continue;
        }
        push_field(out, name.as_bytes(), header.value);
    }
    // RFC 9110 §7.6.3: an intermediary adds Via to the responses it forwards too, after the
    // upstream's own entries, naming the version it received the response with.
    push_field(out, b"Via", via(Some(response.version)));
    if chunked_out {
        out.extend_from_slice(b"Transfer-Encoding: chunked\r\n");
    }
    if response.status >= 200 {
        match (keep_alive, http10) {
            (false, _) => out.extend_from_slice(b"Connection: close\r\n"),
            (true, true) => out.extend_from_slice(b"Connection: keep-alive\r\n"),
            (true, false) => {}
        }
    }
    out.extend_from_slice(b"\r\n");
    (reframe, keep_alive)
}

#[cfg(test)]
#[path = "head_tests.rs"]
mod tests;
