#!/usr/bin/env bash
# End-to-end: overlaysnapd as a containerd proxy snapshotter, driven with `ctr`.
#
#   sudo tests/e2e/containerd.sh
#
# Runs as root on a fresh Debian/Ubuntu machine. Installs containerd, runc,
# busybox-static and jq with apt-get when missing; builds overlaysnapd and overlaysnap
# (`cargo build --release -p overlaysnap-daemon -p overlaysnap-cli`) unless OVERLAYSNAPD
# and OVERLAYSNAP name the binaries. Everything else lives in one temporary directory:
# a private containerd (own root, state, socket, config; CRI disabled), the daemon's
# root and socket, the images (built locally by build-image.sh: no registry needed).
#
# Passes:
#   1. import a 3-layer image (whiteout + opaque dir) with --snapshotter overlaysnap;
#      ls/tree/usage/info show the chain; a container sees every layer, not the deleted
#      file, the replaced dir; a kept container's upper dir has what it wrote; images rm +
#      GC leave no snapshots; stop the daemon; `overlaysnap check` and `cleanup` leave
#      ROOT/snapshots empty.
#   2. the same with `kill -9` of the daemon after the import and after a container
#      wrote to its snapshot: restarted on the same root, the snapshots survived and mount.
#   3. a many-layer image (E2E_MANY_LAYERS, default 140) imports and runs.
#   4. kill -9 of the daemon in the middle of that import: restarted, the import is
#      retried and succeeds, the container runs, and GC + cleanup still leave nothing.
#   5. (containerd 2.x) containers in a user namespace (`ctr run --remap-labels --uidmap
#      0:100000:65536 --gidmap …`) on the 3-layer and the many-layer image: ID-mapped
#      mounts, no chowned copy; see userns_container.
#
# Environment: E2E_CONTAINERD (1: the containerd on PATH, installed from Debian when
# missing, must be 1.x; 2: Debian sid's containerd 2.x from fetch-containerd2.sh, cached in
# CONTAINERD2_DIR, with tests/e2e/containerd2.toml, the config README.md shows; default
# 1), OVERLAYSNAPD, OVERLAYSNAP (binaries; default: build them; the build honours
# CARGO_TARGET_DIR), E2E_MANY_LAYERS (140), E2E_BASELINE=1 (the same checks with
# containerd's built-in overlayfs and no overlaysnapd), E2E_TIMEOUT (seconds per ctr call,
# 180), E2E_KEEP=1 (keep the temp dir; the processes are still stopped), E2E_LOG_LEVEL
# (overlaysnapd --log-level, info), E2E_TMPDIR (parent of the temp dir, /tmp; its path must
# not contain ',' or ':').
# Prints `ok`/`FAIL` per check and ends with `N passed, M failed`; exit status 1 on any
# failure.
set -Eeuo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
many_layers=${E2E_MANY_LAYERS:-140}
want_major=${E2E_CONTAINERD:-1}
call_timeout=${E2E_TIMEOUT:-180}
ns=e2e
snap=overlaysnap
# E2E_BASELINE=1: the same checks with containerd's built-in overlayfs snapshotter and no
# overlaysnapd, to tell a broken environment from a broken snapshotter.
baseline=${E2E_BASELINE:-0}
[ "$baseline" != 1 ] || snap=overlayfs

passed=0
failed=0
last_error=
T=
daemon_pid=
containerd_pid=
stop_pid_verbose=1
. "$here/lib.sh"

# The ```toml block that follows the first line naming `tests/e2e/containerd2.toml` in the
# markdown file $1.
readme_block() {
    awk '!seen && index($0, "`tests/e2e/containerd2.toml`") { seen = 1; next }
        seen == 1 && /^ *```toml$/ { seen = 2; n = match($0, /[^ ]/) - 1; next }
        seen == 2 && /^ *```$/ { exit }
        seen == 2 { print substr($0, n + 1) }' "$1"
}

show_logs() {
    [ -n "$T" ] || return 0
    local f
    for f in "$T"/overlaysnapd*.log "$T/containerd.log"; do
        [ -s "$f" ] || continue
        say "--- last lines of $f"
        tail -n 40 "$f" | sed 's/^/    /'
    done
}

