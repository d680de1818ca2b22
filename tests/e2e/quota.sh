#!/usr/bin/env bash
# End-to-end: size limits (btrfs qgroups) through containerd.
#
#   sudo tests/e2e/quota.sh
#
# A loop btrfs (2 GiB sparse file, quotas enabled, its loop device attached with losetup)
# is overlaysnapd's root file system; overlaysnapd runs with `default_size` in its
# --config; a private containerd (as in containerd.sh) imports the 3-layer image of
# build-image.sh and runs two long-lived containers (`sleep`), writing with
# `ctr tasks exec … dd`:
#   qa: `ctr run --snapshotter-label containerd.io/snapshot/max-size=24MiB` (the label
#       reaches Prepare through containerd): 16 MiB fit, 64 MiB more fail with "Disk
#       quota exceeded"; its subvolume's qgroup limit is 24 MiB (`btrfs qgroup show`);
#       `ctr snapshots usage -b` is the 16 MiB written, within 1 MiB (the subvolume's
#       own tree blocks, the files' metadata);
#   qb: no label, so `default_size` (40 MiB): 32 MiB fit (more than qa's limit), 64 MiB
#       more fail.
# Then the daemon is stopped with SIGTERM and restarted, then killed with SIGKILL and
# restarted: each time the usage of qa is unchanged, and after its task is restarted (a new
# mount from the new daemon) a write past the limit fails again for qa and qb. Removing the
# containers destroys their subvolumes (`btrfs subvolume list`); images rm + GC leave no
# subvolume under the root; the cleanup unmounts the loop btrfs and detaches its loop
# device, on failure too.
#
# Environment: as containerd.sh: E2E_CONTAINERD (1 or 2), OVERLAYSNAPD, OVERLAYSNAP,
# E2E_TIMEOUT, E2E_KEEP, E2E_LOG_LEVEL, E2E_TMPDIR. Needs btrfs-progs (installed when
# missing). Prints `ok`/`FAIL` per check, ends with `N passed, M failed`; exit 1 on failure.
set -Eeuo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
want_major=${E2E_CONTAINERD:-1}
call_timeout=${E2E_TIMEOUT:-180}
ns=e2e-quota
snap=overlaysnap
label_limit=$((24 << 20)) # qa's max-size label, bytes
default_size=$((40 << 20)) # the daemon's default_size, bytes
tolerance=$((1 << 20))    # usage may exceed the bytes written by this much

passed=0
failed=0
last_error=
T=
MNT=
loopdev=
daemon_pid=
containerd_pid=

. "$here/lib.sh"

