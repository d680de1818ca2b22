#!/usr/bin/env bash
# End to end: a private containerd drives overlaysnapd as its proxy snapshotter, through
# `ctr snapshots --snapshotter overlaysnap`: prepare, mounts (and real mounts), commit, view,
# usage, info, label, ls, tree, rm (with containerd's garbage collector calling Remove and
# Cleanup), errors, and a restart of overlaysnapd under a running containerd.
#
# Needs root (it installs Debian's containerd when missing and mounts overlays).
# OVERLAYSNAPD=/path/to/overlaysnapd skips the build; otherwise the script builds it with
# `cargo build --release -p overlaysnap-daemon`.
# E2E_CONTAINERD=2 runs it against containerd 2.x (see fetch-containerd2.sh) with
# tests/e2e/containerd2.toml.
# Ends with "N passed, M failed"; exits non-zero when anything failed.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
passed=0
failed=0

ok() { passed=$((passed + 1)); echo "ok   $1"; }
not_ok() {
	failed=$((failed + 1))
	echo "FAIL $1: $2" >&2
}
# check NAME OUTPUT REGEX: OUTPUT has a line matching the extended REGEX.
check() {
	if grep -Eq -- "$3" <<<"$2"; then ok "$1"; else not_ok "$1" "expected /$3/ in:
$2"; fi
}
# check_not NAME OUTPUT REGEX: no line of OUTPUT matches REGEX.
check_not() {
	if grep -Eq -- "$3" <<<"$2"; then not_ok "$1" "did not expect /$3/ in:
$2"; else ok "$1"; fi
}
# check_size NAME OUTPUT KEY MIN: the `ctr snapshots usage --b` row of KEY has at least MIN
# bytes.
check_size() {
	if awk -v k="$3" -v min="$4" '$1 == k && $2 >= min { found = 1 } END { exit !found }' <<<"$2"; then
		ok "$1"
	else
		not_ok "$1" "expected $3 to use at least $4 bytes in:
$2"
	fi
}
# run NAME CMD...: runs CMD, which must succeed; its output is in $out.
run() {
	local name=$1
	shift
	if out=$("$@" 2>&1); then ok "$name"; else not_ok "$name" "\`$*\` failed: $out"; fi
}
# refuse NAME REGEX CMD...: CMD must fail with a message matching REGEX.
refuse() {
	local name=$1 want=$2
	shift 2
	if out=$("$@" 2>&1); then
		not_ok "$name" "\`$*\` succeeded: $out"
	else
		check "$name" "$out" "$want"
	fi
}
# eventually NAME SECONDS CMD...: CMD succeeds within SECONDS.
eventually() {
	local name=$1 limit=$2 i
	shift 2
	for ((i = 0; i < limit * 10; i++)); do
		if "$@" >/dev/null 2>&1; then
			ok "$name"
			return
		fi
		sleep 0.1
	done
	not_ok "$name" "\`$*\` did not succeed within ${limit}s"
}

if [ "$(id -u)" != 0 ]; then
	echo "ctr_snapshots.sh must run as root" >&2
	exit 2
fi
# E2E_CONTAINERD=2: containerd 2.x (Debian sid's, from fetch-containerd2.sh) first on PATH,
# configured with tests/e2e/containerd2.toml.
case ${E2E_CONTAINERD:-1} in
1) ;;
2) PATH=$("$repo/tests/e2e/fetch-containerd2.sh"):$PATH ;;
*)
	echo "E2E_CONTAINERD must be 1 or 2" >&2
	exit 1
	;;
esac
if ! command -v containerd >/dev/null || ! command -v ctr >/dev/null; then
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq containerd >/dev/null
fi
if [ -z "${OVERLAYSNAPD:-}" ]; then
	OVERLAYSNAPD=$(cd "$repo" && cargo build --release -p overlaysnap-daemon \
		--message-format=json-render-diagnostics |
		sed -n 's/.*"executable":"\([^"]*overlaysnapd\)".*/\1/p' | tail -n 1)
fi
[ -x "$OVERLAYSNAPD" ] || {
	echo "no overlaysnapd binary at '$OVERLAYSNAPD'" >&2
	exit 2
}

tmp=$(mktemp -d /var/tmp/overlaysnap-e2e.XXXXXX)
root=$tmp/overlaysnap
sock=$tmp/run/overlaysnap.sock
csock=$tmp/containerd.sock
mnt=$tmp/mnt
oslog=$tmp/overlaysnapd.log
mkdir -p "$mnt"
daemon_pid=
containerd_pid=

