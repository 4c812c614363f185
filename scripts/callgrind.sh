#!/usr/bin/env bash
# Instructions per proxied request: the gateway runs under
# `valgrind --tool=callgrind` with one worker thread, in front of a tiny
# nginx upstream (GET / -> "hello\n"), and the instructions it executes
# (callgrind's Ir: every thread of the process, user space only) are
# counted over a batch of requests and divided by their number:
#   - signed-in: GET / on the authenticated route, with a session cookie
#     obtained by the real email sign-in flow (curl + the mail file);
#   - public:    GET /public on the public route, no cookie;
#   - with --forward-auth: also GET /.portcullis/auth with the cookie,
#     X-Original-URL and X-Original-Method, as nginx's auth_request asks
#     (127.0.0.1 is then a trusted proxy for all three kinds).
# Each batch is N keep-alive requests on ONE connection (curl with N URLs),
# shaped like wrk's in scripts/bench.sh: Host, and Cookie when signed in
# (curl's User-Agent and Accept are left out; they cost about 1,000
# instructions each). A warm-up batch of the same kind (200 requests)
# goes first; the counters are zeroed just before the batch and dumped
# just after it (callgrind_control -z / -d), so start-up, sign-in and
# warm-up are not counted. The work an idle gateway does meanwhile
# (timers) is counted too; it is measured and printed as well (about a
# thousand instructions a second: nothing).
#
# Instruction counts hardly move from run to run (here within 0.1%), so
# a change of 1% is real. They are not time, and not quite the native
# figure: valgrind's virtual CPU has no SHA extensions (it hides SHA-NI
# from CPUID), so the session check's HMAC-SHA256 runs the portable code,
# about 7,000 instructions of every signed-in request here against a
# small fraction of that on a CPU with SHA-NI.
#
# Usage: scripts/callgrind.sh [--bin PATH] [--requests N] [--keep-tmp]
#          [--fast-path off] [--metrics on] [--groups N] [--assertion on]
#          [--forward-auth]
#   defaults: target/release/portcullis (not built here: cargo build
#   --release first), N = 2000. --keep-tmp keeps the temporary directory
#   (the configuration, the logs and the callgrind dumps, which
#   callgrind_annotate reads) and prints its path. --fast-path off runs
#   the gateway with `[server] fast_path = false` (hyper on both sides):
#   the difference is what the own HTTP/1 loop and raw client buy.
#   --metrics on sets `[admin] listen`, so the request metrics are counted
#   (their cost is the difference to a run without). --groups N adds a
#   `[groups]` table of N groups (20 addresses each; the signed-in address
#   in g7, `@example.com` in g20) and `allow_groups = ["g7"]` on the
#   signed-in route: what groups cost a request (the upstream then gets
#   `X-Forwarded-Groups: g20,g7`). --assertion on adds `[assertion]` with
#   a new ES256 key (`portcullis keys generate`): the upstream gets
#   `X-Portcullis-Jwt-Assertion`, signed once (in the warm-up) and then
#   served from the per-session cache.
# Needs: valgrind (with callgrind_control), nginx, curl, python3.

set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

bin="${CARGO_TARGET_DIR:-$repo/target}/release/portcullis"
requests=2000
keep_tmp=0
fast_path=true
metrics=off
groups=0
assertion=off
forward_auth=0

usage() {
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '/^set -euo/d' -e 's/^# \{0,1\}//'
}

die() {
    echo "callgrind: $*" >&2
    exit 1
}
# shellcheck source=bench/lib.sh
. "$repo/scripts/bench/lib.sh"

while [[ $# -gt 0 ]]; do
    case "$1" in
    --bin) bin=${2:?--bin needs a value}; shift ;;
    --requests) requests=${2:?--requests needs a value}; shift ;;
    --keep-tmp) keep_tmp=1 ;;
    --fast-path)
        case ${2:?--fast-path needs on or off} in
        on) fast_path=true ;;
        off) fast_path=false ;;
        *) die "--fast-path takes on or off" ;;
        esac
        shift
        ;;
    --metrics)
        case ${2:?--metrics needs on or off} in
        on | off) metrics=$2 ;;
        *) die "--metrics takes on or off" ;;
        esac
        shift
        ;;
    --groups) groups=${2:?--groups needs a number}; shift ;;
    --assertion)
        case ${2:?--assertion needs on or off} in
        on | off) assertion=$2 ;;
        *) die "--assertion takes on or off" ;;
        esac
        shift
        ;;
    --forward-auth) forward_auth=1 ;;
    -h | --help) usage; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
    esac
    shift
done