on_exit() {
    local rc=$? f
    set +e
    trap - ERR
    if [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then
        failed=1
        say "FAIL - aborted (exit $rc${last_error:+ at $last_error})"
    fi
    if [ -n "$T" ]; then
        if [ "$failed" -ne 0 ]; then
            for f in "$T/overlaysnapd.log" "$T/containerd.log"; do
                [ -s "$f" ] || continue
                say "--- last lines of $f"
                tail -n 30 "$f" | sed 's/^/    /'
            done
        fi
        if [ -n "$containerd_pid" ] && kill -0 "$containerd_pid" 2>/dev/null; then
            for id in $(timeout 10 ctr -a "$T/containerd.sock" -n "$ns" tasks ls -q 2>/dev/null); do
                timeout 10 ctr -a "$T/containerd.sock" -n "$ns" tasks rm -f "$id" >/dev/null 2>&1
            done
        fi
        [ -z "$containerd_pid" ] || stop_pid "$containerd_pid" 15
        [ -z "$daemon_pid" ] || stop_pid "$daemon_pid" 15
        kill_shims "$T/containerd.sock"
        # Deepest first: the containers' overlays (under containerd/state) before the btrfs.
        unmount_under
        if [ -n "$loopdev" ]; then
            losetup -d "$loopdev" || say "could not detach $loopdev"
        fi
        remove_tmp
    fi
    say ""
    say "$passed passed, $failed failed"
    [ "$failed" -eq 0 ] || exit 1
    exit 0
}
trap on_exit EXIT
trap 'exit 130' INT TERM
trap 'last_error="line $LINENO: $BASH_COMMAND"' ERR

[ "$(id -u)" = 0 ] || { echo "$0: must run as root" >&2; exit 1; }

log "prerequisites"
use_containerd "$want_major" || die "E2E_CONTAINERD" "must be 1 or 2, not $want_major"
install_missing mkfs.btrfs:btrfs-progs
major=$(containerd_major)
expect_eq "containerd's major version is $want_major ($(containerd --version))" "$want_major" "$major"
[ "$major" = "$want_major" ] || exit 1

find_binaries

T=$(mktemp -d "${E2E_TMPDIR:-/tmp}/overlaysnap-quota.XXXXXX")
chmod 711 "$T"
mkdir -m 711 "$T/containerd"
MNT=$T/btrfs
ROOT=$MNT/root # the daemon's root, on the loop btrfs
SOCK=$T/overlaysnap.sock
ADDR=$T/containerd.sock
say "temp dir: $T"

C() { timeout "$call_timeout" ctr -a "$ADDR" -n "$ns" "$@"; }
S() { C snapshots --snapshotter "$snap" "$@"; }

log "a loop btrfs with quotas"
truncate -s 2G "$T/btrfs.img"
must "mkfs.btrfs" mkfs.btrfs -q "$T/btrfs.img"
loopdev=$(losetup --find --show "$T/btrfs.img")
mkdir -m 711 "$MNT"
must "mount $loopdev (btrfs)" mount "$loopdev" "$MNT"
must "btrfs quota enable" btrfs quota enable "$MNT"

img3=$T/image-3.tar
ref3=localhost/overlaysnap-e2e:3
must "build the 3-layer image" "$here/build-image.sh" "$img3" 3 "$ref3"

log "containerd config"
if [ "$major" = 1 ]; then
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
else
    {
        cat <<EOF
version = 3
root = "$T/containerd/root"
state = "$T/containerd/state"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.cri.v1.runtime",
  "io.containerd.snapshotter.v1.blockfile", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.erofs",
  "io.containerd.snapshotter.v1.zfs"]
[grpc]
  address = "$ADDR"
[ttrpc]
  address = "$ADDR.ttrpc"
EOF
        sed -e '/^version = 3$/d' \
            -e "s|\"/run/overlaysnap/overlaysnap.sock\"|\"$SOCK\"|" \
            -e "s|\"/var/lib/overlaysnap\"|\"$ROOT\"|" \
            "$here/containerd2.toml"
    } >"$T/containerd.toml"
fi
{
    echo "default_size = \"40MiB\""
    # containerd 2.x's config declares remap-ids (see containerd.sh).
    [ "$major" = 1 ] || echo "remap_ids = true"
} >"$T/overlaysnapd.toml"

daemon_runs=0
start_daemon() {
    local i
    daemon_runs=$((daemon_runs + 1))
    "$daemon_bin" --root "$ROOT" --address "$SOCK" --name overlaysnap \
        --config "$T/overlaysnapd.toml" --log-level "${E2E_LOG_LEVEL:-info}" \
        >>"$T/overlaysnapd.log" 2>&1 &
    daemon_pid=$!
    for ((i = 0; i < 300; i++)); do
        kill -0 "$daemon_pid" 2>/dev/null ||
            die "overlaysnapd start #$daemon_runs" "it exited: $(tail -n 20 "$T/overlaysnapd.log")"
        if listening "$daemon_pid" && [ -S "$SOCK" ]; then
            ok "overlaysnapd start #$daemon_runs (pid $daemon_pid)"
            return 0
        fi
        sleep 0.1
    done
    die "overlaysnapd start #$daemon_runs" "not listening on $SOCK after 30s"
}
stop_daemon() {
    local rc=0
    kill -TERM "$daemon_pid"
    wait "$daemon_pid" || rc=$?
    daemon_pid=
    expect_eq "overlaysnapd exits 0 on SIGTERM" 0 "$rc"
}
kill9_daemon() {
    kill -KILL "$daemon_pid"
    wait "$daemon_pid" 2>/dev/null || true
    daemon_pid=
    say "killed overlaysnapd with SIGKILL"
}
# containerd reaches the (restarted) daemon: a throwaway snapshot is prepared and removed.
probes=0
wait_reachable() {
    local i out key
    for ((i = 0; i < 60; i++)); do
        probes=$((probes + 1))
        key=quota-probe-$probes
        if out=$(S prepare "$key" 2>&1) && out=$(S rm "$key" 2>&1); then
            ok "containerd reaches $snap${1:+ $1} (after $i retries)"
            return 0
        fi
        sleep 0.5
    done
    die "containerd reaches $snap${1:+ $1}" "$out"
}
start_containerd() {
    local i
    containerd --config "$T/containerd.toml" --log-level info >>"$T/containerd.log" 2>&1 &
    containerd_pid=$!
    for ((i = 0; i < 300; i++)); do
        kill -0 "$containerd_pid" 2>/dev/null ||
            die "containerd start" "it exited: $(tail -n 20 "$T/containerd.log")"
        if [ -S "$ADDR" ] && timeout 5 ctr -a "$ADDR" version >/dev/null 2>&1; then
            ok "containerd start (pid $containerd_pid)"
            return 0
        fi
        sleep 0.1
    done
    die "containerd start" "not serving on $ADDR after 30s"
}

