#!/usr/bin/env bash
# Soak test: mixed load at steady concurrency against the release binary,
# with the Redis store (a private redis-server on a unix socket) and the
# file mail transport, for a fixed time.
#
# Load, all at once for the whole run:
#   - signed-in GETs (most of the traffic): wrk with a session cookie
#     obtained by a real sign-in through curl, in back-to-back one-minute
#     runs so that latency is known per minute;
#   - sign-ins: a curl loop through the whole flow (sign-in page, address,
#     the link from the mail file, confirm), then a signed-in GET, a
#     logout, and the old cookie again (must no longer pass);
#   - bad cookies: a curl loop with forged, garbage and tampered session
#     cookies (must get 303 to sign-in, or 401 when not asking for HTML).
#
# Prints per minute: requests, errors by kind, p50/p99 of the signed-in
# GETs and the gateway's RSS (VmRSS from /proc/PID/status); at the end the
# totals. Passes (exit 0) when there was no unexpected answer or socket
# error, the gateway did not panic or exit, and its RSS at the end is
# within 10% of its RSS after minute 2 (minute 1 for shorter runs).
#
# Usage: scripts/soak.sh [--minutes N] [--connections C] [--threads T]
#          [--bin PATH] [--no-build] [--keep-tmp]
#   defaults: 10 minutes, 32 connections, 2 wrk threads, builds
#   target/release/portcullis (cargo build --release) unless --bin is given.
# Needs: wrk, nginx (the upstream app), redis-server, curl, python3.

set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

minutes=10
connections=32
threads=2
bin=""
build=1
keep_tmp=0

usage() {
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '/^set -euo/d' -e 's/^# \{0,1\}//'
}

die() {
    echo "soak: $*" >&2
    exit 2
}

while [[ $# -gt 0 ]]; do
    case "$1" in
    --minutes) minutes=${2:?--minutes needs a value}; shift ;;
    --connections) connections=${2:?--connections needs a value}; shift ;;
    --threads) threads=${2:?--threads needs a value}; shift ;;
    --bin) bin=${2:?--bin needs a value}; shift ;;
    --no-build) build=0 ;;
    --keep-tmp) keep_tmp=1 ;;
    -h | --help) usage; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
    esac
    shift
done

[[ $minutes =~ ^[1-9][0-9]*$ ]] || die "--minutes is a positive number"
[[ $threads =~ ^[1-9][0-9]*$ ]] || die "--threads is a positive number"
[[ $connections =~ ^[1-9][0-9]*$ ]] || die "--connections is a positive number"
((connections >= threads)) || die "wrk needs at least as many connections as threads"
for tool in wrk nginx redis-server curl python3; do
    command -v "$tool" >/dev/null || die "$tool is not installed"
done

# === processes and cleanup ===

tmp=$(mktemp -d "${TMPDIR:-/tmp}/portcullis-soak.XXXXXX")
pids=()    # servers: nginx, redis-server, portcullis
loops=()   # background load loops
wrk_pid=""
gw_pid=""
ok=0

stop_pid() {
    local pid=$1 deadline
    kill -TERM "$pid" 2>/dev/null || return 0
    deadline=$((SECONDS + 5))
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do
        sleep 0.05
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    local pid
    trap - EXIT INT TERM
    for pid in ${wrk_pid:+"$wrk_pid"} "${loops[@]}" "${pids[@]}"; do
        stop_pid "$pid"
    done
    if ((ok == 0)); then
        for log in "$tmp/portcullis.log" "$tmp/nginx/error.log" "$tmp/redis.log"; do
            if [[ -s $log ]]; then
                echo "--- last lines of $log" >&2
                tail -n 20 "$log" >&2
            fi
        done
    fi
    if ((keep_tmp)); then
        echo "soak: temporary files kept in $tmp" >&2
    else
        rm -rf "$tmp"
    fi
}
trap cleanup EXIT
trap 'echo "soak: interrupted" >&2; exit 130' INT
trap 'echo "soak: terminated" >&2; exit 143' TERM

