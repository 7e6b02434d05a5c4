#!/usr/bin/env bash
# Receiver throughput on loopback, three servers under the same load (wrk, same connections,
# same signed body):
#   (a) bare   — an axum handler that answers 200 and does nothing (the baseline;
#       tests/examples/bare_receiver.rs);
#   (b) memory — `protime receive --in-memory`: body limit, signature check, validation,
#       in-memory sink;
#   (c) sqlite — `protime receive` with the durable SQLite store (WAL, synchronous=FULL, group
#       commit);
#   and, for information, (d) sqlite-normal — the same with synchronous=NORMAL
#   (Durability::ProcessCrash: commits survive a process crash, not a power loss).
# The three servers are measured in interleaved rounds (a b c a b c …) so that machine noise
# hits all of them alike; prints each round, the median requests/s per server and the ratios
# b/a and c/a of the medians.
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

run() {
    local mode="$1" out="$work/$1.out"
    rm -f "$work/$mode.sqlite"*
    case "$mode" in
        bare) "$bare" > "$work/$mode.addr" 2>"$work/$mode.err" & ;;
        memory) PROTIME_WEBHOOK_KEY="$key" "$protime" --log warn receive --port 0 --in-memory > /dev/null 2>"$work/$mode.addr" & ;;
        sqlite) PROTIME_WEBHOOK_KEY="$key" "$protime" --log warn receive --port 0 --store "$work/$mode.sqlite" > /dev/null 2>"$work/$mode.addr" & ;;
        sqlite-normal) PROTIME_WEBHOOK_KEY="$key" "$protime" --log warn receive --port 0 --store "$work/$mode.sqlite" --durability process-crash > /dev/null 2>"$work/$mode.addr" & ;;
    esac
    local pid=$!
    for _ in $(seq 100); do grep -qE 'listening on|on http://' "$work/$mode.addr" 2>/dev/null && break; sleep 0.05; done
    local address
    address=$(grep -oE '(listening on |http://)[0-9.]+:[0-9]+' "$work/$mode.addr" | head -1 | sed -E 's/^(listening on |http:\/\/)//')
    if [ -z "$address" ]; then
        echo "error: the $mode receiver did not start:" >&2; cat "$work/$mode.err" >&2; exit 1
    fi
    # A short warm-up, then the measured run.
    wrk -t1 -c"$connections" -d2s -s "$work/post.lua" "http://$address/" >/dev/null
    wrk -t1 -c"$connections" -d"${duration}s" --latency -s "$work/post.lua" "http://$address/" > "$out"
    kill "$pid"; wait "$pid" 2>/dev/null || true
    if grep -q "Non-2xx" "$out"; then echo "error: $mode answered non-2xx:"; cat "$out"; exit 1; fi
    awk '/Requests\/sec/ {print $2}' "$out"
}

printf 'wrk -t1 -c%s, %s s per run, %s rounds, body %s bytes, %s cores\n' \
    "$connections" "$duration" "$rounds" "$(cat "$work/body.len")" "$(nproc)"
results=()
for round in $(seq "$rounds"); do
    a=$(run bare); b=$(run memory); c=$(run sqlite); d=$(run sqlite-normal)
    printf 'round %s: bare %s  memory %s  sqlite %s  sqlite-normal %s req/s\n' "$round" "$a" "$b" "$c" "$d"
    results+=("$a,$b,$c,$d")
done
python3 - "${results[@]}" <<'PY'
import statistics, sys
rows = [tuple(float(x) for x in r.split(",")) for r in sys.argv[1:]]
a, b, c, d = (statistics.median(col) for col in zip(*rows))
print(f"median   bare {a:10.0f}  memory {b:10.0f}  sqlite {c:10.0f}  sqlite-normal {d:10.0f} req/s")
print(f"b/a = {b / a:.2f} (target >= 0.85)")
print(f"c/a = {c / a:.2f} (target >= 0.5)")
print(f"d/a = {d / a:.2f} (synchronous=NORMAL, for information)")
PY
