use super::*;

fn client<'a>(framing: Framing, set: &'a [(String, String)]) -> ClientSide<'a> {
    ClientSide {
        addr: Some("192.0.2.7".parse().unwrap()),
        proto: "http",
        host: b"front.example",
        framing,
        set,
    }
}

fn rewrite(raw: &str, set: &[(&str, &str)]) -> (Rewrite, String) {
    let set: Vec<(String, String)> = (set.iter())
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    let mut out = Vec::new();
    let client = client(Framing::Empty, &set);
    let rewrite = write_request(raw.as_bytes(), b"/x", &client, &mut out);
    if rewrite == Rewrite::Forward {
        end_request(&mut out, false);
    }
    (rewrite, String::from_utf8(out).unwrap())
}

fn request(raw: &str, framing: Framing) -> String {
    let mut out = Vec::new();
    let rewrite = write_request(raw.as_bytes(), b"/x", &client(framing, &[]), &mut out);
    assert_eq!(rewrite, Rewrite::Forward);
    end_request(&mut out, false);
    String::from_utf8(out).unwrap()
}

/// nginx's proxy_set_header: the configured field replaces every client field of that name
/// (any case) and the one the proxy would add; an empty value only removes.
#[test]
fn set_headers_replace_the_clients_and_the_proxys_fields() {
    let raw =
        "GET / HTTP/1.1\r\nHost: front.example\r\nx-real-ip: 6.6.6.6\r\nX-Real-IP: 7.7.7.7\r\n\
               X-Forwarded-For: 10.0.0.1\r\nVia: 1.1 edge\r\nAccept: */*\r\nCookie: a=1\r\n\r\n";
    let set = [
        ("X-Real-IP", "192.0.2.7"),
        ("X-Forwarded-For", ""),
        ("X-Forwarded-Host", ""),
        ("X-Forwarded-Proto", "https"),
        ("Via", ""),
        ("Cookie", ""),
        ("Host", "app.internal"),
    ];
    let (outcome, sent) = rewrite(raw, &set);
    assert_eq!(outcome, Rewrite::Forward);
    assert_eq!(
        sent,
        "GET /x HTTP/1.1\r\nAccept: */*\r\nX-Real-IP: 192.0.2.7\r\nX-Forwarded-Proto: https\r\n\
         Host: app.internal\r\nConnection: close\r\n\r\n"
    );
    // Nothing set: the proxy's own fields, and a Host for a 1.0 request without one.
    let (_, sent) = rewrite("GET / HTTP/1.0\r\n\r\n", &[("X-Other", "1")]);
    assert!(sent.contains("\r\nHost: front.example\r\n"), "{sent}");
    assert!(
        sent.contains("\r\nVia: 1.0 coreloop\r\nX-Other: 1\r\n"),
        "{sent}"
    );
    let (_, sent) = rewrite("GET / HTTP/1.0\r\n\r\n", &[("host", "h")]);
    let hosts = sent.to_ascii_lowercase().matches("\r\nhost: ").count();
    assert_eq!(hosts, 1, "{sent}");
}

/// RFC 9110 §7.6.2, every case of the class: OPTIONS and TRACE count hops down, 0 is answered
/// here, a value that is not one `1*DIGIT` is refused; other methods pass it as sent.
#[test]
fn max_forwards_counts_down_for_options_and_trace_only() {
    let head =
        |method: &str, fields: &str| format!("{method} / HTTP/1.1\r\nHost: a\r\n{fields}\r\n");
    let cases: &[(&str, &str, Rewrite, Option<&str>)] = &[
        ("OPTIONS", "Max-Forwards: 0\r\n", Rewrite::AnswerHere, None),
        ("TRACE", "max-forwards: 00\r\n", Rewrite::AnswerHere, None),
        (
            "OPTIONS",
            "Max-Forwards: 1\r\n",
            Rewrite::Forward,
            Some("Max-Forwards: 0"),
        ),
        (
            "OPTIONS",
            "Max-Forwards:  10 \r\n",
            Rewrite::Forward,
            Some("Max-Forwards: 9"),
        ),
        (
            "OPTIONS",
            "Max-Forwards: 99999999999999999999999\r\n",
            Rewrite::Forward,
            Some("Max-Forwards: 18446744073709551614"),
        ),
        ("OPTIONS", "", Rewrite::Forward, None),
        (
            "OPTIONS",
            "Max-Forwards: -1\r\n",
            Rewrite::BadMaxForwards,
            None,
        ),
        (
            "OPTIONS",
            "Max-Forwards: +1\r\n",
            Rewrite::BadMaxForwards,
            None,
        ),
        (
            "OPTIONS",
            "Max-Forwards: 1, 2\r\n",
            Rewrite::BadMaxForwards,
            None,
        ),
        (
            "OPTIONS",
            "Max-Forwards: \r\n",
            Rewrite::BadMaxForwards,
            None,
        ),
        (
            "OPTIONS",
            "Max-Forwards: 0x1\r\n",
            Rewrite::BadMaxForwards,
            None,
        ),
        (
            "OPTIONS",
            "Max-Forwards: 1\r\nMax-Forwards: 1\r\n",
            Rewrite::BadMaxForwards,
            None,
        ),
        (
            "GET",
            "Max-Forwards: 0\r\n",
            Rewrite::Forward,
            Some("Max-Forwards: 0"),
        ),
        (
            "POST",
            "Max-Forwards: x\r\n",
            Rewrite::Forward,
            Some("Max-Forwards: x"),
        ),
    ];
    for (method, fields, want, field) in cases {
        let (got, sent) = rewrite(&head(method, fields), &[]);
        assert_eq!(got, *want, "{method} {fields:?}");
        if let Some(field) = field {
            assert_eq!(sent.matches("Max-Forwards").count(), 1, "{sent}");
            assert!(sent.contains(&format!("\r\n{field}\r\n")), "{sent}");
        } else if got == Rewrite::Forward {
            assert!(!sent.contains("Max-Forwards"), "{sent}");
        }
    }
}

