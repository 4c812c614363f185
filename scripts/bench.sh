#!/usr/bin/env bash
# Benchmark: portcullis against nginx as a plain reverse proxy, on one
# machine, with one load generator (wrk).
#
# Targets, all in front of the same tiny nginx upstream (GET / -> "hello\n"):
#   (a) nginx upstream, directly            (baseline, informational)
#   (b) nginx reverse proxy -> upstream     (the reference for the ratio)
#   (c) portcullis public route -> upstream
#   (d) portcullis signed-in route -> upstream, with a session cookie
#       obtained by the real email sign-in flow (curl + the mail file)
#
# Fairness choices (also printed with the results):
# - nginx runs `worker_processes auto` (= one worker per core), the same
#   number of threads tokio gives portcullis by default. The upstream and
#   the proxy are two nginx instances, so that the proxy's CPU is counted
#   on its own; the upstream instance serves every run.
# - Keep-alive everywhere: wrk keeps its connections, nginx's proxy keeps
#   up to 64 idle upstream connections (proxy_http_version 1.1, Connection
#   ""), keepalive_requests is raised so nginx does not close connections
#   every 1000 requests (portcullis has no such limit).
# - nginx access logs are off and portcullis runs with RUST_LOG=warn, so
#   per-request logging does not dominate either.
# - wrk runs on the same cores as the servers: it competes with them, the
#   same way for every target. Absolute numbers are low; ratios are the point.
#
# Usage: scripts/bench.sh [--no-build] [--connections "32 256"]
#          [--duration 10s] [--warmup 2s] [--threads 2] [--rounds 1]
#          [--store memory|redis] [--bin PATH] [--keep-tmp]
#          [--pgo] [--bolt] [--pgo-bin PATH] [--metrics] [--identity]
# --pgo also runs the profile-guided build (scripts/build-pgo.sh, built
# unless --no-build; or the binary --pgo-bin names) beside the plain
# release build, as two more targets in the same rounds. --bolt does the
# same with the PGO build laid out again by BOLT (scripts/build-pgo.sh
# --bolt, target/pgo-bolt/portcullis); the targets are then named
# "PGO+BOLT".
# --identity also runs the same binary with 30 groups (the signed-in user
# in two of them, the route's allow_groups naming one) and [assertion]
# (an ES256 key from `portcullis keys generate`), as two more targets
# ("+groups+assertion"): what groups and the signed identity cost.
# --metrics also runs the same binary with `[admin] listen` set, so that
# it counts the request metrics (portcullis_requests_total, the duration
# histogram, in flight), as two more targets ("+metrics") in the same
# rounds: the cost of the metrics is the difference to the plain targets,
# to be read against the spread.
# --rounds N runs the whole set of targets N times, interleaved, and reports
# for each target the run with the median requests/s (and the spread), which
# evens out other work that comes and goes on a shared machine, and each
# round's ratio to nginx proxy's run of the same round (requests/s and p99),
# with the median of those ratios.
# Needs: wrk, nginx (Debian packages), curl, python3; redis-server for
# --store redis. Writes bench-results/bench-<date>.md in the repository.

set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
lua="$repo/scripts/bench/report.lua"

build=1
connections="32 256"
duration="10s"
warmup="2s"
threads=2
rounds=1
store="memory"
bin=""
given_bin=0
keep_tmp=0
pgo=0
bolt=0
pgo_bin=""
metrics=0
identity=0

usage() {
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '/^set -euo/d' -e 's/^# \{0,1\}//'
}

die() {
    echo "bench: $*" >&2
    exit 1
}
# shellcheck source=bench/lib.sh
. "$repo/scripts/bench/lib.sh"

