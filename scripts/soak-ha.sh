#!/usr/bin/env bash
# Failover soak for Redis with high availability: three gateway instances on
# a Sentinel set (SENTINEL FAILOVER, then SIGKILL of the master), then on a
# local Redis Cluster (SIGKILL of a master), with sign-ins, signed-in GETs
# and sign-outs running throughout. Not a test: prints the figures of
# docs/redis-ha.md and exits 1 if a session made more than 1 s before a
# failover was lost or a revocation took more than 1 s.
#
# Usage: scripts/soak-ha.sh [--seconds N] [--clients C] [--modes sentinel,cluster]
#          [--bin PATH] [--no-build] [--keep-tmp]
#   defaults: 90 s per mode, 6 client threads, builds target/debug/portcullis
#   (pass --bin target/release/portcullis for release figures).
# Needs: redis-server, redis-cli (Debian's redis package), python3.

set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=1
args=()
bin="$repo/target/debug/portcullis"
while [[ $# -gt 0 ]]; do
    case "$1" in
    --no-build) build=0 ;;
    --bin) bin=${2:?--bin needs a value}; build=0; shift ;;
    -h | --help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '/^set -euo/d' -e 's/^# \{0,1\}//'; exit 0 ;;
    *) args+=("$1") ;;
    esac
    shift
done
for tool in redis-server redis-cli python3; do
    command -v "$tool" >/dev/null || { echo "soak-ha: needs $tool" >&2; exit 2; }
done
if ((build)); then
    (cd "$repo" && cargo build --quiet)
fi
[[ -x $bin ]] || { echo "soak-ha: no binary at $bin" >&2; exit 2; }
exec python3 "$repo/scripts/soak_ha.py" --bin "$bin" "${args[@]}"
