#!/usr/bin/env bash
# Receiver throughput on loopback, three servers under the same load (wrk, same connections,
# same signed body):
#   (a) bare   — an axum handler that answers 200 and does nothing (the baseline;
#       tests/examples/bare_receiver.rs);
#   (b) memory — `protime receive --in-memory`: body limit, signature check, validation,
#       in-memory sink;
#   (c) sqlite — `protime receive` with the durable SQLite store (WAL, synchronous=FULL, group
#       commit);
#   (d) sqlite-normal — the same with synchronous=NORMAL, for information
#       (Durability::ProcessCrash: commits survive a process crash, not a power loss);
#   (e) pg — `protime receive --store postgres://…` (synchronous_commit=on, group commit),
#       one replica;
#   (f) pg2 — two such replicas on the same database and schema, the load split between
#       them (two wrk processes, half the connections each; their req/s are added).
# The servers are measured in interleaved rounds (a b c d e f a b c …) so that machine noise
# hits all of them alike; prints each round, the median requests/s per server and the ratios
# of the medians to bare axum. PostgreSQL runs on the same 2-core machine as the load.
#
# PostgreSQL: DATABASE_URL names the database (each run gets a fresh schema, dropped after);
# e.g. DATABASE_URL=postgres://ci:ci@127.0.0.1:5432/ci (see README, "PostgreSQL").
#
# Usage: scripts/bench_receiver.sh [SECONDS] [CONNECTIONS] [ROUNDS]   (defaults: 5 s, 32, 3)
set -euo pipefail
cd "$(dirname "$0")/.."
duration="${1:-5}"
connections="${2:-32}"
rounds="${3:-3}"

if ! command -v wrk >/dev/null; then
    echo "installing wrk (Debian package)…"
    if [ "$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq wrk >/dev/null
    else sudo apt-get update -qq && sudo apt-get install -y -qq wrk >/dev/null; fi
fi

: "${DATABASE_URL:?set DATABASE_URL to a PostgreSQL database for the pg runs (see README, PostgreSQL)}"
psql "$DATABASE_URL" -qAtc 'select 1' >/dev/null || { echo "error: cannot connect to DATABASE_URL" >&2; exit 1; }
separator='?'; case "$DATABASE_URL" in *\?*) separator='&';; esac

cargo build --release --quiet -p protime-cli --bin protime
cargo build --release --quiet -p protime-tests --example bare_receiver
protime=target/release/protime
bare=target/release/examples/bare_receiver
key="bench-webhook-key"
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

# A typical delivery, minified, and its HMAC-SHA256 signature (the default scheme).
python3 - "$work" "$key" <<'PY'
import hashlib, hmac, json, pathlib, sys
work, key = pathlib.Path(sys.argv[1]), sys.argv[2]
body = json.dumps(json.load(open("tests/fixtures/clocking-changes/valid/inout-all-fields.json")), separators=(",", ":"))
signature = hmac.new(key.encode(), body.encode(), hashlib.sha256).hexdigest()
lua = f'''wrk.method = "POST"
wrk.body = {json.dumps(body)}
wrk.headers["Content-Type"] = "application/json"
wrk.headers["x-protime-signature"] = "{signature}"
'''
(work / "post.lua").write_text(lua)
(work / "body.len").write_text(str(len(body)))
PY

# Starts a receiver (mode, instance), prints its address.
start() {
    local mode="$1" name="$2" store="$3"
    case "$mode" in
        bare) "$bare" > "$work/$name.addr" 2>"$work/$name.err" & ;;
        memory) PROTIME_WEBHOOK_KEY="$key" "$protime" --log warn receive --port 0 --in-memory > /dev/null 2>"$work/$name.addr" & ;;
        sqlite-normal) PROTIME_WEBHOOK_KEY="$key" "$protime" --log warn receive --port 0 --store "$store" --durability process-crash > /dev/null 2>"$work/$name.addr" & ;;
        *) PROTIME_WEBHOOK_KEY="$key" "$protime" --log warn receive --port 0 --store "$store" > /dev/null 2>"$work/$name.addr" & ;;
    esac
    echo $! > "$work/$name.pid"
    for _ in $(seq 200); do grep -qE 'listening on|on http://' "$work/$name.addr" 2>/dev/null && break; sleep 0.05; done
    local address
    address=$(grep -oE '(listening on |http://)[0-9.]+:[0-9]+' "$work/$name.addr" | head -1 | sed -E 's/^(listening on |http:\/\/)//')
    if [ -z "$address" ]; then
        echo "error: the $name receiver did not start:" >&2; cat "$work/$name.addr" "$work/$name.err" >&2 2>/dev/null; exit 1
    fi
    echo "$address"
}

