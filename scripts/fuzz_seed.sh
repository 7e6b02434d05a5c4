#!/usr/bin/env bash
# Seeds the fuzz corpora (fuzz/corpus/<target>/, not committed) from the repository's
# fixtures. Idempotent: writes only files named seed-*, never removes what a fuzzer found.
#   clocking-change fixtures       -> parse_delivery, verify_and_parse (signed, in the
#                                     target's header layout, see its fuzz_targets/*.rs)
#   openapi/*.json, xtask fixtures -> spec_preflight
#   the sandbox tests' filters     -> sandbox_filter
set -euo pipefail
cd "$(dirname "$0")/.."
corpus=fuzz/corpus
mkdir -p "$corpus"/{parse_delivery,verify_and_parse,spec_preflight,sandbox_filter}

i=0
for file in tests/fixtures/clocking-changes/valid/*.json tests/fixtures/clocking-changes/invalid/*.json tests/fixtures/clocking-changes/strict-only-invalid/*.json; do
    name=$(basename "$(dirname "$file")")-$(basename "$file" .json)
    cp "$file" "$corpus/parse_delivery/seed-$name"
    # verify_and_parse: [flags][aux][header count] + body. Flags: scheme i%4, signed
    # correctly (0x04), Content-Type application/json (0x10); every other invalid one
    # under the Reject policy (0x40).
    flags=$((0x14 | (i % 4)))
    case "$file" in */invalid/*) [ $((i % 2)) = 1 ] && flags=$((flags | 0x40)) ;; esac
    { printf "\\x$(printf %02x "$flags")\\x00\\x00"; cat "$file"; } > "$corpus/verify_and_parse/seed-$name"
    i=$((i + 1))
done
# verify_and_parse: unsigned, tampered, two signatures, a stale timestamp, extra headers
# (an empty name is the signature header, "t" the timestamp header, "c" Content-Type).
delete='{"changeType":"Delete","data":{"changeVersion":"0A","id":7}}'
printf '\x00\x00\x00%s' "$delete" > "$corpus/verify_and_parse/seed-unsigned"
printf '\x08\x00\x00%s' "$delete" > "$corpus/verify_and_parse/seed-tampered"
printf '\x0d\x01\x00%s' "$delete" > "$corpus/verify_and_parse/seed-two-signatures"
printf '\x16\x7e\x00%s' "$delete" > "$corpus/verify_and_parse/seed-timestamp-too-new"
printf '\x17\x02\x00%s' "$delete" > "$corpus/verify_and_parse/seed-timestamp-no-tolerance"
printf '\x00\x00\x01\x00\x40%s%s' "$(printf '0%.0s' $(seq 64))" "$delete" > "$corpus/verify_and_parse/seed-forged-hex"
printf '\x04\x00\x02\x01c\x0atext/plain\x01t\x0a1700000000%s' "$delete" > "$corpus/verify_and_parse/seed-extra-headers"
printf '\x84\x00\x00%s' "$delete" > "$corpus/verify_and_parse/seed-require-json-missing"

for file in openapi/*.json xtask/fixtures/*.json xtask/tests/fixtures/*.json; do
    cp "$file" "$corpus/spec_preflight/seed-$(basename "$file" .json)"
done

# The filters of crates/protime-sandbox/src/filter.rs's tests.
n=0
while IFS= read -r filter; do
    printf '%s' "$filter" > "$corpus/sandbox_filter/seed-$n"
    n=$((n + 1))
done <<'FILTERS'
person in (1, 2, 3) and date ge '2024-01-01' and date le '2024-12-31'
date ge '2024-12-01'
date ge '2026-01-01' AND date le '2026-01-02' and person eq 7 and kind eq 'Reason'
date eq '2026-01-02' and kind in ('InOut','Activity')
person eq 1
date ge '2024-01-01' and date le '2025-01-01'
date ge '2024-02-01' and date le '2024-01-01'
date ge '2024-02-30'
date ge '2024-01-01' or person eq 1
date ge '2024-01-01' and person in circle(2, 8)
date ge '2024-01-01' and kind eq 'Teleport'
date ge '2024-01-01' and colour eq 'red'
date ge '2024-01-01' and
date ge '2024-01-01
date gt '2024-01-01'
(date ge '2024-01-01')
date ge '2024-01-01' and person eq 0
date ge '2024-01-01' and date ge '2024-01-02'
date ge '2024-01-01' % 2
name eq 'it''s'
status eq 'Disabled'
collectionName eq 'clockings' and status eq 'Enabled'
collection-name eq 'clockings'
status eq 'Sleeping'
status eq
owner eq 'me'
status in ('Enabled')
FILTERS
printf '' > "$corpus/sandbox_filter/seed-empty"
echo "corpus files: $(for t in parse_delivery verify_and_parse spec_preflight sandbox_filter; do printf '%s=%s ' "$t" "$(ls "$corpus/$t" | wc -l)"; done)"
