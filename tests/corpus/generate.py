#!/usr/bin/env python3
"""Writes the hostile-bytes corpus: one malformed or smuggling request per file.

File names are `<status>-<shape>.http` (`414_431`: either, depending on where the kernel
splits the bytes, which decides whether the target or the whole head overflows first): the
status coreloop must answer (with `Connection:
close`, then EOF, and nothing else: tests/adversarial/corpus.rs appends a valid request to
each file in the same write and expects exactly one response). `eof-<shape>.http` files are
truncated requests: the client half-closes after them and the server must close without a
second response (tests/adversarial/corpus.rs says which answers it accepts).

Run from the repository root: `python3 tests/corpus/generate.py` (it removes the old files).
The defaults it assumes: [limits] header_bytes 8KiB, header_count 64, uri_length 4KiB,
body_bytes 64KiB (the corpus test sets it).
"""

import os
import pathlib

HERE = pathlib.Path(__file__).resolve().parent
CASES = []


def case(status, shape, data):
    if isinstance(data, str):
        data = data.encode("latin-1")
    CASES.append((str(status), shape, data))


def req(line="GET /plaintext HTTP/1.1", headers=("Host: t",), body=b"", end="\r\n"):
    head = line + end + "".join(h + end for h in headers) + end
    return head.encode("latin-1") + body


def post(headers, body):
    return req("POST /echo HTTP/1.1", ("Host: t",) + tuple(headers), body.encode("latin-1"))


