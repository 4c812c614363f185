#!/usr/bin/env bash
# The performance targets that scripts/bench.sh does not cover, in one run:
#   1. sign-in requests per second (POST /.portcullis/login, Redis store,
#      file mail transport, limits raised);
#   2. resident memory with 10,000 idle keep-alive client connections;
#   3. start-up to first request served, with the example configuration;
#   4. signed-in GETs/s with 1,001 and with 1,000,001 real sessions in
#      Redis (made by scripts/bench/sessions.py as the gateway stores them),
#      the load on one session and spread over 1,000: two gateways on two
#      Redis servers, their runs interleaved (median of 3 runs each).
# nginx's figures stand beside where nginx does the same thing (RSS with
# the same idle connections, start-up of a reverse proxy).
# Usage: scripts/bench-targets.sh [--no-build] [--duration 8s] [--idle 10000]
#          [--pgo | --bolt | --bin PATH]
# --pgo measures the profile-guided build (scripts/build-pgo.sh, built
# unless --no-build) instead of `cargo build --release`; --bolt the PGO
# build laid out by BOLT (scripts/build-pgo.sh --bolt); --bin a given one.
# Needs: redis-server, nginx, wrk, curl, python3. Ports come from the OS.
set -euo pipefail
cd "$(dirname "$0")/.."

build=1 duration=8s idle=10000 pgo=0 bolt=0 bin=""
while (($#)); do
    case "$1" in
    --no-build) build=0 ;;
    --duration) duration=${2:?}; shift ;;
    --idle) idle=${2:?}; shift ;;
    --pgo) pgo=1 ;;
    --bolt) pgo=1; bolt=1 ;;
    --bin) bin=${2:?}; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
    esac
    shift
done

target_dir=${CARGO_TARGET_DIR:-target}
kind="as given"
if [[ -z $bin ]] && ((bolt)); then
    if [[ $build == 1 ]]; then scripts/build-pgo.sh --bolt >/dev/null; fi
    bin="$target_dir/pgo-bolt/portcullis"
    kind="profile-guided and BOLT, scripts/build-pgo.sh --bolt"
elif [[ -z $bin ]] && ((pgo)); then
    if [[ $build == 1 ]]; then scripts/build-pgo.sh >/dev/null; fi
    bin="$target_dir/pgo/release/portcullis"
    kind="profile-guided, scripts/build-pgo.sh"
elif [[ -z $bin ]]; then
    kind="cargo build --release"
    if [[ $build == 1 ]]; then cargo build --release --quiet; fi
    bin="$target_dir/release/portcullis"
fi
[[ -x $bin ]] || { echo "no binary at $bin (build first)" >&2; exit 1; }

tmp=$(mktemp -d)
# The sign-in mails (tens of thousands of files) go to memory when there is
# a tmpfs: on a disk, creating them (and deleting the last run's) makes the
# rate that of the file system, which moved it by 2x from run to run here.
if [[ $(stat -f -c %T /dev/shm 2>/dev/null) == tmpfs ]] &&
    maildir=$(mktemp -d /dev/shm/portcullis-bench-mail.XXXXXX 2>/dev/null); then
    mail_where="tmpfs"
else
    maildir=$tmp/mail
    mail_where="disk"
fi
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    [[ -f $tmp/redis.pid ]] && kill "$(cat "$tmp/redis.pid")" 2>/dev/null || true
    [[ -f $tmp/redis2.pid ]] && kill "$(cat "$tmp/redis2.pid")" 2>/dev/null || true
    [[ -f $tmp/nginx.pid ]] && kill "$(cat "$tmp/nginx.pid")" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$tmp" "$maildir"
}
trap cleanup EXIT INT TERM

# shellcheck source=bench/lib.sh
. scripts/bench/lib.sh
wait_port() {
    local port=$1 deadline=$((SECONDS + 20))
    until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
        ((SECONDS < deadline)) || { echo "port $port never opened" >&2; exit 1; }
        sleep 0.01
    done
}
export PORTCULLIS_SECRET=bench-secret-bench-secret-bench-secret-0123456789
results=()
# row MEASURE PORTCULLIS NGINX NOTE
row() { results+=("| $1 | $2 | $3 | $4 |"); printf '%-58s %-12s %-12s %s\n' "$1" "$2" "$3" "$4"; }

