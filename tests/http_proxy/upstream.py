"""An HTTP upstream for tests/http_proxy.rs: Python's http.server on 127.0.0.1, port 0.

Prints its port on the first line of stdout, then serves until killed:
  /fixed          200, Content-Length "hello"
  /chunked        200, chunked "hel" "lo"
  /close          200, no length: the body ends with the connection
  /headers        200, the request head as received (request line and fields)
  /big?n=N        200, N bytes of a fixed pattern, Content-Length
  /upload (POST)  200, "<length> <sha256>" of the request body (Content-Length or chunked)
  /nocontent      204 with a Content-Length and a body it must not have
"""
import hashlib
import http.server
import socketserver
import sys


def pattern(n):
    block = bytes(range(256)) * 256  # 64 KiB
    full, rest = divmod(n, len(block))
    for _ in range(full):
        yield block
    if rest:
        yield block[:rest]


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def send_body(self, body, status=200):
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        path, _, query = self.path.partition("?")
        # Routes match on the last segment, so a proxy may keep its own prefix.
        path = "/" + path.rsplit("/", 1)[-1]
        if path == "/fixed":
            self.send_body(b"hello")
        elif path == "/chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.wfile.write(b"3\r\nhel\r\n2\r\nlo\r\n0\r\n\r\n")
        elif path == "/close":
            self.send_response(200)
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(b"until close")
            self.close_connection = True
        elif path == "/headers":
            text = self.requestline + "\r\n" + str(self.headers)
            self.send_body(text.encode("latin-1"))
        elif path == "/big":
            n = int(query.split("=")[1])
            self.send_response(200)
            self.send_header("Content-Length", str(n))
            self.end_headers()
            for block in pattern(n):
                self.wfile.write(block)
        elif path == "/nocontent":
            self.send_response(204)
            self.send_header("Content-Length", "5")
            self.end_headers()
            self.wfile.write(b"oops!")
        else:
            self.send_body(b"not found", 404)

    def do_POST(self):
        digest, length = hashlib.sha256(), 0
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                left = size
                while left:
                    data = self.rfile.read(min(left, 65536))
                    digest.update(data)
                    left -= len(data)
                length += size
                self.rfile.readline()
        else:
            left = int(self.headers.get("Content-Length", "0"))
            while left:
                data = self.rfile.read(min(left, 65536))
                if not data:
                    break
                digest.update(data)
                length += len(data)
                left -= len(data)
        self.send_body(f"{length} {digest.hexdigest()}".encode())


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


server = Server(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
