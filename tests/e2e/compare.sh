#!/usr/bin/env bash
# Timing, not a test (CI does not run it): image import and container start with
# overlaysnap (overlaysnapd as a proxy snapshotter) vs containerd's built-in overlayfs
# snapshotter, on the same machine, the same private containerd and the same images.
#
#   sudo tests/e2e/compare.sh [RUNS]        # RUNS defaults to 21
#
# Each run, for each snapshotter in turn: `ctr images import --snapshotter S` of the image
# archive (content + unpack), then `ctr run --rm --snapshotter S IMAGE ID true` (create,
# mount, start, wait, delete), then `ctr images rm --sync` (GC), so every import starts
# empty. Images: 3 layers and COMPARE_MANY (default 140) layers, from build-image.sh. The
# snapshotters take turns going first, run by run, so that neither gains from the order.
#
# Samples spread widely on a shared machine (tens of ms between runs of one step), so the
# verdict comes from the paired differences (overlaysnap minus overlayfs, one per run):
# their median with a distribution-free 95% confidence interval (order statistics of the
# binomial distribution). An interval above zero means overlaysnap is slower; one that
# holds zero means no difference was measured at that precision.
# Needs what containerd.sh needs (run that first); OVERLAYSNAPD / OVERLAYSNAP as there.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
runs=${1:-21}
many=${COMPARE_MANY:-140}
ns=compare
T=
daemon_pid=
containerd_pid=
. "$here/lib.sh"

[ "$(id -u)" = 0 ] || { echo "$0: must run as root" >&2; exit 1; }
for tool in containerd ctr runc; do
    command -v "$tool" >/dev/null || { echo "$0: $tool missing (run tests/e2e/containerd.sh first)" >&2; exit 1; }
done

find_daemon

on_exit() {
    local rc=$?
    set +e
    [ -z "$containerd_pid" ] || stop_pid "$containerd_pid" 15
    [ -z "$daemon_pid" ] || stop_pid "$daemon_pid" 15
    if [ -n "$T" ]; then
        kill_shims "$T/containerd.sock"
        unmount_under
        if [ -z "$(mounts_under)" ]; then rm -rf "$T"; else echo "still mounted under $T" >&2; fi
    fi
    exit "$rc"
}
trap on_exit EXIT

T=$(mktemp -d /tmp/overlaysnap-compare.XXXXXX)
ADDR=$T/containerd.sock
SOCK=$T/overlaysnap.sock
C() { timeout 300 ctr -a "$ADDR" -n "$ns" "$@"; }

"$here/build-image.sh" "$T/image-3.tar" 3 localhost/compare:3 2>/dev/null
"$here/build-image.sh" "$T/image-$many.tar" "$many" "localhost/compare:$many" 2>/dev/null

cat >"$T/containerd.toml" <<EOF
version = 2
root = "$T/containerd/root"
state = "$T/containerd/state"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs"]
[grpc]
  address = "$ADDR"
[ttrpc]
  address = "$ADDR.ttrpc"
[proxy_plugins.overlaysnap]
  type = "snapshot"
  address = "$SOCK"
EOF

"$daemon_bin" --root "$T/overlaysnap" --address "$SOCK" --log-level warn >"$T/overlaysnapd.log" 2>&1 &
daemon_pid=$!
containerd --config "$T/containerd.toml" --log-level warn >"$T/containerd.log" 2>&1 &
containerd_pid=$!
for ((i = 0; i < 300; i++)); do
    [ -S "$SOCK" ] && [ -S "$ADDR" ] && timeout 5 ctr -a "$ADDR" version >/dev/null 2>&1 && break
    if ! kill -0 "$daemon_pid" || ! kill -0 "$containerd_pid"; then tail "$T"/*.log >&2; exit 1; fi
    sleep 0.1
done
for ((i = 0; i < 60; i++)); do
    C snapshots --snapshotter overlaysnap usage >/dev/null 2>&1 && break
    sleep 0.5
done

now() { date +%s%N; }
ms() { echo $((($2 - $1) / 1000000)); }

declare -A samples
for ((r = 1; r <= runs; r++)); do
    order="overlaysnap overlayfs"
    ((r % 2)) || order="overlayfs overlaysnap"
    for layers in 3 "$many"; do
        for s in $order; do
            ref=localhost/compare:$layers
            t0=$(now)
            C images import --snapshotter "$s" "$T/image-$layers.tar" >/dev/null
            t1=$(now)
            C run --rm --snapshotter "$s" "$ref" "cmp-$r-$layers-$s" true
            t2=$(now)
            C images rm --sync "$ref" >/dev/null
            for ((i = 0; i < 100; i++)); do
                [ -z "$(C snapshots --snapshotter "$s" ls | tail -n +2)" ] && break
                sleep 0.1
            done
            samples[$layers,import,$s]+="$(ms "$t0" "$t1") "
            samples[$layers,run,$s]+="$(ms "$t1" "$t2") "
        done
    done
    echo "run $r/$runs done" >&2
done

echo
echo "containerd $(containerd --version | awk '{ print $3 }'), runc $(runc --version | awk 'NR == 1 { print $3 }'), $(nproc) cores, kernel $(uname -r)"
echo "$runs runs, milliseconds; diff = overlaysnap - overlayfs per run: median [95% CI]"
for layers in 3 "$many"; do
    for step in import run; do
        label="ctr images import"
        [ "$step" = run ] && label="ctr run --rm ... true"
        python3 "$here/paired.py" "$layers layers, $label" overlaysnap \
            "${samples[$layers,$step,overlaysnap]}" overlayfs "${samples[$layers,$step,overlayfs]}"
    done
done
echo
for layers in 3 "$many"; do
    for step in import run; do
        for s in overlaysnap overlayfs; do
            echo "  $layers layers $step $s: [${samples[$layers,$step,$s]% }]"
        done
    done
done
