#!/usr/bin/env python3
"""Sign in to a running gateway the way a browser does, N times.

Usage: train.py ORIGIN MAIL_DIR CYCLES

Each cycle: GET the sign-in page, POST an address, read the link from the
mail the file transport wrote, open it, confirm it (POST), load a signed-in
page, and (except in the last cycle) sign out. Prints the session cookie of
the last cycle, so that the caller can load signed-in pages with it.
Used by scripts/build-pgo.sh to train a profile-guided build; it checks
every answer, so a training run that signs nobody in fails loudly.
"""

import email
import email.policy
import http.cookiejar
import pathlib
import re
import sys
import time
import urllib.parse
import urllib.request


def field(page: str, name: str) -> str:
    m = re.search(r'name="%s" value="([^"]*)"' % re.escape(name), page)
    if not m:
        sys.exit(f"train: no {name} field in the page")
    return m.group(1)


def mail_link(mail_dir: pathlib.Path, origin: str, seen: set) -> str:
    pattern = re.compile(re.escape(origin) + r"/\.portcullis/verify\?token=[A-Za-z0-9_-]{43}")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for f in sorted(mail_dir.glob("*.eml")):
            if f in seen:
                continue
            try:
                msg = email.message_from_bytes(f.read_bytes(), policy=email.policy.default)
            except OSError:
                continue
            for part in msg.walk():
                if part.get_content_maintype() == "text":
                    m = pattern.search(part.get_content())
                    if m:
                        seen.add(f)
                        return m.group(0)
        time.sleep(0.02)
    sys.exit("train: no sign-in mail after 10 s")


def main() -> None:
    origin, mail_dir, cycles = sys.argv[1], pathlib.Path(sys.argv[2]), int(sys.argv[3])
    seen: set = set()
    cookie = ""
    for n in range(cycles):
        jar = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        opener.addheaders = [("Origin", origin)]

        def fetch(url: str, data: dict | None = None) -> str:
            body = urllib.parse.urlencode(data).encode() if data is not None else None
            with opener.open(origin + url if url.startswith("/") else url, body) as resp:
                if resp.status != 200:
                    sys.exit(f"train: {url} answered {resp.status}")
                return resp.read().decode()

        page = fetch("/.portcullis/login?rd=/")
        fetch(
            "/.portcullis/login",
            {"email": f"train{n}@example.com", "rd": "/", "csrf": field(page, "csrf")},
        )
        page = fetch(mail_link(mail_dir, origin, seen))
        fetch(
            "/.portcullis/verify",
            {"token": field(page, "token"), "csrf": field(page, "csrf")},
        )
        if fetch("/") != "hello\n":
            sys.exit("train: the signed-in page is not the upstream's")
        session = [c for c in jar if c.name == "portcullis"]
        if not session:
            sys.exit("train: no session cookie after sign-in")
        cookie = session[0].value
        if n + 1 < cycles:
            page = fetch("/.portcullis/logout")
            fetch("/.portcullis/logout", {"csrf": field(page, "csrf")})
    print(cookie)


if __name__ == "__main__":
    main()
