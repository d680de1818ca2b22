#!/usr/bin/env bash
# Self-test of the VM rig: proves that the file systems tests/vm/run.sh hands to a command
# enforce and report project quotas, as the project-quota suites assume. Run it in the VM:
#
#   bash tests/vm/run.sh bash tests/vm/selftest.sh
#
# On each of OVERLAYSNAP_QUOTA_XFS_ROOT (xfs_quota) and OVERLAYSNAP_QUOTA_EXT4_ROOT
# (chattr +P -p, setquota -P): a directory gets a project id with inheritance and an 8 MiB
# hard block limit. Writing 16 MiB into it as root without CAP_SYS_RESOURCE (as a
# container writes) must fail with the file system's error for a full project: "No space
# left on device" on XFS (its project quotas report ENOSPC), "Disk quota exceeded" on ext4.
# The project's reported usage must then be 8 MiB (give or take 256 KiB), and its file
# must carry the project id. The control: 16 MiB written beside it, outside the project,
# must succeed, so the stop came from the quota, not from a full file system. And what
# CAP_SYS_RESOURCE does: on ext4 (the VFS quota code) it lets a writer past the hard limit;
# on XFS it does not.
set -euo pipefail

: "${OVERLAYSNAP_QUOTA_XFS_ROOT:?run me through tests/vm/run.sh}"
: "${OVERLAYSNAP_QUOTA_EXT4_ROOT:?run me through tests/vm/run.sh}"

passed=0
failed=0
check() { # NAME CONDITION-COMMAND...
    local name=$1
    shift
    if "$@"; then
        echo "ok: $name"
        passed=$((passed + 1))
    else
        echo "FAILED: $name"
        failed=$((failed + 1))
    fi
}

within() { # KIB LOW HIGH
    [ -n "$1" ] && [ "$1" -ge "$2" ] && [ "$1" -le "$3" ]
}

# Writes 16 MiB to FILE without CAP_SYS_RESOURCE; prints dd's stderr; exits as dd does.
fill() {
    setpriv --inh-caps=-sys_resource --bounding-set=-sys_resource \
        dd if=/dev/zero of="$1" bs=1M count=16 conv=fsync 2>&1
}

# The same with every capability of root.
fill_privileged() {
    dd if=/dev/zero of="$1" bs=1M count=16 conv=fsync 2>&1
}

# One file system: FS ROOT ID SET-PROJECT-CMD SET-LIMIT-CMD USAGE-CMD (usage in KiB)
# ERROR (dd's message for a full project) PRIVILEGED (yes: CAP_SYS_RESOURCE passes the
# limit; no: it does not).
exercise() {
    local fs=$1 root=$2 id=$3 set_project=$4 set_limit=$5 usage=$6 error=$7 privileged=$8
    local dir=$root/selftest-project free=$root/selftest-free out used size
    mkdir "$dir" "$free"
    "$set_project" "$dir" "$id"
    "$set_limit" "$root" "$id"

    out=$(fill "$dir/fill") && rc=0 || rc=$?
    echo "$fs: dd into the project: exit $rc: $out" | tr '\n' ' '
    echo
    check "$fs: dd past the 8 MiB limit fails" [ "$rc" -ne 0 ]
    check "$fs: with $error" grep -q "$error" <<<"$out"
    size=$(($(stat -c %s "$dir/fill") / 1024))
    check "$fs: the file holds 8 MiB ($size KiB)" within "$size" 7936 8448
    check "$fs: the file inherited project $id ($(lsattr -pd "$dir/fill"))" \
        grep -Eq "^ *$id " <<<"$(lsattr -pd "$dir/fill")"
    used=$("$usage" "$root" "$id")
    check "$fs: the project's reported usage is 8 MiB ($used KiB)" within "$used" 7936 8448

    out=$(fill "$free/fill") && rc=0 || rc=$?
    check "$fs: control: 16 MiB outside the project is written (exit $rc)" [ "$rc" -eq 0 ]

    rm "$dir/fill"
    out=$(fill_privileged "$dir/fill") && rc=0 || rc=$?
    if [ "$privileged" = yes ]; then
        check "$fs: CAP_SYS_RESOURCE writes past the limit (exit $rc)" [ "$rc" -eq 0 ]
    else
        check "$fs: CAP_SYS_RESOURCE is held to the limit too (exit $rc)" [ "$rc" -ne 0 ]
    fi
    rm -rf "$dir" "$free"
}

mountpoint_of() { findmnt -n -o TARGET --target "$1"; }

xfs_project() { xfs_quota -x -c "project -s -p $1 $2" "$(mountpoint_of "$1")" >/dev/null; }
xfs_limit() { xfs_quota -x -c "limit -p bhard=8m $2" "$(mountpoint_of "$1")"; }
# "quota -p -N -b ID" prints: DEVICE BLOCKS QUOTA LIMIT GRACE MOUNTPOINT (blocks in KiB).
xfs_usage() { xfs_quota -x -c "quota -p -N -b $2" "$(mountpoint_of "$1")" | awk '{ print $2 }'; }

ext4_project() { chattr +P -p "$2" "$1"; }
ext4_limit() { setquota -P "$2" 0 8192 0 0 "$(mountpoint_of "$1")"; }
# repquota's line for the project: #ID -- BLOCKS SOFT HARD ... (blocks in KiB).
ext4_usage() { repquota -P -n "$(mountpoint_of "$1")" | awk -v id="#$2" '$1 == id { print $3 }'; }

exercise xfs "$OVERLAYSNAP_QUOTA_XFS_ROOT" 4242 xfs_project xfs_limit xfs_usage \
    "No space left on device" no
exercise ext4 "$OVERLAYSNAP_QUOTA_EXT4_ROOT" 4243 ext4_project ext4_limit ext4_usage \
    "Disk quota exceeded" yes

echo "selftest: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
