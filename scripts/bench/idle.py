#!/usr/bin/env python3
"""Open N keep-alive connections to 127.0.0.1:PORT, send one GET on each,
read the answers, print "open N ok M", then hold them until stdin closes."""
import socket
import sys

n, port = int(sys.argv[1]), int(sys.argv[2])
socks = []
for _ in range(n):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n")
    socks.append(s)
ok = sum(1 for s in socks if s.recv(65536).startswith(b"HTTP/1.1 200"))
print(f"open {len(socks)} ok {ok}", flush=True)
sys.stdin.read()
