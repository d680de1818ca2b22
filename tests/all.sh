#!/usr/bin/env bash
# Every test of overlaysnap: the cargo suites (unit, property, conformance, crash, mounts,
# gRPC, CLI, fuzz-corpus replay, doctests), then the end-to-end runs against a real
# containerd: Debian 12's containerd 1.6, then Debian sid's containerd 2.x
# (tests/e2e/fetch-containerd2.sh caches it in $CONTAINERD2_DIR, default
# /var/cache/overlaysnap-containerd2; 2.x is put first on PATH for its runs only). The
# end-to-end part needs root and installs Debian's containerd and runc (and btrfs-progs:
# tests/e2e/quota.sh runs the daemon on a loop btrfs with quotas).
set -euo pipefail
cd "$(dirname "$0")/.."

cargo test --workspace
cargo build --release -p overlaysnap-daemon -p overlaysnap-cli
target=${CARGO_TARGET_DIR:-$PWD/target}
export OVERLAYSNAPD="$target/release/overlaysnapd" OVERLAYSNAP="$target/release/overlaysnap"
for major in 1 2; do
  for script in tests/e2e/ctr_snapshots.sh tests/e2e/containerd.sh tests/e2e/quota.sh; do
    echo "== $script (containerd $major.x)"
    E2E_CONTAINERD=$major bash "$script"
  done
done