#[test]
fn hop_by_hop_fields_are_removed_and_forwarding_fields_added() {
    let raw = "GET /app/x HTTP/1.1\r\nHost: front.example\r\nConnection: keep-alive, X-Secret\r\n\
               Keep-Alive: timeout=5\r\nTE: trailers\r\nUpgrade: websocket\r\n\
               Proxy-Authorization: basic x\r\nProxy-Connection: keep-alive\r\nX-Secret: 1\r\n\
               X-Forwarded-Proto: https\r\nX-Forwarded-Host: evil\r\nExpect: 100-continue\r\n\
               Accept: */*\r\nX-Forwarded-For: 10.0.0.1\r\n\r\n";
    let sent = request(raw, Framing::Empty);
    assert_eq!(
        sent,
        "GET /x HTTP/1.1\r\nHost: front.example\r\nAccept: */*\r\n\
         X-Forwarded-For: 10.0.0.1, 192.0.2.7\r\nX-Forwarded-Proto: http\r\n\
         X-Forwarded-Host: front.example\r\nVia: 1.1 coreloop\r\nConnection: close\r\n\r\n"
    );
}

/// RFC 9110 §7.6.3: Via names the protocol each hop received; earlier hops' entries stay in
/// front of this one.
#[test]
fn via_says_how_the_request_was_received_after_earlier_hops() {
    let sent = request("GET / HTTP/1.0\r\nHost: a\r\n\r\n", Framing::Empty);
    assert!(sent.contains("\r\nVia: 1.0 coreloop\r\n"), "{sent}");
    let raw = "GET / HTTP/1.1\r\nHost: a\r\nVia: 1.1 edge.example\r\n\r\n";
    let sent = request(raw, Framing::Empty);
    let first = sent
        .find("Via: 1.1 edge.example\r\n")
        .expect("the client's Via kept");
    let ours = sent.find("Via: 1.1 coreloop\r\n").expect("ours added");
    assert!(first < ours, "{sent}");
}

#[test]
fn the_body_framing_is_written_by_the_proxy() {
    let raw = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n";
    assert!(request(raw, Framing::Length(5)).contains("\r\nContent-Length: 5\r\n"));
    let raw = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
    let sent = request(raw, Framing::Chunked);
    assert_eq!(sent.matches("Transfer-Encoding: chunked").count(), 1);
    assert!(!sent.contains("Content-Length"));
}

#[test]
fn an_http10_request_without_host_gets_one() {
    let sent = request("GET / HTTP/1.0\r\n\r\n", Framing::Empty);
    assert!(sent.starts_with("GET /x HTTP/1.1\r\nHost: front.example\r\n"));
}

/// Parsed into fields that live as long as the test (leaked: a few KiB per call).
fn parsed<'b>(raw: &'b str, head_only: bool) -> Result<Option<Response<'b, 'b>>, BadResponse> {
    parse_response(raw.as_bytes(), head_only, Box::leak(Box::new(fields())))
}