# Waits until 127.0.0.1:$1 accepts connections; fails if process $2 exits
# or after $3 seconds.
wait_port() {
    local port=$1 pid=$2 limit=$3 deadline
    deadline=$((SECONDS + limit))
    until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
        kill -0 "$pid" 2>/dev/null || die "the process for port $port exited"
        ((SECONDS < deadline)) || die "nothing listens on port $port after ${limit}s"
        sleep 0.05
    done
}

read -r port_up port_gw < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(2)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in socks])
')
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# === the binary ===

if [[ -z $bin ]]; then
    bin="${CARGO_TARGET_DIR:-$repo/target}/release/portcullis"
    if ((build)); then
        echo "== cargo build --release"
        (cd "$repo" && cargo build --release --bin portcullis)
    fi
fi
[[ -x $bin ]] || die "no portcullis binary at $bin (build it, or pass --bin)"

# === upstream (nginx), redis, gateway ===

mkdir -p "$tmp/nginx/temp" "$tmp/redis" "$tmp/mail"
user_line=""
((EUID == 0)) && user_line="user $(id -un) $(id -gn);"
cat >"$tmp/nginx/nginx.conf" <<EOF
$user_line
worker_processes 1;
daemon off;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $tmp/nginx/temp/body;
    proxy_temp_path $tmp/nginx/temp/proxy;
    fastcgi_temp_path $tmp/nginx/temp/fastcgi;
    uwsgi_temp_path $tmp/nginx/temp/uwsgi;
    scgi_temp_path $tmp/nginx/temp/scgi;
    keepalive_requests 1000000;
    server {
        listen 127.0.0.1:$port_up;
        location / {
            default_type text/plain;
            return 200 "hello\n";
        }
    }
}
EOF
nginx -p "$tmp/nginx" -e "$tmp/nginx/error.log" -c "$tmp/nginx/nginx.conf" &
pids+=($!)
wait_port "$port_up" "${pids[-1]}" 10

redis-server --port 0 --unixsocket "$tmp/redis.sock" --unixsocketperm 700 \
    --dir "$tmp/redis" --save "" --appendonly no --logfile "$tmp/redis.log" &
pids+=($!)
deadline=$((SECONDS + 10))
until [[ -S $tmp/redis.sock ]]; do
    kill -0 "${pids[-1]}" 2>/dev/null || die "redis-server exited"
    ((SECONDS < deadline)) || die "redis-server has no socket after 10s"
    sleep 0.05
done

origin="http://127.0.0.1:$port_gw"
cat >"$tmp/gateway.toml" <<EOF
[server]
listen = "127.0.0.1:$port_gw"
public_url = "$origin"
shutdown_timeout = "2s"

[session]
secret_env = "PORTCULLIS_SECRET"

[login]
allow_domains = ["example.com"]
address_rate = "1000000/1m"
ip_rate = "1000000/1m"
resend_delay = "0s"

[mail]
from = "Portcullis soak <soak@localhost>"
transport = "file"

[mail.file]
dir = "$tmp/mail"

[store]
backend = "redis"
url = "redis+unix://$tmp/redis.sock"
key_prefix = "soak:"

[[route]]
name = "app"
path = "/"
upstream = "http://127.0.0.1:$port_up"
EOF
PORTCULLIS_SECRET=$(head -c 48 /dev/urandom | base64 | tr -d '\n')
export PORTCULLIS_SECRET
RUST_LOG=warn "$bin" --config "$tmp/gateway.toml" 2>"$tmp/portcullis.log" &
gw_pid=$!
pids+=("$gw_pid")
wait_port "$port_gw" "$gw_pid" 20

rss_kib() {
    sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\).*/\1/p' "/proc/$gw_pid/status" 2>/dev/null || echo 0
}