# write_fits ID MIB FILE: in container ID, writing MIB MiB to FILE succeeds (then syncs, so
# the qgroup numbers include it).
write_fits() {
    local out
    if out=$(C tasks exec --exec-id "w$RANDOM" "$1" \
        sh -c "dd if=/dev/zero of=$3 bs=1M count=$2 && sync" 2>&1); then
        ok "$1: writing $2 MiB to $3 succeeds"
    else
        fail "$1: writing $2 MiB to $3 succeeds" "$out"
    fi
}
# write_fails ID MIB: in container ID, writing MIB MiB more fails with EDQUOT; the partial
# file is removed and the file system synced.
write_fails() {
    local out rc=0
    out=$(C tasks exec --exec-id "w$RANDOM" "$1" \
        sh -c "dd if=/dev/zero of=/big bs=1M count=$2" 2>&1) || rc=$?
    if [ "$rc" -ne 0 ] && grep -q 'Disk quota exceeded' <<<"$out"; then
        ok "$1: writing $2 MiB more fails with 'Disk quota exceeded'${3:+ $3}"
    else
        fail "$1: writing $2 MiB more fails with 'Disk quota exceeded'${3:+ $3}" "exit $rc: $out"
    fi
    C tasks exec --exec-id "rm$RANDOM" "$1" sh -c 'rm -f /big && sync'
}
# usage_bytes ID: `ctr snapshots usage -b` of the container's snapshot.
usage_bytes() { S usage -b "$1" | awk -v k="$1" '$1 == k { print $2 }'; }
# expect_usage ID BYTES: the usage is BYTES written, within the tolerance.
expect_usage() {
    local used
    used=$(usage_bytes "$1")
    if [ "${used:-0}" -ge "$2" ] 2>/dev/null && [ "$used" -le $(($2 + tolerance)) ]; then
        ok "$1: ctr snapshots usage is $used bytes (written $2, tolerance $tolerance)"
    else
        fail "$1: ctr snapshots usage is $2 bytes written (tolerance $tolerance)" \
            "$(S usage -b "$1" 2>&1)"
    fi
}
# The snapshot directory of container ID, relative to the btrfs top (its subvolume path).
subvolume_of() {
    local upper
    upper=$(S mounts /mnt "$1" | grep -o 'upperdir=[^,]*' | cut -d= -f2)
    upper=${upper%/fs}
    echo "${upper#"$MNT"/}"
}
subvolumes() { btrfs subvolume list "$MNT" | awk '{ print $NF }'; }
# The qgroup limit (max_rfer, bytes) of the subvolume at path $1 (relative to $MNT). The
# limit, set in the subvolume's creation call, is enforced at once but stored in the quota
# tree at the transaction's commit: sync first.
qgroup_limit() {
    local id
    btrfs filesystem sync "$MNT" >/dev/null
    id=$(btrfs subvolume show "$MNT/$1" | awk '$1 == "Subvolume" && $2 == "ID:" { print $3 }')
    btrfs qgroup show -re --raw "$MNT" | awk -v q="0/$id" '$1 == q { print $4 }'
}
# restart_task ID: the task is deleted and started again, so its rootfs is mounted anew
# from the daemon's Mounts.
restart_task() {
    must "$1: task deleted" C tasks rm -f "$1"
    must "$1: task started again" C tasks start -d "$1"
}