while [[ $# -gt 0 ]]; do
    case "$1" in
    --no-build) build=0 ;;
    --connections) connections=${2:?--connections needs a value}; shift ;;
    --duration) duration=${2:?--duration needs a value}; shift ;;
    --warmup) warmup=${2:?--warmup needs a value}; shift ;;
    --threads) threads=${2:?--threads needs a value}; shift ;;
    --rounds) rounds=${2:?--rounds needs a value}; shift ;;
    --store) store=${2:?--store needs a value}; shift ;;
    --bin) bin=${2:?--bin needs a value}; given_bin=1; shift ;;
    --keep-tmp) keep_tmp=1 ;;
    --pgo) pgo=1 ;;
    --bolt) pgo=1; bolt=1 ;;
    --pgo-bin) pgo_bin=${2:?--pgo-bin needs a value}; pgo=1; shift ;;
    --metrics) metrics=1 ;;
    --identity) identity=1 ;;
    -h | --help) usage; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
    esac
    shift
done

[[ $store == memory || $store == redis ]] || die "--store is memory or redis, not $store"
[[ $threads =~ ^[1-9][0-9]*$ ]] || die "--threads is a positive number"
[[ $rounds =~ ^[1-9][0-9]*$ ]] || die "--rounds is a positive number"
for c in $connections; do
    [[ $c =~ ^[1-9][0-9]*$ ]] || die "--connections is a list of positive numbers, not $c"
    ((c >= threads)) || die "wrk needs at least as many connections ($c) as threads ($threads)"
done
[[ $duration =~ ^[1-9][0-9]*[smh]?$ ]] || die "--duration looks like 10s"
[[ $warmup =~ ^[0-9]+[smh]?$ ]] || die "--warmup looks like 2s (0 for none)"

needed=(wrk nginx curl python3)
[[ $store == redis ]] && needed+=(redis-server)
for tool in "${needed[@]}"; do
    command -v "$tool" >/dev/null || die "$tool is not installed"
done

# === processes and cleanup ===

tmp=$(mktemp -d "${TMPDIR:-/tmp}/portcullis-bench.XXXXXX")
pids=()
wrk_pid=""
bench_line=""
ok=0

