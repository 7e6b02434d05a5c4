#!/usr/bin/env bash
# Mutation testing with cargo-mutants, scoped to the validation, ordering and store files.
# Too slow for CI on 2 cores: run it by hand.
#
#   scripts/mutants.sh [GROUP...]     groups: ordering store-sqlite store-postgres validation
#                                     (default: all four, in that order)
#
# Each group mutates its files only, runs the smallest test set that exercises them, with a
# per-mutant timeout, and writes cargo-mutants' output to $MUTANTS_OUT/<group>/mutants.out
# (default /tmp/mutants, never the repository). At the end it prints, per group: mutants
# tested, caught, missed, unviable, timeouts, and the score caught / (caught + missed + timeouts).
#
# Environment:
#   MUTANTS_OUT         output root (default /tmp/mutants)
#   MUTANTS_TARGET_DIR  cargo target dir shared by all groups, so dependencies build once
#                       (default $MUTANTS_OUT/target)
#   MUTANTS_SRC         tree to mutate (default: this checkout); cargo-mutants copies it to
#                       a scratch directory first, the tree itself is never modified
#   MUTANTS_TIMEOUT     per-mutant test timeout in seconds (default: per group, below)
#   MUTANTS_JOBS        parallel cargo-mutants jobs (default 1)
#   MUTANTS_ARGS        extra cargo-mutants options, split on spaces (no quoting), e.g.
#                       "--baseline=skip" or "--re apply.rs:155" to re-run some mutants
#   DATABASE_URL        PostgreSQL for store-postgres
#                       (default postgres://ci:ci@127.0.0.1:5432/ci)
#
# Requires cargo-mutants (cargo install --locked cargo-mutants; written against 27.1.0).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
src=${MUTANTS_SRC:-$root}
out_root=${MUTANTS_OUT:-/tmp/mutants}
export CARGO_TARGET_DIR=${MUTANTS_TARGET_DIR:-$out_root/target}
jobs=${MUTANTS_JOBS:-1}
read -r -a user_args <<<"${MUTANTS_ARGS:-}"

groups=("$@")
if [ ${#groups[@]} -eq 0 ]; then
    groups=(ordering store-sqlite store-postgres validation)
fi

command -v cargo-mutants >/dev/null || {
    echo "cargo-mutants is not installed: cargo install --locked cargo-mutants" >&2
    exit 2
}

# Sets files, test_args (cargo-mutants options), cargo_test_args (after --), timeout, env_args.
configure() {
    files=() test_args=() cargo_test_args=() env_args=() baseline=()
    case "$1" in
    ordering)
        # The ordering rule is pure; protime-model's own tests (its unit tests, doctests and
        # tests/ordering_rule.rs) kill every viable mutant, so the SQLite ordering proptest
        # (60 s, rebuilds the store for each mutant) adds nothing but time.
        files=(crates/protime-model/src/ordering.rs)
        test_args=(--test-package protime-model)
        timeout=60
        ;;
    store-sqlite)
        # The crate's unit tests, its conformance suite and the killers; the ordering
        # proptest (300 generated histories, ~60 s, case count fixed in code) is left out
        # because the conformance suite and the killers decide the same comparisons.
        # retention.rs (purge and erasure) and the backend-neutral helpers it shares with the
        # PostgreSQL store (protime-webhooks' sink/retention.rs) are judged by tests/retention.rs.
        files=(crates/protime-store-sqlite/src/{apply.rs,writer.rs,file_watch.rs,read.rs,retention.rs}
            crates/protime-webhooks/src/sink/retention.rs)
        test_args=(--test-package protime-store-sqlite)
        cargo_test_args=(--lib --test conformance --test mutants_killers --test retention)
        timeout=120
        ;;
    store-postgres)
        files=(crates/protime-store-postgres/src/{apply.rs,retention.rs})
        test_args=(--test-package protime-store-postgres)
        timeout=180
        env_args=(
            "DATABASE_URL=${DATABASE_URL:-postgres://ci:ci@127.0.0.1:5432/ci}"
            PROTIME_REQUIRE_POSTGRES=1
        )
        ;;
    validation)
        files=(crates/protime-model/src/{parse.rs,fast_path.rs,lexical.rs,model.rs,wire.rs})
        # protime-model's unit tests and the workspace tests that judge parse_delivery: the
        # model/JSON Schema agreement (fixed case counts, the slowest), the cross-language
        # corpus and the spec ranges; not the client, receiver or doctests (cargo test cannot
        # mix --doc with other targets). Every mutant rebuilds the crates above the model.
        # cargo test runs the binaries in name order and stops at the first that fails, so the
        # quick ones (the model's unit tests, the corpus) come before `schema_agreement`
        # (tests/tests/agreement.rs, ~30 s); a failing property is reported without shrinking,
        # since only caught-or-missed matters here.
        # cargo-mutants 27.1.0 runs its baseline on the mutated package alone, ignoring
        # --test-package, where --test corpus does not exist: the baseline is skipped, and
        # the script checks the unmutated tree with the same command first (below).
        # Dependencies (serde_json, jsonschema, proptest, regex) are built optimized: the
        # agreement tests then take seconds instead of a minute, which is what a mutant that
        # survives costs. The workspace's own crates, the mutated one included, stay debug.
        # Serde's `Visitor::expecting` only words an error that the fast path throws away.
        # The targets are given to every cargo invocation (--cargo-arg), so that a mutant's
        # build compiles these test binaries only, not the client and receiver tests and the
        # examples of protime-tests as well.
        optimized_dependencies='--config=profile.dev.package."*".opt-level=2'
        targets=(--lib --test=corpus --test=schema_agreement --test=spec_model)
        test_args=(--test-package protime-model,protime-tests --baseline=skip
            "--cargo-arg=$optimized_dependencies" --exclude-re '::expecting -> ')
        for target in "${targets[@]}"; do test_args+=("--cargo-arg=$target"); done
        baseline=(cargo test "$optimized_dependencies" -p protime-model -p protime-tests "${targets[@]}")
        env_args=(PROPTEST_MAX_SHRINK_ITERS=0)
        timeout=150
        ;;
    *)
        echo "unknown group: $1 (ordering, store-sqlite, store-postgres, validation)" >&2
        exit 2
        ;;
    esac
    timeout=${MUTANTS_TIMEOUT:-$timeout}
}

