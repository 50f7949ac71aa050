"""Round-trips MIB MiB on each of CONNS connections to ADDR at once; prints the wall seconds."""
import socket
import sys
import threading
import time

host, port = sys.argv[1].rsplit(":", 1)
conns, mib = int(sys.argv[2]), int(sys.argv[3])
total = mib << 20
block = bytes(range(256)) * 1024  # 256 KiB


def one(errors):
    s = socket.create_connection((host, int(port)))
    def send():
        left = total
        while left:
            n = min(left, len(block))
            s.sendall(block[:n])
            left -= n
        s.shutdown(socket.SHUT_WR)
    t = threading.Thread(target=send)
    t.start()
    buf = bytearray(len(block))
    got = 0
    while True:
        n = s.recv_into(buf)
        if not n:
            break
        got += n
    t.join()
    s.close()
    if got != total:
        errors.append(got)


errors = []
start = time.monotonic()
threads = [threading.Thread(target=one, args=(errors,)) for _ in range(conns)]
for t in threads:
    t.start()
for t in threads:
    t.join()
elapsed = time.monotonic() - start
if errors:
    sys.exit(f"short round trips: {errors}")
print(f"{elapsed:.3f}")