cleanup() {
    local pid deadline
    trap - EXIT INT TERM
    local all=(${wrk_pid:+"$wrk_pid"} "${pids[@]}")
    for pid in "${all[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    deadline=$((SECONDS + 5))
    for pid in "${all[@]}"; do
        while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do
            sleep 0.05
        done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    if ((ok == 0)); then
        for log in "$tmp"/release/portcullis.log "$tmp"/pgo/portcullis.log "$tmp"/metrics/portcullis.log "$tmp"/identity/portcullis.log "$tmp"/nginx/*-error.log "$tmp/redis.log"; do
            if [[ -s $log ]]; then
                echo "--- last lines of $log" >&2
                tail -n 20 "$log" >&2
            fi
        done
    fi
    if ((keep_tmp)); then
        echo "bench: temporary files kept in $tmp" >&2
    else
        rm -rf "$tmp"
    fi
}
trap cleanup EXIT
trap 'echo "bench: interrupted" >&2; exit 130' INT
trap 'echo "bench: terminated" >&2; exit 143' TERM

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

# Six distinct free ports, chosen by the OS (held open together so that
# they differ; released just before the servers bind them).
read -r port_up port_proxy port_gw port_pgo port_met port_met_admin port_id < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(7)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in socks])
')

# The soft limit on open files up to the hard one: wrk and the servers hold
# two descriptors per connection.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# === 1. build ===

if [[ -z $bin ]]; then
    bin="${CARGO_TARGET_DIR:-$repo/target}/release/portcullis"
    if ((build)); then
        echo "== cargo build --release"
        (cd "$repo" && cargo build --release --bin portcullis)
    fi
fi
[[ -x $bin ]] || die "no portcullis binary at $bin (build it, or pass --bin)"
pgo_name="PGO"
((bolt)) && pgo_name="PGO+BOLT"
pgo_args=()
((bolt)) && pgo_args=(--bolt)
if ((pgo)) && [[ -z $pgo_bin ]]; then
    if ((bolt)); then
        pgo_bin="${CARGO_TARGET_DIR:-$repo/target}/pgo-bolt/portcullis"
    else
        pgo_bin="${CARGO_TARGET_DIR:-$repo/target}/pgo/release/portcullis"
    fi
    if ((build)); then
        echo "== scripts/build-pgo.sh ${pgo_args[*]}"
        "$repo/scripts/build-pgo.sh" "${pgo_args[@]}" >/dev/null
    fi
fi
if ((pgo)); then
    [[ -x $pgo_bin ]] || die "no PGO build at $pgo_bin (scripts/build-pgo.sh, or pass --pgo-bin)"
fi

# === 2. nginx: upstream on port_up, reverse proxy on port_proxy ===

mkdir -p "$tmp/nginx/logs" "$tmp/nginx/temp"
user_line=""
if ((EUID == 0)); then
    # nginx started by root would run its workers as "nobody"; keep them
    # as the current user like everything else here.
    user_line="user $(id -un) $(id -gn);"
fi
# nginx_instance NAME PORT SERVERS: one nginx (master and workers) serving
# the server blocks SERVERS on PORT, its files named NAME.
nginx_instance() {
    local name=$1 port=$2 servers=$3
    cat >"$tmp/nginx/$name.conf" <<EOF
$user_line
worker_processes auto;
daemon off;
pid $tmp/nginx/$name.pid;
error_log $tmp/nginx/$name-error.log warn;

events {
    worker_connections 8192;
}

http {
    access_log off;
    client_body_temp_path $tmp/nginx/temp/body;
    proxy_temp_path $tmp/nginx/temp/proxy;
    fastcgi_temp_path $tmp/nginx/temp/fastcgi;
    uwsgi_temp_path $tmp/nginx/temp/uwsgi;
    scgi_temp_path $tmp/nginx/temp/scgi;
    keepalive_requests 1000000;
    keepalive_timeout 65s;
$servers
}
EOF
    nginx -t -q -p "$tmp/nginx" -e "$tmp/nginx/$name-error.log" -c "$tmp/nginx/$name.conf" ||
        die "nginx rejects the generated configuration ($name)"
    nginx -p "$tmp/nginx" -e "$tmp/nginx/$name-error.log" -c "$tmp/nginx/$name.conf" &
    pids+=($!)
    echo "${pids[-1]}" >"$tmp/nginx/$name.master"
    wait_port "$port" "${pids[-1]}" 10
}

# The application: a small fixed answer to every path.
nginx_instance upstream "$port_up" "
    server {
        listen 127.0.0.1:$port_up;
        location / {
            default_type text/plain;
            return 200 \"hello\\n\";
        }
    }"
# The reference: nginx as a plain reverse proxy, an instance of its own so
# that its CPU is counted apart from the upstream's.
nginx_instance proxy "$port_proxy" "
    upstream app {
        server 127.0.0.1:$port_up;
        keepalive 64;
        keepalive_requests 1000000;
    }
    server {
        listen 127.0.0.1:$port_proxy;
        location / {
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
        }
    }"

# === 3. portcullis: one gateway per build, each signed in ===

store_block='backend = "memory"'
if [[ $store == redis ]]; then
    mkdir -p "$tmp/redis"
    redis-server --port 0 --unixsocket "$tmp/redis.sock" --unixsocketperm 700 \
        --dir "$tmp/redis" --save "" --appendonly no --logfile "$tmp/redis.log" &
    pids+=($!)
    deadline=$((SECONDS + 10))
    until [[ -S $tmp/redis.sock ]]; do
        kill -0 "${pids[-1]}" 2>/dev/null || die "redis-server exited"
        ((SECONDS < deadline)) || die "redis-server has no socket after 10s"
        sleep 0.05
    done
fi

PORTCULLIS_SECRET=$(head -c 48 /dev/urandom | base64 | tr -d '\n')
export PORTCULLIS_SECRET


# gateway NAME BIN PORT: starts BIN on PORT with its own config, mail
# directory (and key prefix in Redis), signs in through the real email
# flow, and leaves the origin in $tmp/NAME/origin and the session cookie
# in $tmp/NAME/cookie.header (a file, so it is on no command line).
gateway() {
    local name=$1 gw_bin=$2 port=$3 extra=${4:-} dir="$tmp/$1" origin block=$store_block
    mkdir -p "$dir/mail"
    origin="http://127.0.0.1:$port"
    if [[ $store == redis ]]; then
        block="backend = \"redis\"
url = \"redis+unix://$tmp/redis.sock\"
key_prefix = \"bench-$name:\""
    fi
    cat >"$dir/gateway.toml" <<EOF
[server]
listen = "127.0.0.1:$port"
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
from = "Portcullis bench <bench@localhost>"
transport = "file"

[mail.file]
dir = "$dir/mail"

[store]
$block

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
$extra
EOF
    "$gw_bin" check --config "$dir/gateway.toml" >"$dir/check.txt" 2>&1 ||
        die "portcullis check rejects the generated configuration: $(cat "$dir/check.txt")"
    RUST_LOG=warn "$gw_bin" --config "$dir/gateway.toml" 2>"$dir/portcullis.log" &
    pids+=($!)
    echo "${pids[-1]}" >"$dir/pid"
    wait_port "$port" "${pids[-1]}" 20

    # The sign-in flow, as a browser does it.
    curl_sign_in "$origin" "$dir" bench@example.com 10
    echo "$origin" >"$dir/origin"
}

gateways=(release)
gateway release "$bin" "$port_gw"
if ((pgo)); then
    gateways+=(pgo)
    gateway pgo "$pgo_bin" "$port_pgo"
fi
if ((identity)); then
    gateways+=(identity)
    mkdir -p "$tmp/identity"
    "$bin" keys generate --out "$tmp/identity/assertion.pem" >/dev/null ||
        die "portcullis keys generate failed"
    groups_lines=$(for i in $(seq 1 28); do echo "team$i = [\"member$i@example.com\", \"@team$i.example.com\"]"; done)
    gateway identity "$bin" "$port_id" "allow_groups = [\"ops\"]

[groups]
ops = [\"bench@example.com\"]
dev = [\"@example.com\"]
$groups_lines

[assertion]
signing_key_file = \"$tmp/identity/assertion.pem\""
fi
if ((metrics)); then
    gateways+=(metrics)
    gateway metrics "$bin" "$port_met" "[admin]
listen = \"127.0.0.1:$port_met_admin\""
fi

# === checks before the runs ===

# Each target answers 200 "hello\n"; the signed-in route only with the cookie.
expect_hello() {
    local name=$1 url=$2 got
    shift 2
    got=$(curl -sS -w '|%{http_code}' "$@" "$url") || die "$name ($url) did not answer"
    [[ $got == $'hello\n|200' ]] || die "$name ($url) answered ${got##*|} with another body, not 200 \"hello\""
}
expect_hello "nginx upstream" "http://127.0.0.1:$port_up/"
expect_hello "nginx proxy" "http://127.0.0.1:$port_proxy/"
for gw in "${gateways[@]}"; do
    origin=$(cat "$tmp/$gw/origin")
    expect_hello "portcullis $gw public" "$origin/public"
    expect_hello "portcullis $gw signed-in" "$origin/" -H "@$tmp/$gw/cookie.header"
    # Without it: 401 for a client that does not ask for HTML, 303 to the
    # sign-in page for a browser.
    status=$(curl -sS -o /dev/null -w '%{http_code}' "$origin/")
    [[ $status == 401 ]] || die "portcullis $gw signed-in route without a cookie answered $status, not 401"
    status=$(curl -sS -o /dev/null -w '%{http_code}' -H 'Accept: text/html' "$origin/")
    [[ $status == 303 ]] || die "portcullis $gw signed-in route without a cookie answered $status to a browser, not 303"
done

# === 5. the runs ===

targets=(
    "nginx upstream (direct)|http://127.0.0.1:$port_up/||"
    "nginx proxy|http://127.0.0.1:$port_proxy/||$tmp/nginx/proxy.master"
)
# Each gateway's targets; the third field names the gateway whose session
# cookie the run sends, the fourth the file with the pid of the proxy whose
# CPU the run counts.
release_origin=$(cat "$tmp/release/origin")
targets+=(
    "portcullis public|$release_origin/public||$tmp/release/pid"
    "portcullis signed-in|$release_origin/|release|$tmp/release/pid"
)
if ((pgo)); then
    pgo_origin=$(cat "$tmp/pgo/origin")
    targets+=(
        "portcullis $pgo_name public|$pgo_origin/public||$tmp/pgo/pid"
        "portcullis $pgo_name signed-in|$pgo_origin/|pgo|$tmp/pgo/pid"
    )
fi
if ((identity)); then
    id_origin=$(cat "$tmp/identity/origin")
    targets+=(
        "portcullis +groups+assertion public|$id_origin/public||$tmp/identity/pid"
        "portcullis +groups+assertion signed-in|$id_origin/|identity|$tmp/identity/pid"
    )
fi
if ((metrics)); then
    met_origin=$(cat "$tmp/metrics/origin")
    targets+=(
        "portcullis +metrics public|$met_origin/public||$tmp/metrics/pid"
        "portcullis +metrics signed-in|$met_origin/|metrics|$tmp/metrics/pid"
    )
fi

# run_wrk URL GATEWAY DURATION CONNECTIONS: sets bench_line; with GATEWAY
# (not empty) the run sends that gateway's session cookie, passed to the
# wrk script in the environment (BENCH_COOKIE) rather than on its command
# line. wrk runs in
# the background and the shell waits for it, so that Ctrl-C reaches the INT
# trap at once (a foreground wrk catches SIGINT itself, prints its partial
# results and exits 0, and the script would go on).
run_wrk() {
    local url=$1 cookie=$2 dur=$3 conns=$4 out="$tmp/wrk.out" rc=0
    local value=""
    if [[ -n $cookie ]]; then
        value=$(sed -n 's/^Cookie: //p' "$tmp/$cookie/cookie.header")
    fi
    BENCH_COOKIE="$value" wrk -t "$threads" -c "$conns" -d "$dur" --timeout 5s -s "$lua" "$url" >"$out" 2>&1 &
    wrk_pid=$!
    wait "$wrk_pid" || rc=$?
    wrk_pid=""
    ((rc == 0)) || die "wrk failed (exit $rc) against $url: $(cat "$out")"
    bench_line=$(grep '^BENCH ' "$out") || die "wrk printed no BENCH line against $url: $(cat "$out")"
}

clk_tck=$(getconf CLK_TCK)

# The value of key $1 in BENCH line $2.
val() {
    sed -n "s/.* $1=\([0-9]*\).*/\1/p" <<<"$2"
}

