#!/usr/bin/env python3
"""Open N keep-alive connections to 127.0.0.1:PORT, send one GET on each,
read the answers, print "open N ok M", then hold them until stdin closes.
With a third argument "tls", each connection is TLS (no certificate check:
the benchmark's own self-signed certificate) and they are opened by a pool
of threads, since each costs a handshake. A fourth argument is the path
to ask for (default /)."""
import socket
import ssl
import sys
from concurrent.futures import ThreadPoolExecutor

n, port = int(sys.argv[1]), int(sys.argv[2])
tls = len(sys.argv) > 3 and sys.argv[3] == "tls"
path = sys.argv[4] if len(sys.argv) > 4 else "/"
ctx = None
if tls:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["http/1.1"])


def one(_):
    s = socket.create_connection(("127.0.0.1", port))
    if ctx is not None:
        s = ctx.wrap_socket(s, server_hostname="localhost")
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n".encode())
    return s


if tls:
    with ThreadPoolExecutor(max_workers=8) as pool:
        socks = list(pool.map(one, range(n)))
else:
    socks = [one(i) for i in range(n)]
ok = sum(1 for s in socks if s.recv(65536).startswith(b"HTTP/1.1 200"))
print(f"open {len(socks)} ok {ok}", flush=True)
sys.stdin.read()
