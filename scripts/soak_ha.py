#!/usr/bin/env python3
"""Failover soak for Portcullis on Redis with high availability (run by
scripts/soak-ha.sh, which builds the binary; see docs/redis-ha.md).

For each mode (sentinel, then cluster) it starts the Redis deployment from
real redis-server processes on free 127.0.0.1 ports, three gateway
instances sharing it (file mail, the built-in demo upstream), and for
--seconds runs client threads spread over the instances: a whole sign-in
(page, address, the link from the mail file, confirm), signed-in GETs on
random instances, and for half of the sessions a sign-out followed by
polling the other instances until the old cookie stops passing (the
revocation time). Sentinel: SENTINEL FAILOVER at 1/3 of the run and a
SIGKILL of the master at 2/3 (restarted afterwards, as a replica).
Cluster: SIGKILL of one master at 1/2 (its replica takes over).

Reports per mode: requests, answers by status, transport errors, seconds
with a 503, sign-ins, sessions lost (kept sessions that no longer pass at
the end; those made more than 1 s before a failover must be 0),
revocations slower than 1 s (must be 0), and each instance's RSS before
and after. Exit 1 if either must-be-0 figure is not 0.
"""

import argparse
import email
import email.policy
import http.client
import os
import pathlib
import random
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

ROOT = pathlib.Path(__file__).resolve().parent.parent


def free_port():
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def cli(port, *args):
    try:
        out = subprocess.run(
            ["redis-cli", "-p", str(port), *args],
            capture_output=True,
            text=True,
            timeout=5,
        )
    except subprocess.TimeoutExpired:
        return None
    text = out.stdout.strip()
    if out.returncode != 0 or text.startswith("Could not connect"):
        return None
    return text


def wait(what, cond, timeout=60):
    end = time.time() + timeout
    while not cond():
        if time.time() > end:
            sys.exit(f"soak-ha: timed out waiting for {what}")
        time.sleep(0.05)