# === the sign-in flow with curl (also used by the sign-in loop) ===

# sign_in EMAIL JAR DIR: signs in; prints the session cookie value. On
# failure prints "error:<step>:<status>" and returns 1. DIR is private to
# the caller (pages and headers go there).
sign_in() {
    local email=$1 jar=$2 dir=$3 status csrf token link deadline session
    field() { sed -n "s/.*name=\"$1\" value=\"\([^\"]*\)\".*/\1/p" "$dir/page" | head -n 1; }
    rm -f "$jar"
    status=$(curl -sS -o "$dir/page" -w '%{http_code}' -c "$jar" -b "$jar" "$origin/.portcullis/login?rd=/") || status=000
    [[ $status == 200 ]] || { echo "error:login-page:$status"; return 1; }
    csrf=$(field csrf)
    status=$(curl -sS -o "$dir/page" -w '%{http_code}' -c "$jar" -b "$jar" -H "Origin: $origin" \
        --data-urlencode "email=$email" --data-urlencode "rd=/" --data-urlencode "csrf=$csrf" \
        "$origin/.portcullis/login") || status=000
    [[ $status == 200 ]] || { echo "error:ask:$status"; return 1; }
    # The mail file for this address (written by the gateway's queue; the
    # name of a finished file never starts with a dot).
    deadline=$((SECONDS + 20))
    link=""
    while [[ -z $link ]]; do
        link=$(python3 - "$tmp/mail" "$email" "$origin" <<'PY'
import email, email.policy, pathlib, re, sys
folder, to, origin = sys.argv[1], sys.argv[2], sys.argv[3]
pattern = re.compile(re.escape(origin) + r"/\.portcullis/verify\?token=[A-Za-z0-9_-]{43}")
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
                print(m.group(0))
                sys.exit(0)
PY
        ) || link=""
        if [[ -z $link ]]; then
            ((SECONDS < deadline)) || { echo "error:no-mail:000"; return 1; }
            sleep 0.02
        fi
    done
    status=$(curl -sS -o "$dir/page" -w '%{http_code}' -c "$jar" -b "$jar" "$link") || status=000
    [[ $status == 200 ]] || { echo "error:link:$status"; return 1; }
    token=$(field token)
    csrf=$(field csrf)
    status=$(curl -sS -o /dev/null -D "$dir/headers" -w '%{http_code}' -c "$jar" -b "$jar" \
        -H "Origin: $origin" --data-urlencode "token=$token" --data-urlencode "csrf=$csrf" \
        "$origin/.portcullis/verify") || status=000
    [[ $status == 303 ]] || { echo "error:confirm:$status"; return 1; }
    session=$(sed -n 's/^[Ss]et-[Cc]ookie: portcullis=\([^;[:space:]]*\).*/\1/p' "$dir/headers" | head -n 1)
    [[ $session == v1.* ]] || { echo "error:no-cookie:303"; return 1; }
    echo "$session"
}

mkdir -p "$tmp/main"
session=$(sign_in "soak@example.com" "$tmp/main/jar" "$tmp/main") || die "first sign-in failed: $session"
printf 'Cookie: portcullis=%s\n' "$session" >"$tmp/cookie.header"
chmod 600 "$tmp/cookie.header"
status=$(curl -sS -o /dev/null -w '%{http_code}' -H "@$tmp/cookie.header" "$origin/") || true
[[ $status == 200 ]] || die "the signed-in GET answered $status"

events="$tmp/events.log"   # one line per loop request: "<kind> <outcome>"
: >"$events"

# === load loop: sign-in, signed-in GET, logout, old cookie ===

