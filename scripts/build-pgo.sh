#!/usr/bin/env bash
# A profile-guided (PGO) release build of portcullis.
#
#   1. builds an instrumented binary (-Cprofile-generate) in target/pgo-gen;
#   2. trains it: a real gateway in front of a small nginx upstream, with
#      the memory store and (if redis-server is installed) the Redis store,
#      loaded with full browser sign-ins (scripts/pgo/train.py), signed-in
#      and public GETs, POSTs with a body, forward-auth checks
#      (/.portcullis/auth), unauthenticated redirects, the sign-in page and
#      sign-in POSTs, over plain HTTP and over TLS (keep-alive, a new
#      connection per request, and HTTP/2 with h2load when installed):
#      code no training reaches is laid out as cold, so every protocol
#      users run must be in it;
#   3. merges the profiles (llvm-profdata of rustc's LLVM version) and
#      builds target/pgo/release/portcullis with -Cprofile-use;
#   4. with --bolt: instruments that binary with BOLT (llvm-bolt
#      -instrument), trains it the same way again and lets llvm-bolt lay
#      its machine code out along the paths taken (hot blocks together,
#      functions in call order, cold parts split off), written to
#      target/pgo-bolt/portcullis (its profile beside it, .fdata).
#
# The binary behaves exactly as `cargo build --release` does (same source,
# same tests); the compiler only lays out and inlines the code along the
# paths the training took. On the benchmark machine it runs about 17 %
# fewer instructions per signed-in request (callgrind); BOLT's layout then
# takes about 5 % off the CPU a request costs (fewer instruction-cache
# misses: the same instructions in fewer cache lines). docs/performance.md
# has the figures.
#
# Usage: scripts/build-pgo.sh [--seconds N] [--bolt]   (N: length of each GET load, default 4)
# Needs: cargo, nginx, wrk, curl, python3, openssl (h2load from
# nghttp2-client for the HTTP/2 training), and llvm-profdata of the LLVM
# major version `rustc -vV` names: `rustup component add llvm-tools`,
# Debian's llvm-NN package (llvm-profdata-NN; bookworm-security has 22),
# or any other path in $LLVM_PROFDATA; --bolt also llvm-bolt (Debian's
# bolt-NN package). Prints the binary's path last.

set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
seconds=4
bolt=0
while [[ $# -gt 0 ]]; do
    case "$1" in
    --seconds) seconds=${2:?--seconds needs a value}; shift ;;
    --bolt) bolt=1 ;;
    -h | --help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '/^set -euo/d' -e 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "build-pgo: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
[[ $seconds =~ ^[1-9][0-9]*$ ]] || { echo "build-pgo: --seconds is a positive number" >&2; exit 2; }

die() {
    echo "build-pgo: $*" >&2
    exit 1
}

for tool in cargo rustc nginx wrk curl python3 openssl; do
    command -v "$tool" >/dev/null || die "$tool is not installed"
done

# llvm-profdata must read the profiles rustc's LLVM writes.
llvm_major=$(rustc -vV | sed -n 's/^LLVM version: \([0-9]*\).*/\1/p')
host=$(rustc -vV | sed -n 's/^host: //p')
profdata=""
for candidate in ${LLVM_PROFDATA:+"$LLVM_PROFDATA"} "$(rustc --print sysroot)/lib/rustlib/$host/bin/llvm-profdata" \
    "llvm-profdata-$llvm_major" "llvm-profdata"; do
    if command -v "$candidate" >/dev/null 2>&1 &&
        "$candidate" --version 2>/dev/null | grep -q "LLVM version $llvm_major\."; then
        profdata=$candidate
        break
    fi
done
bolt_tool=""
if ((bolt)); then
    # Any version: BOLT reads the finished binary, not rustc's LLVM output.
    for candidate in "llvm-bolt-$llvm_major" llvm-bolt $(compgen -c llvm-bolt- | grep -E '^llvm-bolt-[0-9]+$' | sort -t- -k3 -rn); do
        if command -v "$candidate" >/dev/null 2>&1; then
            bolt_tool=$candidate
            break
        fi
    done
    [[ -n $bolt_tool ]] || die "--bolt needs llvm-bolt (apt-get install bolt-$llvm_major)"