summary=()
status=0
for group in "${groups[@]}"; do
    configure "$group"
    out="$out_root/$group"
    mkdir -p "$out"
    file_args=()
    for f in "${files[@]}"; do file_args+=(--file "$f"); done
    echo "== $group: ${files[*]} (timeout ${timeout}s, output $out/mutants.out)"
    if [ ${#baseline[@]} -gt 0 ]; then
        echo "-- $group: the unmutated tree first: ${baseline[*]}"
        (cd "$src" && env "${env_args[@]}" nice -n 10 "${baseline[@]}" >"$out/baseline.log" 2>&1) || {
            echo "the unmutated tree fails its tests: see $out/baseline.log" >&2
            exit 1
        }
    fi
    set +e
    env "${env_args[@]}" nice -n 10 cargo mutants \
        --dir "$src" --no-config \
        "${file_args[@]}" "${test_args[@]}" \
        --jobs "$jobs" --timeout "$timeout" --build-timeout 600 \
        --output "$out" --no-shuffle \
        "${user_args[@]}" \
        -- "${cargo_test_args[@]}"
    rc=$?
    set -e
    # 0: all caught; 2: some missed; 3: some timed out. Anything else is a failure to run.
    case $rc in 0 | 2 | 3) ;; *) status=$rc ;; esac
    dir="$out/mutants.out"
    n() { if [ -f "$dir/$1" ]; then grep -c . "$dir/$1" || true; else echo 0; fi; }
    caught=$(n caught.txt) missed=$(n missed.txt) unviable=$(n unviable.txt) timeouts=$(n timeout.txt)
    tested=$((caught + missed + unviable + timeouts))
    viable=$((caught + missed + timeouts))
    if [ "$viable" -gt 0 ]; then
        score=$(awk -v c="$caught" -v v="$viable" 'BEGIN { printf "%.1f %%", 100 * c / v }')
    else
        score="n/a"
    fi
    summary+=("$(printf '%-15s %6s %6s %6s %8s %8s   %s' "$group" "$tested" "$caught" "$missed" "$unviable" "$timeouts" "$score")")
    if [ "$missed" -gt 0 ]; then
        echo "-- $group: missed"
        sed 's/^/   /' "$dir/missed.txt"
    fi
    if [ "$timeouts" -gt 0 ]; then
        echo "-- $group: timeouts"
        sed 's/^/   /' "$dir/timeout.txt"
    fi
done

echo
printf '%-15s %6s %6s %6s %8s %8s   %s\n' group tested caught missed unviable timeouts "score (caught / (caught + missed + timeouts))"
printf '%s\n' "${summary[@]}"
exit "$status"