run() {
    local mode="$1" replicas=1 store schema=""
    rm -f "$work/$mode.sqlite"*
    case "$mode" in
        sqlite|sqlite-normal) store="$work/$mode.sqlite" ;;
        pg|pg2)
            schema="bench_${mode}_$$_$RANDOM"
            store="${DATABASE_URL}${separator}schema=$schema"
            [ "$mode" = pg2 ] && replicas=2 ;;
        *) store="" ;;
    esac
    local addresses=() i
    for i in $(seq "$replicas"); do addresses+=("$(start "$mode" "$mode-$i" "$store")"); done
    local per=$(( connections / replicas ))
    # A short warm-up, then the measured run; one wrk per replica, all at once.
    local warmups=() wrks=()
    for i in $(seq "$replicas"); do
        wrk -t1 -c"$per" -d2s -s "$work/post.lua" "http://${addresses[$((i - 1))]}/" >/dev/null &
        warmups+=($!)
    done
    wait "${warmups[@]}"
    for i in $(seq "$replicas"); do
        wrk -t1 -c"$per" -d"${duration}s" --latency -s "$work/post.lua" "http://${addresses[$((i - 1))]}/" > "$work/$mode-$i.out" &
        wrks+=($!)
    done
    wait "${wrks[@]}"
    for i in $(seq "$replicas"); do
        kill "$(cat "$work/$mode-$i.pid")"; wait "$(cat "$work/$mode-$i.pid")" 2>/dev/null || true
        rm -f "$work/$mode-$i.pid"
        if grep -q "Non-2xx" "$work/$mode-$i.out"; then echo "error: $mode answered non-2xx:" >&2; cat "$work/$mode-$i.out" >&2; exit 1; fi
    done
    if [ -n "$schema" ]; then psql "$DATABASE_URL" -qc "DROP SCHEMA $schema CASCADE" >/dev/null; fi
    cat "$work/$mode"-*.out | awk '/Requests\/sec/ {sum += $2} END {printf "%.2f\n", sum}'
    rm -f "$work/$mode"-*.out
}

printf 'wrk -t1 -c%s, %s s per run, %s rounds, body %s bytes, %s cores\n' \
    "$connections" "$duration" "$rounds" "$(cat "$work/body.len")" "$(nproc)"
results=()
for round in $(seq "$rounds"); do
    a=$(run bare); b=$(run memory); c=$(run sqlite); d=$(run sqlite-normal); e=$(run pg); f=$(run pg2)
    printf 'round %s: bare %s  memory %s  sqlite %s  sqlite-normal %s  pg %s  pg2 %s req/s\n' "$round" "$a" "$b" "$c" "$d" "$e" "$f"
    results+=("$a,$b,$c,$d,$e,$f")
done
python3 - "${results[@]}" <<'PY'
import statistics, sys
rows = [tuple(float(x) for x in r.split(",")) for r in sys.argv[1:]]
a, b, c, d, e, f = (statistics.median(col) for col in zip(*rows))
print(f"median   bare {a:.0f}  memory {b:.0f}  sqlite {c:.0f}  sqlite-normal {d:.0f}  pg {e:.0f}  pg2 {f:.0f} req/s")
print(f"b/a = {b / a:.2f} (target >= 0.85)")
print(f"c/a = {c / a:.2f} (target >= 0.5)")
print(f"d/a = {d / a:.2f} (synchronous=NORMAL, for information)")
print(f"e/a = {e / a:.2f} (PostgreSQL, one replica; target >= 0.2)")
print(f"f/a = {f / a:.2f} (PostgreSQL, two replicas sharing the database)")
PY
