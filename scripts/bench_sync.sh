#!/usr/bin/env bash
# Initial-sync throughput: `protime sync` into SQLite against a naive baseline, both paging
# through the same local sandbox seeded with over a million clockings.
#   baseline — scripts/sync_baseline.py: pages through the API and inserts every clocking into
#              SQLite in one transaction (no validation, no ordering rule, no change log,
#              one sync to disk at the end);
#   protime  — `protime sync`: every item validated, applied by changeVersion, logged with
#              its origin, committed in durable batches (WAL, synchronous=FULL) while the
#              next pages are fetched; creates a webhook first, as a re-initialization does.
#   protime-pg — the same `protime sync` into PostgreSQL (a fresh schema each round, on the
#              database named by DATABASE_URL, when it is set; synchronous_commit=on).
# Rounds are interleaved (baseline, protime, protime-pg, baseline, …) so machine noise hits
# all alike; prints each round, the medians, the ratio and protime's peak RSS.
#
# Usage: scripts/bench_sync.sh [ROUNDS] [PEOPLE] [DAYS]   (defaults: 3, 5000, 73 ≈ 1.01 M clockings)
#        DATABASE_URL=postgres://… scripts/bench_sync.sh   (adds the PostgreSQL runs)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-3}"
people="${2:-5000}"
days="${3:-73}"

if [ ! -x /usr/bin/time ]; then
    echo "installing GNU time (Debian package) for the peak RSS…"
    if [ "$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq time >/dev/null
    else sudo apt-get update -qq && sudo apt-get install -y -qq time >/dev/null; fi
fi

cargo build --release --quiet -p protime-cli --bin protime
protime=target/release/protime
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$protime" sandbox --port "$port" --rate 0 --people "$people" --days "$days" > "$work/sandbox.out" 2>&1 &
for _ in $(seq 300); do grep -q "Ctrl-C" "$work/sandbox.out" 2>/dev/null && break; sleep 0.2; done
grep -q "Ctrl-C" "$work/sandbox.out" || { echo "error: the sandbox did not start:" >&2; cat "$work/sandbox.out" >&2; exit 1; }

export PROTIME_BASE_URL="http://127.0.0.1:$port"
export PROTIME_TOKEN_URL="$PROTIME_BASE_URL/tenants/sandbox/connect/token"
export PROTIME_CLIENT_ID=sandbox-client PROTIME_CLIENT_SECRET=sandbox-secret
export PROTIME_USER_AGENT="SyncBench/1.0 (Bench)"
from=2026-01-01 to=2026-12-31

baseline() {
    rm -f "$work"/b.sqlite*
    python3 scripts/sync_baseline.py "$PROTIME_BASE_URL" "$PROTIME_TOKEN_URL" "$work/b.sqlite" "$from" "$to"
}

ours() {
    local store="${1:-$work/p.sqlite}"
    rm -f "$work"/p.sqlite* "$work/key"
    local started ended count
    started=$(date +%s.%N)
    /usr/bin/time -f "%M" -o "$work/rss" "$protime" sync --from "$from" --to "$to" \
        --destination "http://127.0.0.1:9/hook" --allow-insecure-destinations \
        --store "$store" --key-file "$work/key" > "$work/sync.out" 2>"$work/sync.err"
    ended=$(date +%s.%N)
    count=$(sed -nE 's/.*; ([0-9]+) clockings loaded.*/\1/p' "$work/sync.out")
    # Wall clock of the whole command: start-up, token, webhook creation and the sync.
    echo "$count $(python3 -c "print(f'{$ended - $started:.3f}')") $(cat "$work/rss")"
}

printf '%s cores; sandbox: %s people x %s days; sync %s..%s; %s rounds\n' "$(nproc)" "$people" "$days" "$from" "$to" "$rounds"
pg() {
    local schema="bench_sync_$$_$RANDOM" separator='?'
    case "$DATABASE_URL" in *\?*) separator='&';; esac
    ours "${DATABASE_URL}${separator}schema=$schema"
    psql "$DATABASE_URL" -qc "DROP SCHEMA $schema CASCADE" >/dev/null 2>&1
}

results=()
for round in $(seq "$rounds"); do
    read -r b_count b_seconds < <(baseline)
    read -r p_count p_seconds p_rss < <(ours)
    if [ "$b_count" != "$p_count" ]; then
        echo "error: the baseline loaded $b_count clockings, protime $p_count" >&2; exit 1
    fi
    g_seconds=0
    if [ -n "${DATABASE_URL:-}" ]; then
        read -r g_count g_seconds g_rss < <(pg)
        [ "$g_count" = "$p_count" ] || { echo "error: protime-pg loaded $g_count clockings, not $p_count" >&2; exit 1; }
    fi
    printf 'round %s: %s clockings; baseline %s s, protime %s s (peak RSS %s KiB), protime-pg %s s\n' \
        "$round" "$p_count" "$b_seconds" "$p_seconds" "$p_rss" "$g_seconds"
    results+=("$p_count,$b_seconds,$p_seconds,$p_rss,$g_seconds")
done
python3 - "${results[@]}" <<'PY'
import statistics, sys
rows = [tuple(float(x) for x in r.split(",")) for r in sys.argv[1:]]
count = rows[0][0]
b = statistics.median(r[1] for r in rows)
p = statistics.median(r[2] for r in rows)
rss = max(r[3] for r in rows)
print(f"median   baseline {count / b:10.0f} clockings/s   protime {count / p:10.0f} clockings/s")
print(f"protime / baseline = {b / p:.2f} (target >= 2)")
print(f"protime >= 100,000 clockings/s: {'yes' if count / p >= 100_000 else 'no'} ({count / p:.0f})")
print(f"protime peak RSS {rss / 1024:.1f} MiB (target <= 64)")
g = statistics.median(r[4] for r in rows)
if g > 0:
    print(f"protime into PostgreSQL {count / g:10.0f} clockings/s (target >= 50,000); pg / baseline = {b / g:.2f}")
PY