#[test]
fn ambiguous_or_invalid_response_framing_is_refused() {
    use BadResponse::*;
    let cases: &[(&str, BadResponse)] = &[
        (
            "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
            LengthAndCoding,
        ),
        (
            "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
            Length,
        ),
        (
            "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n",
            Length,
        ),
        ("HTTP/1.1 200 OK\r\nContent-Length: +3\r\n\r\n", Length),
        ("HTTP/1.1 200 OK\r\nContent-Length: 3, 3\r\n\r\n", Length),
        ("HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\n", Length),
        ("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", Coding),
        (
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
            Coding,
        ),
        (
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
            Coding,
        ),
        ("HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n", Syntax),
        ("HTTP/1.1 200 OK\r\nX : a\r\n\r\n", Syntax),
        ("HTTP/1.1 2000 OK\r\n\r\n", Syntax),
        ("HTTP/1.1 099 OK\r\n\r\n", Syntax),
        ("HTTP/2.0 200 OK\r\n\r\n", Syntax),
        (
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n",
            Upgrade,
        ),
        ("garbage\r\n\r\n", Syntax),
    ];
    for (raw, want) in cases {
        assert_eq!(parsed(raw, false).unwrap_err(), *want, "{raw:?}");
    }
}

#[test]
fn bodies_are_judged_by_status_method_and_fields() {
    let body = |raw: &str, head_only| parsed(raw, head_only).unwrap().unwrap().body;
    assert!(matches!(
        body("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n", false),
        Body::Framed(BodyDecoder::Length(3))
    ));
    assert!(matches!(
        body("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n", true),
        Body::None
    ));
    assert!(matches!(
        body(
            "HTTP/1.1 204 No Content\r\nContent-Length: 3\r\n\r\n",
            false
        ),
        Body::None
    ));
    assert!(matches!(
        body(
            "HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n",
            false
        ),
        Body::None
    ));
    assert!(matches!(
        body("HTTP/1.1 100 Continue\r\n\r\n", false),
        Body::None
    ));
    assert!(matches!(
        body(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\n",
            false
        ),
        Body::Framed(BodyDecoder::Chunked(_))
    ));
    assert!(matches!(
        body("HTTP/1.1 200 OK\r\n\r\n", false),
        Body::UntilClose
    ));
    assert!(matches!(
        body("HTTP/1.0 200 OK\r\n\r\n", false),
        Body::UntilClose
    ));
    assert!(matches!(
        body("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", false),
        Body::None
    ));
    assert!(parsed("HTTP/1.1 200 OK\r\nContent-Le", false)
        .unwrap()
        .is_none());
}

fn client_head(raw: &str, http10: bool, keep_alive: bool) -> (String, Reframe, bool) {
    let response = parsed(raw, false).unwrap().unwrap();
    let mut out = Vec::new();
    let (reframe, keep) = write_response(&response, http10, keep_alive, &mut out);
    (String::from_utf8(out).unwrap(), reframe, keep)
}