fi
[[ -n $profdata ]] || die "no llvm-profdata for LLVM $llvm_major (rustup component add llvm-tools, or apt-get install llvm-$llvm_major)"

target_dir=${CARGO_TARGET_DIR:-$repo/target}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/portcullis-pgo.XXXXXX")
pids=()
cleanup() {
    local pid
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    [[ -f $tmp/nginx.pid ]] && kill "$(cat "$tmp/nginx.pid")" 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

# shellcheck source=bench/lib.sh
. "$repo/scripts/bench/lib.sh"
wait_port() {
    local port=$1 pid=$2 deadline=$((SECONDS + 20))
    until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
        kill -0 "$pid" 2>/dev/null || die "the process for port $port exited"
        ((SECONDS < deadline)) || die "nothing listens on port $port after 20s"
        sleep 0.02
    done
}
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

echo "== 1. instrumented build (target/pgo-gen)"
raw="$tmp/raw"
mkdir -p "$raw"
(cd "$repo" && RUSTFLAGS="-Cprofile-generate=$raw" cargo build --release --quiet \
    --target-dir "$target_dir/pgo-gen" --bin portcullis)
gen_bin="$target_dir/pgo-gen/release/portcullis"
# Build scripts ran instrumented too; only the gateway's own runs count.
rm -f "$raw"/*.profraw

echo "== 2. training"
up=$(free_port)
cat >"$tmp/nginx.conf" <<NGINX
worker_processes 1; daemon on; pid $tmp/nginx.pid; error_log $tmp/nginx.err;
events { worker_connections 4096; }
http { access_log off; client_body_temp_path $tmp; proxy_temp_path $tmp; fastcgi_temp_path $tmp; uwsgi_temp_path $tmp; scgi_temp_path $tmp;
  keepalive_requests 1000000;
  server { listen 127.0.0.1:$up; location / { default_type text/plain; return 200 "hello\n"; } } }
NGINX
nginx -c "$tmp/nginx.conf" -p "$tmp" -e "$tmp/nginx.err" >/dev/null 2>&1 || die "nginx did not start"
until (exec 3<>"/dev/tcp/127.0.0.1/$up") 2>/dev/null; do sleep 0.02; done

cat >"$tmp/post.lua" <<'LUA'
wrk.method = "POST"
wrk.body = "name=value&other=thing"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
LUA

PORTCULLIS_SECRET=$(head -c 48 /dev/urandom | base64 | tr -d '\n')
export PORTCULLIS_SECRET

# The TLS listener's certificate: ECDSA P-256, as the benchmarks use.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
    -keyout "$tmp/key.pem" -out "$tmp/cert.pem" 2>/dev/null || die "openssl could not make a certificate"
if command -v h2load >/dev/null; then
    h2=1
else
    h2=0
    echo "   (no h2load: HTTP/2 is not trained; apt-get install nghttp2-client)"
fi

# train STORE_BLOCK: one gateway ($train_bin), one round of every kind of
# request.
train() {
    local store_block=$1 gw gw_tls origin tls gwpid cookie
    gw=$(free_port)
    gw_tls=$(free_port)
    origin="http://127.0.0.1:$gw"
    tls="https://127.0.0.1:$gw_tls"
    rm -rf "$tmp/mail"
    mkdir -p "$tmp/mail"
    cat >"$tmp/gw.toml" <<TOML
[server]
listen = "127.0.0.1:$gw"
tls_listen = "127.0.0.1:$gw_tls"
tls_cert = "$tmp/cert.pem"
tls_key = "$tmp/key.pem"
public_url = "$origin"
shutdown_timeout = "2s"
trusted_proxies = ["127.0.0.1/32"]
[session]
secret_env = "PORTCULLIS_SECRET"
[login]
allow_domains = ["example.com"]
address_rate = "1000000000/15m"
ip_rate = "1000000000/15m"
resend_delay = "0s"
[mail]
from = "Portcullis training <train@localhost>"
transport = "file"
queue_capacity = 100000
[mail.file]
dir = "$tmp/mail"
[store]
$store_block
[[route]]
name = "public"
path = "/public"
upstream = "http://127.0.0.1:$up"
access = "public"
[[route]]
name = "app"
path = "/"
upstream = "http://127.0.0.1:$up"
TOML
    LLVM_PROFILE_FILE="$raw/gw-%p-%m.profraw" RUST_LOG=warn "$train_bin" --config "$tmp/gw.toml" \
        2>"$tmp/gw.log" &
    gwpid=$!
    pids+=("$gwpid")
    wait_port "$gw" "$gwpid"
    wait_port "$gw_tls" "$gwpid"

    cookie=$(python3 "$repo/scripts/pgo/train.py" "$origin" "$tmp/mail" 20) ||
        die "the training sign-ins failed: $(tail -n 5 "$tmp/gw.log")"
    wrk -t2 -c32 -d"${seconds}s" -H "Cookie: portcullis=$cookie" "$origin/" >/dev/null
    wrk -t2 -c32 -d"$((seconds / 2 + 1))s" "$origin/public/page" >/dev/null
    wrk -t2 -c8 -d1s -s "$tmp/post.lua" -H "Cookie: portcullis=$cookie" "$origin/form" >/dev/null
    wrk -t2 -c8 -d1s "$origin/private" >/dev/null
    # Forward-auth, as nginx's auth_request asks it: signed in, and not.
    wrk -t2 -c32 -d"$((seconds / 2 + 1))s" -H "Cookie: portcullis=$cookie" -H "X-Original-URL: $origin/app" \
        -H "X-Original-Method: GET" "$origin/.portcullis/auth" >/dev/null
    wrk -t2 -c8 -d1s -H "X-Original-URL: $origin/app" -H "X-Original-Method: GET" \
        "$origin/.portcullis/auth" >/dev/null
    wrk -t2 -c8 -d1s "$origin/.portcullis/login?rd=/x" >/dev/null
    # TLS: the same session by its HTTPS cookie name; keep-alive GETs,
    # POSTs, a new connection per request, and HTTP/2.
    wrk -t2 -c32 -d"$((seconds / 2 + 1))s" -H "Cookie: __Host-portcullis=$cookie" "$tls/" >/dev/null
    wrk -t2 -c8 -d1s -s "$tmp/post.lua" -H "Cookie: __Host-portcullis=$cookie" "$tls/form" >/dev/null
    wrk -t2 -c8 -d1s -H "Connection: close" "$tls/public/page" >/dev/null
    if ((h2)); then
        h2load -c 16 -m 10 -t 2 -D "$((seconds / 2 + 1))" -H "cookie: __Host-portcullis=$cookie" \
            "$tls/" >"$tmp/h2load.out" 2>&1 || die "h2load failed: $(tail -n 3 "$tmp/h2load.out")"
        grep -q ' 0 failed, 0 errored' "$tmp/h2load.out" ||
            die "h2load had errors: $(grep '^requests' "$tmp/h2load.out")"
        h2load -c 4 -m 10 -t 2 -D 1 "$tls/public/page" >/dev/null 2>&1 || die "h2load failed on /public"
    fi
    signin_lua "$origin" "$tmp" load
    wrk -t2 -c8 -d1s -s "$tmp/signin.lua" "$origin/" >/dev/null

    # The profile is written when the process exits.
    kill -TERM "$gwpid"
    wait "$gwpid" || die "the instrumented gateway exited with an error: $(tail -n 5 "$tmp/gw.log")"
    pids=("${pids[@]/$gwpid/}")
}

if command -v redis-server >/dev/null; then
    mkdir -p "$tmp/redis"
    redis-server --port 0 --unixsocket "$tmp/redis/r.sock" --unixsocketperm 700 --save '' \
        --appendonly no --dir "$tmp/redis" --logfile "$tmp/redis.log" &
    pids+=($!)
    deadline=$((SECONDS + 10))
    until [[ -S $tmp/redis/r.sock ]]; do
        ((SECONDS < deadline)) || die "redis-server has no socket after 10s"
        sleep 0.02
    done
fi

# train_all: the memory store, then (if redis-server is installed) Redis.
redis_runs=0
train_all() {
    echo "   memory store"
    train 'backend = "memory"'
    if [[ -S $tmp/redis/r.sock ]]; then
        echo "   Redis store"
        # A key prefix of its own per run: the mail queue is durable, and
        # the sign-in POST load of an earlier run leaves thousands of mails
        # queued that a new gateway would send first.
        redis_runs=$((redis_runs + 1))
        train "backend = \"redis\"
url = \"redis+unix://$tmp/redis/r.sock\"
key_prefix = \"train$redis_runs:\""
    else
        echo "   (no redis-server: the Redis store is not trained)"
    fi
}
train_bin=$gen_bin
train_all

compgen -G "$raw/gw-*.profraw" >/dev/null || die "the training wrote no profile"
"$profdata" merge -o "$tmp/portcullis.profdata" "$raw"/gw-*.profraw

echo "== 3. optimised build (target/pgo)"
flags="-Cprofile-use=$tmp/portcullis.profdata"
# BOLT rewrites the binary's layout from the relocations the linker keeps.
((bolt)) && flags+=" -Clink-arg=-Wl,--emit-relocs"
(cd "$repo" && RUSTFLAGS="$flags" cargo build --release --quiet \
    --target-dir "$target_dir/pgo" --bin portcullis)
pgo_bin="$target_dir/pgo/release/portcullis"
if ((!bolt)); then
    echo "$pgo_bin"
    exit 0
fi

echo "== 4. BOLT: the PGO binary instrumented, trained again"
mkdir -p "$tmp/bolt" "$target_dir/pgo-bolt"
"$bolt_tool" "$pgo_bin" -o "$tmp/portcullis.inst" -instrument \
    -instrumentation-file="$tmp/bolt/gw" -instrumentation-file-append-pid \
    >"$tmp/bolt-instrument.log" 2>&1 || die "llvm-bolt -instrument failed: $(tail -n 5 "$tmp/bolt-instrument.log")"
train_bin="$tmp/portcullis.inst"
train_all
compgen -G "$tmp/bolt/gw.*.fdata" >/dev/null || die "the BOLT training wrote no profile"
# One profile from the runs': a line is a branch (from, to) with its
# mispredictions and count; the same branch in two runs adds up.
awk '{ k = $1 " " $2 " " $3 " " $4 " " $5 " " $6; m[k] += $7; n[k] += $8 }
     END { for (k in n) print k, m[k], n[k] }' "$tmp"/bolt/gw.*.fdata >"$tmp/portcullis.fdata"
# Line tables are kept (-update-debug-sections), as the release profile
# keeps them. Written beside and renamed: a gateway still running the old binary keeps it.
"$bolt_tool" "$pgo_bin" -o "$target_dir/pgo-bolt/portcullis.new" -data="$tmp/portcullis.fdata" \
    -reorder-blocks=ext-tsp -reorder-functions=cdsort -split-functions -split-all-cold \
    -split-eh -icf=all -use-gnu-stack -update-debug-sections -dyno-stats \
    >"$tmp/bolt-optimise.log" 2>&1 || die "llvm-bolt failed: $(tail -n 5 "$tmp/bolt-optimise.log")"
mv -f "$target_dir/pgo-bolt/portcullis.new" "$target_dir/pgo-bolt/portcullis"
# Kept beside the binary: llvm-bolt can be run again on the PGO binary
# with other options without training again.
cp "$tmp/portcullis.fdata" "$target_dir/pgo-bolt/portcullis.fdata"
echo "$target_dir/pgo-bolt/portcullis"