on_exit() {
    local rc=$? pid
    set +e
    trap - ERR
    if [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then
        failed=1
        say "FAIL - aborted (exit $rc${last_error:+ at $last_error})"
    fi
    [ "$failed" -eq 0 ] || show_logs
    if [ -n "$T" ]; then
        # Containers still running in our namespace (only after a failure).
        if [ -n "$containerd_pid" ] && kill -0 "$containerd_pid" 2>/dev/null; then
            for id in $(timeout 10 ctr -a "$T/containerd.sock" -n "$ns" tasks ls -q 2>/dev/null); do
                timeout 10 ctr -a "$T/containerd.sock" -n "$ns" tasks kill -s KILL "$id" >/dev/null 2>&1
                timeout 10 ctr -a "$T/containerd.sock" -n "$ns" tasks rm -f "$id" >/dev/null 2>&1
            done
        fi
        [ -z "$containerd_pid" ] || stop_pid "$containerd_pid" 15
        [ -z "$daemon_pid" ] || stop_pid "$daemon_pid" 15
        kill_shims "$T/containerd.sock"
        unmount_under
        unmount_idmapped
        remove_tmp
    fi
    say ""
    say "$passed passed, $failed failed"
    [ "$failed" -eq 0 ] || exit 1
    exit 0
}
trap on_exit EXIT
trap 'exit 130' INT TERM
# Where an unexpected failure stopped the run (set -e), for the report.
trap 'last_error="line $LINENO: $BASH_COMMAND"' ERR

[ "$(id -u)" = 0 ] || { echo "$0: must run as root" >&2; exit 1; }

log "prerequisites"
use_containerd "$want_major" || die "E2E_CONTAINERD" "must be 1 or 2, not $want_major"
# shellcheck disable=SC2119
install_missing
say "$(containerd --version)"
say "$(runc --version | head -n 1)"
major=$(containerd_major)
expect_eq "containerd's major version is $want_major ($(command -v containerd))" "$want_major" "$major"
[ "$major" = "$want_major" ] || exit 1
# The README's containerd 2.x config is tests/e2e/containerd2.toml, the one run here.
for doc in README.md daemon/README.md; do
    expect_eq "the containerd 2.x config in $doc is tests/e2e/containerd2.toml" \
        "$(cat "$here/containerd2.toml")" "$(readme_block "$repo/$doc")"
done

if [ "$baseline" = 1 ]; then
    daemon_bin=/bin/true
    cli_bin=/bin/true
else
    find_binaries
fi
say "overlaysnapd: $daemon_bin"
say "overlaysnap:  $cli_bin"

T=$(mktemp -d "${E2E_TMPDIR:-/tmp}/overlaysnap-e2e.XXXXXX")
chmod 711 "$T"
# containerd's root and state: a container in a user namespace (host IDs 100000…) must
# reach its rootfs under state/ (as under /run/containerd, 0711).
mkdir -m 711 "$T/containerd"
ROOT=$T/overlaysnap # the daemon's root
SOCK=$T/overlaysnap.sock
ADDR=$T/containerd.sock
if [ "$baseline" = 1 ]; then
    upper_base=$T/containerd/root/io.containerd.snapshotter.v1.overlayfs/snapshots
else
    upper_base=$ROOT/snapshots
fi
say "temp dir: $T"

# ctr against our containerd, bounded in time.
C() { timeout "$call_timeout" ctr -a "$ADDR" -n "$ns" "$@"; }
S() { C snapshots --snapshotter "$snap" "$@"; }

log "images (build-image.sh)"
img3=$T/image-3.tar
imgN=$T/image-$many_layers.tar
must "build the 3-layer image" "$here/build-image.sh" "$img3" 3 localhost/overlaysnap-e2e:3
must "build the $many_layers-layer image" "$here/build-image.sh" "$imgN" "$many_layers" \
    "localhost/overlaysnap-e2e:$many_layers"
ref3=localhost/overlaysnap-e2e:3
refN=localhost/overlaysnap-e2e:$many_layers

# The chain ids (snapshot names containerd gives the layers) of an image archive, base
# first: chain(1) = diff_id(1), chain(n) = sha256(chain(n-1) + " " + diff_id(n)).
chain_ids() {
    local tar=$1 manifest config chain='' d
    manifest=$(tar -xOf "$tar" index.json | jq -r '.manifests[0].digest')
    config=$(tar -xOf "$tar" "blobs/sha256/${manifest#sha256:}" | jq -r .config.digest)
    for d in $(tar -xOf "$tar" "blobs/sha256/${config#sha256:}" | jq -r '.rootfs.diff_ids[]'); do
        if [ -z "$chain" ]; then
            chain=$d
        else
            chain=sha256:$(printf '%s %s' "$chain" "$d" | sha256sum | cut -d' ' -f1)
        fi
        echo "$chain"
    done
}
# `ctr snapshots ls` of a committed chain: "KEY PARENT KIND" lines, sorted by key.
expected_ls() {
    local parent='' key
    while read -r key; do
        echo "$key ${parent:-} Committed"
        parent=$key
    done | sort
}
# `ctr snapshots tree` of a chain.
expected_tree() {
    local depth=0 key
    while read -r key; do
        if [ "$depth" -eq 0 ]; then
            echo " $key"
        else
            printf '%*s\\_ %s\n' $((depth * 2)) '' "$key"
        fi
        depth=$((depth + 1))
    done
}
# Our `ctr snapshots ls`, normalised: "KEY PARENT KIND", sorted.
snap_ls() { S ls | awk 'NR > 1 { if (NF == 2) print $1, "", $2; else print $1, $2, $3 }' | sort; }

chain3=$(chain_ids "$img3")
chainN=$(chain_ids "$imgN")
top3=$(tail -n 1 <<<"$chain3")
expect_eq "3-layer image: 3 chain ids" 3 "$(wc -l <<<"$chain3")"
expect_eq "$many_layers-layer image: $many_layers chain ids" "$many_layers" "$(wc -l <<<"$chainN")"

log "containerd config"
if [ "$major" = 1 ]; then
    cat >"$T/containerd.toml" <<EOF
version = 2
root = "$T/containerd/root"
state = "$T/containerd/state"
disabled_plugins = [
  "io.containerd.grpc.v1.cri",
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs",
]

[grpc]
  address = "$ADDR"

[ttrpc]
  address = "$ADDR.ttrpc"

[proxy_plugins.overlaysnap]
  type = "snapshot"
  address = "$SOCK"
EOF
else
    # containerd 2.x: tests/e2e/containerd2.toml (version 3) with this run's socket and
    # root, after the private root, state and addresses. The CRI image service stays on,
    # to check that it finds its snapshotter; the CRI runtime and server are off.
    # E2E_BASELINE=1 unpacks into overlayfs instead.
    {
        cat <<EOF
version = 3
root = "$T/containerd/root"
state = "$T/containerd/state"
disabled_plugins = [
  "io.containerd.grpc.v1.cri",
  "io.containerd.cri.v1.runtime",
  "io.containerd.snapshotter.v1.blockfile",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.erofs",
  "io.containerd.snapshotter.v1.zfs",
]

[grpc]
  address = "$ADDR"

[ttrpc]
  address = "$ADDR.ttrpc"
EOF
        sed -e '/^version = 3$/d' \
            -e "s|\"/run/overlaysnap/overlaysnap.sock\"|\"$SOCK\"|" \
            -e "s|\"/var/lib/overlaysnap\"|\"$ROOT\"|" \
            -e "s|snapshotter = \"overlaysnap\"|snapshotter = \"$snap\"|" \
            "$here/containerd2.toml"
    } >"$T/containerd.toml"
fi
sed 's/^/    /' "$T/containerd.toml"

daemon_runs=0
start_daemon() {
    local i
    if [ "$baseline" = 1 ]; then return 0; fi
    daemon_runs=$((daemon_runs + 1))
    # containerd 2.x's config declares `remap-ids`, so the daemon maps ID-mapping labels
    # (remap_ids); 1.x knows no such capability and gets the defaults.
    local config=()
    if [ "$want_major" = 2 ]; then
        printf 'remap_ids = true\n' >"$T/overlaysnapd.toml"
        config=(--config "$T/overlaysnapd.toml")
    fi
    "$daemon_bin" --root "$ROOT" --address "$SOCK" --name overlaysnap "${config[@]}" \
        --log-level "${E2E_LOG_LEVEL:-info}" >>"$T/overlaysnapd.log" 2>&1 &
    daemon_pid=$!
    for ((i = 0; i < 300; i++)); do
        if ! kill -0 "$daemon_pid" 2>/dev/null; then
            die "overlaysnapd start #$daemon_runs" "it exited: $(tail -n 20 "$T/overlaysnapd.log")"
        fi
        # A stale socket (after kill -9) is removed before the new one is bound and
        # renamed into place: listening + the path is a socket = served there.
        if listening "$daemon_pid" && [ -S "$SOCK" ]; then
            ok "overlaysnapd start #$daemon_runs (pid $daemon_pid)"
            return 0
        fi
        sleep 0.1
    done
    die "overlaysnapd start #$daemon_runs" "not listening on $SOCK after 30s"
}
# Stops the daemon with SIGTERM; a check that it exits 0 within 15s.
stop_daemon() {
    local rc=0 i
    if [ "$baseline" = 1 ]; then return 0; fi
    kill -TERM "$daemon_pid"
    for ((i = 0; i < 150; i++)); do
        kill -0 "$daemon_pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$daemon_pid" 2>/dev/null; then
        kill -KILL "$daemon_pid"
        wait "$daemon_pid" 2>/dev/null || true
        daemon_pid=
        fail "overlaysnapd stops on SIGTERM within 15s"
        return
    fi
    wait "$daemon_pid" || rc=$?
    daemon_pid=
    expect_eq "overlaysnapd exits 0 on SIGTERM" 0 "$rc"
    expect "overlaysnapd removed its socket" test ! -e "$SOCK"
}
kill9_daemon() {
    if [ "$baseline" = 1 ]; then return 0; fi
    kill -KILL "$daemon_pid"
    wait "$daemon_pid" 2>/dev/null || true
    daemon_pid=
    say "killed overlaysnapd with SIGKILL"
}
# Waits (bounded) until containerd reaches the daemon again: after the daemon restarts,
# containerd's gRPC connection reconnects with a backoff (about a second, at most a few),
# and calls fail with "connection refused: unavailable" until then. Listing does not
# reach the daemon (containerd answers from its metadata), so the probe prepares and
# removes a throwaway snapshot (its directory goes at the next GC).
probes=0
wait_reachable() {
    local i out key
    for ((i = 0; i < 60; i++)); do
        probes=$((probes + 1))
        key=e2e-probe-$probes
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
        if ! kill -0 "$containerd_pid" 2>/dev/null; then
            die "containerd start" "it exited: $(tail -n 20 "$T/containerd.log")"
        fi
        if [ -S "$ADDR" ] && timeout 5 ctr -a "$ADDR" version >/dev/null 2>&1; then
            ok "containerd start (pid $containerd_pid)"
            return 0
        fi
        sleep 0.1
    done
    die "containerd start" "not serving on $ADDR after 30s"
}

# The checks a container of the image runs on its root file system; prints what it saw.
# shellcheck disable=SC2016 # expanded in the container's shell
probe='cat /etc/e2e/layer1 /etc/e2e/layer2 /etc/e2e/layer3
echo "top=$(cat /etc/e2e/top)"
cat /data/keep.txt
echo "data: $(ls -A /data | tr "\n" " ")"
echo "data/dir: $(ls -A /data/dir | tr "\n" " ")"
cat /data/dir/new.txt
if [ -e /data/gone.txt ]; then echo "gone.txt present"; else echo "gone.txt absent"; fi
echo "layers: $(ls /layers 2>/dev/null | wc -l)"
echo "busybox: $(ls /bin | wc -l) entries in /bin"
echo probe >/tmp/probe && cat /tmp/probe'
# What it must print for an image of $1 layers.
expected_probe() {
    cat <<EOF
layer1: base
layer2: added
layer3: whiteout + opaque
top=$1
keep: from layer2
data: dir keep.txt 
data/dir: new.txt 
new: from layer3
gone.txt absent
layers: $(($1 - 3))
busybox: $("${BUSYBOX:-/bin/busybox}" --list | wc -l) entries in /bin
probe
EOF
}
# The root mount of a container (from its mountinfo) must be an overlay over our root.
# shellcheck disable=SC2016
root_mount='awk '"'"'$5 == "/" { for (i = 7; $i != "-"; i++); print $(i+1), $(i+3) }'"'"' /proc/self/mountinfo'

# import REF TAR: imports with --snapshotter overlaysnap and checks the chain.
import_and_check() {
    local ref=$1 tar=$2 chain=$3 layers t0 t1 out
    layers=$(wc -l <<<"$chain")
    t0=$(date +%s%N)
    must "import $ref --snapshotter $snap" C images import --snapshotter "$snap" "$tar"
    t1=$(date +%s%N)
    say "    import took $(((t1 - t0) / 1000000)) ms"
    expect_eq "image $ref listed" "$ref" "$(C images ls -q | grep -Fx "$ref" || true)"
    expect_eq "ctr snapshots ls: the $layers-layer chain, committed" \
        "$(expected_ls <<<"$chain")" "$(snap_ls)"
    expect_eq "ctr snapshots tree: one branch of depth $layers" \
        "$(expected_tree <<<"$chain")" "$(S tree)"
    out=$(S usage)
    expect_eq "ctr snapshots usage: a line per layer" \
        "$(sort <<<"$chain")" "$(awk 'NR > 1 { print $1 }' <<<"$out" | sort)"
    local base inodes
    base=$(head -n 1 <<<"$chain")
    inodes=$(awk -v k="$base" '$1 == k { print $NF }' <<<"$out")
    if [ "${inodes:-0}" -ge "$("${BUSYBOX:-/bin/busybox}" --list | wc -l)" ] 2>/dev/null; then
        ok "usage of the base layer counts its inodes ($inodes)"
    else
        fail "usage of the base layer counts its inodes" "$out"
    fi
    out=$(S info "$(tail -n 1 <<<"$chain")")
    expect_eq "ctr snapshots info of the top layer: committed, parent the layer below" \
        "Committed $(tail -n 2 <<<"$chain" | head -n 1)" \
        "$(jq -r '"\(.Kind // .kind | if type == "number" then ["Unknown","View","Active","Committed"][.] else . end) \(.Parent // .parent)"' <<<"$out")"
}

# run_probe REF LAYERS ID: ctr run --rm of the probe, checks what it printed.
run_probe() {
    local ref=$1 layers=$2 id=$3 out t0 t1
    t0=$(date +%s%N)
    if ! out=$(C run --rm --snapshotter "$snap" "$ref" "$id" sh -c "$probe" 2>&1); then
        fail "ctr run --rm $ref ($id)" "$out"
        return
    fi
    t1=$(date +%s%N)
    say "    ctr run took $(((t1 - t0) / 1000000)) ms"
    expect_eq "container $id sees every layer, no gone.txt, the replaced dir" \
        "$(expected_probe "$layers")" "$out"
    expect_eq "snapshot of --rm container $id removed" "" "$(S ls | awk -v k="$id" '$1 == k')"
}

# kept_container REF ID: ctr run without --rm writes into its snapshot; checks the upper
# dir; leaves the container (and its active snapshot) in place.
kept_container() {
    local ref=$1 id=$2 out
    must "ctr run (kept) $id writes into its snapshot" \
        C run --snapshotter "$snap" "$ref" "$id" sh -c \
        'echo "written by '"$id"'" > /data/written.txt && rm /data/keep.txt && mkdir /newdir && '"$root_mount"' > /newdir/rootmount'
    check_upper "$id" "$top3"
}
check_upper() {
    local id=$1 parent=$2 out upper
    expect_eq "ctr snapshots ls: $id active above the top layer" \
        "$id $parent Active" "$(snap_ls | awk -v k="$id" '$1 == k')"
    out=$(S mounts /mnt "$id")
    upper=$(grep -o 'upperdir=[^,]*' <<<"$out" | cut -d= -f2)
    case $upper in
        "$upper_base"/*/fs) ok "upper dir of $id is under $upper_base ($upper)" ;;
        *) fail "upper dir of $id is under $upper_base" "ctr snapshots mounts: $out" ;;
    esac
    [ -n "$upper" ] || return 0
    expect_eq "upper dir of $id holds the written file" "written by $id" \
        "$(cat "$upper/data/written.txt" 2>&1)"
    expect_eq "upper dir of $id holds a whiteout (char 0:0) for the deleted file" \
        "character special file 0:0" \
        "$(stat -c '%F %t:%T' "$upper/data/keep.txt" 2>&1)"
    local rootmount
    rootmount=$(cat "$upper/newdir/rootmount" 2>&1)
    case $rootmount in
        "overlay "*"upperdir=$upper"*) ok "the container's / was the snapshot's overlay mount" ;;
        *) fail "the container's / was the snapshot's overlay mount" "mountinfo: $rootmount" ;;
    esac
    local used
    used=$(S usage "$id" | awk 'NR > 1 { print $NF }')
    if [ "${used:-0}" -ge 3 ] 2>/dev/null; then
        ok "ctr snapshots usage $id counts the new inodes ($used)"
    else
        fail "ctr snapshots usage $id counts the new inodes" "$(S usage "$id" 2>&1)"
    fi
}
remove_container() {
    must "ctr containers rm $1" C containers rm "$1"
    expect_eq "snapshot $1 removed with its container" "" "$(snap_ls | awk -v k="$1" '$1 == k')"
}

# remove_image REF: images rm --sync (GC runs), then waits (bounded) for no snapshots.
remove_image() {
    local i out
    must "ctr images rm --sync $1" C images rm --sync "$1"
    for ((i = 0; i < 60; i++)); do
        out=$(snap_ls)
        [ -n "$out" ] || break
        sleep 0.5
    done
    expect_eq "no snapshots left after images rm + GC" "" "$out"
    expect_eq "no content left after images rm + GC" "" "$(C content ls -q)"
}

# After the daemon stopped: the CLI sees no snapshots; check, cleanup; nothing on disk.
check_root_empty() {
    local out rc=0
    if [ "$baseline" = 1 ]; then return 0; fi
    out=$("$cli_bin" --root "$ROOT" --json ls 2>&1) || rc=$?
    expect_eq "overlaysnap ls: no snapshots in the root" "0 []" "$rc $(jq -c . <<<"$out" 2>/dev/null || echo "$out")"
    rc=0
    out=$("$cli_bin" --root "$ROOT" --json check 2>&1) || rc=$?
    expect_eq "overlaysnap check: ok, 0 snapshots, nothing damaged" "0 true 0 []" \
        "$rc $(jq -r '"\(.ok) \(.snapshots) \(.damaged | tostring)"' <<<"$out" 2>/dev/null || echo "$out")"
    say "    before cleanup: $(find "$ROOT/snapshots" -mindepth 1 -maxdepth 1 | wc -l) entries in ROOT/snapshots"
    expect "overlaysnap cleanup" "$cli_bin" --root "$ROOT" cleanup
    expect_eq "no directories left in ROOT/snapshots" "" \
        "$(find "$ROOT/snapshots" -mindepth 1 -maxdepth 1 2>&1)"
    expect_eq "nothing mounted under ROOT" "" "$(mounts_under | grep -F "$ROOT" || true)"
}

log "start overlaysnapd and containerd"
start_daemon
start_containerd
expect_eq "containerd loaded the $snap snapshotter" "ok" \
    "$(C plugins ls | awk -v s="$snap" '$1 == "io.containerd.snapshotter.v1" && $2 == s { print $NF }')"
if [ "$major" = 2 ]; then
    # The CRI image service fails to load when its `snapshotter` names no snapshotter.
    expect_eq "containerd 2.x loaded the CRI image service (snapshotter = \"$snap\")" "ok" \
        "$(C plugins ls | awk '$1 == "io.containerd.cri.v1" && $2 == "images" { print $NF }')"
fi
wait_reachable

log "pass 1: import, run, write, remove, GC, check"
import_and_check "$ref3" "$img3" "$chain3"
run_probe "$ref3" 3 "e2e-$$-p1"
kept_container "$ref3" "e2e-$$-k1"
if [ "$baseline" != 1 ]; then
    rc=0
    out=$("$cli_bin" --root "$ROOT" ls 2>&1) || rc=$?
    if [ "$rc" = 10 ]; then
        ok "overlaysnap refuses a root held by overlaysnapd (exit 10)"
    else
        fail "overlaysnap refuses a root held by overlaysnapd (exit 10)" "exit $rc: $out"
    fi
fi
remove_container "e2e-$$-k1"
remove_image "$ref3"
stop_daemon
check_root_empty

log "pass 2: kill -9 after the import and after a write; restart on the same root"
start_daemon
wait_reachable "after a restart"
import_and_check "$ref3" "$img3" "$chain3"
before=$(snap_ls)
kill9_daemon
[ "$baseline" = 1 ] || expect "the dead daemon's socket is still there" test -S "$SOCK"
start_daemon
wait_reachable "after kill -9"
expect_eq "ctr snapshots ls after kill -9: the same chain" "$before" "$(snap_ls)"
expect_eq "ctr snapshots info after kill -9 (reaches the daemon)" "$top3" \
    "$(S info "$top3" | jq -r '.Name // .name')"
run_probe "$ref3" 3 "e2e-$$-p2"
kept_container "$ref3" "e2e-$$-k2"
kill9_daemon
start_daemon
wait_reachable "after a second kill -9"
check_upper "e2e-$$-k2" "$top3"
run_probe "$ref3" 3 "e2e-$$-p3"
remove_container "e2e-$$-k2"
remove_image "$ref3"
stop_daemon
check_root_empty

log "pass 3: a $many_layers-layer image"
start_daemon
wait_reachable "after a restart"
import_and_check "$refN" "$imgN" "$chainN"
run_probe "$refN" "$many_layers" "e2e-$$-p4"
remove_image "$refN"
stop_daemon
check_root_empty

log "pass 4: kill -9 during the import of the $many_layers-layer image"
start_daemon
wait_reachable "after a restart"
C images import --snapshotter "$snap" "$imgN" >"$T/import-killed.log" 2>&1 &
import_pid=$!
# Some layers in, well before the last: kill the daemon under containerd's unpack.
for ((i = 0; i < 600; i++)); do
    # find fails when an entry it listed is renamed meanwhile (the daemon moves new
    # directories into place): count what it saw all the same.
    n=$({ find "$upper_base" -mindepth 1 -maxdepth 1 -name '[0-9]*' 2>/dev/null || true; } | wc -l)
    [ "$n" -lt 20 ] || break
    kill -0 "$import_pid" 2>/dev/null || break
    sleep 0.05
done
kill9_daemon
rc=0
wait "$import_pid" || rc=$?
if [ "$rc" -ne 0 ]; then
    ok "the import failed when the daemon died ($n snapshot dirs then): $(tail -n 1 "$T/import-killed.log" | cut -c 1-200)"
elif [ "$baseline" = 1 ]; then
    say "    (baseline: no daemon to kill; the import finished)"
else
    say "    (the import finished before the kill: $n snapshot dirs; the rest still holds)"
fi
start_daemon
wait_reachable "after kill -9 during an import"
import_and_check "$refN" "$imgN" "$chainN"
run_probe "$refN" "$many_layers" "e2e-$$-p5"
remove_image "$refN"
stop_daemon
check_root_empty

# userns_container REF LAYERS ID: a kept container in a user namespace (host IDs 100000…)
# on ID-mapped mounts (`remap-ids`): inside, the image's files belong to root; on the host,
# the committed layers keep theirs, no chowned copy of the image was committed, and what the
# container creates lands in its upper dir owned by 100000.
userns_map=0:100000:65536
userns_container() {
    local ref=$1 layers=$2 id=$3 before after out upper lower base
    before=$(snap_ls | awk '$3 == "Committed"' | wc -l)
    out=$(C run --snapshotter "$snap" --remap-labels --uidmap "$userns_map" \
        --gidmap "$userns_map" "$ref" "$id" sh -c \
        'cat /proc/self/uid_map /proc/self/gid_map | tr -s " " | sed "s/^ //"
         stat -c "%n %u:%g" / /bin/busybox /etc/e2e/layer1 /etc/e2e/top /data/dir/new.txt
         echo "uid $(id -u) gid $(id -g)"
         echo created > /created && mkdir /made && stat -c "%n %u:%g" /created /made' \
        2>"$T/userns.err") || true
    if [ -s "$T/userns.err" ]; then sed 's/^/    ctr stderr: /' "$T/userns.err"; fi
    expect_eq "userns container $id ($layers layers): mapped, the image's files owned by root inside" \
        "0 100000 65536
0 100000 65536
/ 0:0
/bin/busybox 0:0
/etc/e2e/layer1 0:0
/etc/e2e/top 0:0
/data/dir/new.txt 0:0
uid 0 gid 0
/created 0:0
/made 0:0" "$out"
    after=$(snap_ls | awk '$3 == "Committed"' | wc -l)
    expect_eq "no chowned copy of the image: still $before committed snapshots" "$before" "$after"
    expect_eq "no -remap snapshot" "" "$(snap_ls | awk '$1 ~ /-remap$/')"
    expect_eq "the container's snapshot carries the mapping labels (Stat)" \
        "$userns_map $userns_map" \
        "$(S info "$id" | jq -r '.Labels // .labels | "\(.["containerd.io/snapshot/uidmapping"]) \(.["containerd.io/snapshot/gidmapping"])"')"
    out=$(S mounts /mnt "$id")
    if grep -q -- "-o uidmap=$userns_map,gidmap=$userns_map,.*upperdir=" <<<"$out"; then
        ok "its mount starts with uidmap=$userns_map,gidmap=$userns_map"
    else
        fail "its mount starts with uidmap=$userns_map,gidmap=$userns_map" "$out"
    fi
    upper=$(grep -o 'upperdir=[^,]*' <<<"$out" | cut -d= -f2)
    lower=$(grep -o 'lowerdir=[^,]*' <<<"$out" | cut -d= -f2)
    base=${lower##*:}
    expect_eq "on the host, what the container created is owned by 100000 in its upper dir" \
        "created 100000:100000 100000:100000" \
        "$(cat "$upper/created" 2>&1) $(stat -c %u:%g "$upper/created" "$upper/made" 2>&1 | tr '\n' ' ' | sed 's/ $//')"
    expect_eq "on the host, the committed base layer keeps its owners ($base)" \
        "0:0 0:0" "$(stat -c %u:%g "$base/bin/busybox" "$base/etc/e2e/layer1" 2>&1 | tr '\n' ' ' | sed 's/ $//')"
    expect_eq "$(wc -w <<<"${lower//:/ }") lower layers" "$((layers))" "$(wc -w <<<"${lower//:/ }")"
    remove_container "$id"
    unmount_idmapped
}
# containerd 2.1's mount code ID-maps the lower layers' common directory at
# /tmp/ovl-idmapped*, mounts the overlay and unmounts it again; with many layers (the
# compacted lowerdir path) that unmount sometimes fails as busy and the mount stays (seen
# with containerd's own overlayfs snapshotter as well: 1 run in 6 on the 140-layer image).
# Not overlaysnap's to check: report and unmount those of this run's roots.
unmount_idmapped() {
    local m
    for m in $(awk -v t="$T/" 'index($4, t) == 1 && $5 ~ "^/tmp/ovl-idmapped" { print $5 }' \
        /proc/self/mountinfo); do
        say "    note: containerd left $m mounted; unmounting it"
        umount "$m" && rmdir "$m"
    done
}

if [ "$major" = 2 ]; then
    log "pass 5 (containerd 2.x): user namespaces on ID-mapped mounts (remap-ids), no chown"
    start_daemon
    wait_reachable "after a restart"
    must "import $ref3" C images import --snapshotter "$snap" "$img3"
    must "import $refN" C images import --snapshotter "$snap" "$imgN"
    userns_container "$ref3" 3 "e2e-$$-u1"
    userns_container "$refN" "$many_layers" "e2e-$$-u2"
    must "ctr images rm $ref3" C images rm "$ref3"
    remove_image "$refN"
    stop_daemon
    check_root_empty
fi

log "stop containerd"
stop_pid "$containerd_pid" 15
wait "$containerd_pid" 2>/dev/null || true
containerd_pid=
expect_eq "nothing left mounted under the temp dir" "" "$(mounts_under)"
