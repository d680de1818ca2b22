#!/usr/bin/env bash
# Runs a command as root inside a VM booted with Debian 12's own kernel, beside a loop XFS
# and a loop ext4 both mounted with project quotas (the host's kernel may lack them):
#
#   tests/vm/run.sh CMD [ARG...]
#
# Needs tests/vm/setup.sh first (cache: $OVERLAYSNAP_VM_DIR, default
# /var/lib/overlaysnap-vm). The VM (virtme-ng, under TCG: qemu asserts under KVM here)
# uses the host's root file system read-write, so CMD can be any host path, e.g. a test
# binary cargo built on the host. Inside it, tests/vm/guest.sh makes and mounts the file
# systems, exports OVERLAYSNAP_QUOTA_XFS_ROOT, OVERLAYSNAP_QUOTA_EXT4_ROOT and
# OVERLAYSNAP_QUOTA_VM=required, and runs CMD in this directory under PATH, HOME and the
# host's OVERLAYSNAP_*, RUST_* and CARGO_* variables. CMD's output comes on the console
# among the kernel's warnings. The exit status is CMD's, read from a file the guest
# writes (the console's is unreliable); a guest that writes none (setup failed, panic, or
# no end within $OVERLAYSNAP_VM_TIMEOUT seconds, default 1800) fails the run.
# Tunables: OVERLAYSNAP_VM_CPUS (default 2), OVERLAYSNAP_VM_MEMORY (default 2G).
set -euo pipefail

[ "$#" -gt 0 ] || { echo "usage: $0 CMD [ARG...]" >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
D=${OVERLAYSNAP_VM_DIR:-/var/lib/overlaysnap-vm}
[ -f "$D/env" ] || { echo "$0: no $D/env: run tests/vm/setup.sh first" >&2; exit 1; }
# shellcheck source=/dev/null
. "$D/env"
if [ ! -x "$VNG" ] || [ ! -f "$KERNEL" ]; then
    echo "$0: $D is incomplete: run tests/vm/setup.sh" >&2
    exit 1
fi
timeout_s=${OVERLAYSNAP_VM_TIMEOUT:-1800}
# The guest mounts fresh tmpfs on these: a command or directory there is not the host's.
for path in "$PWD" "$1"; do
    case $path/ in
        /var/tmp/* | /var/cache/* | /var/log/*)
            echo "$0: $path is hidden from the guest (a tmpfs there): move it" >&2
            exit 1
            ;;
    esac
done

# In the cache, which the guest sees: it gets a private /tmp, /var/tmp and /var/cache.
work=$(mktemp -d "$D/run.XXXXXX")
trap 'rm -rf "$work"' EXIT
{
    printf 'export OVERLAYSNAP_VM_CWD=%q\n' "$PWD"
    for name in $(compgen -e); do
        case $name in
            PATH | HOME | OVERLAYSNAP_* | RUST_* | CARGO_*) printf 'export %s=%q\n' "$name" "${!name}" ;;
        esac
    done
} >"$work/env.sh"
{
    printf 'exec'
    printf ' %q' "$@"
    printf '\n'
} >"$work/cmd.sh"

start=$SECONDS
# The venv's bin holds virtme-run, which vng calls. timeout signals qemu too (its group).
# The console goes through a pipe, without its carriage returns: qemu writes it through a
# file description of its own, which would overwrite what this script writes after it in
# a file given as stdout. --force-9p: the host's root goes over 9p (as it would anyway, after
# a 5 s wait, with qemu's C virtiofsd, which virtme-ng fails to start).
set +e
PATH="$(dirname "$VNG"):$PATH" timeout -k 10 "$timeout_s" "$VNG" --run "$KERNEL" \
    --user root --disable-kvm --rw --force-9p -v \
    --cpus "${OVERLAYSNAP_VM_CPUS:-2}" --memory "${OVERLAYSNAP_VM_MEMORY:-2G}" \
    -- "bash $(printf %q "$here/guest.sh") $(printf %q "$work")" </dev/null 2>&1 | tr -d '\r'
rc=${PIPESTATUS[0]}
set -e

if [ ! -f "$work/status" ]; then
    if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
        echo "$0: the VM did not finish within ${timeout_s}s; killed" >&2
    else
        echo "$0: the guest wrote no exit status (its setup failed or the kernel crashed; see the console above); vng exited $rc" >&2
    fi
    exit 1
fi
status=$(cat "$work/status")
echo "$0: $* exited $status in the VM (kernel $KVER, $((SECONDS - start))s with boot)" >&2
exit "$status"
