#!/usr/bin/env bash
# Runs each cargo-fuzz target for a fixed time, one after another, and
# prints executions, coverage and findings per target.
#
# Usage: scripts/fuzz.sh [SECONDS-PER-TARGET] [TARGET...]
#          default: 600 seconds for each of: redirect path cookie address config framing h1_request h1_answer
# Options (environment):
#   FUZZ_SANITIZER=address|none   (default address; "none" runs about twice as fast)
#   FUZZ_MERGE=1                  afterwards, add the inputs that reach new
#                                 coverage to the committed seeds (fuzz/corpus/)
#
# The toolchain is stable: cargo-fuzz's -Z flags are allowed through
# RUSTC_BOOTSTRAP=1 (see fuzz/README.md). Each target runs with -jobs=1
# (one worker process; its log is fuzz/target/fuzz-logs/<target>.log). New
# inputs go to a scratch corpus (fuzz/target/work-corpus/<target>); the
# committed seeds in fuzz/corpus/<target> are read, never written, unless
# FUZZ_MERGE=1. Crashes land in fuzz/artifacts/<target>/. Exits 1 if any
# target found something.

set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
fuzz="$repo/fuzz"
all_targets=(redirect path cookie address config framing h1_request h1_answer host)
seconds=${1:-600}
[[ $# -gt 0 ]] && shift
targets=("$@")
((${#targets[@]})) || targets=("${all_targets[@]}")
sanitizer=${FUZZ_SANITIZER:-address}
merge=${FUZZ_MERGE:-0}

die() {
    echo "fuzz: $*" >&2
    exit 2
}

[[ $seconds =~ ^[1-9][0-9]*$ ]] || die "seconds per target must be a positive number, not $seconds"
[[ $sanitizer == address || $sanitizer == none ]] || die "FUZZ_SANITIZER is address or none"
for t in "${targets[@]}"; do
    [[ " ${all_targets[*]} " == *" $t "* ]] || die "unknown target $t (known: ${all_targets[*]})"
done
command -v cargo-fuzz >/dev/null || die "cargo-fuzz is not installed: cargo install cargo-fuzz"

export RUSTC_BOOTSTRAP=1
triple=$(rustc -vV | sed -n 's/^host: //p')
bin_dir="$fuzz/target/$triple/release"
logs="$fuzz/target/fuzz-logs"
mkdir -p "$logs"

echo "== cargo fuzz build (sanitizer $sanitizer, debug assertions on)"
# cargo fuzz build takes one target, or none for all of them.
build_target=()
((${#targets[@]} == 1)) && build_target=("${targets[0]}")
(cd "$repo" && cargo fuzz build --sanitizer "$sanitizer" --debug-assertions "${build_target[@]}") \
    >"$logs/build.log" 2>&1 || die "build failed: $(tail -n 20 "$logs/build.log")"

dict_for() {
    case $1 in
    redirect | path) echo "$fuzz/dict/url.dict" ;;
    config) echo "$fuzz/dict/config.dict" ;;
    framing | h1_request | h1_answer) echo "$fuzz/dict/http.dict" ;;
    *) echo "" ;;
    esac
}

max_len_for() {
    case $1 in
    config) echo 16384 ;;
    *) echo 4096 ;;
    esac
}

child=""
trap '[[ -n $child ]] && kill -TERM "$child" 2>/dev/null; exit 130' INT TERM

summary=()
found_any=0
for t in "${targets[@]}"; do
    bin="$bin_dir/$t"
    [[ -x $bin ]] || die "no fuzz binary $bin"
    work="$fuzz/target/work-corpus/$t"
    art="$fuzz/artifacts/$t"
    mkdir -p "$work" "$art"
    dict=$(dict_for "$t")
    run_dir="$logs/$t.run"
    rm -rf "$run_dir"
    mkdir -p "$run_dir"
    args=(-max_total_time="$seconds" -jobs=1 -workers=1 -timeout=10 -rss_limit_mb=2048
        -max_len="$(max_len_for "$t")" -print_final_stats=1 -artifact_prefix="$art/")
    [[ -n $dict ]] && args+=(-dict="$dict")
    before=$(find "$art" -type f | wc -l)
    echo "== $t: ${seconds}s"
    # With -jobs the worker's output goes to fuzz-0.log in the working directory.
    (cd "$run_dir" && exec "$bin" "${args[@]}" "$work" "$fuzz/corpus/$t") >"$logs/$t.parent.log" 2>&1 &
    child=$!
    wait "$child" || true
    child=""
    log="$run_dir/fuzz-0.log"
    [[ -f $log ]] || log="$logs/$t.parent.log"
    cp "$log" "$logs/$t.log"
    last=$(grep -E '^#[0-9]+' "$log" | tail -n 1 || true)
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    [[ -n $execs ]] || execs=$(sed -n 's/^#\([0-9]*\).*/\1/p' <<<"$last")
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
    cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
    ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
    corp=$(sed -n 's/.* corp: \([0-9]*\/[0-9a-zA-Z]*\).*/\1/p' <<<"$last")
    after=$(find "$art" -type f | wc -l)
    findings=$((after - before))
    echo "   executions ${execs:-?}, ${rate:-?}/s, cov ${cov:-?}, features ${ft:-?}, corpus ${corp:-?}, findings $findings"
    if ((findings > 0)) || grep -qE '^==[0-9]+==ERROR|panicked at|deadly signal' "$log"; then
        found_any=1
        grep -E 'panicked at|^==[0-9]+==ERROR|SUMMARY|Test unit written' "$log" | head -n 10 | sed 's/^/   /'
        for f in $(find "$art" -type f -newer "$logs/$t.parent.log" 2>/dev/null; find "$art" -type f | tail -n "$findings"); do
            echo "   finding: $f (minimise: RUSTC_BOOTSTRAP=1 cargo fuzz tmin -s $sanitizer -a $t $f)"
        done | sort -u
    fi
    if [[ $merge == 1 ]]; then
        (cd "$run_dir" && "$bin" -merge=1 -max_len="$(max_len_for "$t")" "$fuzz/corpus/$t" "$work" >"$logs/$t.merge.log" 2>&1) ||
            echo "   merge failed: see $logs/$t.merge.log"
        echo "   seeds now: $(find "$fuzz/corpus/$t" -type f | wc -l)"
    fi
    summary+=("$(printf '%-9s %6ss %12s execs %8s/s  cov %-6s ft %-7s findings %s' \
        "$t" "$seconds" "${execs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" "$findings")")
done

echo
echo "== summary (sanitizer $sanitizer)"
printf '%s\n' "${summary[@]}"
exit "$found_any"