# A small upstream (nginx, like scripts/bench.sh).
up=$(free_port)
cat >"$tmp/nginx.conf" <<NGINX
worker_processes 1; daemon on; pid $tmp/nginx.pid; error_log $tmp/nginx.err;
events { worker_connections 4096; }
http { access_log off; client_body_temp_path $tmp; proxy_temp_path $tmp; fastcgi_temp_path $tmp; uwsgi_temp_path $tmp; scgi_temp_path $tmp;
  server { listen 127.0.0.1:$up; location / { return 200 "hello\n"; } } }
NGINX
nginx -c "$tmp/nginx.conf" -p "$tmp" >/dev/null 2>&1
wait_port "$up"

mkdir -p "$tmp/redis" "$maildir"
redis-server --port 0 --unixsocket "$tmp/redis/r.sock" --unixsocketperm 700 --save '' \
    --appendonly no --dir "$tmp/redis" --daemonize yes --pidfile "$tmp/redis.pid" >/dev/null
until redis-cli -s "$tmp/redis/r.sock" ping >/dev/null 2>&1; do sleep 0.01; done

gw=$(free_port)
cat >"$tmp/gw.toml" <<TOML
[server]
listen = "127.0.0.1:$gw"
public_url = "http://127.0.0.1:$gw"
header_read_timeout = "300s"
[session]
secret_env = "PORTCULLIS_SECRET"
[login]
address_rate = "1000000000/15m"
ip_rate = "1000000000/15m"
resend_delay = "0s"
[mail]
transport = "file"
queue_capacity = 100000
[mail.file]
dir = "$maildir"
[store]
backend = "redis"
url = "redis+unix://$tmp/redis/r.sock"
key_prefix = "bench:"
[[route]]
path = "/"
upstream = "http://127.0.0.1:$up"
TOML
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
RUST_LOG=warn "$bin" --config "$tmp/gw.toml" 2>"$tmp/gw.log" &
gwpid=$!
pids+=("$gwpid")
wait_port "$gw"
origin="http://127.0.0.1:$gw"

echo "== 1. sign-in requests (Redis store, file mail)"
signin_lua "$origin" "$tmp" user
# A 2 s warm-up first (discarded), as scripts/bench.sh does: the first
# seconds of a fresh process are slower (allocator arenas, pools).
wrk -t2 -c32 -d2s -s "$tmp/signin.lua" "$origin/" >/dev/null
out=$(wrk -t2 -c32 -d"$duration" -s "$tmp/signin.lua" "$origin/")
rate=$(awk '/Requests\/sec/ {printf "%d", $2}' <<<"$out")
bad=$(awk '/Non-2xx/ {print $5}' <<<"$out")
row "sign-in POSTs per second (32 connections)" "$rate/s" "—" "target ≥ 5000/s; non-2xx: ${bad:-0}; mail files on $mail_where"

echo "== 4. signed-in GETs with 1 and with 1,000,000 sessions"
# A fresh gateway on the same Redis: the first one's mail queue is still
# writing the sign-in mails of step 1, which would skew these runs.
kill "$gwpid" 2>/dev/null || true
wait "$gwpid" 2>/dev/null || true
RUST_LOG=warn "$bin" --config "$tmp/gw.toml" 2>"$tmp/gw2.log" &
gwpid=$!
pids+=("$gwpid")
wait_port "$gw"
page=$(curl -s -c "$tmp/jar" "$origin/.portcullis/login")
csrf=$(grep -o 'name="csrf" value="[^"]*"' <<<"$page" | sed 's/.*value="//; s/"$//')
curl -s -b "$tmp/jar" -c "$tmp/jar" -H "Origin: $origin" -o /dev/null \
    --data-urlencode "email=bench@example.com" --data-urlencode "rd=/" --data-urlencode "csrf=$csrf" "$origin/.portcullis/login"
deadline=$((SECONDS + 20))
until grep -rlq "bench@example.com" "$maildir" 2>/dev/null; do
    ((SECONDS < deadline)) || { echo "no mail" >&2; exit 1; }
    sleep 0.05