# Other work on the machine skews everything: record the load around the runs.
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
results=()
# "round|name|connections|req/s|p99 µs" of every run, for the ratios round
# by round.
by_round=()
# "name|connections|µs" of every run: the proxy's CPU per request.
cpu_runs=()
echo "== wrk: $threads threads, duration $duration (warm-up $warmup), connections: $connections, rounds: $rounds"
for ((round = 1; round <= rounds; round++)); do
for c in $connections; do
    for t in "${targets[@]}"; do
        IFS='|' read -r name url cookie cpu <<<"$t"
        if [[ $warmup != 0 && $warmup != 0[smh] ]]; then
            run_wrk "$url" "$cookie" "$warmup" "$c"
        fi
        [[ -n $cpu ]] && ticks_before=$(cpu_ticks "$(cat "$cpu")")
        run_wrk "$url" "$cookie" "$duration" "$c"
        [[ -n $cpu ]] && ticks=$(($(cpu_ticks "$(cat "$cpu")") - ticks_before))
        line=$bench_line
        requests=$(val requests "$line")
        bad=$(val non2xx "$line")
        errors=$(($(val connect "$line") + $(val read "$line") + $(val write "$line") + $(val timeout "$line")))
        ((requests > 0)) || die "$name, $c connections: wrk completed no request"
        ((bad == 0)) || die "$name, $c connections: $bad of $requests responses were not 2xx"
        ((errors == 0)) || die "$name, $c connections: socket errors ($line)"
        rps=$(awk -v n="$requests" -v us="$(val duration_us "$line")" 'BEGIN { printf "%.0f", n / (us / 1e6) }')
        cpu_us=""
        [[ -n $cpu ]] && cpu_us=$(awk -v t="$ticks" -v hz="$clk_tck" -v n="$requests" 'BEGIN { printf "%.1f", t / hz * 1e6 / n }')
        results+=("$name|$c|$rps|$line")
        by_round+=("$round|$name|$c|$rps|$(val p99_us "$line")")
        [[ -n $cpu_us ]] && cpu_runs+=("$name|$c|$cpu_us")
        printf '  round %s  %-26s c=%-4s %8s req/s%s\n' "$round" "$name" "$c" "$rps" "${cpu_us:+   $cpu_us µs CPU/request}"
    done
