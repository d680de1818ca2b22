#!/usr/bin/env bash
# Fetches Debian sid's `containerd` package (containerd 2.x) into a private apt state and
# unpacks it, without touching the system's apt sources:
#
#   tests/e2e/fetch-containerd2.sh [DIR]      # DIR: $CONTAINERD2_DIR or /var/cache/overlaysnap-containerd2
#
# DIR/parts/sid.sources names sid on the mirror of /etc/apt/sources.list.d/debian.sources;
# apt-get runs with its sources, lists and cache all under DIR. The package is unpacked
# into DIR/root (dpkg-deb -x, nothing installed); the script prints DIR/root/usr/bin, the
# directory to put first on PATH for the 2.x runs. Idempotent: when DIR/root/usr/bin holds
# a containerd that runs, it downloads nothing and only prints the directory.
set -euo pipefail

D=${1:-${CONTAINERD2_DIR:-/var/cache/overlaysnap-containerd2}}
bin=$D/root/usr/bin
if [ -x "$bin/containerd" ] && [ -x "$bin/ctr" ] && [ -x "$bin/containerd-shim-runc-v2" ] &&
    "$bin/containerd" --version >/dev/null 2>&1; then
    echo "$bin"
    exit 0
fi

sources=/etc/apt/sources.list.d/debian.sources
# The first URIs of the stanza whose Suites hold the release itself (not -security).
mirror=$(awk '/^URIs:/ { u = $2 } /^Suites:/ && u !~ /security/ { print u; exit }' "$sources")
[ -n "$mirror" ] || { echo "$0: no Debian mirror in $sources" >&2; exit 1; }

mkdir -p "$D/parts" "$D/lists/partial" "$D/cache/archives/partial"
cat >"$D/parts/sid.sources" <<SRC
Types: deb
URIs: $mirror
Suites: sid
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
O=(-o Dir::Etc::sourcelist=/dev/null -o "Dir::Etc::sourceparts=$D/parts"
    -o "Dir::State::Lists=$D/lists" -o "Dir::Cache=$D/cache"
    -o APT::Sandbox::User=root) # DIR need not be readable by _apt
apt-get "${O[@]}" update >&2
rm -f "$D"/containerd_*.deb
(cd "$D" && apt-get "${O[@]}" download containerd >&2)
debs=("$D"/containerd_*.deb)
[ "${#debs[@]}" = 1 ] && [ -f "${debs[0]}" ] || { echo "$0: no containerd .deb in $D" >&2; exit 1; }
rm -rf "$D/root.new"
dpkg-deb -x "${debs[0]}" "$D/root.new"
rm -rf "$D/root"
mv "$D/root.new" "$D/root"
"$bin/containerd" --version >&2
echo "$bin"
