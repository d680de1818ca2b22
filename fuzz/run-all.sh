#!/usr/bin/env bash
# Builds every fuzz target on stable (no sanitizer) and runs each, one at a time, for
# SECONDS seconds from the checked-in corpus; exits non-zero if any target crashed, hung
# or ran out of memory.
#
#   fuzz/run-all.sh SECONDS [TARGET...]     (default: every target; run from anywhere)
#
# New interesting inputs go to a scratch directory, not into fuzz/corpus (run
# fuzz/minimize.sh after copying what you want to keep); a crashing input is saved in
# fuzz/artifacts/<target>/ and the reproduce command is printed. The regressions under
# fuzz/regressions/ are not fed to the fuzzer (an open bug there would stop it at once):
# `cargo test --test fuzz_corpus` replays them. See fuzz/README.md.
set -uo pipefail

if [ $# -lt 1 ] || ! [[ $1 =~ ^[0-9]+$ ]]; then
    echo "usage: $0 SECONDS [TARGET...]" >&2
    exit 2
fi
seconds=$1
shift
cd "$(dirname "$0")/.."
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(records filters ops)
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "cargo-fuzz is missing: cargo install --locked cargo-fuzz" >&2
    exit 2
fi
cargo fuzz build -s none || exit 1

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
failed=()
summary=()
for target in "${targets[@]}"; do
    echo "=== $target: ${seconds}s"
    mkdir -p "$scratch/$target" "fuzz/artifacts/$target"
    log="$scratch/$target.log"
    # -timeout: an input that runs 25 s is a hang; the outer timeout catches a stuck run.
    timeout $((seconds + 300)) cargo fuzz run -s none "$target" \
        "$scratch/$target" "fuzz/corpus/$target" -- \
        -max_total_time="$seconds" -timeout=25 -rss_limit_mb=4096 \
        -print_final_stats=1 >"$log" 2>&1
    status=$?
    stats=$(grep -E '^stat::(number_of_executed_units|average_exec_per_sec|new_units_added|peak_rss_mb)' "$log" |
        sed -E 's/^stat::([a-z_]+):[[:space:]]*/\1=/' | tr '\n' ' ')
    if [ $status -eq 0 ]; then
        summary+=("$target: ok; $stats")
    else
        failed+=("$target")
        summary+=("$target: FAILED (exit $status); $stats")
        grep -E -A12 "panicked at|ERROR: libFuzzer|SUMMARY:" "$log" | head -40
        grep -E -A2 '^Reproduce with:|^Minimize test case with:' "$log"
    fi
done

echo "=== summary"
printf '%s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
    echo "crashed: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
    exit 1
fi