# --- request line ----------------------------------------------------------------------
case(400, "line-tab-separators", "GET\t/plaintext\tHTTP/1.1\r\nHost: t\r\n\r\n")
case(400, "line-tab-before-version", "GET /plaintext\tHTTP/1.1\r\nHost: t\r\n\r\n")
case(400, "line-tab-after-method", "GET\t/plaintext HTTP/1.1\r\nHost: t\r\n\r\n")
case(400, "line-two-spaces", "GET  /plaintext HTTP/1.1\r\nHost: t\r\n\r\n")
case(400, "line-trailing-space", "GET /plaintext HTTP/1.1 \r\nHost: t\r\n\r\n")
case(400, "line-leading-space", " GET /plaintext HTTP/1.1\r\nHost: t\r\n\r\n")
case(400, "line-no-version", "GET /plaintext\r\nHost: t\r\n\r\n")
case(400, "line-no-target", "GET HTTP/1.1\r\nHost: t\r\n\r\n")
case(400, "line-only-method", "GET\r\nHost: t\r\n\r\n")
case(400, "line-empty-method", " /plaintext HTTP/1.1\r\nHost: t\r\n\r\n")
case(400, "line-lowercase-version", "GET /plaintext http/1.1\r\nHost: t\r\n\r\n")
# RFC 9112 §2.3: HTTP-version is `HTTP/` DIGIT "." DIGIT; anything else there is a malformed
# line (400), and 505 is only for a well-formed version of another major (RFC 9110 §15.6.6).
case(400, "line-version-no-minor", "GET /plaintext HTTP/1\r\nHost: t\r\n\r\n")
case(400, "line-version-garbage", "GET /plaintext HTTP/x.y\r\nHost: t\r\n\r\n")
case(400, "line-version-space", "GET /plaintext HTTP/ 1.1\r\nHost: t\r\n\r\n")
case(400, "line-version-long", "GET /plaintext HTTP/1.11\r\nHost: t\r\n\r\n")
case(400, "line-version-http09", "GET /plaintext\r\n\r\n")
case(400, "line-extra-token", "GET /plaintext HTTP/1.1 extra\r\nHost: t\r\n\r\n")
case(400, "line-nul-in-target", "GET /plain\x00text HTTP/1.1\r\nHost: t\r\n\r\n")
case(400, "line-nul-in-method", "G\x00ET /plaintext HTTP/1.1\r\nHost: t\r\n\r\n")
case(400, "line-ctl-01-in-target", "GET /plain\x01text HTTP/1.1\r\nHost: t\r\n\r\n")
case(400, "line-ctl-1f-in-target", "GET /plain\x1ftext HTTP/1.1\r\nHost: t\r\n\r\n")
case(400, "line-del-in-target", "GET /plain\x7ftext HTTP/1.1\r\nHost: t\r\n\r\n")
case(400, "line-bare-cr-in-target", "GET /plain\rtext HTTP/1.1\r\nHost: t\r\n\r\n")
case(400, "line-bare-cr-end", "GET /plaintext HTTP/1.1\rHost: t\r\n\r\n")
case(400, "line-vertical-tab", "GET\x0b/plaintext HTTP/1.1\r\nHost: t\r\n\r\n")
case(400, "line-form-feed", "GET\x0c/plaintext HTTP/1.1\r\nHost: t\r\n\r\n")
case(400, "line-space-in-target", "GET /plain text HTTP/1.1\r\nHost: t\r\n\r\n")
case(400, "line-space-in-target-short", "GET /a b HTTP/1.1\r\nHost: t\r\n\r\n")
case(400, "line-target-utf8", "GET /pl\xc3\xa4intext HTTP/1.1\r\nHost: t\r\n\r\n")
case(400, "line-target-high-byte", "GET /\xff HTTP/1.1\r\nHost: t\r\n\r\n")
case(400, "line-version-dot-only", "GET /plaintext HTTP/1.\r\nHost: t\r\n\r\n")
case(400, "line-version-two-digit-major", "GET /plaintext HTTP/10.0\r\nHost: t\r\n\r\n")
case(400, "line-version-https", "GET /plaintext HTTPS/1.1\r\nHost: t\r\n\r\n")
case(400, "line-version-mixed-case", "GET /plaintext Http/1.1\r\nHost: t\r\n\r\n")
case(400, "line-method-at-sign", "G@T /plaintext HTTP/1.1\r\nHost: t\r\n\r\n")
case(400, "line-method-paren", "GE(T /plaintext HTTP/1.1\r\nHost: t\r\n\r\n")
case(400, "line-method-comma", "GET, /plaintext HTTP/1.1\r\nHost: t\r\n\r\n")
case(400, "line-method-slash", "GE/T /plaintext HTTP/1.1\r\nHost: t\r\n\r\n")
case(400, "line-method-quote", "\"GET\" /plaintext HTTP/1.1\r\nHost: t\r\n\r\n")
case(400, "line-method-non-ascii-latin1", "G\xc9T /plaintext HTTP/1.1\r\nHost: t\r\n\r\n")
case(400, "line-method-non-ascii-utf8", "G\xc3\x89T /plaintext HTTP/1.1\r\nHost: t\r\n\r\n")
case(400, "line-method-high-byte", "\xffGET /plaintext HTTP/1.1\r\nHost: t\r\n\r\n")
case(400, "line-method-nbsp", "GET\xa0/plaintext HTTP/1.1\r\nHost: t\r\n\r\n")
case(400, "line-target-non-ascii", "GET /pl\xe4intext HTTP/1.1\r\nHost: t\r\n\r\n")
case(400, "line-binary-garbage", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n")
case(400, "line-tls-client-hello", "\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + "\x00" * 32 + "\r\n\r\n")
case(505, "line-http2-preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
case(400, "line-only-crlf-then-garbage", "\r\n\x01\x02\r\n\r\n")
case(400, "line-bare-lf-then-garbage", "\n\nGET\x01 / HTTP/1.1\r\nHost: t\r\n\r\n")
case(400, "line-esc-sequence", "GET /\x1b[31m HTTP/1.1\r\nHost: t\r\n\r\n")
case(400, "line-backspace-in-method", "GE\x08T /plaintext HTTP/1.1\r\nHost: t\r\n\r\n")
case(505, "line-version-2-0", "GET /plaintext HTTP/2.0\r\nHost: t\r\n\r\n")
# HTTP/1.2 is answered as HTTP/1.1 (RFC 9110 §2.5): no refusal, so it is tested in
# crates/http/src/grammar_tests.rs and tests/grammar.rs instead of here.
case(400, "line-version-1-2-no-host", "GET /plaintext HTTP/1.2\r\n\r\n")
case(505, "line-version-0-9", "GET /plaintext HTTP/0.9\r\nHost: t\r\n\r\n")
case(505, "line-version-3-0", "GET /plaintext HTTP/3.0\r\nHost: t\r\n\r\n")
case(505, "line-version-9-9", "GET /plaintext HTTP/9.9\r\nHost: t\r\n\r\n")
case(414, "line-uri-5k", "GET /" + "a" * 5000 + " HTTP/1.1\r\nHost: t\r\n\r\n")
case(414, "line-uri-query-5k", "GET /plaintext?" + "q" * 5000 + " HTTP/1.1\r\nHost: t\r\n\r\n")
case("414_431", "line-uri-9k", "GET /" + "a" * 9000 + " HTTP/1.1\r\nHost: t\r\n\r\n")
case("414_431", "line-method-9k", "G" * 9000 + " / HTTP/1.1\r\nHost: t\r\n\r\n")
case("414_431", "line-endless", "GET /" + "a" * 20000)

# --- header fields ---------------------------------------------------------------------
def hdr(status, shape, *fields):
    case(status, shape, req(headers=("Host: t",) + fields))


hdr(400, "field-space-before-colon", "X-A : 1")
hdr(400, "field-tab-before-colon", "X-A\t: 1")
hdr(400, "field-obs-fold-space", "X-A: 1", " continued")
hdr(400, "field-obs-fold-tab", "X-A: 1", "\tcontinued")
hdr(400, "field-no-colon", "X-A 1")
hdr(400, "field-empty-name", ": 1")
hdr(400, "field-name-space", "X A: 1")
hdr(400, "field-name-at", "X@A: 1")
hdr(400, "field-name-paren", "X(A): 1")
hdr(400, "field-name-slash", "X/A: 1")
hdr(400, "field-name-brace", "X{A}: 1")
hdr(400, "field-name-quote", "\"X\": 1")
hdr(400, "field-name-nul", "X\x00A: 1")
hdr(400, "field-name-ctl", "X\x01A: 1")
hdr(400, "field-name-del", "X\x7fA: 1")
hdr(400, "field-name-latin1", "X\xe9: 1")
hdr(400, "field-name-utf8", "X-\xc3\xa9: 1")
hdr(400, "field-name-high-byte", "\xff: 1")
hdr(400, "field-value-nul", "X-A: a\x00b")
hdr(400, "field-value-ctl-01", "X-A: a\x01b")
hdr(400, "field-value-ctl-1f", "X-A: a\x1fb")
hdr(400, "field-value-del", "X-A: a\x7fb")
hdr(400, "field-value-bare-cr", "X-A: a\rb")
hdr(400, "field-value-esc", "X-A: \x1b[2J")
hdr(400, "field-value-vtab", "X-A: a\x0bb")
hdr(400, "field-value-formfeed", "X-A: a\x0cb")
hdr(400, "field-value-backspace", "X-A: a\x08b")
hdr(400, "field-cr-only-line-end", "X-A: 1\rX-B: 2")
hdr(400, "field-host-space-before-colon", "Host : u")
hdr(400, "field-leading-space-first", " X-A: 1")
case(400, "field-lf-cr-line-end", "GET /plaintext HTTP/1.1\n\rHost: t\r\n\r\n")
case(400, "host-missing", "GET /plaintext HTTP/1.1\r\n\r\n")
case(400, "host-missing-other-fields", "GET /plaintext HTTP/1.1\r\nX-A: 1\r\nAccept: */*\r\n\r\n")
case(400, "host-duplicate-same", req(headers=("Host: t", "Host: t")))
case(400, "host-conflicting", req(headers=("Host: a.example", "Host: b.example")))
case(400, "host-conflicting-case", req(headers=("Host: a.example", "host: b.example")))
case(400, "host-conflicting-far-apart", req(headers=("Host: a", "X-1: 1", "X-2: 2", "HOST: b")))
case(400, "host-conflicting-empty", req(headers=("Host: a", "Host:")))
case(400, "host-nul", req(headers=("Host: a\x00b",)))
case(400, "host-ctl", req(headers=("Host: a\x01b",)))
case(400, "host-space-before-colon-only", req(headers=("Host : t",)))
case(400, "host-obs-fold", req(headers=("Host: a", " b")))
# RFC 9112 §3.2, RFC 9110 §7.2, RFC 3986 §3.2.2: Host = uri-host [ ":" port ].
case(400, "host-userinfo", req(headers=("Host: user@t",)))
case(400, "host-userinfo-password", req(headers=("Host: user:pw@t",)))
case(400, "host-path", req(headers=("Host: t/plaintext",)))
case(400, "host-query", req(headers=("Host: t?q",)))
case(400, "host-fragment", req(headers=("Host: t#f",)))
case(400, "host-list", req(headers=("Host: a, b",)))
case(400, "host-list-no-space", req(headers=("Host: a,b",)))
case(400, "host-space-inside", req(headers=("Host: a b",)))
case(400, "host-port-letters", req(headers=("Host: t:http",)))
case(400, "host-port-twice", req(headers=("Host: t:80:80",)))
case(400, "host-port-negative", req(headers=("Host: t:-1",)))
case(400, "host-port-65536", req(headers=("Host: t:65536",)))
case(400, "host-port-long", req(headers=("Host: t:0000080",)))
case(400, "host-ipv6-unclosed", req(headers=("Host: [::1",)))
case(400, "host-ipv6-unopened", req(headers=("Host: ::1]",)))
case(400, "host-ipv6-bare", req(headers=("Host: ::1",)))
case(400, "host-ipv6-trailing", req(headers=("Host: [::1]x",)))
case(400, "host-ipv6-bad-port", req(headers=("Host: [::1]:x",)))
case(400, "host-ipv6-empty", req(headers=("Host: []",)))
case(400, "host-ipv6-v4-in-brackets", req(headers=("Host: [1.2.3.4]",)))
case(400, "host-ipv6-zone", req(headers=("Host: [fe80::1%eth0]",)))
case(400, "host-bad-pct", req(headers=("Host: t%zz",)))
case(400, "host-quote", req(headers=("Host: \"t\"",)))
case(400, "host-utf8", req(headers=("Host: \xc3\xa4.example",)))
case(400, "host-latin1", req(headers=("Host: \xe4.example",)))
case(400, "host-http10-duplicate", req("GET /plaintext HTTP/1.0", ("Host: t", "Host: t")))
case(400, "host-http10-invalid", req("GET /plaintext HTTP/1.0", ("Host: t/x",)))
# RFC 9112 §3.2.2, RFC 9110 §4.2.4: an absolute-form authority must be a valid host too.
case(400, "target-absolute-userinfo", req("GET http://user@t/plaintext HTTP/1.1"))
case(400, "target-absolute-empty-host", req("GET http:///plaintext HTTP/1.1"))
case(400, "target-absolute-port-only", req("GET http://:80/plaintext HTTP/1.1"))
case(400, "target-absolute-bad-port", req("GET http://t:x/plaintext HTTP/1.1"))
case(400, "target-absolute-list", req("GET http://a,b/plaintext HTTP/1.1"))
case(400, "target-absolute-no-host-field", req("GET http://t/plaintext HTTP/1.1", ()))
case(431, "fields-65", req(headers=("Host: t",) + tuple(f"X-{i}: {i}" for i in range(65))))
case(431, "fields-200", req(headers=("Host: t",) + tuple(f"X-{i}: {i}" for i in range(200))))
case(431, "fields-1000-empty", req(headers=("Host: t",) + ("X:",) * 1000))
case(431, "field-value-9k", req(headers=("Host: t", "X-A: " + "v" * 9000)))
case(431, "field-name-9k", req(headers=("Host: t", "X" * 9000 + ": 1")))
case(431, "fields-total-9k", req(headers=("Host: t",) + tuple(f"X-{i}: " + "v" * 400 for i in range(23))))
case(431, "cookie-9k", req(headers=("Host: t", "Cookie: " + "a=b; " * 1800)))

# --- Content-Length --------------------------------------------------------------------
case(400, "cl-te", post(["Content-Length: 5", "Transfer-Encoding: chunked"], "0\r\n\r\n"))
case(400, "te-cl", post(["Transfer-Encoding: chunked", "Content-Length: 5"], "0\r\n\r\n"))
case(400, "cl-te-identity", post(["Content-Length: 5", "Transfer-Encoding: identity"], "hello"))
case(400, "cl-zero-te", post(["Content-Length: 0", "Transfer-Encoding: chunked"], "0\r\n\r\n"))
case(400, "cl-te-chunked-uppercase", post(["Content-Length: 5", "Transfer-Encoding: CHUNKED"], "0\r\n\r\n"))
case(400, "cl-duplicate-same", post(["Content-Length: 5", "Content-Length: 5"], "hello"))
case(400, "cl-duplicate-differ", post(["Content-Length: 5", "Content-Length: 6"], "hello!"))
case(400, "cl-list-same", post(["Content-Length: 5, 5"], "hello"))
case(400, "cl-list-differ", post(["Content-Length: 5, 6"], "hello!"))
case(400, "cl-negative", post(["Content-Length: -5"], "hello"))
case(400, "cl-plus", post(["Content-Length: +5"], "hello"))
case(400, "cl-hex", post(["Content-Length: 0x5"], "hello"))
case(400, "cl-space-inside", post(["Content-Length: 1 0"], "helloworld"))
case(400, "cl-letters", post(["Content-Length: five"], "hello"))
case(400, "cl-empty", post(["Content-Length:"], "hello"))
case(400, "cl-decimal-point", post(["Content-Length: 5.0"], "hello"))
case(400, "cl-exponent", post(["Content-Length: 5e0"], "hello"))
case(400, "cl-overflow-u64", post(["Content-Length: 18446744073709551616"], "hello"))
case(400, "cl-overflow-30-digits", post(["Content-Length: 999999999999999999999999999999"], "hello"))
case(400, "cl-trailing-garbage", post(["Content-Length: 5x"], "hello"))
case(400, "cl-nul", post(["Content-Length: 5\x00"], "hello"))
case(400, "cl-space-before-colon", post(["Content-Length : 5"], "hello"))
case(400, "cl-obs-fold", post(["Content-Length:", " 5"], "hello"))
case(400, "cl-non-ascii-digit", post(["Content-Length: \xd9\xa5"], "hello"))
case(413, "cl-over-body-limit", post(["Content-Length: 65537"], "x"))
case(400, "cl-u64-max", post(["Content-Length: 18446744073709551615"], "x"))
case(413, "cl-huge", post(["Content-Length: 99999999999"], "x"))

# --- Transfer-Encoding -----------------------------------------------------------------
case(400, "te-gzip-then-chunked-not-last", post(["Transfer-Encoding: chunked, gzip"], "0\r\n\r\n"))
case(400, "te-http10", req("POST /echo HTTP/1.0", ("Host: t", "Transfer-Encoding: chunked"), b"0\r\n\r\n"))
case(400, "te-http10-cl", req("POST /echo HTTP/1.0", ("Host: t", "Transfer-Encoding: chunked", "Content-Length: 3"), b"0\r\n\r\n"))
case(400, "te-empty", post(["Transfer-Encoding:"], "0\r\n\r\n"))
case(400, "te-space-before-colon", post(["Transfer-Encoding : chunked"], "0\r\n\r\n"))
case(400, "te-obs-fold", post(["Transfer-Encoding:", " chunked"], "0\r\n\r\n"))
case(400, "te-nul", post(["Transfer-Encoding: chunked\x00"], "0\r\n\r\n"))
case(400, "te-vtab", post(["Transfer-Encoding: \x0bchunked"], "0\r\n\r\n"))
case(400, "te-chunked-twice-list", post(["Transfer-Encoding: chunked, chunked"], "0\r\n\r\n"))
case(400, "te-chunked-twice-fields", post(["Transfer-Encoding: chunked", "Transfer-Encoding: chunked"], "0\r\n\r\n"))
case(400, "te-then-identity", post(["Transfer-Encoding: chunked", "Transfer-Encoding: identity"], "0\r\n\r\n"))
case(400, "te-gzip", post(["Transfer-Encoding: gzip"], "hello"))
case(400, "te-xchunked", post(["Transfer-Encoding: xchunked"], "0\r\n\r\n"))
case(400, "te-chunked-suffix", post(["Transfer-Encoding: chunkedx"], "0\r\n\r\n"))
case(400, "te-identity", post(["Transfer-Encoding: identity"], "hello"))
case(501, "te-gzip-chunked", post(["Transfer-Encoding: gzip, chunked"], "0\r\n\r\n"))
case(400, "te-quoted", post(["Transfer-Encoding: \"chunked\""], "0\r\n\r\n"))
case(400, "te-non-ascii", post(["Transfer-Encoding: chunk\xe9d"], "0\r\n\r\n"))

# --- chunked framing -------------------------------------------------------------------
def chunked(status, shape, body):
    case(status, shape, post(["Transfer-Encoding: chunked"], body))


chunked(400, "chunk-size-17-hex-digits", "10000000000000000\r\nx\r\n0\r\n\r\n")
chunked(400, "chunk-size-overflow-32-digits", "f" * 32 + "\r\nx\r\n0\r\n\r\n")
chunked(400, "chunk-size-0x", "0x5\r\nhello\r\n0\r\n\r\n")
chunked(400, "chunk-size-negative", "-5\r\nhello\r\n0\r\n\r\n")
chunked(400, "chunk-size-plus", "+5\r\nhello\r\n0\r\n\r\n")
chunked(400, "chunk-size-leading-space", " 5\r\nhello\r\n0\r\n\r\n")
chunked(400, "chunk-size-trailing-space", "5 \r\nhello\r\n0\r\n\r\n")
chunked(400, "chunk-size-tab", "5\t\r\nhello\r\n0\r\n\r\n")
chunked(400, "chunk-size-not-hex", "g\r\nhello\r\n0\r\n\r\n")
chunked(400, "chunk-size-empty", "\r\nhello\r\n0\r\n\r\n")
chunked(400, "chunk-size-non-ascii", "\xd9\xa5\r\nhello\r\n0\r\n\r\n")
chunked(400, "chunk-size-nul", "5\x00\r\nhello\r\n0\r\n\r\n")
chunked(400, "chunk-size-underscore", "1_0\r\n" + "x" * 16 + "\r\n0\r\n\r\n")
chunked(400, "chunk-size-bare-lf", "5\nhello\r\n0\r\n\r\n")
chunked(400, "chunk-data-bare-lf", "5\r\nhello\n0\r\n\r\n")
chunked(400, "chunk-data-too-long", "3\r\nhello\r\n0\r\n\r\n")
chunked(400, "chunk-data-no-crlf", "5\r\nhelloX0\r\n\r\n")
chunked(400, "chunk-data-cr-only", "5\r\nhello\r0\r\n\r\n")
chunked(400, "chunk-last-bare-lf", "5\r\nhello\r\n0\n\r\n")
chunked(400, "chunk-ext-bare-lf", "5;a=b\nhello\r\n0\r\n\r\n")
chunked(400, "chunk-ext-nul", "5;a\x00\r\nhello\r\n0\r\n\r\n")
chunked(400, "chunk-ext-bare-cr", "5;a\rb\r\nhello\r\n0\r\n\r\n")
# RFC 9112 §7.1.1: chunk-ext = *( BWS ";" BWS name [ BWS "=" BWS value ] ), name a token,
# value a token or quoted-string: anything else in the size line is refused.
chunked(400, "chunk-ext-empty", "5;\r\nhello\r\n0\r\n\r\n")
chunked(400, "chunk-ext-double-semicolon", "5;;a\r\nhello\r\n0\r\n\r\n")
chunked(400, "chunk-ext-no-name", "5;=b\r\nhello\r\n0\r\n\r\n")
chunked(400, "chunk-ext-no-value", "5;a=\r\nhello\r\n0\r\n\r\n")
chunked(400, "chunk-ext-space-in-name", "5;a b\r\nhello\r\n0\r\n\r\n")
chunked(400, "chunk-ext-space-in-value", "5;a=b c\r\nhello\r\n0\r\n\r\n")
chunked(400, "chunk-ext-trailing-space", "5;a \r\nhello\r\n0\r\n\r\n")
chunked(400, "chunk-ext-name-at", "5;a@b\r\nhello\r\n0\r\n\r\n")
chunked(400, "chunk-ext-value-comma", "5;a=b,c\r\nhello\r\n0\r\n\r\n")
chunked(400, "chunk-ext-unclosed-quote", "5;a=\"b\r\nhello\r\n0\r\n\r\n")
chunked(400, "chunk-ext-after-quote", "5;a=\"b\"c\r\nhello\r\n0\r\n\r\n")
chunked(400, "chunk-ext-ctl-in-quote", "5;a=\"b\x01\"\r\nhello\r\n0\r\n\r\n")
chunked(400, "chunk-ext-high-byte-name", "5;\xe4\r\nhello\r\n0\r\n\r\n")
chunked(400, "chunk-ext-garbage-no-semicolon", "5 x\r\nhello\r\n0\r\n\r\n")
chunked(400, "chunk-ext-on-last-chunk", "5\r\nhello\r\n0;a=\r\n\r\n")
chunked(400, "chunk-size-17-digits-leading-zeros", "00000000000000005\r\nhello\r\n0\r\n\r\n")
chunked(400, "chunk-size-many-leading-zeros", "0" * 5000 + "5\r\nhello\r\n0\r\n\r\n")
chunked(400, "chunk-trailer-bare-lf", "5\r\nhello\r\n0\r\nX-T: 1\n\r\n")
chunked(400, "chunk-trailer-obs-fold", "5\r\nhello\r\n0\r\nX-T: 1\r\n folded\r\n\r\n")
chunked(400, "chunk-trailer-no-colon", "5\r\nhello\r\n0\r\nX-T 1\r\n\r\n")
chunked(400, "chunk-trailer-nul", "5\r\nhello\r\n0\r\nX-T: a\x00\r\n\r\n")
chunked(400, "chunk-trailer-space-before-colon", "5\r\nhello\r\n0\r\nX-T : 1\r\n\r\n")
case(501, "te-deflate-chunked", post(["Transfer-Encoding: deflate, chunked"], "0\r\n\r\n"))
case(501, "te-compress-chunked", post(["Transfer-Encoding: compress, chunked"], "0\r\n\r\n"))
chunked(413, "chunk-size-huge-ffffffff", "ffffffff\r\nhello\r\n0\r\n\r\n")
chunked(413, "chunk-size-huge-16-digits", "ffffffffffffffff\r\nhello\r\n0\r\n\r\n")
chunked(413, "chunk-size-just-over-limit", "10001\r\nhello\r\n0\r\n\r\n")
chunked(413, "chunk-sizes-sum-over-limit", ("8000\r\n" + "x" * 0x8000 + "\r\n") * 2 + "1\r\nx\r\n0\r\n\r\n")

# --- line ends and framing mixes --------------------------------------------------------
case(400, "bare-cr-line-ends", "GET /plaintext HTTP/1.1\rHost: t\r\r")
case(400, "cr-cr-lf", "GET /plaintext HTTP/1.1\r\r\nHost: t\r\n\r\n")
case(400, "head-nul-byte-alone", "\x00")
case(400, "head-all-nul", "\x00" * 64 + "\r\n\r\n")
case(400, "head-garbage-then-valid", "garbage\r\nGET /plaintext HTTP/1.1\r\nHost: t\r\n\r\n")
case(400, "smuggle-cl-te-tab", post(["Content-Length: 5", "Transfer-Encoding:\tchunked"], "0\r\n\r\n"))
case(400, "smuggle-te-cl-get", req("GET /plaintext HTTP/1.1", ("Host: t", "Transfer-Encoding: chunked", "Content-Length: 4"), b"0\r\n\r\n"))
case(400, "smuggle-dup-cl-get", req("GET /plaintext HTTP/1.1", ("Host: t", "Content-Length: 0", "Content-Length: 44"), b""))
case(400, "smuggle-cl-prefix-space", post([" Content-Length: 5"], "hello"))

# --- truncated: the client half-closes mid-request -------------------------------------
case("eof", "truncated-method", "GE")
case("eof", "truncated-line", "GET /plaintext HTT")
case("eof", "truncated-after-line", "GET /plaintext HTTP/1.1\r\n")
case("eof", "truncated-mid-field", "GET /plaintext HTTP/1.1\r\nHost: t\r\nX-A: 1")
case("eof", "truncated-before-blank-line", "GET /plaintext HTTP/1.1\r\nHost: t\r\n")
case("eof", "truncated-cl-body", post(["Content-Length: 10"], "hello"))
case("eof", "truncated-chunk-data", post(["Transfer-Encoding: chunked"], "a\r\nhello"))
case("eof", "truncated-chunk-size", post(["Transfer-Encoding: chunked"], "5\r\nhello\r\n"))
case("eof", "truncated-no-last-chunk-crlf", post(["Transfer-Encoding: chunked"], "5\r\nhello\r\n0\r\n"))
case("eof", "truncated-huge-cl", post(["Content-Length: 1000000"], "x" * 1000))


def main():
    for old in HERE.glob("*.http"):
        old.unlink()
    names = set()
    for status, shape, data in CASES:
        name = f"{status}-{shape}.http"
        assert name not in names, name
        names.add(name)
        (HERE / name).write_bytes(data)
    print(f"{len(CASES)} files in {os.path.relpath(HERE)}")


if __name__ == "__main__":
    main()