#[test]
fn the_client_head_is_reframed_for_the_client() {
    let (head, reframe, keep) = client_head(
        "HTTP/1.1 200 OK\r\nConnection: close, X-Hop\r\nX-Hop: 1\r\nKeep-Alive: 1\r\nContent-Length: 2\r\nServer: up\r\n\r\n",
        false,
        true,
    );
    assert_eq!(
        head,
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nServer: up\r\nVia: 1.1 coreloop\r\n\r\n"
    );
    assert_eq!((reframe, keep), (Reframe::Pass, true));
    let (head, reframe, keep) = client_head("HTTP/1.0 200 OK\r\n\r\n", false, true);
    assert_eq!(
        head,
        "HTTP/1.1 200 OK\r\nVia: 1.0 coreloop\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    assert_eq!((reframe, keep), (Reframe::Chunk, true));
    let (head, reframe, keep) = client_head("HTTP/1.0 200 OK\r\n\r\n", true, true);
    assert_eq!(
        head,
        "HTTP/1.1 200 OK\r\nVia: 1.0 coreloop\r\nConnection: close\r\n\r\n"
    );
    assert_eq!((reframe, keep), (Reframe::DecodeAndClose, false));
    let (head, reframe, _) = client_head(
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
        true,
        true,
    );
    assert!(!head.contains("chunked"));
    assert_eq!(reframe, Reframe::DecodeAndClose);
    let (head, _, keep) = client_head("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", true, true);
    assert!(
        head.ends_with("Content-Length: 0\r\nVia: 1.1 coreloop\r\nConnection: keep-alive\r\n\r\n")
    );
    assert!(keep);
}

#[test]
fn no_content_and_informational_heads_carry_no_length() {
    let (head, reframe, _) = client_head(
        "HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n",
        false,
        true,
    );
    assert_eq!(head, "HTTP/1.1 204 No Content\r\nVia: 1.1 coreloop\r\n\r\n");
    assert_eq!(reframe, Reframe::None);
    let (head, _, _) = client_head(
        "HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n",
        false,
        true,
    );
    assert!(head.contains("Content-Length: 5"));
}

/// RFC 9110 §7.6.3: the response carries the upstream's Via entries, then this hop's, naming
/// the version the response came with; interim responses too.
#[test]
fn responses_carry_via_after_the_upstreams() {
    let (head, _, _) = client_head(
        "HTTP/1.1 200 OK\r\nVia: 1.1 app-cache\r\nContent-Length: 0\r\n\r\n",
        false,
        true,
    );
    let theirs = head.find("\r\nVia: 1.1 app-cache\r\n").expect("kept");
    let ours = head.find("\r\nVia: 1.1 coreloop\r\n").expect("added");
    assert!(theirs < ours, "{head}");
    let interim = parsed("HTTP/1.1 103 Early Hints\r\n\r\n", false)
        .unwrap()
        .unwrap();
    let mut out = Vec::new();
    write_response(&interim, false, true, &mut out);
    assert_eq!(
        out,
        b"HTTP/1.1 103 Early Hints\r\nVia: 1.1 coreloop\r\n\r\n"
    );
}

#[test]
fn only_an_http11_response_without_close_lets_its_connection_be_reused() {
    let cases: &[(&str, bool)] = &[
        ("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", true),
        (
            "HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n",
            true,
        ),
        (
            "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
            false,
        ),
        (
            "HTTP/1.1 200 OK\r\nConnection: X-Hop, Close\r\nContent-Length: 0\r\n\r\n",
            false,
        ),
        (
            "HTTP/1.1 200 OK\r\nConnection: x\r\nConnection: close\r\n\r\n",
            false,
        ),
        ("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", false),
        (
            "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n",
            false,
        ),
    ];
    for (raw, reusable) in cases {
        let response = parsed(raw, false).unwrap().unwrap();
        assert_eq!(response.reusable, *reusable, "{raw}");
    }
    // Where no body may come, one announced anyway could arrive later and be read as the
    // next response: such a connection is closed.
    let bodiless: &[(&str, bool, bool)] = &[
        ("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", true, false),
        ("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", true, true),
        ("HTTP/1.1 200 OK\r\n\r\n", true, true),
        (
            "HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n",
            false,
            false,
        ),
        ("HTTP/1.1 204 No Content\r\n\r\n", false, true),
        (
            "HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n",
            false,
            false,
        ),
        (
            "HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n",
            false,
            true,
        ),
    ];
    for (raw, head_only, reusable) in bodiless {
        let response = parsed(raw, *head_only).unwrap().unwrap();
        assert_eq!(response.reusable, *reusable, "{raw} head_only={head_only}");
    }
}

#[test]
fn a_pooled_request_does_not_say_close() {
    let raw = "GET /x HTTP/1.1\r\nHost: front.example\r\n\r\n";
    let mut out = Vec::new();
    let side = client(Framing::Empty, &[]);
    assert_eq!(
        write_request(raw.as_bytes(), b"/x", &side, &mut out),
        Rewrite::Forward
    );
    end_request(&mut out, true);
    let text = String::from_utf8(out).unwrap();
    assert!(text.ends_with("Via: 1.1 coreloop\r\n\r\n"), "{text}");
    assert!(!text.to_ascii_lowercase().contains("connection"), "{text}");
}

#[test]
fn numbers_and_addresses_are_written_as_display_writes_them() {
    let numbers = [0u64, 1, 9, 10, 99, 100, 204, 599, 65_535, 1 << 32, u64::MAX];
    for n in numbers {
        let (mut dec, mut hex) = (Vec::new(), Vec::new());
        push_decimal(&mut dec, n);
        push_hex(&mut hex, n);
        assert_eq!(dec, n.to_string().as_bytes(), "{n}");
        assert_eq!(hex, format!("{n:x}").as_bytes(), "{n}");
    }
    let addresses = [
        "0.0.0.0",
        "127.0.0.1",
        "192.0.2.7",
        "255.255.255.255",
        "10.20.30.40",
        "::1",
        "2001:db8::7",
        "::ffff:192.0.2.7",
    ];
    for text in addresses {
        let ip: IpAddr = text.parse().unwrap();
        let mut out = Vec::new();
        push_ip(&mut out, ip);
        assert_eq!(out, ip.to_string().as_bytes(), "{text}");
    }
}