stop() { # stop PID: SIGTERM, then wait for it; answers its exit status
	local status=0
	kill "$1" 2>/dev/null || true
	wait "$1" || status=$?
	return $status
}
cleanup() {
	umount "$mnt" 2>/dev/null || true
	[ -n "$containerd_pid" ] && stop "$containerd_pid" || true
	[ -n "$daemon_pid" ] && stop "$daemon_pid" || true
	rm -rf "$tmp"
}
trap cleanup EXIT

start_daemon() {
	"$OVERLAYSNAPD" --root "$root" --address "$sock" --log-level debug >>"$oslog" 2>&1 &
	daemon_pid=$!
	for _ in $(seq 300); do
		[ -S "$sock" ] && return
		kill -0 "$daemon_pid" 2>/dev/null || break
		sleep 0.1
	done
	echo "overlaysnapd did not start:" >&2
	cat "$oslog" >&2
	exit 1
}
start_daemon

if [ "${E2E_CONTAINERD:-1}" = 1 ]; then
	cat >"$tmp/containerd.toml" <<EOF
version = 2
root = "$tmp/containerd-root"
state = "$tmp/containerd-state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]

[grpc]
  address = "$csock"

[proxy_plugins.overlaysnap]
  type = "snapshot"
  address = "$sock"
EOF
else
	{
		cat <<EOF
version = 3
root = "$tmp/containerd-root"
state = "$tmp/containerd-state"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.cri.v1.runtime", "io.containerd.cri.v1.images"]

[grpc]
  address = "$csock"
EOF
		sed -e '/^version = 3$/d' \
			-e "s|\"/run/overlaysnap/overlaysnap.sock\"|\"$sock\"|" \
			-e "s|\"/var/lib/overlaysnap\"|\"$root\"|" \
			"$repo/tests/e2e/containerd2.toml"
	} >"$tmp/containerd.toml"
fi
echo "containerd: $(containerd --version)"
containerd --config "$tmp/containerd.toml" >"$tmp/containerd.log" 2>&1 &
containerd_pid=$!
for _ in $(seq 300); do
	ctr -a "$csock" version >/dev/null 2>&1 && break
	kill -0 "$containerd_pid" 2>/dev/null || break
	sleep 0.1
done
if ! ctr -a "$csock" version >/dev/null 2>&1; then
	echo "containerd did not start:" >&2
	tail -n 50 "$tmp/containerd.log" >&2
	exit 1
fi

snap() { ctr -a "$csock" snapshots --snapshotter overlaysnap "$@"; }
# The daemon log's calls of an operation (debug level names each).
calls() { grep -c "op=\"$1\"" "$oslog" || true; }

run "containerd loaded the proxy plugin" ctr -a "$csock" plugins ls
check "the overlaysnap plugin is ok" "$out" 'io\.containerd\.snapshotter\.v1 +overlaysnap +.* ok'

# A base layer: prepare, mount it for real, fill it, commit.
run "prepare base-active" snap prepare base-active
run "mounts of base-active" snap mounts "$mnt" base-active
check "an empty snapshot is a bind of its own fs under overlaysnapd's root" "$out" \
	"^mount -t bind $root/snapshots/[0-9]+/fs $mnt -o rw,rbind$"
base_fs=$(sed -n 's/^mount -t bind \([^ ]*\) .*/\1/p' <<<"$out")
run "mount base-active" eval "$out"
head -c 1048576 /dev/urandom >"$mnt/layer.bin"
echo base >"$mnt/hello"
run "unmount base-active" umount "$mnt"
run "usage of the active base" snap usage --b base-active
check_size "usage measures the written MiB" "$out" base-active 1048576
run "commit base" snap commit base base-active
run "info base" snap info base
check "base is committed" "$out" '"Kind": "Committed"'
check_not "base has no parent" "$out" '"Parent": "[^"]'
run "usage of the committed base" snap usage --b base
check_size "commit stored the usage" "$out" base 1048576
refuse "mounts of a committed snapshot" 'not found|failed precondition' snap mounts "$mnt" base