signin_loop() {
    local n=0 dir="$tmp/signin" jar cookie status csrf
    mkdir -p "$dir"
    jar="$dir/jar"
    while :; do
        n=$((n + 1))
        if ! cookie=$(sign_in "loop$n@example.com" "$jar" "$dir"); then
            echo "signin $cookie" >>"$events"
            continue
        fi
        echo "signin ok" >>"$events"
        status=$(curl -sS -o /dev/null -w '%{http_code}' -b "portcullis=$cookie" "$origin/n$n") || status=000
        [[ $status == 200 ]] && echo "signed-in-get ok" >>"$events" || echo "signed-in-get error:$status" >>"$events"
        status=$(curl -sS -o "$dir/page" -w '%{http_code}' -c "$jar" -b "$jar" "$origin/.portcullis/logout") || status=000
        csrf=$(sed -n 's/.*name="csrf" value="\([^"]*\)".*/\1/p' "$dir/page" | head -n 1)
        status=$(curl -sS -o /dev/null -w '%{http_code}' -c "$jar" -b "$jar" -H "Origin: $origin" \
            --data-urlencode "csrf=$csrf" "$origin/.portcullis/logout") || status=000
        [[ $status == 303 ]] && echo "logout ok" >>"$events" || echo "logout error:$status" >>"$events"
        # The cookie of the ended session must not pass any more.
        status=$(curl -sS -o /dev/null -w '%{http_code}' -b "portcullis=$cookie" "$origin/after") || status=000
        [[ $status == 401 ]] && echo "ended-cookie ok" >>"$events" || echo "ended-cookie error:$status" >>"$events"
    done
}

# === load loop: forged, garbage and tampered cookies ===

badcookie_loop() {
    local i=0 value status expect accept flip
    while :; do
        i=$((i + 1))
        case $((i % 4)) in
        0) value="v1.$(head -c 32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n').$(head -c 32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')" ;;
        1) value="garbage-$i" ;;
        2) # the real cookie with one character changed
            flip=$((5 + i % 80))
            value="${session:0:flip}$([[ ${session:flip:1} == A ]] && echo B || echo A)${session:flip+1}" ;;
        3) value="${session}x" ;;
        esac
        if ((i % 2)); then
            accept="text/html"
            expect=303
        else
            accept="application/json"
            expect=401
        fi
        status=$(curl -sS -o /dev/null -w '%{http_code}' -H "Accept: $accept" -b "portcullis=$value" "$origin/bad$i") || status=000
        [[ $status == "$expect" ]] && echo "bad-cookie ok" >>"$events" || echo "bad-cookie error:$status" >>"$events"
        sleep 0.02
    done
}

signin_loop &
loops+=($!)
badcookie_loop &
loops+=($!)

# === wrk, one minute at a time ===

cat >"$tmp/soak.lua" <<'LUA'
-- Counts responses that are not 2xx and prints one parseable line.
local cookie = os.getenv("SOAK_COOKIE")
if cookie ~= nil and cookie ~= "" then wrk.headers["Cookie"] = cookie end
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) non2xx = 0 end
function response(status, headers, body)
  if status < 200 or status > 299 then non2xx = non2xx + 1 end
end
function done(summary, latency, requests)
  local bad = 0
  for _, t in ipairs(threads) do bad = bad + t:get("non2xx") end
  local e = summary.errors
  io.write(string.format(
    "SOAK requests=%d p50_us=%d p99_us=%d non2xx=%d connect=%d read=%d write=%d timeout=%d\n",
    summary.requests, latency:percentile(50.0), latency:percentile(99.0),
    bad, e.connect, e.read, e.write, e.timeout))
end
LUA
export SOAK_COOKIE="portcullis=$session"

val() { sed -n "s/.* $1=\([0-9]*\).*/\1/p" <<<"$2"; }
ms() { awk -v us="$1" 'BEGIN { printf "%.2f", us / 1000 }'; }

