#!/usr/bin/env python3
"""An HTTP/1.1 server over TLS on 127.0.0.1, for coreloop-load's https tests.

Usage: tls_server.py CERT KEY [--after N --then garbage|close]

Prints "PORT CONTROL_PORT" on one line once both listeners are up (ports
chosen by the kernel). Each connection to CONTROL_PORT (plain TCP) gets one
JSON line of what the TLS listener saw, then the server closes it:
handshakes completed, how many resumed a session, the ALPN protocols and SNI
names agreed, failed handshakes and requests answered. With --after N, the
first N connections are served and every later one gets the --then
behaviour: 'garbage' (plain-text bytes instead of a ServerHello), 'close'
(closed before any byte), 'stall' (the ClientHello is read and never
answered) or 'alert' (TLS 1.2 demanding a client certificate, which the
client does not have: the server ends the handshake with a fatal alert). GET answers 200 "Hello, World!"; a request with
"Connection: close" is answered with that header and the connection closed.
"""

import argparse
import json
import socket
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()
SEEN = {
    "handshakes": 0,
    "resumed": 0,
    "alpn": {},
    "sni": {},
    "versions": {},
    "failed_handshakes": 0,
    "requests": 0,
    "connections": 0,
}


def bump(key, sub=None):
    with LOCK:
        if sub is None:
            SEEN[key] += 1
        else:
            SEEN[key][sub] = SEEN[key].get(sub, 0) + 1


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        bump("requests")
        body = b"Hello, World!"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        if self.headers.get("Connection", "").lower() == "close":
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class TlsServer(ThreadingHTTPServer):
    daemon_threads = True
    # Many short connections (one request each) arrive faster than threads start.
    request_queue_size = 1024

    def __init__(self, context, strict, after, then):
        super().__init__(("127.0.0.1", 0), Handler)
        self.context = context
        self.strict = strict
        self.after = after
        self.then = then

    def finish_request(self, request, client_address):
        with LOCK:
            SEEN["connections"] += 1
            n = SEEN["connections"]
        context = self.context
        if self.after is not None and n > self.after:
            if self.then == "garbage":
                request.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
                return
            if self.then == "stall":
                # Until the client gives up and closes.
                while request.recv(65536):
                    pass
                return
            if self.then == "close":
                return
            context = self.strict
        request.settimeout(10)
        try:
            tls = context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            bump("failed_handshakes")
            return
        bump("handshakes")
        if tls.session_reused:
            bump("resumed")
        bump("alpn", tls.selected_alpn_protocol() or "none")
        bump("versions", tls.version() or "none")
        self.RequestHandlerClass(tls, client_address, self)


def control(listener):
    while True:
        conn, _ = listener.accept()
        with LOCK:
            line = json.dumps(SEEN) + "\n"
        conn.sendall(line.encode())
        conn.close()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("cert")
    p.add_argument("key")
    p.add_argument("--after", type=int)
    p.add_argument("--then", choices=["garbage", "close", "stall", "alert"], default="close")
    a = p.parse_args()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(a.cert, a.key)
    ctx.set_alpn_protocols(["http/1.1"])

    def sni(sock, name, _ctx):
        bump("sni", name or "none")

    ctx.sni_callback = sni
    strict = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    strict.load_cert_chain(a.cert, a.key)
    strict.maximum_version = ssl.TLSVersion.TLSv1_2
    strict.verify_mode = ssl.CERT_REQUIRED
    strict.load_verify_locations(a.cert)
    server = TlsServer(ctx, strict, a.after, a.then)
    ctl = socket.socket()
    ctl.bind(("127.0.0.1", 0))
    ctl.listen(16)
    threading.Thread(target=control, args=(ctl,), daemon=True).start()
    print(server.server_address[1], ctl.getsockname()[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
