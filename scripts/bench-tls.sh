#!/usr/bin/env bash
# Benchmark: portcullis against nginx where users run it: TLS, HTTP/2,
# request bodies, new connections and forward-auth, one run on one machine,
# nginx from Debian beside Portcullis in front of the same nginx upstream
# (GET / -> "hello\n"). The targets of docs/performance.md, each printed
# with nginx's figure, the ratio and each side's CPU per request:
#   tls-32, tls-256  TLS 1.3 keep-alive HTTP/1.1, signed-in GET (wrk)
#   h2               HTTP/2 over TLS, 32 connections x 10 streams (h2load)
#   tls-new          a new TLS connection per request (wrk, Connection: close)
#   tls-resumed      a new connection per request, session resumed
#                    (openssl s_time -reuse, 4 clients at once)
#   post-1k, post-1m signed-in POST with a 1 KiB / 1 MiB body, plain HTTP
#   forward-auth     nginx auth_request to Portcullis's /.portcullis/auth,
#                    against nginx auth_request to an nginx answering 200
#                    with an empty body (the floor any auth service reaches
#                    behind nginx)
#   idle-tls         RSS with N idle TLS keep-alive connections
#
# Fairness: the same ECDSA P-256 certificate, TLS 1.3 only, session tickets
# and a session cache on both sides; nginx `worker_processes auto` (one per
# core, as tokio's workers); keep-alive to the upstream on both sides; nginx
# keeps request bodies in memory (client_body_buffer_size 2m) rather than
# in a file; access logs off, RUST_LOG=warn. Everything shares the two
# cores with the load generator: compare ratios within one run.
#
# Usage: scripts/bench-tls.sh [--no-build] [--duration 10s] [--rounds 1]
#          [--connections "32 256"] [--idle 10000] [--only "tls-32 h2 ..."]
#          [--bin PATH] [--keep-tmp]
# --rounds N interleaves nginx and Portcullis N times per target and shows
# the median. Writes bench-results/bench-tls-<date>.md.
# Needs: nginx, wrk, h2load (nghttp2-client), openssl, curl, python3.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
die() {
    echo "bench-tls: $*" >&2
    exit 1
}
# shellcheck source=bench/lib.sh
. "$repo/scripts/bench/lib.sh"

build=1 duration=10s rounds=1 idle=10000 bin="" keep_tmp=0 only=""
connections="32 256"
all_targets="tls-32 tls-256 h2 tls-new tls-resumed post-1k post-1m forward-auth idle-tls"
while (($#)); do
    case "$1" in
    --no-build) build=0 ;;
    --duration) duration=${2:?}; shift ;;
    --rounds) rounds=${2:?}; shift ;;
    --connections) connections=${2:?}; shift ;;
    --idle) idle=${2:?}; shift ;;
    --only) only=${2:?}; shift ;;
    --bin) bin=${2:?}; shift ;;
    --keep-tmp) keep_tmp=1 ;;
    *) die "unknown option $1 (see the head of this script)" ;;
    esac
    shift
done
[[ $duration =~ ^([1-9][0-9]*)s$ ]] || die "--duration looks like 10s"
seconds=${BASH_REMATCH[1]}
[[ $rounds =~ ^[1-9][0-9]*$ ]] || die "--rounds is a positive number"
targets=""
for c in $connections; do targets+="tls-$c "; done
targets+="h2 tls-new tls-resumed post-1k post-1m forward-auth idle-tls"
[[ -n $only ]] && targets=$only
for t in $targets; do
    [[ " $all_targets " == *" $t "* || $t =~ ^tls-[0-9]+$ ]] || die "unknown target $t (one of: $all_targets)"
done
for tool in nginx wrk h2load openssl curl python3; do
    command -v "$tool" >/dev/null || die "$tool is not installed"
done

if [[ -z $bin ]]; then
    bin="${CARGO_TARGET_DIR:-$repo/target}/release/portcullis"
    ((build)) && (cd "$repo" && cargo build --release --quiet --bin portcullis)
