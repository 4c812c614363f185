#!/usr/bin/env bash
# Sign-in flood (issue 16, item 2): one client floods POST
# /.portcullis/login with new addresses for DURATION (default 20 s), with
# the default [login] limits, against the release binary:
#   1. memory store: RSS before and after (must grow by less than 32 MiB);
#   2. Redis store (its own redis-server on a unix socket): RSS, and the
#      number of keys before and after (bounded: printed);
#   3. the cost of one stored sign-in: memory store with the IP limits
#      lifted and max_pending = 20000, flooded until the cap holds; RSS
#      growth / stored sign-ins (the figure behind the README's worst case).
# Usage: scripts/bench-flood.sh [--no-build] [--duration 20s] [--bin PATH]
# Needs: redis-server, redis-cli, wrk, curl, python3. Ports come from the OS.
set -euo pipefail
cd "$(dirname "$0")/.."

build=1 duration=20s bin=""
while (($#)); do
    case "$1" in
    --no-build) build=0 ;;
    --duration) duration=${2:?}; shift ;;
    --bin) bin=${2:?}; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
if [[ -z $bin ]]; then
    if [[ $build == 1 ]]; then cargo build --release --quiet; fi
    bin="${CARGO_TARGET_DIR:-target}/release/portcullis"
fi
[[ -x $bin ]] || { echo "no binary at $bin (build first)" >&2; exit 1; }

tmp=$(mktemp -d)
gwpid=""
cleanup() {
    [[ -n $gwpid ]] && kill "$gwpid" 2>/dev/null || true
    [[ -f $tmp/redis.pid ]] && kill "$(cat "$tmp/redis.pid")" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

# shellcheck source=bench/lib.sh
. scripts/bench/lib.sh
export PORTCULLIS_SECRET=bench-secret-bench-secret-bench-secret-0123456789

wait_port() {
    local port=$1 deadline=$((SECONDS + 20))
    until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
        ((SECONDS < deadline)) || { echo "port $port never opened" >&2; exit 1; }
        sleep 0.01
    done
}
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }

# An upstream that is never reached (every request here is a sign-in POST).
up=$(free_port)

# start_gateway STORE_BLOCK LOGIN_LINES: starts the gateway, sets $gwpid
# and $origin.
start_gateway() {
    local port
    port=$(free_port)
    mkdir -p "$tmp/mail"
    cat >"$tmp/gw.toml" <<TOML
[server]
listen = "127.0.0.1:$port"
public_url = "http://127.0.0.1:$port"
[session]
secret_env = "PORTCULLIS_SECRET"
[login]
$2
[mail]
transport = "file"
[mail.file]
dir = "$tmp/mail"
$1
[[route]]
path = "/"
upstream = "http://127.0.0.1:$up"
TOML
    RUST_LOG=warn "$bin" --config "$tmp/gw.toml" 2>"$tmp/gw.log" &
    gwpid=$!
    wait_port "$port"
    origin="http://127.0.0.1:$port"
}
stop_gateway() {
    kill "$gwpid" 2>/dev/null || true
    wait "$gwpid" 2>/dev/null || true
    gwpid=""
}

# flood PREFIX DURATION: wrk with new addresses PREFIXn@example.com;
# prints the request count.
flood() {
    signin_lua "$origin" "$tmp" "$1"
    wrk -t2 -c32 -d"$2" -s "$tmp/signin.lua" "$origin/" >"$tmp/wrk.out"
    awk '/requests in/ {print $1}' "$tmp/wrk.out"
}

fail=0
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

echo "== 1. memory store, default limits, $duration from one IP"
start_gateway $'[store]\nbackend = "memory"' ""
before=$(rss_kib "$gwpid")
n=$(flood m "$duration")
after=$(rss_kib "$gwpid")
grow=$((after - before))
echo "requests: $n; RSS $(mib "$before") -> $(mib "$after") MiB (+$(mib "$grow") MiB); mails written so far: $(ls "$tmp/mail" | wc -l)"
((grow < 32 * 1024)) || { echo "FAIL: RSS grew by 32 MiB or more"; fail=1; }
stop_gateway
rm -rf "$tmp/mail"

echo "== 2. Redis store, default limits, $duration from one IP"
mkdir -p "$tmp/redis"
redis-server --port 0 --unixsocket "$tmp/redis/r.sock" --unixsocketperm 700 --save '' \
    --appendonly no --dir "$tmp/redis" --daemonize yes --pidfile "$tmp/redis.pid" >/dev/null
until redis-cli -s "$tmp/redis/r.sock" ping >/dev/null 2>&1; do sleep 0.01; done
start_gateway "[store]
backend = \"redis\"
url = \"redis+unix://$tmp/redis/r.sock\"
key_prefix = \"flood:\"" ""
keys_before=$(redis-cli -s "$tmp/redis/r.sock" dbsize)
before=$(rss_kib "$gwpid")
n=$(flood r "$duration")
after=$(rss_kib "$gwpid")
keys_after=$(redis-cli -s "$tmp/redis/r.sock" dbsize)
redis_mem=$(redis-cli -s "$tmp/redis/r.sock" info memory | awk -F: '/^used_memory:/ {print $2}' | tr -d '\r')
grow=$((after - before))
echo "requests: $n; RSS $(mib "$before") -> $(mib "$after") MiB (+$(mib "$grow") MiB); mails written so far: $(ls "$tmp/mail" | wc -l)"
echo "Redis keys: $keys_before -> $keys_after; Redis used_memory: $((redis_mem / 1024)) KiB"
((grow < 32 * 1024)) || { echo "FAIL: RSS grew by 32 MiB or more"; fail=1; }
# Default limits: ip_rate 30 per window stores at most 30 sign-ins of about
# 7 keys each, whatever the number of requests.
((keys_after <= 256)) || { echo "FAIL: more than 256 keys"; fail=1; }
stop_gateway
rm -rf "$tmp/mail"

echo "== 3. memory store, IP limits lifted, max_pending = 20000: cost of one stored sign-in"
start_gateway $'[store]\nbackend = "memory"' 'ip_rate = "1000000000/15m"
address_rate = "1000000000/15m"
resend_delay = "0s"
max_pending_per_ip = 1000000
max_pending = 20000'
before=$(rss_kib "$gwpid")
n=$(flood p 10s)
after=$(rss_kib "$gwpid")
grow=$((after - before))
stored=20000
((n >= stored)) || stored=$n
echo "requests: $n; stored sign-ins: $stored (the cap); RSS +$(mib "$grow") MiB = $((grow * 1024 / stored)) bytes per stored sign-in (mail queue included)"
stop_gateway

exit "$fail"
