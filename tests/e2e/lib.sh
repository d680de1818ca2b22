# shellcheck shell=bash
# Shared pieces of the end-to-end scripts (containerd.sh, quota.sh, ctr_snapshots.sh,
# compare.sh, userns_start.sh), sourced with `. "$here/lib.sh"`; it defines functions and
# `e2e_dir` (this directory) and runs nothing else.
#
# Provides:
#   say, log                     output lines (`== STEP (Ns)` for log)
#   ok, fail, expect_eq, expect, must, die
#                                checks: `ok - NAME` / `FAIL - NAME` (detail indented);
#                                they count in the caller's `passed` and `failed`
#   stop_pid PID [GRACE]         SIGTERM, SIGKILL after GRACE seconds (10); says so when
#                                `stop_pid_verbose` is 1
#   listening PID                whether PID holds a listening unix socket
#   mounts_under                 the mount points under $T, deepest first
#   kill_shims ADDRESS_PREFIX    SIGKILL to the runc shims of containerds at that address
#   unmount_under                unmounts everything under $T, deepest first
#   remove_tmp                   removes $T unless something is still mounted there or
#                                E2E_KEEP=1
#   use_containerd MAJOR         1: the containerd on PATH; 2: fetch-containerd2.sh's first
#                                on PATH; anything else: returns 1
#   containerd_major             the major version of the containerd on PATH
#   install_missing [CMD:PKG]... apt-get installs containerd, runc, busybox-static, jq (and
#                                each PKG whose CMD is missing) when any is missing
#   release_dir                  cargo's release directory (honours CARGO_TARGET_DIR)
#   find_binaries                daemon_bin, cli_bin: OVERLAYSNAPD and OVERLAYSNAP, or a
#                                release build of both; dies when one is not executable
#   find_daemon                  daemon_bin: OVERLAYSNAPD or a quiet release build
# Expects of the caller: `repo` (the checkout), `T` (the temp dir, empty before it exists),
# `passed` and `failed` (counters, 0) for the checks.

e2e_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

