#!/usr/bin/env python3
"""Make COUNT real sessions for scripts/bench-targets.sh.

Writes, as the Redis protocol for `redis-cli --pipe`, one session record per
session exactly as the gateway stores it (key PREFIX + "ses:" + hex(tag),
value {"email","created_at","expires_at"}, expiring like a fresh session),
and writes the cookies of the first ACTIVE of them, one per line, to
COOKIES. A session's tag is HMAC-SHA256(secret, len("session") as u32 BE +
"session" + id), as in src/crypto.rs and src/session.rs; the secret is the
trimmed PORTCULLIS_SECRET.

usage: sessions.py PREFIX COUNT ACTIVE COOKIES > protocol
"""
import base64
import hmac
import hashlib
import json
import os
import secrets
import sys
import time

prefix, count, active, cookies_path = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
key = hmac.new(os.environ["PORTCULLIS_SECRET"].strip().encode(), digestmod=hashlib.sha256)
purpose = b"session"
head = len(purpose).to_bytes(4, "big") + purpose
now = int(time.time())
b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
out = sys.stdout.buffer
with open(cookies_path, "w") as cookies:
    batch = []
    for i in range(count):
        sid = secrets.token_bytes(32)
        mac = key.copy()
        mac.update(head + sid)
        tag = mac.digest()
        if i < active:
            cookies.write(f"portcullis=v1.{b64(sid)}.{b64(tag)}\n")
        k = f"{prefix}ses:{tag.hex()}".encode()
        v = json.dumps({"email": f"user{i}@example.com", "created_at": now,
                        "expires_at": now + 7 * 86400}, separators=(",", ":")).encode()
        parts = [b"SET", k, v, b"PX", b"86400000"]
        batch.append(b"*5\r\n" + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts))
        if len(batch) == 10000:
            out.write(b"".join(batch))
            batch.clear()
    out.write(b"".join(batch))
