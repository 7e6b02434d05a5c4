#!/usr/bin/env bash
# Coverage-guided fuzzing with cargo-fuzz + libFuzzer on the stable toolchain.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
#
# Seeds the corpora (scripts/fuzz_seed.sh), builds the targets of fuzz/ without a
# sanitizer (the address sanitizer needs nightly), runs each target for SECONDS_PER_TARGET
# (default 60) in one process at the lowest CPU priority, prints the executions per target
# and exits non-zero if any target crashed (panic, failed assertion, timeout, out of
# memory). Crash inputs land in fuzz/artifacts/<target>/; reproduce one with
#   cargo fuzz run --sanitizer none <target> fuzz/artifacts/<target>/<file>
# Targets: parse_delivery verify_and_parse spec_preflight sandbox_filter (default: all).
# Needs cargo-fuzz: cargo install cargo-fuzz
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-60}
shift || true
case "$seconds" in '' | *[!0-9]*) echo "usage: $0 [SECONDS_PER_TARGET] [TARGET...]" >&2; exit 2 ;; esac
all=(parse_delivery verify_and_parse spec_preflight sandbox_filter)
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${all[@]}")

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "error: cargo-fuzz is not installed: cargo install cargo-fuzz" >&2
    exit 2
fi

# Per target: the largest input (the receiver caps bodies at 1 MiB, but 64 KiB is plenty
# to find bugs; a URI is at most 4096 characters) and a dictionary.
max_len() { case "$1" in sandbox_filter) echo 4096 ;; *) echo 65536 ;; esac; }
dict() {
    case "$1" in
        parse_delivery | verify_and_parse) echo fuzz/dict/delivery.dict ;;
        spec_preflight) echo fuzz/dict/openapi.dict ;;
        sandbox_filter) echo fuzz/dict/filter.dict ;;
        *) echo "error: unknown target '$1' (${all[*]})" >&2; exit 2 ;;
    esac
}
for target in "${targets[@]}"; do dict "$target" >/dev/null; done

bash scripts/fuzz_seed.sh
nice -n 19 cargo fuzz build --sanitizer none --fuzz-dir fuzz

logs=fuzz/target/logs
mkdir -p "$logs"
failed=0
summary=()
for target in "${targets[@]}"; do
    log="$logs/$target.log"
    mkdir -p "fuzz/artifacts/$target"
    before=$(ls "fuzz/artifacts/$target" | wc -l)
    echo "==> fuzzing $target for ${seconds}s (log: $log)"
    status=0
    # One process (no -jobs/-workers), lowest priority: the machine is shared.
    nice -n 19 cargo fuzz run --sanitizer none --fuzz-dir fuzz "$target" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -max_len="$(max_len "$target")" \
        -timeout=30 -dict="$(dict "$target")" -print_final_stats=1 \
        >"$log" 2>&1 || status=$?
    after=$(ls "fuzz/artifacts/$target" | wc -l)
    runs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$log" | tail -1)
    [ -n "$runs" ] || runs=$(sed -n 's/^#\([0-9]*\)[[:space:]]*DONE.*/\1/p' "$log" | tail -1)
    corpus=$(ls "fuzz/corpus/$target" | wc -l)
    if [ "$status" -ne 0 ] || [ "$after" -gt "$before" ]; then
        failed=1
        summary+=("$(printf '%-18s %12s executions  %6s corpus  CRASH (exit %s; see %s and fuzz/artifacts/%s/)' "$target" "${runs:-?}" "$corpus" "$status" "$log" "$target")")
        tail -n 60 "$log"
    else
        summary+=("$(printf '%-18s %12s executions  %6s corpus  ok' "$target" "${runs:-?}" "$corpus")")
    fi
done

echo
echo "fuzzing summary (${seconds}s per target):"
printf '  %s\n' "${summary[@]}"
exit "$failed"
