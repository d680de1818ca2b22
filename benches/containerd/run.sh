#!/usr/bin/env bash
# Builds and runs the containerd 1.6 overlay snapshotter baseline (main.go) in
# GOPATH mode against Debian's packaged Go sources. Not part of CI.
#
#   benches/containerd/run.sh                  # full run, about 1.5 minutes
#   benches/containerd/run.sh -duration 2s     # any flags go to the program
#
# Environment: BUILD_DIR (default /var/tmp/containerd-overlay-bench-build) holds
# the binary and Go's build cache; SKIP_APT=1 skips the apt-get step.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
build="${BUILD_DIR:-/var/tmp/containerd-overlay-bench-build}"

if [ "${SKIP_APT:-0}" != 1 ]; then
    # golang-github-containerd-containerd-dev (1.6.20 on Debian 12) depends on the
    # -dev packages of everything it imports (bbolt, logrus, continuity, ...).
    pkgs=(golang-go golang-github-containerd-containerd-dev)
    missing=()
    for p in "${pkgs[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    if [ "${#missing[@]}" -gt 0 ]; then
        sudo_=()
        [ "$(id -u)" = 0 ] || sudo_=(sudo)
        "${sudo_[@]}" apt-get update -q
        DEBIAN_FRONTEND=noninteractive "${sudo_[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
    fi
fi

dpkg-query -W -f='containerd sources: ${Package} ${Version}\n' golang-github-containerd-containerd-dev

mkdir -p "$build"
(
    cd "$here"
    # GOPATH mode: imports resolve from Debian's /usr/share/gocode, no module proxy.
    GO111MODULE=off GOPATH=/usr/share/gocode GOFLAGS= GOCACHE="$build/cache" \
        go build -o "$build/containerd-overlay-bench" .
)

exec "$build/containerd-overlay-bench" "$@"
