#!/usr/bin/env bash
# Shrinks the checked-in corpus of each fuzz target to a set of inputs that covers the same
# code edges, always keeping the hand-made seeds (seed-*).
#
#   fuzz/minimize.sh [TARGET...]        (default: every target; run from anywhere)
#
# `cargo fuzz cmin` keeps every input with a new libFuzzer feature (edge hit counts and
# comparison values too), which keeps thousands of files; this keeps what covers new
# edges only (libFuzzer's -set_cover_merge with counters and comparisons off), a seventh
# of them in our runs, with the same edge coverage. The fuzzer rebuilds the finer features from
# it within seconds.
set -euo pipefail

cd "$(dirname "$0")/.."
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(records filters ops)
fi

cargo fuzz build -s none
bin_dir=fuzz/target/x86_64-unknown-linux-gnu/release

for target in "${targets[@]}"; do
    corpus=fuzz/corpus/$target
    kept=$(mktemp -d)
    chmod 755 "$kept"
    cp "$corpus"/seed-* "$kept"/ 2>/dev/null || true
    before=$(find "$corpus" -type f | wc -l)
    "$bin_dir/$target" -set_cover_merge=1 -use_counters=0 -use_cmp=0 "$kept" "$corpus" \
        >"$kept.log" 2>&1 || { cat "$kept.log"; exit 1; }
    rm -rf "$corpus"
    mv "$kept" "$corpus"
    rm -f "$kept.log"
    echo "$target: $before -> $(find "$corpus" -type f | wc -l) files," \
        "$(cat "$corpus"/* | wc -c) bytes"
done