say() { printf '%s\n' "$*"; }
log() { printf '\n== %s (%ss)\n' "$*" "$SECONDS"; }
ok() { passed=$((passed + 1)); say "ok - $1"; }
fail() {
    failed=$((failed + 1))
    say "FAIL - $1"
    if [ $# -gt 1 ]; then printf '%s\n' "$2" | sed 's/^/    /'; fi
}
# expect_eq NAME EXPECTED ACTUAL: a check; prints a diff when they differ.
expect_eq() {
    if [ "$2" = "$3" ]; then
        ok "$1"
    else
        fail "$1" "$(diff <(printf '%s\n' "$2") <(printf '%s\n' "$3") | sed '1s/^/expected (<) vs actual (>):\n/')"
    fi
}
# expect NAME COMMAND...: a check that COMMAND succeeds (its output is shown if not).
expect() {
    local name=$1 out
    shift
    if out=$("$@" 2>&1); then ok "$name"; else fail "$name" "exit $?: $*"$'\n'"$out"; fi
}
# must NAME COMMAND...: like expect, but the run cannot go on without it.
must() {
    local name=$1 out
    shift
    if out=$("$@" 2>&1); then
        ok "$name"
    else
        fail "$name" "exit $?: $*"$'\n'"$out"
        exit 1
    fi
}
die() { fail "$1" "${2:-}"; exit 1; }

# Stops a process we started: SIGTERM, then SIGKILL after $2 seconds (default 10).
stop_pid() {
    local pid=$1 grace=${2:-10} i
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < grace * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    [ "${stop_pid_verbose:-0}" != 1 ] || say "pid $pid still running after ${grace}s: SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
}

# Whether process $1 holds a listening unix socket (from /proc: its fds, /proc/net/unix).
listening() {
    local fd link
    for fd in /proc/"$1"/fd/*; do
        link=$(readlink "$fd" 2>/dev/null) || continue
        case $link in socket:\[*\]) ;; *) continue ;; esac
        link=${link#socket:[}
        if awk -v i="${link%]}" '$7 == i && $4 == "00010000" { f = 1 } END { exit !f }' \
            /proc/net/unix; then
            return 0
        fi
    done
    return 1
}

# The mount points under $T, deepest first.
mounts_under() {
    [ -n "$T" ] || return 0
    awk -v t="$T" '$5 == t || index($5, t "/") == 1 { print $5 }' /proc/self/mountinfo | sort -r
}
# Shims of our containerd (they outlive it when a task is left).
kill_shims() {
    local pid
    for pid in $(pgrep -f "containerd-shim-runc-v2 .*-address $1" || true); do
        kill -KILL "$pid" 2>/dev/null
    done
}
unmount_under() {
    local m
    for m in $(mounts_under); do umount "$m" 2>/dev/null || umount -l "$m"; done
}
remove_tmp() {
    if [ -n "$(mounts_under)" ]; then
        say "still mounted under $T, not removing it:"
        mounts_under
    elif [ "${E2E_KEEP:-0}" = 1 ]; then
        say "kept $T"
    else
        rm -rf "$T"
    fi
}

# E2E_CONTAINERD=2: containerd 2.x, Debian sid's package unpacked by fetch-containerd2.sh
# (cached in $CONTAINERD2_DIR), first on PATH for this run only.
use_containerd() {
    local dir
    case $1 in
        1) ;;
        2)
            dir=$("$e2e_dir/fetch-containerd2.sh") || exit $?
            PATH=$dir:$PATH
            ;;
        *) return 1 ;;
    esac
}
containerd_major() {
    containerd --version | awk '{ v = $3; sub(/^v/, "", v); split(v, p, "."); print p[1] }'
}
install_missing() {
    local missing=() tool spec pkgs=()
    for tool in containerd containerd-shim-runc-v2 ctr; do
        command -v "$tool" >/dev/null || missing+=(containerd)
    done
    command -v runc >/dev/null || missing+=(runc)
    command -v jq >/dev/null || missing+=(jq)
    for spec in "$@"; do
        pkgs+=("${spec#*:}")
        command -v "${spec%%:*}" >/dev/null || missing+=("${spec#*:}")
    done
    if [ ! -x /bin/busybox ] || ldd /bin/busybox >/dev/null 2>&1; then missing+=(busybox-static); fi
    if [ ${#missing[@]} -gt 0 ]; then
        say "installing: ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -q
        apt-get install -y -q containerd runc busybox-static jq "${pkgs[@]}"
    fi
}

release_dir() {
    local target=${CARGO_TARGET_DIR:-$repo/target}
    case $target in /*) ;; *) target=$repo/$target ;; esac
    printf '%s\n' "$target/release"
}
find_binaries() {
    if [ -n "${OVERLAYSNAPD:-}" ] && [ -n "${OVERLAYSNAP:-}" ]; then
        daemon_bin=$OVERLAYSNAPD
        cli_bin=$OVERLAYSNAP
    else
        log "cargo build --release -p overlaysnap-daemon -p overlaysnap-cli"
        (cd "$repo" && cargo build --release -p overlaysnap-daemon -p overlaysnap-cli)
        daemon_bin=${OVERLAYSNAPD:-$(release_dir)/overlaysnapd}
        cli_bin=${OVERLAYSNAP:-$(release_dir)/overlaysnap}
    fi
    [ -x "$daemon_bin" ] || die "overlaysnapd binary" "not found: $daemon_bin"
    [ -x "$cli_bin" ] || die "overlaysnap binary" "not found: $cli_bin"
}
find_daemon() {
    if [ -n "${OVERLAYSNAPD:-}" ]; then
        daemon_bin=$OVERLAYSNAPD
    else
        (cd "$repo" && cargo build --release -q -p overlaysnap-daemon)
        daemon_bin=$(release_dir)/overlaysnapd
    fi
}
