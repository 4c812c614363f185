"""A development mail catcher: an SMTP server that keeps every message it
is given (in memory, the newest 200) and delivers none, and a web page that
shows them with their links decoded, so a sign-in link can be clicked.

    SMTP  :1025   no TLS, no authentication (point [mail.smtp] here with tls = "none")
    HTTP  :8025   /               the messages, newest first
                  /messages.json  the same as JSON: to, from, subject, date, text, links

Python's standard library only. For development: anyone who can reach the
web page reads every sign-in link.
"""

import email
import email.policy
import html
import json
import os
import re
import socketserver
import threading
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SMTP_PORT = int(os.environ.get("SMTP_PORT", "1025"))
HTTP_PORT = int(os.environ.get("HTTP_PORT", "8025"))
MAX_MESSAGE = 1024 * 1024
LINK = re.compile(r"https?://[^\s\"<>]+")

messages = deque(maxlen=200)
lock = threading.Lock()


def keep(raw: bytes) -> None:
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    text = ""
    for part in msg.walk():
        if part.get_content_type() == "text/plain":
            text = part.get_content()
            break
    links = []
    for link in LINK.findall(text):
        if link not in links:
            links.append(link)
    entry = {
        "to": str(msg.get("To", "")),
        "from": str(msg.get("From", "")),
        "subject": str(msg.get("Subject", "")),
        "date": str(msg.get("Date", "")),
        "text": text,
        "links": links,
    }
    with lock:
        messages.appendleft(entry)
    print(f"mail to {entry['to']}: {entry['subject']}", flush=True)


class Smtp(socketserver.StreamRequestHandler):
    """The commands a mail client sends to a relay without TLS or login."""

    def reply(self, line: str) -> None:
        self.wfile.write(line.encode() + b"\r\n")
        self.wfile.flush()

    def handle(self) -> None:
        self.reply("220 mailcatcher ESMTP")
        while True:
            line = self.rfile.readline(4096)
            if not line:
                return
            verb = line.decode("latin-1").strip().split(" ", 1)[0].upper()
            if verb == "EHLO":
                self.reply("250-mailcatcher")
                self.reply(f"250 SIZE {MAX_MESSAGE}")
            elif verb == "HELO":
                self.reply("250 mailcatcher")
            elif verb in ("MAIL", "RCPT", "RSET", "NOOP"):
                self.reply("250 OK")
            elif verb == "DATA":
                self.reply("354 end with <CRLF>.<CRLF>")
                raw = bytearray()
                while True:
                    data = self.rfile.readline(MAX_MESSAGE)
                    if not data or data in (b".\r\n", b".\n"):
                        break
                    if data.startswith(b".."):
                        data = data[1:]
                    if len(raw) < MAX_MESSAGE:
                        raw += data
                keep(bytes(raw))
                self.reply("250 kept")
            elif verb == "QUIT":
                self.reply("221 bye")
                return
            else:
                self.reply("502 not implemented")


class SmtpServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


class Web(BaseHTTPRequestHandler):
    def send(self, status: int, kind: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 (the standard library's name)
        with lock:
            snapshot = list(messages)
        if self.path == "/messages.json":
            self.send(200, "application/json", json.dumps(snapshot).encode())
        elif self.path == "/":
            items = []
            for m in snapshot:
                links = "".join(
                    f'<li><a href="{html.escape(u)}">{html.escape(u)}</a></li>' for u in m["links"]
                )
                items.append(
                    f"<article><h2>{html.escape(m['subject'])}</h2>"
                    f"<p>to {html.escape(m['to'])} · {html.escape(m['date'])}</p>"
                    f"<ul>{links}</ul><pre>{html.escape(m['text'])}</pre></article>"
                )
            page = (
                '<!doctype html><meta charset="utf-8">'
                '<meta name="viewport" content="width=device-width">'
                "<title>Mail catcher</title>"
                "<style>body{font-family:sans-serif;max-width:50rem;margin:1rem auto;padding:0 1rem}"
                "pre{white-space:pre-wrap;background:#f4f4f4;padding:.5rem}"
                "a{overflow-wrap:anywhere}</style>"
                f"<h1>Mail catcher: {len(snapshot)} message(s)</h1>"
                + ("".join(items) or "<p>No mail yet. Reload after asking for a link.</p>")
            )
            self.send(200, "text/html; charset=utf-8", page.encode())
        else:
            self.send(404, "text/plain", b"not found\n")

    def log_message(self, format: str, *args) -> None:  # noqa: A002
        pass


def main() -> None:
    smtp = SmtpServer(("0.0.0.0", SMTP_PORT), Smtp)
    threading.Thread(target=smtp.serve_forever, daemon=True).start()
    print(f"SMTP on :{SMTP_PORT}, web on :{HTTP_PORT}", flush=True)
    ThreadingHTTPServer(("0.0.0.0", HTTP_PORT), Web).serve_forever()


if __name__ == "__main__":
    main()