# A container's root file system above it: an overlay that really mounts.
run "prepare child above base" snap prepare --mounts child base
check "child mounts as an overlay" "$out" '"Type": "overlay"'
check "its lowerdir is base's fs" "$out" "\"lowerdir=$base_fs\""
run "mounts of child" snap mounts "$mnt" child
check "child has its own upperdir and workdir" "$out" \
	"^mount -t overlay overlay $mnt -o .*workdir=$root/snapshots/[0-9]+/work,upperdir=$root/snapshots/[0-9]+/fs,lowerdir=$base_fs"
run "mount child" eval "$out"
check "the overlay shows base's files" "$(cat "$mnt/hello" 2>&1)" '^base$'
echo child >"$mnt/hello"
run "unmount child" umount "$mnt"
check "base's layer is untouched" "$(cat "$base_fs/hello")" '^base$'
run "info child" snap info child
check "child is active" "$out" '"Kind": "Active"'
check "child's parent is base" "$out" '"Parent": "base"'

run "view v1 of base" snap view --mounts v1 base
check "a view of one layer is a read-only bind of it" "$out" "\"Source\": \"$base_fs\""
check "the bind is read-only" "$out" '"ro",'
run "info v1" snap info v1
check "v1 is a view" "$out" '"Kind": "View"'
run "usage of v1" snap usage --b v1
check "a view uses nothing" "$out" '^v1 +0 +0'

# Labels: containerd passes containerd.io/snapshot/ labels on to the snapshotter.
updates=$(calls update)
run "label child" snap label child containerd.io/snapshot/e2e=yes
check "label answers the labels" "$out" 'containerd\.io/snapshot/e2e=yes'
run "info child after label" snap info child
check "info shows the label" "$out" '"containerd\.io/snapshot/e2e": "yes"'
check "the label reached overlaysnapd" "$(calls update)" "^$((updates + 1))$|^$((updates + 2))$"

run "ls" snap ls
check "ls lists base" "$out" '^base +Committed'
check "ls lists child above base" "$out" '^child +base +Active'
check "ls lists v1 above base" "$out" '^v1 +base +View'
run "tree" snap tree
check "tree roots at base" "$out" '^ ?base$'
check "tree shows child under base" "$out" '\\_ child'
check "tree shows v1 under base" "$out" '\\_ v1'

# Refusals come back with containerd's error classes.
refuse "rm of a parent" 'cannot remove snapshot with child|failed precondition' snap rm base
refuse "prepare of a taken key" 'already exists' snap prepare child base
refuse "prepare above a missing parent" 'not found' snap prepare orphan nothing
refuse "commit of a view" 'failed precondition|not found|active' snap commit v2 v1

# Removal: containerd's garbage collector calls Remove and Cleanup on overlaysnapd.
child_dirs=$(ls "$root/snapshots")
run "rm child and v1" snap rm child v1
run "ls after rm" snap ls
check_not "child is gone" "$out" '^child '
check_not "v1 is gone" "$out" '^v1 '
eventually "the collector removed child and v1 in overlaysnapd" 20 \
	bash -c "[ \$(grep -c 'op=\"remove\"' '$oslog') -ge 2 ]"
eventually "Cleanup deleted their directories" 20 \
	bash -c "[ \$(ls '$root/snapshots' | wc -l) -lt $(wc -w <<<"$child_dirs") ]"
run "rm base" snap rm base
run "ls when empty" snap ls
check_not "nothing is left" "$out" '^(base|child|v1) '
eventually "the collector removed base in overlaysnapd" 20 \
	bash -c "[ \$(grep -c 'op=\"remove\"' '$oslog') -ge 3 ]"

# overlaysnapd restarts under a running containerd: state kept, calls resume.
run "prepare keep" snap prepare keep
if stop "$daemon_pid"; then ok "SIGTERM stops overlaysnapd with status 0"; else not_ok "SIGTERM stop" "exit status $?"; fi
daemon_pid=
if [ -e "$sock" ]; then not_ok "the socket is removed at exit" "$sock still exists"; else ok "the socket is removed at exit"; fi
check "overlaysnapd logged its stop" "$(cat "$oslog")" 'overlaysnapd stopped'
start_daemon
check "the restart recovered the snapshot" "$(tail -n 5 "$oslog")" 'overlaysnapd starting .*snapshots=1'
eventually "containerd reaches the restarted overlaysnapd" 20 snap mounts "$mnt" keep
run "info keep after the restart" snap info keep
check "keep is still active" "$out" '"Kind": "Active"'
run "rm keep" snap rm keep

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
