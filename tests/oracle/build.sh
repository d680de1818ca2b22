#!/usr/bin/env bash
# Builds the containerd overlay snapshotter oracle (main.go beside this file)
# into OUT, in GOPATH mode against Debian's packaged Go sources, as
# benches/containerd/run.sh does. Used by tests/containerd_oracle.rs.
#
#   tests/oracle/build.sh OUT
#
# Needs the Debian packages golang-go and golang-github-containerd-containerd-dev
# (1.6.20 on Debian 12). When either is missing it says which on stderr and
# exits 3, so that the test can tell "cannot build here" from a broken build
# (any other non-zero status). Go's build cache goes to OUT.cache.
set -euo pipefail

if [ "$#" -ne 1 ]; then
    echo "usage: $0 OUT" >&2
    exit 2
fi
out="$1"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
gopath=/usr/share/gocode

if ! command -v go >/dev/null 2>&1; then
    echo "go not found: install the Debian package golang-go" >&2
    exit 3
fi
if [ ! -d "$gopath/src/github.com/containerd/containerd/snapshots/overlay" ]; then
    echo "containerd sources not found in $gopath: install the Debian package golang-github-containerd-containerd-dev" >&2
    exit 3
fi

mkdir -p "$(dirname "$out")"
cd "$here"
# GOPATH mode: imports resolve from Debian's /usr/share/gocode, no module proxy.
GO111MODULE=off GOPATH="$gopath" GOFLAGS= GOCACHE="$out.cache" go build -o "$out" .