log "start overlaysnapd and containerd"
start_daemon
expect "overlaysnapd logs quota=btrfs at startup" grep -q 'quota=btrfs' "$T/overlaysnapd.log"
start_containerd
wait_reachable
must "import $ref3 --snapshotter $snap" C images import --snapshotter "$snap" "$img3"

log "limits: the max-size label (qa) and default_size (qb)"
must "qa: ctr run -d --snapshotter-label containerd.io/snapshot/max-size=24MiB" \
    C run -d --snapshotter "$snap" \
    --snapshotter-label containerd.io/snapshot/max-size=24MiB "$ref3" qa sleep 100000
must "qb: ctr run -d (no label: default_size 40MiB)" \
    C run -d --snapshotter "$snap" "$ref3" qb sleep 100000
sub_a=$(subvolume_of qa)
sub_b=$(subvolume_of qb)
expect_eq "qa's snapshot directory is a subvolume" "$sub_a" "$(subvolumes | grep -Fx "$sub_a")"
expect_eq "qb's snapshot directory is a subvolume" "$sub_b" "$(subvolumes | grep -Fx "$sub_b")"
expect_eq "qa's qgroup limit is the label's 24MiB" "$label_limit" "$(qgroup_limit "$sub_a")"
expect_eq "qb's qgroup limit is default_size" "$default_size" "$(qgroup_limit "$sub_b")"
write_fits qa 16 /small
write_fails qa 64
expect_usage qa $((16 << 20))
write_fits qb 32 /small
write_fails qb 64

check_after_restart() {
    expect_eq "qa: usage unchanged $1" "$usage_a" "$(usage_bytes qa)"
    expect_eq "qb: usage unchanged $1" "$usage_b" "$(usage_bytes qb)"
    restart_task qa
    restart_task qb
    write_fails qa 64 "$1"
    write_fails qb 64 "$1"
    expect_eq "qa: usage still unchanged $1" "$usage_a" "$(usage_bytes qa)"
    write_fits qa 4 /after
    expect_usage qa $((20 << 20))
    C tasks exec --exec-id "rm$RANDOM" qa sh -c 'rm /after && sync'
}

log "restart: SIGTERM"
usage_a=$(usage_bytes qa)
usage_b=$(usage_bytes qb)
stop_daemon
start_daemon
wait_reachable "after SIGTERM"
check_after_restart "after SIGTERM and a restart"

log "restart: kill -9"
usage_a=$(usage_bytes qa)
kill9_daemon
start_daemon
wait_reachable "after kill -9"
check_after_restart "after kill -9 and a restart"

log "remove"
gone() {
    local i
    for ((i = 0; i < 60; i++)); do
        subvolumes | grep -Fxq "$2" || { ok "$1"; return 0; }
        sleep 0.5
    done
    fail "$1" "$(btrfs subvolume list "$MNT")"
}
for id in qa qb; do
    must "$id: task deleted" C tasks rm -f "$id"
    must "$id: container removed" C containers rm "$id"
done
gone "qa's subvolume destroyed" "$sub_a"
gone "qb's subvolume destroyed" "$sub_b"
must "ctr images rm --sync $ref3" C images rm --sync "$ref3"
for ((i = 0; i < 60; i++)); do
    [ -n "$(S ls | awk 'NR > 1')" ] || break
    sleep 0.5
done
stop_daemon
expect "overlaysnap cleanup" "$cli_bin" --root "$ROOT" cleanup
expect_eq "no subvolume left under the root" "" "$(subvolumes | grep -F "${ROOT#"$MNT"/}/" || true)"
expect_eq "no directories left in ROOT/snapshots" "" \
    "$(find "$ROOT/snapshots" -mindepth 1 -maxdepth 1 2>&1)"
