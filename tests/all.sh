#!/usr/bin/env bash
# Every test of overlaysnap: the cargo suites (unit, property, conformance, crash, mounts,
# gRPC, CLI, fuzz-corpus replay, doctests), then the end-to-end runs against a real
# containerd. The end-to-end part needs root and installs Debian's containerd and runc.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo test --workspace
cargo build --release -p overlaysnap-daemon -p overlaysnap-cli
target=${CARGO_TARGET_DIR:-$PWD/target}
export OVERLAYSNAPD="$target/release/overlaysnapd" OVERLAYSNAP="$target/release/overlaysnap"
for script in tests/e2e/ctr_snapshots.sh tests/e2e/containerd.sh; do
  echo "== $script"
  bash "$script"
done