done
done
# The session must still be good after the runs (no silent expiry).
for gw in "${gateways[@]}"; do
    expect_hello "portcullis $gw signed-in (after the runs)" "$(cat "$tmp/$gw/origin")/" -H "@$tmp/$gw/cookie.header"
done

load_after=$(cut -d' ' -f1-3 /proc/loadavg)

# === 6. the table ===

ms() {
    awk -v us="$1" 'BEGIN { printf "%.2f ms", us / 1000 }'
}

# An awk function for the programs below: the median of v[0..n-1] (the
# mean of the two middle values for an even n); sorts v in place.
awk_median='
    function median(v, n,    i, j, x) {
        # insertion sort: a handful of rounds
        for (i = 1; i < n; i++) for (j = i; j > 0 && v[j - 1] > v[j]; j--) { x = v[j]; v[j] = v[j - 1]; v[j - 1] = x }
        return n % 2 ? v[(n - 1) / 2] : (v[n / 2 - 1] + v[n / 2]) / 2
    }'

# round_ratios NAME CONNECTIONS FIELD: each round's figure of NAME over
# nginx proxy's in the same round (FIELD 4: requests/s, 5: p99), then the
# median of those ratios. The targets of a round run minutes apart at most,
# so the ratios show how much of a difference is the machine's drift, and
# their median is the figure least moved by it.
round_ratios() {
    [[ $1 == portcullis* ]] || { echo "—"; return; }
    printf '%s\n' "${by_round[@]}" | awk -F'|' -v name="$1" -v c="$2" -v f="$3" "$awk_median"'
        $3 == c && $2 == "nginx proxy" { base[$1] = $f }
        $3 == c && $2 == name { mine[$1] = $f }
        END {
            n = 0
            for (r = 1; r in mine; r++) {
                if (!(r in base) || base[r] <= 0) continue
                v[n] = mine[r] / base[r]
                out = out (n ? ", " : "") sprintf("%.2f×", v[n])
                n++
            }
            if (!n) { print "—"; exit }
            printf "%s (median %.2f×)\n", out, median(v, n)
        }'
}

