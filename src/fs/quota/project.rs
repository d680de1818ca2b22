//! XFS and ext4 project quotas: a snapshot directory gets its own project id with the
//! inherit flag (`FS_IOC_FSSETXATTR`, `FS_XFLAG_PROJINHERIT`), so that everything created
//! below it is charged to that project; usage and limits are the project's quota
//! (`quotactl(QCMD(Q_GETQUOTA | Q_SETQUOTA, PRJQUOTA), device, id, &dqblk)`, the generic
//! calls both file systems implement), named by the block device of the mount
//! (`/proc/self/mountinfo`). Quota numbers are current at once: no lag.

use super::ioctl::{io_read, io_write, ioctl, open_dir, qcmd, quotactl};
use super::mountinfo::mount_of;
use super::QuotaUsage;
use std::io;
use std::path::{Path, PathBuf};

/// `struct fsxattr` of `linux/fs.h`.
#[repr(C)]
#[derive(Default)]
struct FsXattr {
    xflags: u32,
    extsize: u32,
    nextents: u32,
    projid: u32,
    cowextsize: u32,
    pad: [u8; 8],
}

/// `struct if_dqblk` of `linux/quota.h`.
#[repr(C)]
#[derive(Default)]
struct DqBlk {
    bhardlimit: u64,
    bsoftlimit: u64,
    curspace: u64,
    ihardlimit: u64,
    isoftlimit: u64,
    curinodes: u64,
    btime: u64,
    itime: u64,
    valid: u32,
}

/// `struct if_nextdqblk` of `linux/quota.h`: the fields of [`DqBlk`] and, packed after
/// `valid`, the id they are of (only the hard limit and the id are read).
#[repr(C)]
#[derive(Default)]
struct NextDqBlk {
    bhardlimit: u64,
    rest: [u64; 7],
    valid: u32,
    id: u32,
}

/// `struct if_dqinfo` of `linux/quota.h`.
#[repr(C)]
#[derive(Default)]
struct DqInfo {
    bgrace: u64,
    igrace: u64,
    flags: u32,
    valid: u32,
}

const FSGETXATTR: u64 = io_read::<FsXattr>(b'X', 31);
const FSSETXATTR: u64 = io_write::<FsXattr>(b'X', 32);
/// `FS_XFLAG_PROJINHERIT`.
const PROJINHERIT: u32 = 0x200;
/// `PRJQUOTA`.
const PRJQUOTA: i32 = 2;
const Q_GETINFO: i32 = 0x80_0005;
const Q_GETQUOTA: i32 = 0x80_0007;
const Q_SETQUOTA: i32 = 0x80_0008;
const Q_GETNEXTQUOTA: i32 = 0x80_0009;
/// `QIF_BLIMITS`: the call sets the block limits only.
const QIF_BLIMITS: u32 = 1;
/// Quota block limits count `QIF_DQBLKSIZE` (1 KiB) blocks.
const BLOCK: u64 = 1024;

/// The block device of the file system holding `dir`, and its type.
pub(super) fn device_of(dir: &Path) -> io::Result<(PathBuf, String)> {
    let mount = mount_of(dir)?;
    let source = PathBuf::from(&mount.source);
    if !source.is_absolute() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!(
                "the {} file system at {} has no block device (source {:?})",
                mount.fs_type,
                mount.mount_point.display(),
                mount.source
            ),
        ));
    }
    Ok((source, mount.fs_type))
}