fi
[[ -x $bin ]] || die "no portcullis binary at $bin (build it, or pass --bin)"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/portcullis-bench-tls.XXXXXX")
pids=()
cleanup() {
    local pid
    trap - EXIT
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    if ((keep_tmp)); then echo "bench-tls: files kept in $tmp" >&2; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

wait_port() {
    local port=$1 deadline=$((SECONDS + 20))
    until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
        ((SECONDS < deadline)) || die "nothing listens on port $port after 20s"
        sleep 0.05
    done
}

# One ECDSA P-256 certificate for both servers.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
    -keyout "$tmp/key.pem" -out "$tmp/cert.pem" 2>/dev/null

read -r p_up p_ngx p_ngx_tls p_fa_static p_fa_gw p_gw p_gw_tls < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(7)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in socks])
')

user_line=""
((EUID == 0)) && user_line="user $(id -un) $(id -gn);"
mkdir -p "$tmp/nginx/temp"
# nginx_instance NAME SERVERS: one nginx serving the server blocks SERVERS.
nginx_instance() {
    local name=$1
    cat >"$tmp/nginx/$name.conf" <<EOF
$user_line
worker_processes auto;
daemon off;
pid $tmp/nginx/$name.pid;
error_log $tmp/nginx/$name-error.log warn;
worker_rlimit_nofile $((idle * 2 + 4096));
events { worker_connections $((idle * 2 + 4096)); }
http {
    access_log off;
    client_body_temp_path $tmp/nginx/temp/body;
    proxy_temp_path $tmp/nginx/temp/proxy;
    fastcgi_temp_path $tmp/nginx/temp/fastcgi;
    uwsgi_temp_path $tmp/nginx/temp/uwsgi;
    scgi_temp_path $tmp/nginx/temp/scgi;
    keepalive_requests 1000000;
    keepalive_timeout 300s;
    client_max_body_size 4m;
    client_body_buffer_size 2m;
    ssl_protocols TLSv1.3;
    ssl_session_cache shared:SSL:10m;
    ssl_session_tickets on;
$2
}
EOF
    nginx -p "$tmp/nginx" -e "$tmp/nginx/$name-error.log" -c "$tmp/nginx/$name.conf" &
    pids+=($!)
    echo "${pids[-1]}" >"$tmp/nginx/$name.master"
}
upstream_block() { # NAME PORT
    echo "upstream $1 { server 127.0.0.1:$2; keepalive 64; keepalive_requests 1000000; }"
}
proxy_lines='proxy_http_version 1.1; proxy_set_header Connection "";'

