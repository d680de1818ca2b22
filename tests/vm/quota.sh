#!/usr/bin/env bash
# The project-quota suites, each in a VM of its own (tests/vm/run.sh: fresh loop XFS and
# ext4 mounted prjquota, OVERLAYSNAP_QUOTA_VM=required). Needs tests/vm/setup.sh first.
#
#   tests/vm/quota.sh
#
# Runs, in this order:
#   1. tests/vm/selftest.sh, the rig's own proof that both file systems enforce and report
#      an 8 MiB project limit;
#   2. each test binary of SUITES below whose tests/NAME.rs exists, built on the host in
#      release (cargo test --no-run; its path read from cargo's JSON messages) and run in
#      the VM, which shares the host's root file system. A suite whose file does not exist
#      yet is named as skipped.
# It ends by naming what ran and what was skipped.
set -euo pipefail
cd "$(dirname "$0")/../.."

SUITES=(quota_project)

ran=()
skipped=()

echo "== tests/vm/quota.sh: the rig's selftest"
bash tests/vm/run.sh bash tests/vm/selftest.sh
ran+=("tests/vm/selftest.sh")

for suite in "${SUITES[@]}"; do
    if [ ! -f "tests/$suite.rs" ]; then
        echo "== tests/vm/quota.sh: tests/$suite.rs does not exist: skipped"
        skipped+=("tests/$suite.rs")
        continue
    fi
    echo "== tests/vm/quota.sh: building tests/$suite.rs"
    bins=$(cargo test -p overlaysnap --release --test "$suite" --no-run --message-format=json |
        jq -r --arg t "$suite" \
            'select(.reason == "compiler-artifact" and .target.name == $t and .executable != null)
             | .executable')
    if [ "$(wc -l <<<"$bins")" != 1 ] || [ ! -x "$bins" ]; then
        echo "$0: cargo named no single test binary for $suite: '$bins'" >&2
        exit 1
    fi
    echo "== tests/vm/quota.sh: tests/$suite.rs in the VM ($bins)"
    bash tests/vm/run.sh "$bins"
    ran+=("tests/$suite.rs")
done

echo "== tests/vm/quota.sh ran in the VM: ${ran[*]}; skipped: ${skipped[*]:-none}"