/// Whether project quota accounting is on for the file system of `device`: `Q_GETINFO`
/// for `PRJQUOTA` succeeds (it fails with ESRCH when the file system was mounted without
/// `prjquota`, and with ENOSYS/EINVAL/ENOTSUP/EOPNOTSUPP on kernels without quota support).
pub(super) fn accounting_on(device: &Path) -> io::Result<bool> {
    let mut info = DqInfo::default();
    match quotactl(qcmd(Q_GETINFO, PRJQUOTA), device, 0, &mut info) {
        Ok(()) => Ok(true),
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(
                    nix::libc::ESRCH
                        | nix::libc::ENOSYS
                        | nix::libc::EINVAL
                        | nix::libc::ENOTSUP
                        | nix::libc::ENOENT
                )
            ) =>
        {
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

/// Gives the directory `dir` the project `id` and the inherit flag, so that what is
/// created below it joins the project.
pub(super) fn assign(dir: &Path, id: u32) -> io::Result<()> {
    let file = open_dir(dir)?;
    let mut attr = FsXattr::default();
    ioctl(&file, FSGETXATTR, &mut attr)?;
    attr.projid = id;
    attr.xflags |= PROJINHERIT;
    ioctl(&file, FSSETXATTR, &mut attr)
}

/// The project id of `dir`, when it has the inherit flag.
pub(super) fn project_of(dir: &Path) -> io::Result<Option<u32>> {
    let mut attr = FsXattr::default();
    ioctl(&open_dir(dir)?, FSGETXATTR, &mut attr)?;
    Ok((attr.xflags & PROJINHERIT != 0).then_some(attr.projid))
}

/// Sets (or with `None` clears) the hard block limit of project `id`, in bytes rounded up
/// to whole KiB.
pub(super) fn set_limit(device: &Path, id: u32, limit: Option<u64>) -> io::Result<()> {
    let mut q = DqBlk {
        bhardlimit: limit.map_or(0, |bytes| bytes.div_ceil(BLOCK)),
        valid: QIF_BLIMITS,
        ..DqBlk::default()
    };
    quotactl(qcmd(Q_SETQUOTA, PRJQUOTA), device, id, &mut q)
}

/// The project ids from `from` on that have a hard block limit, in order: one
/// `Q_GETNEXTQUOTA` per project id holding a quota record at or above `from` (the kernel
/// skips the ids without one), so the cost is bounded by the projects in use, not by the
/// id space.
pub(super) fn limited(device: &Path, from: u32) -> io::Result<Vec<u32>> {
    let mut found = Vec::new();
    let mut id = from;
    loop {
        let mut q = NextDqBlk::default();
        match quotactl(qcmd(Q_GETNEXTQUOTA, PRJQUOTA), device, id, &mut q) {
            Ok(()) => {}
            // ENOENT: no record at or above `id`; ESRCH: none at all (XFS).
            Err(e) if matches!(e.raw_os_error(), Some(nix::libc::ENOENT | nix::libc::ESRCH)) => {
                break
            }
            Err(e) => return Err(e),
        }
        if q.id < id {
            break;
        }
        if q.bhardlimit != 0 {
            found.push(q.id);
        }
        match q.id.checked_add(1) {
            Some(next) => id = next,
            None => break,
        }
    }
    Ok(found)
}

/// The usage and limit of project `id`.
pub(super) fn usage(device: &Path, id: u32) -> io::Result<QuotaUsage> {
    let mut q = DqBlk::default();
    quotactl(qcmd(Q_GETQUOTA, PRJQUOTA), device, id, &mut q)?;
    Ok(QuotaUsage {
        bytes: q.curspace,
        inodes: Some(q.curinodes),
        limit: (q.bhardlimit != 0).then(|| q.bhardlimit.saturating_mul(BLOCK)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_numbers_are_those_of_the_uapi_headers() {
        // linux/fs.h on x86_64: FS_IOC_FSGETXATTR, FS_IOC_FSSETXATTR.
        assert_eq!(FSGETXATTR, 0x801c_581f);
        assert_eq!(FSSETXATTR, 0x401c_5820);
        // linux/quota.h: QCMD(Q_GETQUOTA, PRJQUOTA) and friends.
        assert_eq!(qcmd(Q_GETQUOTA, PRJQUOTA), 0x8000_0702_u32 as i32);
        assert_eq!(qcmd(Q_SETQUOTA, PRJQUOTA), 0x8000_0802_u32 as i32);
        assert_eq!(qcmd(Q_GETINFO, PRJQUOTA), 0x8000_0502_u32 as i32);
        assert_eq!(qcmd(Q_GETNEXTQUOTA, PRJQUOTA), 0x8000_0902_u32 as i32);
        assert_eq!(std::mem::size_of::<NextDqBlk>(), 72);
        assert_eq!(std::mem::size_of::<DqBlk>(), 72);
        assert_eq!(std::mem::size_of::<FsXattr>(), 28);
    }

    #[test]
    fn quotactl_on_a_missing_device_reports_its_error() {
        let err = usage(Path::new("/nonexistent/overlaysnap-device"), 1).unwrap_err();
        assert!(
            matches!(
                err.raw_os_error(),
                Some(nix::libc::ENOENT | nix::libc::ENOTBLK)
            ),
            "{err}"
        );
    }
}