# cpu_median NAME CONNECTIONS: the median over the rounds of the proxy's CPU
# per request (µs) in NAME's runs, or nothing.
cpu_median() {
    printf '%s\n' "${cpu_runs[@]}" | awk -F'|' -v name="$1" -v c="$2" "$awk_median"'
        $1 == name && $2 == c { v[n++] = $3 }
        END {
            if (!n) exit
            print median(v, n)
        }'
}

spread_head="" spread_rule=""
if ((rounds > 1)); then
    spread_head=" req/s over $rounds rounds (min–max) | vs nginx proxy round by round | p99 vs nginx proxy round by round |"
    spread_rule="---:|---|---|"
fi
table="| target | connections | requests/s | p50 | p99 | vs nginx proxy | proxy CPU per request | CPU vs nginx proxy |$spread_head
|---|---:|---:|---:|---:|---:|---:|---:|$spread_rule"
for c in $connections; do
    proxy_rps="" proxy_cpu=""
    for t in "${targets[@]}"; do
        IFS='|' read -r name _ _ <<<"$t"
        # This target's runs at $c connections, slowest first; the median one.
        mapfile -t runs < <(
            for r in "${results[@]}"; do
                [[ $r == "$name|$c|"* ]] && echo "${r#"$name|$c|"}"
            done | sort -n -t'|' -k1,1
        )
        IFS='|' read -r rps line <<<"${runs[$(((${#runs[@]} - 1) / 2))]}"
        [[ $name == "nginx proxy" ]] && proxy_rps=$rps
        ratio="—"
        if [[ $name == portcullis* && -n $proxy_rps ]]; then
            ratio=$(awk -v a="$rps" -v b="$proxy_rps" 'BEGIN { printf "%.2f×", a / b }')
        fi
        cpu_us=$(cpu_median "$name" "$c")
        [[ $name == "nginx proxy" ]] && proxy_cpu=$cpu_us
        cpu_cell="—" cpu_ratio="—"
        [[ -n $cpu_us ]] && cpu_cell=$(awk -v u="$cpu_us" 'BEGIN { printf "%.1f µs", u }')
        if [[ $name == portcullis* && -n $cpu_us && -n $proxy_cpu ]]; then
            cpu_ratio=$(awk -v a="$cpu_us" -v b="$proxy_cpu" 'BEGIN { printf "%.2f×", a / b }')
        fi
        spread=""
        if ((rounds > 1)); then
            spread=" ${runs[0]%%|*}–${runs[-1]%%|*} | $(round_ratios "$name" "$c" 4) | $(round_ratios "$name" "$c" 5) |"
        fi
        table+="