# /auth-floor: the static side's auth answer, a 200 with no body as
# Portcullis's is (nginx keeps an auth_request connection only when no body
# is left unread on it).
nginx_instance upstream "server { listen 127.0.0.1:$p_up; location / { default_type text/plain; return 200 \"hello\\n\"; } location = /auth-floor { return 200 \"\"; } }"
nginx_instance proxy "
    $(upstream_block app "$p_up")
    server {
        listen 127.0.0.1:$p_ngx;
        listen 127.0.0.1:$p_ngx_tls ssl http2;
        ssl_certificate $tmp/cert.pem;
        ssl_certificate_key $tmp/key.pem;
        location / { proxy_pass http://app; $proxy_lines }
    }"
# forward_auth_instance NAME PORT AUTH_PORT AUTH_PATH: nginx serving the
# app behind auth_request to 127.0.0.1:AUTH_PORT/AUTH_PATH, as
# deploy/nginx/portcullis.conf does.
forward_auth_instance() {
    nginx_instance "$1" "
    $(upstream_block app "$p_up")
    $(upstream_block auth "$3")
    server {
        listen 127.0.0.1:$2;
        location = /_auth {
            internal;
            proxy_pass http://auth$4;
            $proxy_lines
            proxy_pass_request_body off;
            proxy_set_header Content-Length \"\";
            proxy_set_header Host \$http_host;
            proxy_set_header X-Original-URL \$scheme://\$http_host\$request_uri;
            proxy_set_header X-Original-Method \$request_method;
            proxy_set_header X-Forwarded-For \$remote_addr;
        }
        location / {
            auth_request /_auth;
            auth_request_set \$email \$upstream_http_x_forwarded_email;
            proxy_pass http://app; $proxy_lines
            proxy_set_header X-Forwarded-Email \$email;
        }
    }"
}
forward_auth_instance fa-static "$p_fa_static" "$p_up" "/auth-floor"
forward_auth_instance fa-portcullis "$p_fa_gw" "$p_gw" "/.portcullis/auth"

export PORTCULLIS_SECRET
PORTCULLIS_SECRET=$(head -c 48 /dev/urandom | base64 | tr -d '\n')
mkdir -p "$tmp/gw/mail"
cat >"$tmp/gw/gateway.toml" <<EOF
[server]
listen = "127.0.0.1:$p_gw"
tls_listen = "127.0.0.1:$p_gw_tls"
tls_cert = "$tmp/cert.pem"
tls_key = "$tmp/key.pem"
public_url = "http://127.0.0.1:$p_gw"
trusted_proxies = ["127.0.0.1/32"]

[session]
secret_env = "PORTCULLIS_SECRET"

[login]
allow_domains = ["example.com"]

[mail]
from = "Portcullis bench <bench@localhost>"
transport = "file"

[mail.file]
dir = "$tmp/gw/mail"

[store]
backend = "memory"

[[route]]
name = "public"
path = "/public"
upstream = "http://127.0.0.1:$p_up"
access = "public"

[[route]]
name = "signed-in"
path = "/"
upstream = "http://127.0.0.1:$p_up"
EOF
"$bin" check --config "$tmp/gw/gateway.toml" >"$tmp/gw/check.txt" 2>&1 ||
    die "portcullis check rejects the generated configuration: $(cat "$tmp/gw/check.txt")"
RUST_LOG=warn "$bin" --config "$tmp/gw/gateway.toml" 2>"$tmp/gw/portcullis.log" &
pids+=($!)
echo "${pids[-1]}" >"$tmp/gw/pid"
for p in "$p_up" "$p_ngx" "$p_ngx_tls" "$p_fa_static" "$p_fa_gw" "$p_gw" "$p_gw_tls"; do wait_port "$p"; done
curl_sign_in "http://127.0.0.1:$p_gw" "$tmp/gw" bench@example.com 10
cookie=$(sed -n 's/^Cookie: //p' "$tmp/gw/cookie.header")
# Over HTTPS the same session goes by the cookie name __Host-portcullis.
tls_cookie="__Host-$cookie"
printf 'Cookie: %s\n' "$tls_cookie" >"$tmp/gw/tls-cookie.header"

# Every target answers 200 "hello\n" (Portcullis's only with the cookie).
check() {
    local url=$1 got
    shift
    got=$(curl -sSk -w '|%{http_code}' "$@" "$url") || die "$url did not answer"
    [[ $got == $'hello\n|200' ]] || die "$url answered ${got##*|}, not 200 \"hello\""
}
check "https://127.0.0.1:$p_ngx_tls/" --http2
check "https://127.0.0.1:$p_gw_tls/" --http2 -H "@$tmp/gw/tls-cookie.header"
check "http://127.0.0.1:$p_fa_static/"
check "http://127.0.0.1:$p_fa_gw/" -H "@$tmp/gw/cookie.header"
status=$(curl -sS -o /dev/null -w '%{http_code}' "http://127.0.0.1:$p_fa_gw/")
[[ $status == 401 ]] || die "forward-auth without a cookie answered $status, not 401"

# Each measurement sets: rate (requests/s), p99 (µs, or - ), cpu (µs of the
# measured server's CPU per request: the proxy's master and workers).
pid_nginx=$(cat "$tmp/nginx/proxy.master")
pid_gw=$(cat "$tmp/gw/pid")
ticks_of() { # "PID..."
    local p total=0
    for p in $1; do total=$((total + $(cpu_ticks "$p"))); done
    echo "$total"
}
measure_cpu_start() { cpu0=$(ticks_of "$1"); }
measure_cpu_end() { # "PID..." REQUESTS
    local t
    t=$(($(ticks_of "$1") - cpu0))
    cpu=$(awk -v t="$t" -v n="$2" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.1f", n ? t * 1e6 / hz / n : 0 }')
}
field() { # NAME LINE: the value of NAME=value in LINE
    local v=${2##*" $1="}
    echo "${v%% *}"
}
run_wrk() { # PID URL CONNS [env...]
    local pid=$1 url=$2 conns=$3 line requests dur
    shift 3
    measure_cpu_start "$pid"
    line=$(env "$@" wrk -t 2 -c "$conns" -d "$duration" --timeout 5s -s "$repo/scripts/bench/report.lua" "$url" | grep '^BENCH ') ||
        die "wrk printed no BENCH line against $url"
    requests=$(field requests "$line")
    dur=$(field duration_us "$line")
    [[ $(field non2xx "$line") == 0 ]] || die "non-2xx answers from $url: $line"
    rate=$(awk -v n="$requests" -v d="$dur" 'BEGIN { printf "%.0f", n * 1e6 / d }')
    p99=$(field p99_us "$line")
    measure_cpu_end "$pid" "$requests"
}
run_h2load() { # PID URL [header]
    local pid=$1 url=$2 out="$tmp/h2load.out" log="$tmp/h2load.log" succeeded
    shift 2
    rm -f "$log"
    measure_cpu_start "$pid"
    h2load -c 32 -m 10 -t 2 -D "$seconds" --warm-up-time 1 --log-file "$log" "$@" "$url" >"$out" 2>&1 ||
        die "h2load failed against $url: $(tail -3 "$out")"
    succeeded=$(sed -n 's/^requests: .* \([0-9]*\) succeeded.*/\1/p' "$out")
    grep -q ' 0 failed, 0 errored' "$out" || die "h2load errors against $url: $(grep '^requests' "$out")"
    rate=$(sed -n 's/^finished in [^,]*, \([0-9.]*\) req\/s.*/\1/p' "$out" | cut -d. -f1)
    p99=$(awk '{ print $3 }' "$log" | sort -n | awk '{ v[NR] = $1 } END { print v[int(NR * 0.99)] }')
    measure_cpu_end "$pid" "$succeeded"
}
run_s_time() { # PID PORT PATH: 4 clients, resumed sessions
    local pid=$1 port=$2 path=$3 n=0 i c clients=()
    measure_cpu_start "$pid"
    for i in 1 2 3 4; do
        openssl s_time -connect "127.0.0.1:$port" -reuse -time "$seconds" -www "$path" >"$tmp/s_time.$i" 2>&1 &
        clients+=($!)
    done
    wait "${clients[@]}" || true
    for i in 1 2 3 4; do
        c=$(sed -n 's/^\([0-9]*\) connections in [0-9.]* real seconds.*/\1/p' "$tmp/s_time.$i" | tail -1)
        [[ -n $c ]] || die "openssl s_time printed no count: $(cat "$tmp/s_time.$i")"
        n=$((n + c))
    done
    rate=$((n / seconds))
    p99=-
    measure_cpu_end "$pid" "$n"
}
rss_of() { # PID: KiB of the process and its children
    local total=0 p
    for p in "$1" $(pgrep -P "$1" || true); do
        total=$((total + $(awk '/VmRSS/ {print $2}' "/proc/$p/status")))
    done
    echo "$total"
}
run_idle() { # PID PORT
    local pid=$1 port=$2 holder before
    rm -f "$tmp/hold" && mkfifo "$tmp/hold"
    before=$(rss_of "$pid")
    python3 "$repo/scripts/bench/idle.py" "$idle" "$port" tls /public <"$tmp/hold" >"$tmp/idle.out" 2>&1 &
    holder=$!
    exec 4>"$tmp/hold"
    local deadline=$((SECONDS + 300))
    until grep -q "^open" "$tmp/idle.out"; do
        kill -0 "$holder" 2>/dev/null || die "idle clients: $(cat "$tmp/idle.out")"
        ((SECONDS < deadline)) || die "idle clients: $(cat "$tmp/idle.out")"
        sleep 0.2
    done
    grep -q "^open $idle ok $idle" "$tmp/idle.out" || die "idle clients: $(cat "$tmp/idle.out")"
    rate=$(($(rss_of "$pid") / 1024)) p99=- cpu="$(((rate * 1024 - before) / idle)) KiB/conn"
    exec 4>&-
    wait "$holder" 2>/dev/null || true
}

# one TARGET SIDE: runs TARGET against SIDE (nginx or portcullis).
one() {
    local t=$1 side=$2 pid port url auth=() env=()
    if [[ $side == nginx ]]; then pid=$pid_nginx; else pid=$pid_gw; auth=(-H "cookie: $tls_cookie"); env=(BENCH_COOKIE="$tls_cookie"); fi
    case $t in
    tls-*[0-9])
        if [[ $side == nginx ]]; then port=$p_ngx_tls; else port=$p_gw_tls; fi
        run_wrk "$pid" "https://127.0.0.1:$port/" "${t#tls-}" "${env[@]}" ;;
    h2)
        if [[ $side == nginx ]]; then port=$p_ngx_tls; else port=$p_gw_tls; fi
        run_h2load "$pid" "https://127.0.0.1:$port/" "${auth[@]}" ;;
    tls-new)
        if [[ $side == nginx ]]; then port=$p_ngx_tls; else port=$p_gw_tls; fi
        run_wrk "$pid" "https://127.0.0.1:$port/" 32 "${env[@]}" BENCH_CLOSE=1 ;;
    tls-resumed)
        if [[ $side == nginx ]]; then run_s_time "$pid" "$p_ngx_tls" /; else run_s_time "$pid" "$p_gw_tls" /public; fi ;;
    post-1k | post-1m)
        [[ $side == nginx ]] || env=(BENCH_COOKIE="$cookie")
        local bytes=1024
        [[ $t == post-1m ]] && bytes=1048576
        if [[ $side == nginx ]]; then port=$p_ngx; else port=$p_gw; fi
        run_wrk "$pid" "http://127.0.0.1:$port/" 32 "${env[@]}" BENCH_BODY_BYTES=$bytes ;;
    forward-auth)
        [[ $side == nginx ]] || env=(BENCH_COOKIE="$cookie")
        # The CPU is the whole chain's: the front nginx, the upstream
        # (which also answers the question on the static side) and, on
        # Portcullis's side, Portcullis.
        if [[ $side == nginx ]]; then
            pid="$(cat "$tmp/nginx/fa-static.master") $(cat "$tmp/nginx/upstream.master")" port=$p_fa_static
        else
            pid="$(cat "$tmp/nginx/fa-portcullis.master") $(cat "$tmp/nginx/upstream.master") $pid_gw" port=$p_fa_gw
        fi
        run_wrk "$pid" "http://127.0.0.1:$port/" 32 "${env[@]}" ;;
    idle-tls)
        if [[ $side == nginx ]]; then run_idle "$pid" "$p_ngx_tls"; else run_idle "$pid" "$p_gw_tls"; fi ;;
    esac
}