echo "== soak: $minutes min, wrk $threads threads x $connections connections on the signed-in route,"
echo "   plus a sign-in/logout curl loop and a bad-cookie curl loop; Redis store, file mail"
printf '%-6s %9s %8s %8s %7s %7s %8s %8s %8s %9s\n' minute requests p50_ms p99_ms non2xx sockerr signins logouts badck rss_kib
total_requests=0
total_non2xx=0
total_sock=0
events_seen=0
rss_base=0
rss_last=0
for ((m = 1; m <= minutes; m++)); do
    wrk -t "$threads" -c "$connections" -d 60s --timeout 5s -s "$tmp/soak.lua" "$origin/" >"$tmp/wrk.out" 2>&1 &
    wrk_pid=$!
    rc=0
    wait "$wrk_pid" || rc=$?
    wrk_pid=""
    ((rc == 0)) || die "wrk failed (exit $rc): $(cat "$tmp/wrk.out")"
    line=$(grep '^SOAK ' "$tmp/wrk.out") || die "wrk printed no SOAK line: $(cat "$tmp/wrk.out")"
    kill -0 "$gw_pid" 2>/dev/null || die "the gateway exited during minute $m"
    rss_last=$(rss_kib)
    if ((m == 2 || (minutes < 2 && m == 1))); then
        rss_base=$rss_last
    fi
    requests=$(val requests "$line")
    non2xx=$(val non2xx "$line")
    sock=$(($(val connect "$line") + $(val read "$line") + $(val write "$line") + $(val timeout "$line")))
    total_requests=$((total_requests + requests))
    total_non2xx=$((total_non2xx + non2xx))
    total_sock=$((total_sock + sock))
    n_events=$(wc -l <"$events")
    minute_events=$(sed -n "$((events_seen + 1)),${n_events}p" "$events")
    events_seen=$n_events
    signins=$(grep -c '^signin ok' <<<"$minute_events" || true)
    logouts=$(grep -c '^logout ok' <<<"$minute_events" || true)
    badck=$(grep -c '^bad-cookie ' <<<"$minute_events" || true)
    printf '%-6s %9s %8s %8s %7s %7s %8s %8s %8s %9s\n' "$m" "$requests" \
        "$(ms "$(val p50_us "$line")")" "$(ms "$(val p99_us "$line")")" "$non2xx" "$sock" \
        "$signins" "$logouts" "$badck" "$rss_last"
    grep -v -e ' ok$' -e '^$' <<<"$minute_events" | sort | uniq -c | sed 's/^/       unexpected: /' || true
done

# Stop the loops before counting, so that every event is in.
for pid in "${loops[@]}"; do
    stop_pid "$pid"
done
loops=()

echo
echo "== totals"
loop_requests=$(wc -l <"$events")
echo "signed-in GETs (wrk): $total_requests, non-2xx $total_non2xx, socket errors $total_sock"
echo "loop requests: $loop_requests (sign-ins, signed-in GETs, logouts, ended cookies, bad cookies)"
awk '{ n[$0]++ } END { for (k in n) printf "  %-34s %d\n", k, n[k] }' "$events" | sort
unexpected=$(grep -vc ' ok$' "$events" || true)
panics=$(grep -c 'panicked' "$tmp/portcullis.log" || true)
echo "unexpected loop answers: $unexpected; panics in the gateway log: $panics"
echo "RSS: $rss_base KiB after minute $((minutes < 2 ? 1 : 2)), $rss_last KiB at the end"

failed=0
((total_non2xx == 0 && total_sock == 0)) || { echo "FAIL: wrk saw errors"; failed=1; }
((unexpected == 0)) || { echo "FAIL: unexpected answers in the loops"; failed=1; }
((panics == 0)) || { echo "FAIL: the gateway panicked"; failed=1; }
kill -0 "$gw_pid" 2>/dev/null || { echo "FAIL: the gateway is gone"; failed=1; }
if ((rss_last * 100 > rss_base * 110)); then
    echo "FAIL: RSS grew more than 10% after the base minute"
    failed=1
fi
((total_requests > 0)) || { echo "FAIL: no request completed"; failed=1; }
if ((failed)); then
    exit 1
fi
echo "PASS"
ok=1
