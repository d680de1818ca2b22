#!/usr/bin/env bash
# Installs the VM rig of the project-quota tests (tests/vm/run.sh) on a Debian 12 machine,
# as root:
#
#   tests/vm/setup.sh      # cache: $OVERLAYSNAP_VM_DIR, default /var/lib/overlaysnap-vm
#
# Why a VM: the project-quota suites need a kernel with XFS quotas (CONFIG_XFS_QUOTA) and
# ext4 project quotas (CONFIG_QFMT_V2); the host's kernel may have neither, Debian 12's own
# kernel has both. So this script:
#   - apt-installs qemu (TCG), busybox-static (virtme-ng's initramfs), xfsprogs, e2fsprogs,
#     quota (setquota/repquota), kmod, python3-venv, and jq (tests/vm/quota.sh);
#   - downloads the kernel package that bookworm's linux-image-amd64 currently depends on
#     (apt-get download, never dpkg -i: its maintainer scripts fail on a host that does not
#     boot it, and leave apt broken) and unpacks it with dpkg-deb -x into CACHE/kernel;
#   - runs depmod on its modules in CACHE/kernel/lib/modules/VERSION: the package ships no
#     modules.dep. virtme-ng shows that directory to the guest as /lib/modules/VERSION (a
#     symbolic link on a tmpfs that hides the host's /lib/modules), so nothing is copied
#     into the host's /lib/modules. The cache must be seen by the guest, which gets the
#     host's root file system but fresh tmpfs on /tmp, /var/tmp, /var/cache and /var/log:
#     hence /var/lib, not /var/cache;
#   - installs virtme-ng (pinned below) into the venv CACHE/venv.
# It writes CACHE/env (VNG, KERNEL, KVER) for tests/vm/run.sh. Idempotent: a second run
# with the same kernel version downloads nothing.
set -euo pipefail

D=${OVERLAYSNAP_VM_DIR:-/var/lib/overlaysnap-vm}
case $D/ in
    /tmp/* | /var/tmp/* | /var/cache/* | /var/log/*)
        echo "$0: $D is hidden from the guest by a tmpfs: choose another OVERLAYSNAP_VM_DIR" >&2
        exit 1
        ;;
esac
VIRTME_NG_VERSION=1.42

export DEBIAN_FRONTEND=noninteractive
need=()
for pkg in qemu-system-x86 busybox-static xfsprogs e2fsprogs quota kmod python3-venv jq; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' ||
        need+=("$pkg")
done
if [ "${#need[@]}" -gt 0 ]; then
    apt-get update -qq
    # No recommends: they bring qemu's GUI (about 150 packages) that the VM does not use.
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# The kernel package the metapackage points at now (e.g. linux-image-6.1.0-57-amd64).
pkg=$(apt-cache depends linux-image-amd64 2>/dev/null |
    awk '/Depends: linux-image-[0-9].*-amd64$/ { print $2; exit }')
if [ -z "$pkg" ]; then
    apt-get update -qq
    pkg=$(apt-cache depends linux-image-amd64 |
        awk '/Depends: linux-image-[0-9].*-amd64$/ { print $2; exit }')
fi
[ -n "$pkg" ] || { echo "$0: apt names no linux-image-*-amd64 for linux-image-amd64" >&2; exit 1; }
kver=${pkg#linux-image-}
kernel=$D/kernel/boot/vmlinuz-$kver

mkdir -p "$D"
if [ ! -f "$kernel" ] || [ ! -d "$D/kernel/lib/modules/$kver" ]; then
    rm -rf "$D/deb" "$D/kernel.new"
    mkdir -p "$D/deb"
    (cd "$D/deb" && apt-get -o APT::Sandbox::User=root download "$pkg" >/dev/null)
    debs=("$D/deb/${pkg}"_*.deb)
    [ -f "${debs[0]}" ] || { echo "$0: apt-get download $pkg left no .deb" >&2; exit 1; }
    dpkg-deb -x "${debs[0]}" "$D/kernel.new"
    # A kernel the VM can boot on: XFS quotas built in, ext4's quota format a module.
    if ! grep -qx CONFIG_XFS_QUOTA=y "$D/kernel.new/boot/config-$kver" ||
        ! grep -Eqx 'CONFIG_QFMT_V2=[ym]' "$D/kernel.new/boot/config-$kver"; then
        echo "$0: $pkg lacks CONFIG_XFS_QUOTA=y or CONFIG_QFMT_V2" >&2
        exit 1
    fi
    rm -rf "$D/kernel" "$D/deb"
    mv "$D/kernel.new" "$D/kernel"
fi

if [ ! -f "$D/kernel/lib/modules/$kver/modules.dep" ]; then
    depmod -b "$D/kernel" "$kver"
fi

if ! "$D/venv/bin/vng" --version 2>/dev/null | grep -qF "$VIRTME_NG_VERSION"; then
    rm -rf "$D/venv"
    # Debian's python3, not whatever python3 is first on PATH: python3-venv is its venv.
    /usr/bin/python3 -m venv "$D/venv"
    "$D/venv/bin/pip" install -q --disable-pip-version-check "virtme-ng==$VIRTME_NG_VERSION"
fi

cat >"$D/env" <<ENV
VNG=$D/venv/bin/vng
KERNEL=$kernel
KVER=$kver
ENV
echo "$0: kernel $kver, $("$D/venv/bin/vng" --version), cache $D"