done
link=$(grep -rl "bench@example.com" "$maildir" 2>/dev/null | xargs cat | sed -e 's/=\r$//' -e 's/=$//' | tr -d '\r\n' | sed 's/=3D/=/g' | grep -o "/.portcullis/verify?token=[A-Za-z0-9_-]\{43\}" | head -1)
token=${link##*=}
confirm=$(curl -s -b "$tmp/jar" -c "$tmp/jar" "$origin$link")
vcsrf=$(grep -o 'name="csrf" value="[^"]*"' <<<"$confirm" | sed 's/.*value="//; s/"$//')
curl -s -b "$tmp/jar" -c "$tmp/jar" -H "Origin: $origin" -o /dev/null \
    --data-urlencode "token=$token" --data-urlencode "csrf=$vcsrf" "$origin/.portcullis/verify"
session=$(awk '$6 == "portcullis" {print $6"="$7}' "$tmp/jar")
[[ -n $session ]] || { echo "no session cookie" >&2; exit 1; }
[[ $(curl -s -H "Cookie: $session" "$origin/x") == hello ]] || { echo "signed-in GET failed" >&2; exit 1; }
# The load cycles through the cookies of a file (one line each); the same
# script with a one-line file gives the one-session figure.
cookie_lua() {
    cat >"$2" <<LUA
local cookies = {}
for line in io.lines("$1") do cookies[#cookies + 1] = line end
local i = 0
request = function()
  i = i % #cookies + 1
  return wrk.format("GET", "/x", { ["Cookie"] = cookies[i] })
end
LUA
}
# The comparison runs two gateways side by side, one on this Redis (1,001
# sessions) and one on a second Redis (1,000,001 sessions, the same 1,001
# among them), and interleaves their runs (small, big, small, big, ...),
# so that the machine's drift from minute to minute falls on both alike.
# The 1,000 sessions in the load, and the one, are made by sessions.py
# exactly as the gateway stores them; the same records go into both.
python3 scripts/bench/sessions.py "bench:" 1000 1000 "$tmp/many.cookies" >"$tmp/many.proto"
redis-cli -s "$tmp/redis/r.sock" --pipe <"$tmp/many.proto" >/dev/null
mkdir -p "$tmp/redis2"
redis-server --port 0 --unixsocket "$tmp/redis2/r.sock" --unixsocketperm 700 --save '' \
    --appendonly no --dir "$tmp/redis2" --daemonize yes --pidfile "$tmp/redis2.pid" >/dev/null
until redis-cli -s "$tmp/redis2/r.sock" ping >/dev/null 2>&1; do sleep 0.01; done
redis-cli -s "$tmp/redis2/r.sock" --pipe <"$tmp/many.proto" >/dev/null
# The first store also holds the session of the sign-in above (1,001);
# the second gets 999,001 more, none of them in the load (1,000,001).
python3 scripts/bench/sessions.py "bench:" 999001 0 "$tmp/none.cookies" |
    redis-cli -s "$tmp/redis2/r.sock" --pipe >/dev/null
small=$(redis-cli -s "$tmp/redis/r.sock" --scan --pattern 'bench:ses:*' | wc -l)
big=$(redis-cli -s "$tmp/redis2/r.sock" --scan --pattern 'bench:ses:*' | wc -l)
gw2=$(free_port)
sed -e "s|127.0.0.1:$gw|127.0.0.1:$gw2|g" -e "s|$tmp/redis/r.sock|$tmp/redis2/r.sock|" "$tmp/gw.toml" >"$tmp/gw2.toml"
RUST_LOG=warn "$bin" --config "$tmp/gw2.toml" 2>"$tmp/gw3.log" &
gw2pid=$!
pids+=("$gw2pid")
wait_port "$gw2"
origin2="http://127.0.0.1:$gw2"
head -n 1 "$tmp/many.cookies" >"$tmp/one.cookies"
cookie_lua "$tmp/one.cookies" "$tmp/one.lua"
cookie_lua "$tmp/many.cookies" "$tmp/many.lua"
for o in "$origin" "$origin2"; do
    [[ $(curl -s -H "Cookie: $(head -n 1 "$tmp/one.cookies")" "$o/x") == hello ]] &&
        [[ $(curl -s -H "Cookie: $(tail -n 1 "$tmp/many.cookies")" "$o/x") == hello ]] ||
        { echo "a made session does not sign in at $o" >&2; exit 1; }
done
# Warm-up (discarded): each fresh gateway's first seconds are slower.
for o in "$origin" "$origin2"; do wrk -t2 -c32 -d2s -s "$tmp/many.lua" "$o/" >/dev/null; done
# One run: "REQ/S CPU" where CPU is the gateway's user + system time per
# request in µs (from /proc; unlike requests/s it does not depend on what
# else the machine is doing at the time).
rate() {
    local before after out
    before=$(cpu_ticks "$3")
    out=$(wrk -t2 -c32 -d"$duration" -s "$1" "$2/")
    after=$(cpu_ticks "$3")
    awk -v t=$((after - before)) -v hz="$(getconf CLK_TCK)" '
        / requests in / {n = $1}
        /Requests\/sec/ {r = $2}
        END {printf "%d %.1f\n", r, t / hz / n * 1e6}' <<<"$out"
}
declare -a r_one_small r_one_big r_many_small r_many_big c_one_small c_one_big c_many_small c_many_big
for _ in 1 2 3; do
    read -r r c < <(rate "$tmp/one.lua" "$origin" "$gwpid"); r_one_small+=("$r"); c_one_small+=("$c")
    read -r r c < <(rate "$tmp/one.lua" "$origin2" "$gw2pid"); r_one_big+=("$r"); c_one_big+=("$c")
    read -r r c < <(rate "$tmp/many.lua" "$origin" "$gwpid"); r_many_small+=("$r"); c_many_small+=("$c")
    read -r r c < <(rate "$tmp/many.lua" "$origin2" "$gw2pid"); r_many_big+=("$r"); c_many_big+=("$c")
done
median() { printf '%s\n' "$@" | sort -n | sed -n 2p; }
one_small=$(median "${r_one_small[@]}")
one_big=$(median "${r_one_big[@]}")
many_small=$(median "${r_many_small[@]}")
many_big=$(median "${r_many_big[@]}")
cpu_one_small=$(median "${c_one_small[@]}")
cpu_one_big=$(median "${c_one_big[@]}")
cpu_many_small=$(median "${c_many_small[@]}")
cpu_many_big=$(median "${c_many_big[@]}")
[[ -f $tmp/redis2.pid ]] && kill "$(cat "$tmp/redis2.pid")" 2>/dev/null || true
ratio() { python3 -c "print(f'{$1/$2:.3f}×')"; }
row "signed-in GETs/s, 1 session in the load, $small sessions in Redis" "$one_small/s" "—" "median of 3 (runs $(IFS=/; echo "${r_one_small[*]}")); gateway CPU $cpu_one_small µs/request"
row "signed-in GETs/s, 1 session in the load, $big sessions in Redis" "$one_big/s" "—" "$(ratio "$one_big" "$one_small") of the run with $small sessions (target within 5%); runs $(IFS=/; echo "${r_one_big[*]}"), interleaved with the runs above; gateway CPU $cpu_one_big µs/request ($(ratio "$cpu_one_big" "$cpu_one_small"))"
row "signed-in GETs/s, 1,000 sessions in the load, $small sessions in Redis" "$many_small/s" "—" "median of 3 (runs $(IFS=/; echo "${r_many_small[*]}")); each session revalidated against Redis every 5 s; gateway CPU $cpu_many_small µs/request"
row "signed-in GETs/s, 1,000 sessions in the load, $big sessions in Redis" "$many_big/s" "—" "$(ratio "$many_big" "$many_small") of the run with $small sessions; runs $(IFS=/; echo "${r_many_big[*]}"); gateway CPU $cpu_many_big µs/request ($(ratio "$cpu_many_big" "$cpu_many_small"))"

echo "== 2. $idle idle keep-alive connections (a fresh gateway, public route, memory store)"
idleport=$(free_port)
cat >"$tmp/idle.toml" <<TOML
[server]
listen = "127.0.0.1:$idleport"
header_read_timeout = "300s"
[session]
secret_env = "PORTCULLIS_SECRET"
[[route]]
path = "/"
upstream = "http://127.0.0.1:$up"
access = "public"
TOML
RUST_LOG=warn "$bin" --config "$tmp/idle.toml" 2>"$tmp/idle.log" &
idlepid=$!
pids+=("$idlepid")
wait_port "$idleport"
# hold_idle PORT OUT: opens $idle keep-alive connections to PORT (one GET
# each) and returns once they are all open; they stay open until
# release_idle. The holder's report goes to OUT.
hold_idle() {
    rm -f "$tmp/hold" && mkfifo "$tmp/hold"
    python3 scripts/bench/idle.py "$idle" "$1" <"$tmp/hold" >"$2" 2>&1 &
    holder=$!
    pids+=("$holder")
    exec 4>"$tmp/hold"
    local deadline=$((SECONDS + 120))
    until grep -q "^open" "$2"; do
        ((SECONDS < deadline)) || { echo "idle clients: $(cat "$2")" >&2; exit 1; }
        sleep 0.1
    done
}
release_idle() {
    exec 4>&-
    wait "$holder" 2>/dev/null || true
}
before=$(awk '/VmRSS/ {print $2}' "/proc/$idlepid/status")
hold_idle "$idleport" "$tmp/idle.out"
after=$(awk '/VmRSS/ {print $2}' "/proc/$idlepid/status")
release_idle
held=$(cat "$tmp/idle.out")

# nginx as a reverse proxy to the same upstream, holding as many.
nport=$(free_port)
cat >"$tmp/nginx-idle.conf" <<NGINX
worker_processes auto; daemon on; pid $tmp/nginx-idle.pid; error_log $tmp/nginx-idle.err;
events { worker_connections $((idle * 2 + 1024)); }
http { access_log off; keepalive_timeout 300s; keepalive_requests 1000000;
  client_body_temp_path $tmp; proxy_temp_path $tmp; fastcgi_temp_path $tmp; uwsgi_temp_path $tmp; scgi_temp_path $tmp;
  upstream app { server 127.0.0.1:$up; keepalive 64; }
  server { listen 127.0.0.1:$nport; location / { proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection ""; } } }
NGINX
nginx -c "$tmp/nginx-idle.conf" -p "$tmp" >/dev/null 2>&1
wait_port "$nport"
nginx_rss() { # master and workers, KiB
    local master total=0 p
    master=$(cat "$tmp/nginx-idle.pid")
    for p in "$master" $(pgrep -P "$master"); do
        total=$((total + $(awk '/VmRSS/ {print $2}' "/proc/$p/status")))
    done
    echo "$total"
}
nbefore=$(nginx_rss)
hold_idle "$nport" "$tmp/nidle.out"
nafter=$(nginx_rss)
release_idle
kill "$(cat "$tmp/nginx-idle.pid")" 2>/dev/null || true
row "RSS with $idle idle keep-alive connections" "$((after / 1024)) MiB" "$((nafter / 1024)) MiB" "portcullis: $held, $(((after - before) / idle)) KiB each, $((before / 1024)) MiB before; nginx (master + workers): $(cat "$tmp/nidle.out"), $((nbefore / 1024)) MiB before; target ≤ 64 MiB"

echo "== 3. start-up to first request (example configuration)"
sed -e "s/^listen = .*/listen = \"127.0.0.1:$(free_port)\"/" -e 's/^backend = "redis"/backend = "memory"/' \
    -e 's/^transport = "smtp"/transport = "file"/' gateway.toml.example >"$tmp/example.toml"
sport=$(sed -n 's/^listen = "127.0.0.1:\([0-9]*\)"/\1/p' "$tmp/example.toml")
best=999999
for _ in 1 2 3 4 5; do
    start=$(date +%s%N)
    SMTP_PASSWORD=x "$bin" --config "$tmp/example.toml" 2>/dev/null &
    p=$!
    until curl -s -o /dev/null "http://127.0.0.1:$sport/.portcullis/style.css"; do :; done
    end=$(date +%s%N)
    kill "$p"; wait "$p" 2>/dev/null || true
    ms=$(((end - start) / 1000000))
    ((ms < best)) && best=$ms
done
# nginx: a reverse proxy (daemon off, one worker) to its first answer.
nbest=999999
for _ in 1 2 3 4 5; do
    np=$(free_port)
    cat >"$tmp/nginx-start.conf" <<NGINX
worker_processes 1; daemon off; pid $tmp/nginx-start.pid; error_log $tmp/nginx-start.err;
events { worker_connections 1024; }
http { access_log off; client_body_temp_path $tmp; proxy_temp_path $tmp; fastcgi_temp_path $tmp; uwsgi_temp_path $tmp; scgi_temp_path $tmp;
  server { listen 127.0.0.1:$np; location / { proxy_pass http://127.0.0.1:$up; } } }
NGINX
    start=$(date +%s%N)
    nginx -c "$tmp/nginx-start.conf" -p "$tmp" 2>/dev/null &
    p=$!
    until curl -s -o /dev/null "http://127.0.0.1:$np/"; do :; done
    end=$(date +%s%N)
    kill "$p"; wait "$p" 2>/dev/null || true
    ms=$(((end - start) / 1000000))
    ((ms < nbest)) && nbest=$ms
done
row "start-up to first request served (best of 5)" "$best ms" "$nbest ms" "portcullis with gateway.toml.example (memory store, file mail); target < 100 ms"

mkdir -p bench-results
file="bench-results/targets-$(date -u +%Y%m%d-%H%M%S).md"
{
    echo "# portcullis performance targets, $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo
    echo "- machine: $(nproc) cores, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo), $(uname -sr)"
    echo "- portcullis: $bin ($kind)"
    echo "- load average before the run: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo
    echo "| measure | portcullis | nginx | note |"
    echo "|---|---:|---:|---|"
    printf '%s\n' "${results[@]}"
} | tee "$file"
echo "written to $file"
