#!/usr/bin/env bash
# The guest half of tests/vm/run.sh; runs inside the VM as root, never on the host:
#
#   bash tests/vm/guest.sh WORK
#
# WORK is run.sh's directory on the host's root file system, shared read-write with the
# guest; it holds env.sh (the exports to run under) and cmd.sh (the command). This script
# makes two loop file systems on a guest-private tmpfs (their images are sparse, so only
# what is written takes memory, and they vanish with the VM): XFS mounted prjquota, ext4
# made with the project and quota features and mounted prjquota. It exports a scratch
# directory on each as OVERLAYSNAP_QUOTA_XFS_ROOT and OVERLAYSNAP_QUOTA_EXT4_ROOT,
# OVERLAYSNAP_QUOTA_VM=required and a TMPDIR on the tmpfs, runs cmd.sh, unmounts, and writes the exit status to
# WORK/status last: run.sh takes a missing status for a guest that crashed or hung.
set -euo pipefail

work=$1
# shellcheck source=/dev/null
. "$work/env.sh"

# One modprobe: under TCG each program started over 9p costs about a second.
modprobe -a loop xfs ext4 quota_v2

scratch=$(mktemp -d /tmp/overlaysnap-vm.XXXXXX)
mount -t tmpfs -o mode=0700 overlaysnap-vm "$scratch"
# mkfs.xfs refuses less than 300 MiB; sparse, so the size costs nothing.
truncate -s 512M "$scratch/xfs.img"
truncate -s 256M "$scratch/ext4.img"
mkfs.xfs -q "$scratch/xfs.img"
mkfs.ext4 -q -O project,quota -E quotatype=prjquota "$scratch/ext4.img"
mkdir "$scratch/xfs" "$scratch/ext4"
mount -o loop,prjquota "$scratch/xfs.img" "$scratch/xfs"
mount -o loop,prjquota "$scratch/ext4.img" "$scratch/ext4"
mkdir "$scratch/xfs/root" "$scratch/ext4/root"

# The guest's /tmp is an overlay on the host's /tmp over 9p, where directories and block
# counts read oddly (tests/layout_usage.rs fails there): temporary files go to the tmpfs.
mkdir "$scratch/tmp"
export TMPDIR=$scratch/tmp
export OVERLAYSNAP_QUOTA_XFS_ROOT=$scratch/xfs/root
export OVERLAYSNAP_QUOTA_EXT4_ROOT=$scratch/ext4/root
export OVERLAYSNAP_QUOTA_VM=required
up() { cut -d' ' -f1 /proc/uptime; }
echo "== guest: kernel $(uname -r), up $(up)s; XFS $OVERLAYSNAP_QUOTA_XFS_ROOT, ext4 $OVERLAYSNAP_QUOTA_EXT4_ROOT"

rc=0
(cd "$OVERLAYSNAP_VM_CWD" && bash "$work/cmd.sh") || rc=$?
echo "== guest: command exited $rc, up $(up)s"

# A mount left behind by the command would keep the file systems busy: that is a failure.
for fs in xfs ext4; do
    if ! umount "$scratch/$fs"; then
        echo "== guest: umount $scratch/$fs failed" >&2
        grep " $scratch/" /proc/self/mounts >&2 || true
        [ "$rc" -ne 0 ] || rc=1
    fi
done
umount "$scratch" || true

echo "$rc" >"$work/status.new"
sync
mv "$work/status.new" "$work/status"
sync