median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
declare -A r_rate r_p99 r_cpu
for ((round = 1; round <= rounds; round++)); do
    for t in $targets; do
        for side in nginx portcullis; do
            echo "== round $round: $t, $side" >&2
            one "$t" "$side"
            r_rate[$t.$side]+="$rate "
            r_p99[$t.$side]+="$p99 "
            r_cpu[$t.$side]+="${cpu%% *} "
            [[ $t == idle-tls ]] && r_cpu[$t.$side]="$cpu"
        done
    done
done

mkdir -p "$repo/bench-results"
out="$repo/bench-results/bench-tls-$(date -u +%Y%m%d-%H%M%S).md"
{
    echo "# scripts/bench-tls.sh, $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo
    echo "- portcullis: $(git -C "$repo" describe --always --dirty 2>/dev/null || echo unknown), $bin"
    echo "- nginx: $(nginx -v 2>&1 | sed 's/.*: //'), worker_processes auto; $(nproc) cores; $duration per run, $rounds round(s), median shown"
    echo "- rate in requests/s (idle-tls: RSS in MiB, lower is better); cpu in µs of the server's CPU per request (idle-tls: KiB per connection)"
    echo
    echo "| target | nginx | portcullis | ratio | p99 nginx µs | p99 portcullis µs | p99 ratio | cpu nginx | cpu portcullis |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    for t in $targets; do
        n=$(median <<<"${r_rate[$t.nginx]}") g=$(median <<<"${r_rate[$t.portcullis]}")
        np=$(median <<<"${r_p99[$t.nginx]}") gp=$(median <<<"${r_p99[$t.portcullis]}")
        ratio=$(awk -v a="$g" -v b="$n" 'BEGIN { printf "%.2f", b ? a / b : 0 }')
        pr=-
        [[ $np =~ ^[0-9]+$ && $gp =~ ^[0-9]+$ ]] && pr=$(awk -v a="$gp" -v b="$np" 'BEGIN { printf "%.2f", b ? a / b : 0 }')
        nc=${r_cpu[$t.nginx]} gc=${r_cpu[$t.portcullis]}
        [[ $t != idle-tls ]] && nc=$(median <<<"$nc") gc=$(median <<<"$gc")
        echo "| $t | $n | $g | $ratio | $np | $gp | $pr | $nc | $gc |"
    done
} | tee "$out"
echo "bench-tls: table written to $out" >&2