class Node:
    def __init__(self, tmp, port, args):
        self.tmp, self.port, self.args = tmp, port, args
        self.proc = None
        self.start()

    def start(self):
        self.proc = subprocess.Popen(
            ["redis-server", *self.args],
            cwd=self.tmp,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def role(self):
        r = cli(self.port, "ROLE")
        return r.split("\n")[0] if r else None


def base_args(port):
    return ["--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--logfile", f"redis-{port}.log"]


class Sentinel:
    name = "mymaster"

    def __init__(self, tmp):
        mport = free_port()
        master = Node(tmp, mport, base_args(mport))
        wait("master", lambda: cli(mport, "PING") == "PONG")
        rport = free_port()
        replica = Node(tmp, rport, base_args(rport) + ["--replicaof", "127.0.0.1", str(mport)])
        self.data = [master, replica]
        self.sentinels = []
        for _ in range(3):
            port = free_port()
            conf = pathlib.Path(tmp) / f"sentinel-{port}.conf"
            conf.write_text(
                f"port {port}\nbind 127.0.0.1\nlogfile sentinel-{port}.log\n"
                f"sentinel monitor {self.name} 127.0.0.1 {mport} 2\n"
                f"sentinel down-after-milliseconds {self.name} 1000\n"
                f"sentinel failover-timeout {self.name} 10000\n"
            )
            self.sentinels.append(Node(tmp, port, [str(conf), "--sentinel"]))
        self.settle()

    def settle(self):
        def ok():
            for s in self.sentinels:
                m = cli(s.port, "SENTINEL", "MASTER", self.name)
                if not m:
                    return False
                kv = m.split("\n")
                d = dict(zip(kv[0::2], kv[1::2]))
                if d.get("num-slaves") != "1" or d.get("num-other-sentinels") != "2":
                    return False
            m = self.master()
            info = cli(m.port, "INFO", "replication") if m else None
            return bool(info and "connected_slaves:1" in info and "state=online" in info)

        wait("the Sentinels to settle", ok)

    def master(self):
        r = cli(self.sentinels[0].port, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.name)
        if not r:
            return None
        port = int(r.split("\n")[1])
        for n in self.data:
            if n.port == port and n.role() == "master":
                return n
        return None

    def store_toml(self):
        urls = ", ".join(f'"redis://127.0.0.1:{s.port}"' for s in self.sentinels)
        return f'mode = "sentinel"\nurls = [{urls}]\nsentinel_master = "{self.name}"\n'

    def events(self, seconds):
        return [(seconds / 3, "SENTINEL FAILOVER", self.failover),
                (2 * seconds / 3, "SIGKILL of the master", self.kill_master)]

    def failover(self):
        old = self.master().port
        cli(self.sentinels[0].port, "SENTINEL", "FAILOVER", self.name)
        wait("the failover", lambda: (self.master() or self.data[0]).port != old
             and self.master() is not None)
        threading.Thread(target=self.settle, daemon=True).start()

    def kill_master(self):
        m = self.master()
        old = m.port
        m.kill()
        wait("the promotion", lambda: self.master() is not None and self.master().port != old)
        m.start()

    def stop(self):
        for n in self.data + self.sentinels:
            n.kill()


class Cluster:
    def __init__(self, tmp):
        self.nodes = []
        for _ in range(6):
            port, bus = free_port(), free_port()
            self.nodes.append(Node(tmp, port, base_args(port) + [
                "--cluster-enabled", "yes", "--cluster-port", str(bus),
                "--cluster-config-file", f"nodes-{port}.conf",
                "--cluster-node-timeout", "1000",
                "--cluster-replica-validity-factor", "0"]))
        for n in self.nodes:
            wait("a cluster node", lambda n=n: cli(n.port, "PING") == "PONG")
        subprocess.run(["redis-cli", "--cluster", "create",
                        *[f"127.0.0.1:{n.port}" for n in self.nodes],
                        "--cluster-replicas", "1", "--cluster-yes"],
                       check=True, capture_output=True)
        self.wait_ok()

    def wait_ok(self):
        wait("cluster_state:ok", lambda: all(
            "cluster_state:ok" in (cli(n.port, "CLUSTER", "INFO") or "")
            for n in self.nodes if n.alive()))
        # Every master's replica in sync, or WAIT finds none and a session
        # written now would live on one node only.
        wait("the replicas to sync", lambda: all(
            "state=online" in (cli(n.port, "INFO", "replication") or "")
            for n in self.nodes if n.alive() and n.role() == "master"))

    def store_toml(self):
        urls = ", ".join(f'"redis://127.0.0.1:{n.port}"' for n in self.nodes)
        return f'mode = "cluster"\nurls = [{urls}]\n'

    def events(self, seconds):
        return [(seconds / 2, "SIGKILL of a master (its replica takes over)", self.kill_master)]

    def kill_master(self):
        masters = {n.port for n in self.nodes if n.alive() and n.role() == "master"}
        m = next(n for n in self.nodes if n.port in masters)
        m.kill()
        # Its replica has taken over when three other nodes are masters;
        # only then may the killed one come back (empty: no persistence),
        # else it would take its slots back without their data.
        wait("the replica's promotion", lambda: len(
            [n for n in self.nodes if n.alive() and n.role() == "master"]) == 3)
        m.start()
        self.wait_ok()

    def stop(self):
        for n in self.nodes:
            n.kill()


def rss_kib(pid):
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.status = {}
        self.transport = 0
        self.requests = 0
        self.seconds_503 = set()
        self.signins_ok = 0
        self.signins_failed = {}
        self.failed_at = []
        self.revocations = []
        self.t0 = time.time()

    def answer(self, status):
        with self.lock:
            self.requests += 1
            self.status[status] = self.status.get(status, 0) + 1
            if status == 503:
                self.seconds_503.add(int(time.time() - self.t0))

    def error(self):
        with self.lock:
            self.requests += 1
            self.transport += 1


class Client:
    """One browser: a cookie jar, requests to any instance."""

    def __init__(self, stats):
        self.stats = stats
        self.jar = {}

    def request(self, port, method, path, body=None, headers=None, update=True):
        h = {"Accept": "*/*"}
        h.update(headers or {})
        if self.jar:
            h["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.jar.items())
        if body is not None:
            body = urllib.parse.urlencode(body)
            h["Content-Type"] = "application/x-www-form-urlencoded"
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            c.request(method, path, body=body, headers=h)
            r = c.getresponse()
            text = r.read().decode("utf-8", "replace")
            c.close()
        except (OSError, http.client.HTTPException):
            self.stats.error()
            return 0, {}, ""
        self.stats.answer(r.status)
        if update:
            for k, v in r.getheaders():
                if k.lower() == "set-cookie":
                    name, _, rest = v.partition("=")
                    value = rest.split(";")[0]
                    if "Max-Age=0" in v or value == "":
                        self.jar.pop(name, None)
                    else:
                        self.jar[name] = value
        return r.status, dict((k.lower(), v) for k, v in r.getheaders()), text


def field(page, name):
    m = re.search(r'name="%s" value="([^"]*)"' % re.escape(name), page)
    return m.group(1) if m else ""


def mail_link(folder, to, deadline):
    pattern = re.compile(r"http://127\.0\.0\.1:\d+/\.portcullis/verify\?token=[A-Za-z0-9_-]{43}")
    while time.time() < deadline:
        for f in sorted(pathlib.Path(folder).glob("[!.]*")):
            try:
                msg = email.message_from_bytes(f.read_bytes(), policy=email.policy.default)
            except OSError:
                continue
            if to not in str(msg.get("To", "")):
                continue
            for part in msg.walk():
                if part.get_content_maintype() == "text":
                    m = pattern.search(part.get_content())
                    if m:
                        f.unlink()
                        return m.group(0)
        time.sleep(0.02)
    return None


def sign_in(client, port, address, mail_dir):
    origin = {"Origin": f"http://127.0.0.1:{port}"}
    client.jar = {}
    st, _, page = client.request(port, "GET", "/.portcullis/login?rd=/")
    if st != 200:
        return f"login-page:{st}"
    st, _, page = client.request(port, "POST", "/.portcullis/login", headers=origin,
                                 body={"email": address, "rd": "/", "csrf": field(page, "csrf")})
    if st != 200:
        return f"ask:{st}"
    link = mail_link(mail_dir, address, time.time() + 20)
    if not link:
        return "no-mail"
    parts = urllib.parse.urlsplit(link)
    st, _, page = client.request(port, "GET", f"{parts.path}?{parts.query}")
    if st != 200:
        return f"link:{st}"
    st, _, _ = client.request(port, "POST", "/.portcullis/verify", headers=origin,
                              body={"token": field(page, "token"), "csrf": field(page, "csrf")})
    if st != 303 or "portcullis" not in client.jar:
        return f"confirm:{st}"
    return None


def sign_out(client, port):
    st, _, page = client.request(port, "GET", "/.portcullis/logout")
    st, _, _ = client.request(port, "POST", "/.portcullis/logout",
                              headers={"Origin": f"http://127.0.0.1:{port}"},
                              body={"csrf": field(page, "csrf")})
    return st


def run_mode(mode, args, tmp):
    print(f"== {mode}: starting Redis", flush=True)
    redis = Sentinel(tmp) if mode == "sentinel" else Cluster(tmp)
    mail_dir = pathlib.Path(tmp) / "mail"
    mail_dir.mkdir(exist_ok=True)
    secret = os.urandom(48).hex()
    gateways = []
    for i in range(3):
        port = free_port()
        conf = pathlib.Path(tmp) / f"gw{i}.toml"
        conf.write_text(f"""[server]
listen = "127.0.0.1:{port}"
public_url = "http://127.0.0.1:{port}"
shutdown_timeout = "2s"

[session]
secret_env = "PORTCULLIS_SECRET"

[login]
allow_domains = ["example.com"]
address_rate = "1000000/1m"
ip_rate = "1000000/1m"
resend_delay = "0s"
max_pending = 1000000
max_pending_per_ip = 1000000

[mail]
from = "Portcullis soak <soak@localhost>"
transport = "file"

[mail.file]
dir = "{mail_dir}"

[store]
backend = "redis"
key_prefix = "portcullis:"
{redis.store_toml()}
[[route]]
path = "/"
upstream = "demo"
""")
        log = open(pathlib.Path(tmp) / f"gw{i}.log", "w")
        proc = subprocess.Popen([args.bin, "--config", str(conf)], stdout=subprocess.DEVNULL,
                                stderr=log, env={**os.environ, "PORTCULLIS_SECRET": secret,
                                                 "RUST_LOG": "warn"})
        gateways.append((port, proc))
    for port, proc in gateways:
        def up(port=port, proc=proc):
            if proc.poll() is not None:
                sys.exit(f"soak-ha: a gateway exited ({proc.returncode}); see {tmp}")
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                c.request("GET", "/.portcullis/ready")
                return c.getresponse().status == 200
            except OSError:
                return False
        wait("the gateways", up)
    ports = [p for p, _ in gateways]
    time.sleep(2)
    rss_before = [rss_kib(p.pid) for _, p in gateways]

    stats = Stats()
    kept = []  # (client, created)
    kept_lock = threading.Lock()
    events = []
    stop = threading.Event()

    def worker(wid):
        n = 0
        while not stop.is_set():
            n += 1
            client = Client(stats)
            port = random.choice(ports)
            why = sign_in(client, port, f"w{wid}-{n}-{mode}@example.com", mail_dir)
            if why:
                with stats.lock:
                    at = int(time.time() - stats.t0)
                    stats.signins_failed[why] = stats.signins_failed.get(why, 0) + 1
                    stats.failed_at.append(f"{why}@{at}s")
                time.sleep(0.2)
                continue
            created = time.time()
            with stats.lock:
                stats.signins_ok += 1
            for i in range(10):
                client.request(random.choice(ports), "GET", f"/n{i}")
            if n % 2 == 0:
                with kept_lock:
                    kept.append((client, created))
                continue
            cookie = dict(client.jar)
            out_port = random.choice(ports)
            if sign_out(client, out_port) != 303:
                continue
            ended = time.time()
            old = Client(stats)
            old.jar = cookie
            slowest = 0.0
            for p in ports:
                while True:
                    st, _, _ = old.request(p, "GET", "/after", update=False)
                    if st == 401:
                        break
                    if time.time() - ended > 5:
                        break
                    time.sleep(0.02)
                slowest = max(slowest, time.time() - ended)
            with stats.lock:
                stats.revocations.append(slowest)

    threads = [threading.Thread(target=worker, args=(w,), daemon=True)
               for w in range(args.clients)]
    stats.t0 = time.time()
    for t in threads:
        t.start()
    for at, what, action in ([] if args.no_events else redis.events(args.seconds)):
        delay = stats.t0 + at - time.time()
        if delay > 0:
            time.sleep(delay)
        began = time.time()
        print(f"   {began - stats.t0:5.1f} s: {what}", flush=True)
        action()
        events.append((began, time.time(), what))
    delay = stats.t0 + args.seconds - time.time()
    if delay > 0:
        time.sleep(delay)
    stop.set()
    for t in threads:
        t.join(timeout=30)
    time.sleep(1)

    # Every kept session must still pass on every instance.
    lost_early, lost_late, lost_at = 0, 0, []
    for client, created in kept:
        for p in ports:
            st, _, _ = client.request(p, "GET", "/check", update=False)
            if st == 401:
                lost_at.append(round(created - stats.t0, 1))
                # Made during a failover (from 1 s before it began until
                # the new master was in place) or not.
                if any(b - 1 <= created <= e for b, e, _ in events):
                    lost_late += 1
                else:
                    lost_early += 1
                break
    rss_after = [rss_kib(p.pid) for _, p in gateways]
    for _, p in gateways:
        p.terminate()
    for _, p in gateways:
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
    redis.stop()

    slow = sum(1 for r in stats.revocations if r > 1.0)
    seconds = sorted(stats.seconds_503)
    report = {
        "mode": mode,
        "seconds": args.seconds,
        "requests": stats.requests,
        "by_status": dict(sorted(stats.status.items())),
        "transport_errors": stats.transport,
        "seconds_with_503": len(seconds),
        "503_seconds": seconds,
        "signins_ok": stats.signins_ok,
        "signins_failed": stats.signins_failed,
        "signin_failures_at": stats.failed_at,
        "sessions_kept": len(kept),
        "sessions_lost_made_outside_failovers": lost_early,
        "sessions_lost_made_during_a_failover": lost_late,
        "lost_sessions_made_at_s": sorted(lost_at),
        "revocations": len(stats.revocations),
        "revocations_over_1s": slow,
        "revocation_max_s": round(max(stats.revocations, default=0), 3),
        "rss_kib_before": rss_before,
        "rss_kib_after": rss_after,
        "events": [(round(b - stats.t0, 1), round(e - stats.t0, 1), w) for b, e, w in events],
    }
    for k, v in report.items():
        print(f"   {k}: {v}")
    return lost_early == 0 and slow == 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=str(ROOT / "target/debug/portcullis"))
    ap.add_argument("--seconds", type=int, default=90)
    ap.add_argument("--clients", type=int, default=6)
    ap.add_argument("--modes", default="sentinel,cluster")
    ap.add_argument("--keep-tmp", action="store_true")
    ap.add_argument("--no-events", action="store_true", help="no failover (a baseline)")
    args = ap.parse_args()
    ok = True
    for mode in args.modes.split(","):
        tmp = tempfile.mkdtemp(prefix=f"soak-ha-{mode}-")
        ok = run_mode(mode, args, tmp) and ok
        if not args.keep_tmp:
            subprocess.run(["rm", "-rf", tmp])
    print("soak-ha:", "PASS" if ok else "FAIL")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
