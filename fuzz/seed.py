#!/usr/bin/env python3
"""Regenerates the committed seed corpora in fuzz/corpus/<target>/.

Sources: tests/corpus/*.txt (redirect and path inputs), the string literals
of the unit tests in src/address.rs, gateway.toml.example and the embedded
default (plus a few small hand-written configurations), and session cookies
and Cookie headers made here with the key the `cookie` check uses.

Each seed is one file named by the SHA-1 of its content (as libFuzzer names
them). Run from anywhere: `python3 fuzz/seed.py`. Existing seeds are kept;
the script only adds.
"""

import base64
import hashlib
import hmac
import pathlib
import re
import struct

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "fuzz" / "corpus"
# Must match COOKIE_KEY in fuzz/checks.rs.
COOKIE_KEY = b"fuzz-key-fuzz-key-fuzz-key-fuzz-key-0123"


def expand(line: str) -> str:
    """The tokens of tests/corpus/*.txt, as tests/corpora.rs expands them."""
    for token, value in [("<TAB>", "\t"), ("<LF>", "\n"), ("<CR>", "\r"),
                         ("<VT>", "\x0b"), ("<NUL>", "\0"), ("<SP>", " ")]:
        line = line.replace(token, value)
    return re.sub(r"<A:(\d+)>", lambda m: "a" * int(m.group(1)), line)


def corpus_inputs(name: str):
    for line in (ROOT / "tests" / "corpus" / name).read_text().split("\n"):
        if line and not line.startswith("#"):
            yield expand(line.split("\t", 1)[0] if "\t" in line and name != "redirects.txt" else line)


def write(target: str, data: bytes) -> None:
    d = OUT / target
    d.mkdir(parents=True, exist_ok=True)
    (d / hashlib.sha1(data).hexdigest()).write_bytes(data)


def rust_string_literals(text: str):
    """The first string literal of each ok(...)/err(...) call, unescaped."""
    for m in re.finditer(r'\b(?:ok|err)\(\s*"((?:[^"\\]|\\.)*)"', text):
        s = m.group(1)
        s = re.sub(r"\\u\{([0-9a-fA-F]+)\}", lambda u: chr(int(u.group(1), 16)), s)
        s = re.sub(r"\\x([0-9a-fA-F]{2})", lambda u: chr(int(u.group(1), 16)), s)
        s = (s.replace("\\t", "\t").replace("\\n", "\n").replace("\\r", "\r")
              .replace("\\0", "\0").replace('\\"', '"').replace("\\\\", "\\"))
        yield s


def b64(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def session_cookie(ident: bytes) -> str:
    purpose = b"session"
    tag = hmac.new(COOKIE_KEY, struct.pack(">I", len(purpose)) + purpose + ident,
                   hashlib.sha256).digest()
    return f"v1.{b64(ident)}.{b64(tag)}"


SMALL_CONFIGS = [
    '[server]\nlisten = "127.0.0.1:8080"\npublic_url = "http://localhost:8080"\n'
    '[mail]\nfrom = "a@example.com"\ntransport = "console"\n[store]\nbackend = "memory"\n'
    '[[route]]\npath = "/"\nupstream = "demo"\n',
    '[server]\npublic_url = "https://login.example.com"\ntrusted_proxies = ["10.0.0.0/8", "::1/128"]\n'
    '[session]\nsecret_env = "PORTCULLIS_SECRET"\ncookie_domain = ".example.com"\nlifetime = "7d"\n'
    'idle_timeout = "12h"\nrevalidate = "250ms"\nstore_grace = "30s"\n'
    '[login]\nallow_emails = ["Boss@Example.com"]\nallow_domains = ["bücher.example"]\n'
    'address_rate = "5/15m"\nip_rate = "30/1h"\nresend_delay = "0s"\ncode_attempts = 3\n'
    '[mail]\nfrom = "Portcullis <login@example.com>"\ntransport = "smtp"\n'
    '[mail.smtp]\nhost = "smtp.example.com"\ntls = "tls"\nusername = "u"\npassword_env = "SMTP_PASSWORD"\n'
    '[store]\nbackend = "redis"\nurl = "redis+unix:///run/redis.sock"\nkey_prefix = "p:"\n'
    '[[route]]\nhost = "app.example.com:8443"\npath = "/api"\nupstream = "http://127.0.0.1:3000"\n'
    'access = "public"\ntimeout = "250ms"\n',
    '[mail]\ntransport = "file"\nfrom = "x@y.z"\n[mail.file]\ndir = "./mail"\n'
    '[[route]]\npath = "/"\nupstream = "http://[::1]:9"\n',
    '[server]\nlisten = "0.0.0.0:80"\ntls_listen = "0.0.0.0:443"\ntls_cert = "c.pem"\ntls_key = "k.pem"\n'
    'max_header_count = 8\nmax_uri_bytes = 65534\nheader_read_timeout = "1ms"\n',
    '[ui]\ntitle = "<b>T</b>"\naccent = "#abc"\nlogo = "/l.svg"\nfooter = "f"\n',
]


def main() -> None:
    for rd in list(corpus_inputs("redirects.txt")) + list(corpus_inputs("redirects_ok.txt")):
        write("redirect", rd.encode())
    for p in corpus_inputs("paths.txt"):
        write("path", p.encode())
    for a in rust_string_literals((ROOT / "src" / "address.rs").read_text()):
        write("address", a.encode())
    for text in [(ROOT / "gateway.toml.example").read_text(),
                 (ROOT / "src" / "config" / "embedded.toml").read_text()] + SMALL_CONFIGS:
        write("config", text.encode())
    good = session_cookie(bytes(range(32)))
    for c in [good, session_cookie(b"\xff" * 32), good + "A", good[:-1], "v1.", "v1..",
              "v2." + good[3:], good.replace("v1.", "V1.")]:
        write("cookie", c.encode())
    for header in [f"portcullis={good}; a=1", f"a=1; portcullis={good}; b=2",
                   'a="quoted"; __Host-portcullis=x', "a=1; a=2", "portcullis",
                   "cookieA=aaa_portcullis=123; cookieb=bbb; portcullis=ey;portcullis_x=stay",
                   "a=1\xffportcullis=2\xff a = 3 ", " ; ;a=;=b;portcullis-csrf=c"]:
        write("cookie", header.encode("latin-1"))


if __name__ == "__main__":
    main()
