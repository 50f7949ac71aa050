"""Open N keep-alive connections, send one request on each and read its response, then hold
them idle while the caller measures the server. Prints 'ready' when all are idle, waits for a
line on stdin, then closes them. Loopback only; bounded by socket timeouts."""
import socket
import sys

host, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
request = f"GET /plaintext HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
held = []
for i in range(count):
    # Spread over 127.0.0.x source addresses so no source runs out of ports.
    s = socket.socket()
    s.settimeout(10)
    s.bind((f"127.0.0.{2 + i % 200}", 0))
    s.connect((host, port))
    s.sendall(request)
    got = b""
    while b"\r\n\r\n" not in got or not got.endswith(b"Hello, World!"):
        chunk = s.recv(4096)
        if not chunk:
            sys.exit(f"connection {i} closed early: {got!r}")
        got += chunk
    held.append(s)
print("ready", flush=True)
sys.stdin.readline()
for s in held:
    s.close()