[[ $requests =~ ^[1-9][0-9]*$ ]] || die "--requests is a positive number"
[[ $groups =~ ^[0-9]+$ ]] || die "--groups is a number"
((groups == 0 || groups > 20)) || die "--groups needs more than 20 (g7 and g20 are used)"
[[ -x $bin ]] || die "no portcullis binary at $bin (cargo build --release, or pass --bin)"
for tool in valgrind callgrind_control nginx curl python3; do
    command -v "$tool" >/dev/null || die "$tool is not installed"
done

started=$SECONDS

# === processes and cleanup ===

tmp=$(mktemp -d "${TMPDIR:-/tmp}/portcullis-callgrind.XXXXXX")
pids=()
client_pid=""
ok=0

cleanup() {
    local pid deadline log
    trap - EXIT INT TERM
    # Everything below runs even if a step fails (stderr may be a pipe
    # that is gone).
    set +e
    local all=(${client_pid:+"$client_pid"} "${pids[@]}")
    for pid in "${all[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    # The gateway under valgrind takes a while to drain and exit.
    deadline=$((SECONDS + 15))
    for pid in "${all[@]}"; do
        while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    if ((ok == 0)); then
        for log in "$tmp/portcullis.log" "$tmp/valgrind.log" "$tmp"/nginx/*-error.log; do
            if [[ -s $log ]]; then
                echo "--- last lines of $log" >&2
                tail -n 20 "$log" >&2
            fi
        done
    fi
    if ((keep_tmp)); then
        echo "callgrind: temporary files kept in $tmp" >&2
    else
        rm -rf "$tmp"
    fi
}
trap cleanup EXIT
# SIGPIPE ignored from there on: when the reader of stderr is gone too
# (Ctrl-C on `scripts/callgrind.sh | tee`), the message must not kill the
# shell before it cleans up.
trap 'trap "" PIPE; echo "callgrind: interrupted" >&2; exit 130' INT
trap 'trap "" PIPE; echo "callgrind: terminated" >&2; exit 143' TERM

# Three distinct free ports, chosen by the OS (held open together so that
# they differ; released just before the servers bind them).
read -r port_up port_gw port_admin < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(3)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in socks])
')

# === 1. the upstream: nginx, GET / -> "hello\n" ===

mkdir -p "$tmp/nginx/temp" "$tmp/mail"
user_line=""
if ((EUID == 0)); then
    # nginx started by root would run its worker as "nobody"; keep it as
    # the current user like everything else here.
    user_line="user $(id -un) $(id -gn);"
fi
cat >"$tmp/nginx/upstream.conf" <<EOF
$user_line
worker_processes 1;
daemon off;
pid $tmp/nginx/upstream.pid;
error_log $tmp/nginx/upstream-error.log warn;

events {
    worker_connections 1024;
}

http {
    access_log off;
    client_body_temp_path $tmp/nginx/temp/body;
    proxy_temp_path $tmp/nginx/temp/proxy;
    fastcgi_temp_path $tmp/nginx/temp/fastcgi;
    uwsgi_temp_path $tmp/nginx/temp/uwsgi;
    scgi_temp_path $tmp/nginx/temp/scgi;
    keepalive_requests 1000000;
    keepalive_timeout 300s;
    server {
        listen 127.0.0.1:$port_up;
        location / {
            default_type text/plain;
            return 200 "hello\\n";
        }
    }
}
EOF
nginx -t -q -p "$tmp/nginx" -e "$tmp/nginx/upstream-error.log" -c "$tmp/nginx/upstream.conf" ||
    die "nginx rejects the generated configuration"
nginx -p "$tmp/nginx" -e "$tmp/nginx/upstream-error.log" -c "$tmp/nginx/upstream.conf" &
pids+=($!)

# Waits until something accepts TCP connections on 127.0.0.1:$1, failing
# early if process $2 died, and after $3 seconds at most.
wait_port() {
    local port=$1 pid=$2 limit=$3 deadline
    deadline=$((SECONDS + limit))
    until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
        kill -0 "$pid" 2>/dev/null || die "the process for port $port exited"
        ((SECONDS < deadline)) || die "nothing listens on port $port after ${limit}s"
        sleep 0.05
    done
}
wait_port "$port_up" "${pids[-1]}" 10

# === 2. the gateway under callgrind ===

origin="http://127.0.0.1:$port_gw"
admin_block=""
if [[ $metrics == on ]]; then
    admin_block="[admin]
listen = \"127.0.0.1:$port_admin\""
fi
groups_route=""
groups_block=""
if ((groups > 0)); then
    groups_route='allow_groups = ["g7"]'
    groups_block=$(python3 -c '
import sys
print("[groups]")
for g in range(int(sys.argv[1])):
    members = ["u%d-g%d@example.com" % (j, g) for j in range(20)]
    if g == 7:
        members.append("callgrind@example.com")
    if g == 20:
        members.append("@example.com")
    print("g%d = [%s]" % (g, ", ".join("\"%s\"" % m for m in members)))
' "$groups")
fi
assertion_block=""
if [[ $assertion == on ]]; then
    "$bin" keys generate --out "$tmp/assertion.pem" 2>"$tmp/keys.txt" ||
        die "portcullis keys generate failed: $(cat "$tmp/keys.txt")"
    assertion_block="[assertion]
signing_key_file = \"$tmp/assertion.pem\""
fi
cat >"$tmp/gateway.toml" <<EOF
[server]
listen = "127.0.0.1:$port_gw"
public_url = "$origin"
shutdown_timeout = "2s"
threads = 1
fast_path = $fast_path
$( ((forward_auth)) && echo 'trusted_proxies = ["127.0.0.1/32"]')

[session]
secret_env = "PORTCULLIS_SECRET"

[login]
allow_domains = ["example.com"]
address_rate = "1000000/1m"
ip_rate = "1000000/1m"
resend_delay = "0s"

[mail]
from = "Portcullis callgrind <callgrind@localhost>"
transport = "file"

[mail.file]
dir = "$tmp/mail"

[store]
backend = "memory"

[[route]]
name = "public"
path = "/public"
upstream = "http://127.0.0.1:$port_up"
access = "public"

[[route]]
name = "signed-in"
path = "/"
upstream = "http://127.0.0.1:$port_up"
access = "authenticated"
$groups_route
$admin_block
$groups_block
$assertion_block
EOF
PORTCULLIS_SECRET=$(head -c 48 /dev/urandom | base64 | tr -d '\n')
export PORTCULLIS_SECRET
"$bin" check --config "$tmp/gateway.toml" >"$tmp/check.txt" 2>&1 ||
    die "portcullis check rejects the generated configuration: $(cat "$tmp/check.txt")"

# valgrind execs the tool in its own process: $! is the gateway's pid, the
# one callgrind_control talks to (through vgdb, which --vgdb=yes allows).
# --dump-instr=no --compress-strings=no: small dumps, any annotator reads them.
echo "== starting $bin under callgrind (slow: a few seconds to a minute)"
RUST_LOG=warn valgrind --tool=callgrind --vgdb=yes \
    --callgrind-out-file="$tmp/callgrind.out" --log-file="$tmp/valgrind.log" \
    "$bin" --config "$tmp/gateway.toml" 2>"$tmp/portcullis.log" &
gw_pid=$!
pids+=("$gw_pid")

# Ready when GET /.portcullis/ready answers (polled: valgrind's start-up
# time depends on the machine): 200, or any answer but 503 (store not
# ready), as builds older than that endpoint send it to the signed-in
# route, which answers 401.
deadline=$((SECONDS + 300))
while :; do
    status=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$origin/.portcullis/ready" 2>/dev/null) || true
    [[ $status != 000 && $status != 503 && -n $status ]] && break
    kill -0 "$gw_pid" 2>/dev/null || die "the gateway under valgrind exited"
    ((SECONDS < deadline)) || die "the gateway is not ready after 300s (last answer: $status)"
    sleep 0.2
done
echo "   ready after $((SECONDS - started))s"

# === 3. a session, by the real sign-in flow ===

# Longer than bench.sh waits for the mail: everything is slow under valgrind.
curl_sign_in "$origin" "$tmp" callgrind@example.com 60

# Both routes answer "hello"; the signed-in one only with the cookie.
expect_hello() {
    local name=$1 url=$2 got
    shift 2
    got=$(curl -sS -w '|%{http_code}' "$@" "$url") || die "$name ($url) did not answer"
    [[ $got == $'hello\n|200' ]] || die "$name ($url) answered ${got##*|} with another body, not 200 \"hello\""
}
expect_hello "public route" "$origin/public"
expect_hello "signed-in route" "$origin/" -H "@$tmp/cookie.header"
status=$(curl -sS -o /dev/null -w '%{http_code}' "$origin/")
[[ $status == 401 ]] || die "the signed-in route without a cookie answered $status, not 401"
if [[ $assertion == on ]]; then
    status=$(curl -sS -o /dev/null -w '%{http_code}' "$origin/.portcullis/jwks.json")
    [[ $status == 200 ]] || die "[assertion] is not on: /.portcullis/jwks.json answered $status"
fi

# === 4. the batches ===

# batch COUNT URL [CURL ARGS...]: COUNT GETs of URL, one after another on
# one keep-alive connection (one curl, COUNT URLs), with no header but Host
# and those in CURL ARGS (as wrk sends them); dies unless every one
# answered 200 and only the first connected. curl runs in the background
# and the shell waits for it, so that Ctrl-C reaches the INT trap at once
# rather than after the batch.
batch() {
    local count=$1 url=$2 cfg="$tmp/batch.curlrc" out="$tmp/batch.out" i rc=0
    shift 2
    for ((i = 0; i < count; i++)); do
        printf 'url = "%s"\noutput = "/dev/null"\n' "$url"
    done >"$cfg"
    curl -s -K "$cfg" -H "User-Agent:" -H "Accept:" -w '%{http_code} %{num_connects}\n' "$@" >"$out" &
    client_pid=$!
    wait "$client_pid" || rc=$?
    client_pid=""
    ((rc == 0)) || die "curl failed (exit $rc) in a batch of $url"
    awk -v n="$count" '
        $1 != 200 { bad++ }
        { connects += $2; lines++ }
        END { exit !(lines == n && bad == 0 && connects == 1) }' "$out" ||
        die "a batch of $count GETs of $url: not $count answers 200 on one connection ($(sort "$out" | uniq -c | tr -s ' \n' ' '))"
}

dumps=0
# counted LABEL COMMAND...: zeroes callgrind's counters, runs COMMAND,
# dumps them; leaves the dump's total Ir in $ir.
counted() {
    local label=$1 file
    shift
    callgrind_control -z "$gw_pid" >"$tmp/control.out" 2>&1 ||
        die "callgrind_control -z failed: $(cat "$tmp/control.out")"
    "$@"
    callgrind_control -d "$label" "$gw_pid" >"$tmp/control.out" 2>&1 ||
        die "callgrind_control -d failed: $(cat "$tmp/control.out")"
    dumps=$((dumps + 1))
    file="$tmp/callgrind.out.$dumps"
    [[ -s $file ]] || die "no callgrind dump at $file after callgrind_control -d"
    # "summary:" holds the events counted since the zero, in the order of
    # "events:" (Ir only here); callgrind_annotate prints it as PROGRAM
    # TOTALS. ("totals:", the sum of the cost lines, is a little larger.)
    ir=$(awk '/^summary:/ { print $2; exit }' "$file")
    [[ $ir =~ ^[0-9]+$ ]] || die "no total in $file"
}

# The figures, with thousands separators.
thousands() {
    LC_ALL=C awk -v x="$1" 'BEGIN {
        s = sprintf("%.0f", x); out = ""
        while (length(s) > 3) { out = "," substr(s, length(s) - 2) out; s = substr(s, 1, length(s) - 3) }
        print s out
    }'
}

warm=$((requests < 200 ? requests : 200))
echo "== $requests requests per batch, one connection, after $warm to warm up"

cookie=(-H "@$tmp/cookie.header")
results=()
kinds=(signed-in public)
((forward_auth)) && kinds+=(forward-auth)
for kind in "${kinds[@]}"; do
    case $kind in
    signed-in) url="$origin/" args=("${cookie[@]}") ;;
    public) url="$origin/public" args=() ;;
    forward-auth)
        url="$origin/.portcullis/auth"
        args=("${cookie[@]}" -H "X-Original-URL: $origin/app" -H "X-Original-Method: GET")
        ;;
    esac
    batch "$warm" "$url" "${args[@]}"
    t0=$SECONDS
    counted "$kind" batch "$requests" "$url" "${args[@]}"
    secs=$((SECONDS - t0))
    per=$(awk -v ir="$ir" -v n="$requests" 'BEGIN { printf "%.0f", ir / n }')
    results+=("$kind|$per|$ir|$secs")
done

# An idle gateway's own work (timers) over as long as a batch took.
idle_secs=1
for r in "${results[@]}"; do
    IFS='|' read -r _ _ _ secs <<<"$r"
    ((secs > idle_secs)) && idle_secs=$secs
done
counted idle sleep "$idle_secs"
idle_ir=$ir

# The session must still be good after the runs.
expect_hello "signed-in route (after the batches)" "$origin/" -H "@$tmp/cookie.header"

echo
for r in "${results[@]}"; do
    IFS='|' read -r kind per ir secs <<<"$r"
    printf '%-10s %s instructions/request   (%s in %s requests, ~%ss)\n' \
        "$kind:" "$(thousands "$per")" "$(thousands "$ir")" "$(thousands "$requests")" "$secs"
done
printf '%-10s %s instructions in %ss with no request (the batches include their share of this)\n' "idle:" "$(thousands "$idle_ir")" "$idle_secs"
echo
echo "binary: $bin; $(valgrind --version), one worker thread, memory store; $((SECONDS - started))s in all"
ok=1