| $name | $c | $rps | $(ms "$(val p50_us "$line")") | $(ms "$(val p99_us "$line")") | $ratio | $cpu_cell | $cpu_ratio |$spread"
    done
done

model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
commit=$(git -C "$repo" describe --always --dirty 2>/dev/null || echo unknown)
# A binary given with --bin may come from any checkout.
((given_bin)) && commit="(not this checkout's build: --bin)"
stamp=$(date -u +%Y%m%d-%H%M%S)
mkdir -p "$repo/bench-results"
outfile="$repo/bench-results/bench-$stamp.md"
{
    echo "# portcullis benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo
    echo "- machine: $(nproc) cores, ${model:-unknown CPU}, $(uname -srm)"
    echo "- portcullis: checkout $commit, binary $bin (cargo build --release), store: $store, RUST_LOG=warn (per-request logging off)"
    if ((bolt)); then
        echo "- portcullis PGO+BOLT: binary $pgo_bin (scripts/build-pgo.sh --bolt: the same source, built with -Cprofile-use after a training run, then laid out by llvm-bolt after a second one)"
    elif ((pgo)); then
        echo "- portcullis PGO: binary $pgo_bin (scripts/build-pgo.sh: the same source, built with -Cprofile-use after a training run)"
    fi
    if ((identity)); then
        echo "- portcullis +groups+assertion: the same binary with 30 groups (the user in ops and dev; the signed-in route allow_groups = [\"ops\"]) and [assertion] (ES256), so every signed-in request carries X-Forwarded-Groups and X-Portcullis-Jwt-Assertion"
    fi
    if ((metrics)); then
        echo "- portcullis +metrics: the same binary with \`[admin] listen\` set (request metrics counted)"
    fi
    echo "- nginx: $(nginx -v 2>&1 | sed 's/^nginx version: //'), worker_processes auto ($(nproc) workers), access_log off, upstream keepalive 64"
    echo "- load: $(wrk --version 2>&1 | head -n 1 | cut -d' ' -f1-2), $threads threads, ${duration} per run after a ${warmup} warm-up, keep-alive connections, $rounds round(s) (the median run is shown)"
    echo "- wrk runs on the same $(nproc) cores as the servers and competes with them, the same way for every target"
    echo "- proxy CPU per request: user and system time of the proxy alone (nginx proxy's master and workers, or the gateway) over the run, divided by its requests; the median over the rounds (the upstream and wrk not counted)"
    echo "- load average (1, 5, 15 min): $load_before before the runs (other work on the machine skews the numbers), $load_after after (includes wrk and the servers themselves)"
    echo "- upstream: nginx \`return 200 \"hello\\n\"\`; every run checked: 0 non-2xx responses, 0 socket errors"
    echo
    echo "$table"
} >"$outfile"

echo
cat "$outfile"
echo
echo "written to ${outfile#"$repo"/}"
ok=1
