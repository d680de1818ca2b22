#!/usr/bin/env bash
# Timing, not a test (CI does not run it): container start in a user namespace on
# containerd 2.x, ID-mapped mounts (`remap-ids`) against containerd's chown copy of the
# image, on the same overlaysnapd binary and the same many-layer image.
#
#   sudo tests/e2e/userns_start.sh [RUNS]     # RUNS defaults to 15
#
# Two stacks run side by side, each a private containerd 2.x (Debian sid's, from
# fetch-containerd2.sh) over its own overlaysnapd and root:
#   remap  tests/e2e/containerd2.toml as README.md shows it (the proxy plugin declares
#          capabilities = ["remap-ids", "only-remap-ids"]) and remap_ids = true;
#   chown  the same file without the capabilities line, and remap_ids off (the default):
#          containerd makes a chowned copy of the image's layers for the mapping.
# Each run times `ctr run --rm --uidmap 0:100000:65536 --gidmap … IMAGE ID true` on each
# stack in turn (`--remap-labels` on the remap stack), the stacks taking turns going
# first. After each chown run the chowned copy (the committed snapshots the run added) is
# removed unless containerd's GC got there first, so that every run pays for the copy, as
# a pod with a mapping of its own does.
# The verdict comes from the paired differences (tests/e2e/paired.py).
# Environment: USERNS_LAYERS (140), OVERLAYSNAPD (default: cargo build --release).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
runs=${1:-15}
layers=${USERNS_LAYERS:-140}
map=0:100000:65536
ns=userns
T=
pids=()
. "$here/lib.sh"

[ "$(id -u)" = 0 ] || { echo "$0: must run as root" >&2; exit 1; }
use_containerd 2
find_daemon

on_exit() {
    local rc=$? pid i
    set +e
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null; done
    for pid in "${pids[@]}"; do
        for ((i = 0; i < 150; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null
    done
    if [ -n "$T" ]; then
        kill_shims "$T/"
        unmount_under
        if [ -z "$(mounts_under)" ]; then rm -rf "$T"; else echo "still mounted under $T" >&2; fi
    fi
    exit "$rc"
}
trap on_exit EXIT

T=$(mktemp -d /tmp/overlaysnap-userns.XXXXXX)
chmod 711 "$T"
"$here/build-image.sh" "$T/image.tar" "$layers" "localhost/userns:$layers" 2>/dev/null
ref=localhost/userns:$layers

# start STACK: the stack's overlaysnapd and containerd, and the image imported into it.
start() {
    local s=$1 d=$T/$1 i
    mkdir -m 711 "$d" "$d/containerd"
    if [ "$s" = remap ]; then
        printf 'remap_ids = true\n' >"$d/overlaysnapd.toml"
    else
        : >"$d/overlaysnapd.toml"
    fi
    {
        cat <<EOF
version = 3
root = "$d/containerd/root"
state = "$d/containerd/state"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.cri.v1.runtime",
  "io.containerd.snapshotter.v1.blockfile", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.erofs",
  "io.containerd.snapshotter.v1.zfs"]
[grpc]
  address = "$d/containerd.sock"
[ttrpc]
  address = "$d/containerd.sock.ttrpc"
EOF
        sed -e '/^version = 3$/d' \
            -e "s|\"/run/overlaysnap/overlaysnap.sock\"|\"$d/overlaysnap.sock\"|" \
            -e "s|\"/var/lib/overlaysnap\"|\"$d/overlaysnap\"|" \
            "$here/containerd2.toml" |
            if [ "$s" = remap ]; then cat; else grep -v '^  capabilities = '; fi
    } >"$d/containerd.toml"
    "$daemon_bin" --root "$d/overlaysnap" --address "$d/overlaysnap.sock" \
        --config "$d/overlaysnapd.toml" --log-level warn >"$d/overlaysnapd.log" 2>&1 &
    pids+=($!)
    containerd --config "$d/containerd.toml" --log-level warn >"$d/containerd.log" 2>&1 &
    pids+=($!)
    for ((i = 0; i < 300; i++)); do
        [ -S "$d/overlaysnap.sock" ] && [ -S "$d/containerd.sock" ] &&
            timeout 5 ctr -a "$d/containerd.sock" version >/dev/null 2>&1 && break
        sleep 0.1
    done
    C "$s" images import --snapshotter overlaysnap "$T/image.tar" >/dev/null
}
C() { local s=$1; shift; timeout 600 ctr -a "$T/$s/containerd.sock" -n "$ns" "$@"; }
committed() { C "$1" snapshots --snapshotter overlaysnap ls | awk '$3 == "Committed" { print $1 }' | sort; }

start remap
start chown
image_snapshots=$(committed chown)

now() { date +%s%N; }
declare -A samples
for ((r = 1; r <= runs; r++)); do
    order="remap chown"
    ((r % 2)) || order="chown remap"
    for s in $order; do
        flags=(--uidmap "$map" --gidmap "$map")
        [ "$s" = chown ] || flags+=(--remap-labels)
        t0=$(now)
        C "$s" run --rm --snapshotter overlaysnap "${flags[@]}" "$ref" "u-$r-$s" true
        t1=$(now)
        samples[$s]+="$(((t1 - t0) / 1000000)) "
        if [ "$s" = chown ]; then
            # containerd's GC may have collected the copy already: nothing refers to it
            # once the container is gone.
            copies=$(comm -13 <(echo "$image_snapshots") <(committed chown))
            # The copy is a chain: remove it from its top down.
            while [ -n "$copies" ]; do
                for c in $copies; do C chown snapshots --snapshotter overlaysnap rm "$c" 2>/dev/null || true; done
                copies=$(comm -13 <(echo "$image_snapshots") <(committed chown))
            done
        else
            [ "$(committed remap)" = "$(committed chown)" ] ||
                { echo "run $r: the remap stack made a copy" >&2; exit 1; }
        fi
    done
    echo "run $r/$runs done" >&2
done

echo
echo "containerd $(containerd --version | awk '{ print $3 }'), runc $(runc --version | awk 'NR == 1 { print $3 }'), $(nproc) cores, kernel $(uname -r)"
echo "$runs runs, $layers layers, milliseconds; diff = remap - chown per run: median [95% CI]"
python3 "$here/paired.py" "ctr run --rm --uidmap ... true" remap "${samples[remap]}" chown "${samples[chown]}"
echo "  remap: [${samples[remap]% }]"
echo "  chown: [${samples[chown]% }]"
