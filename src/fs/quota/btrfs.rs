//! btrfs qgroups through ioctls (no `btrfs` process): a snapshot directory is a subvolume,
//! its level-0 qgroup `0/<subvolume id>` holds its usage and limit.
//!
//! - create: `BTRFS_IOC_SUBVOL_CREATE` on the parent directory, or with a limit
//!   `BTRFS_IOC_SUBVOL_CREATE_V2` with a qgroup inherit that sets it (one call);
//! - delete: `BTRFS_IOC_SNAP_DESTROY` on the parent directory (unlinks the subvolume at
//!   once; the cleaner thread frees its extents later), then the qgroup is removed
//!   (`BTRFS_IOC_QGROUP_CREATE` with `create = 0`) where the kernel did not already;
//! - limit: `BTRFS_IOC_QGROUP_LIMIT` on the subvolume (qgroup id 0 = "this subvolume");
//! - usage: `BTRFS_IOC_INO_LOOKUP` gives the subvolume id, then `BTRFS_IOC_TREE_SEARCH`
//!   on the quota tree reads the `BTRFS_QGROUP_INFO_KEY` and `BTRFS_QGROUP_LIMIT_KEY`
//!   items of `0/<id>`.
//!
//! qgroup numbers are those of the last committed transaction: writes since then are not
//! in them yet (a commit happens every 30 s by default, and at `syncfs`, which is
//! `BTRFS_IOC_SYNC`'s commit). Callers that need exact numbers (Commit) syncfs first.

use super::ioctl::{io_read, io_read_write, io_write, ioctl, open_dir};
use super::QuotaUsage;
use nix::libc;
use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// `BTRFS_IOCTL_MAGIC`.
const MAGIC: u8 = 0x94;
/// The root directory's inode number in every subvolume (`BTRFS_FIRST_FREE_OBJECTID`).
const SUBVOLUME_ROOT_INO: u64 = 256;
/// `BTRFS_QUOTA_TREE_OBJECTID`.
const QUOTA_TREE: u64 = 8;
/// `BTRFS_QGROUP_STATUS_KEY`.
const STATUS_KEY: u32 = 240;
/// `BTRFS_QGROUP_INFO_KEY`.
const INFO_KEY: u32 = 242;
/// `BTRFS_QGROUP_LIMIT_KEY`.
const LIMIT_KEY: u32 = 244;
/// `BTRFS_QGROUP_STATUS_FLAG_ON`.
const STATUS_ON: u64 = 1;
/// `BTRFS_QGROUP_LIMIT_MAX_RFER`.
const LIMIT_MAX_RFER: u64 = 1;
/// `BTRFS_SUBVOL_QGROUP_INHERIT`: `VolArgsV2` carries a `QgroupInherit`.
const SUBVOL_QGROUP_INHERIT: u64 = 1 << 2;
/// `BTRFS_QGROUP_INHERIT_SET_LIMITS`: the new qgroup takes the inherit's limit.
const INHERIT_SET_LIMITS: u64 = 1;
/// The kernel's `CLEAR_VALUE`: a limit of this value removes the limit.
const CLEAR_LIMIT: u64 = u64::MAX;

/// `struct btrfs_ioctl_vol_args`.
#[repr(C)]
struct VolArgs {
    fd: i64,
    name: [u8; 4088],
}

/// `struct btrfs_ioctl_vol_args_v2`, with the qgroup inherit in its first union.
#[repr(C)]
struct VolArgsV2 {
    fd: i64,
    transid: u64,
    flags: u64,
    /// The inherit's size in bytes.
    size: u64,
    /// `struct btrfs_qgroup_inherit *`.
    qgroup_inherit: *const QgroupInherit,
    unused: [u64; 2],
    name: [u8; 4040],
}

/// `struct btrfs_qgroup_inherit` without qgroups to inherit from, with its limit
/// (`struct btrfs_qgroup_limit`) inline.
#[repr(C)]
struct QgroupInherit {
    flags: u64,
    num_qgroups: u64,
    num_ref_copies: u64,
    num_excl_copies: u64,
    lim_flags: u64,
    max_rfer: u64,
    max_excl: u64,
    rsv_rfer: u64,
    rsv_excl: u64,
}

/// `struct btrfs_ioctl_ino_lookup_args`.
#[repr(C)]
struct InoLookupArgs {
    treeid: u64,
    objectid: u64,
    name: [u8; 4080],
}

/// `struct btrfs_ioctl_qgroup_limit_args` (with `struct btrfs_qgroup_limit` inline).
#[repr(C)]
struct QgroupLimitArgs {
    qgroupid: u64,
    flags: u64,
    max_rfer: u64,
    max_excl: u64,
    rsv_rfer: u64,
    rsv_excl: u64,
}

/// `struct btrfs_ioctl_qgroup_create_args`.
#[repr(C)]
struct QgroupCreateArgs {
    create: u64,
    qgroupid: u64,
}

/// `struct btrfs_ioctl_search_key`.
#[repr(C)]
#[derive(Default)]
struct SearchKey {
    tree_id: u64,
    min_objectid: u64,
    max_objectid: u64,
    min_offset: u64,
    max_offset: u64,
    min_transid: u64,
    max_transid: u64,
    min_type: u32,
    max_type: u32,
    nr_items: u32,
    unused: u32,
    unused1: [u64; 4],
}

/// `struct btrfs_ioctl_search_args`: the key, then the items found.
#[repr(C)]
struct SearchArgs {
    key: SearchKey,
    buf: [u8; 4096 - std::mem::size_of::<SearchKey>()],
}

const SUBVOL_CREATE: u64 = io_write::<VolArgs>(MAGIC, 14);
const SUBVOL_CREATE_V2: u64 = io_write::<VolArgsV2>(MAGIC, 24);
const SNAP_DESTROY: u64 = io_write::<VolArgs>(MAGIC, 15);
const TREE_SEARCH: u64 = io_read_write::<SearchArgs>(MAGIC, 17);
const INO_LOOKUP: u64 = io_read_write::<InoLookupArgs>(MAGIC, 18);
const QGROUP_CREATE: u64 = io_write::<QgroupCreateArgs>(MAGIC, 42);
const QGROUP_LIMIT: u64 = io_read::<QgroupLimitArgs>(MAGIC, 43);

/// A subvolume name that is not one (no last component, or too long for the call).
fn invalid_name() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, "subvolume name")
}

/// `path` split into its parent, opened, and its last component.
fn parent_and_name(path: &Path) -> io::Result<(std::fs::File, &[u8])> {
    let name: &OsStr = path.file_name().ok_or_else(invalid_name)?;
    let parent = path.parent().ok_or_else(invalid_name)?;
    Ok((open_dir(parent)?, name.as_bytes()))
}

/// `name` as the NUL-terminated name field of a call's arguments.
fn name_field<const N: usize>(name: &[u8]) -> io::Result<[u8; N]> {
    if name.len() >= N {
        return Err(invalid_name());
    }
    let mut field = [0; N];
    field[..name.len()].copy_from_slice(name);
    Ok(field)
}

/// The arguments of the calls that name a subvolume in its parent.
fn vol_args(name: &[u8]) -> io::Result<Box<VolArgs>> {
    Ok(Box::new(VolArgs {
        fd: 0,
        name: name_field(name)?,
    }))
}

/// Creates the subvolume `path` (mode 0755, like `mkdir`), its qgroup limited to `limit`
/// bytes of referenced data in the same call.
pub(super) fn create_subvolume(path: &Path, limit: Option<u64>) -> io::Result<()> {
    let (parent, name) = parent_and_name(path)?;
    let Some(max_rfer) = limit else {
        return ioctl(&parent, SUBVOL_CREATE, &mut *vol_args(name)?);
    };
    let inherit = QgroupInherit {
        flags: INHERIT_SET_LIMITS,
        num_qgroups: 0,
        num_ref_copies: 0,
        num_excl_copies: 0,
        lim_flags: LIMIT_MAX_RFER,
        max_rfer,
        max_excl: 0,
        rsv_rfer: 0,
        rsv_excl: 0,
    };
    let mut v2 = Box::new(VolArgsV2 {
        fd: 0,
        transid: 0,
        flags: SUBVOL_QGROUP_INHERIT,
        size: std::mem::size_of::<QgroupInherit>() as u64,
        qgroup_inherit: &inherit,
        unused: [0; 2],
        name: name_field(name)?,
    });
    ioctl(&parent, SUBVOL_CREATE_V2, &mut *v2)
}

/// Whether `path` (not followed if a link) is the root directory of a subvolume.
pub(super) fn is_subvolume(path: &Path) -> io::Result<bool> {
    let md = std::fs::symlink_metadata(path)?;
    Ok(md.is_dir() && md.ino() == SUBVOLUME_ROOT_INO && on_btrfs(path)?)
}

/// Whether `path` is on btrfs (statfs `f_type`).
pub(super) fn on_btrfs(path: &Path) -> io::Result<bool> {
    let st = nix::sys::statfs::statfs(path).map_err(io::Error::from)?;
    Ok(st.filesystem_type() == nix::sys::statfs::BTRFS_SUPER_MAGIC)
}

/// Deletes the subvolume `path` and everything in it, then its qgroup where the kernel
/// keeps it (older kernels leave it until removed; newer ones drop it with the subvolume).
pub(super) fn destroy_subvolume(path: &Path) -> io::Result<()> {
    let id = subvolume_id(&open_dir(path)?)?;
    let (parent, name) = parent_and_name(path)?;
    ioctl(&parent, SNAP_DESTROY, &mut *vol_args(name)?)?;
    let mut remove = QgroupCreateArgs {
        create: 0,
        qgroupid: id,
    };
    match ioctl(&parent, QGROUP_CREATE, &mut remove) {
        // ENOENT: already gone; EBUSY: it still accounts extents the cleaner has not
        // freed yet, and the kernel removes it when the subvolume is fully dropped
        // (or `btrfs qgroup clear-stale` does on kernels that keep it); ENOTCONN: quotas
        // are disabled, so there are no qgroups (a root opened with quotas off after
        // they were turned off deletes its subvolumes).
        Ok(()) => Ok(()),
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(libc::ENOENT | libc::EBUSY | libc::ENOTCONN)
            ) =>
        {
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// The id of the subvolume holding the open directory `dir`.
fn subvolume_id(dir: &std::fs::File) -> io::Result<u64> {
    let mut args = Box::new(InoLookupArgs {
        treeid: 0,
        objectid: SUBVOLUME_ROOT_INO,
        name: [0; 4080],
    });
    ioctl(dir, INO_LOOKUP, &mut *args)?;
    Ok(args.treeid)
}

/// Sets (or with `None` removes) the limit on the referenced bytes of the subvolume
/// `path`'s qgroup.
pub(super) fn set_limit(path: &Path, limit: Option<u64>) -> io::Result<()> {
    let dir = open_dir(path)?;
    let mut args = QgroupLimitArgs {
        qgroupid: 0,
        flags: LIMIT_MAX_RFER,
        max_rfer: limit.unwrap_or(CLEAR_LIMIT),
        max_excl: 0,
        rsv_rfer: 0,
        rsv_excl: 0,
    };
    ioctl(&dir, QGROUP_LIMIT, &mut args)
}

/// The usage and limit of the subvolume `path`'s qgroup, as of the last committed
/// transaction; `None` when `path` is not a subvolume's root.
pub(super) fn usage(path: &Path) -> io::Result<Option<QuotaUsage>> {
    let dir = open_dir(path)?;
    if dir.metadata()?.ino() != SUBVOLUME_ROOT_INO {
        return Ok(None);
    }
    let id = subvolume_id(&dir)?;
    let info = search_quota_item(&dir, INFO_KEY, id)?
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("no qgroup 0/{id}")))?;
    let limit = search_quota_item(&dir, LIMIT_KEY, id)?.and_then(|item| {
        let (flags, max_rfer) = (le_u64(&item, 0), le_u64(&item, 8));
        (flags & LIMIT_MAX_RFER != 0 && max_rfer != 0).then_some(max_rfer)
    });
    Ok(Some(QuotaUsage {
        // btrfs_qgroup_info_item: generation, rfer, rfer_cmpr, excl, excl_cmpr.
        bytes: le_u64(&info, 8),
        inodes: None,
        limit,
    }))
}

/// Whether quotas are enabled on the btrfs holding `path`: the quota tree exists and its
/// status item has the ON flag.
pub(super) fn quotas_enabled(path: &Path) -> io::Result<bool> {
    match search_quota_item(&open_dir(path)?, STATUS_KEY, 0) {
        Ok(Some(status)) => Ok(le_u64(&status, 16) & STATUS_ON != 0),
        Ok(None) => Ok(false),
        // No quota tree at all: quotas were never enabled (or were disabled).
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(false),
        Err(e) => Err(e),
    }
}

/// The item `(0, ty, offset)` of the quota tree, if present.
fn search_quota_item(dir: &std::fs::File, ty: u32, offset: u64) -> io::Result<Option<Vec<u8>>> {
    let mut args = Box::new(SearchArgs {
        key: SearchKey {
            tree_id: QUOTA_TREE,
            min_objectid: 0,
            max_objectid: 0,
            min_offset: offset,
            max_offset: offset,
            min_transid: 0,
            max_transid: u64::MAX,
            min_type: ty,
            max_type: ty,
            nr_items: 1,
            ..SearchKey::default()
        },
        buf: [0; 4096 - std::mem::size_of::<SearchKey>()],
    });
    ioctl(dir, TREE_SEARCH, &mut *args)?;
    if args.key.nr_items == 0 {
        return Ok(None);
    }
    // struct btrfs_ioctl_search_header: transid, objectid, offset (u64), type, len (u32).
    let header = &args.buf[..32];
    let (found_offset, found_type) = (ne_u64(header, 16), ne_u32(header, 24));
    let len = ne_u32(header, 28) as usize;
    if found_type != ty || found_offset != offset || 32 + len > args.buf.len() {
        return Ok(None);
    }
    Ok(Some(args.buf[32..32 + len].to_vec()))
}

/// The little-endian u64 at `at` of an on-disk item.
fn le_u64(bytes: &[u8], at: usize) -> u64 {
    bytes
        .get(at..at + 8)
        .map_or(0, |b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
}

/// The native-endian u64 at `at` of an ioctl header.
fn ne_u64(bytes: &[u8], at: usize) -> u64 {
    u64::from_ne_bytes(bytes[at..at + 8].try_into().expect("8 bytes"))
}

/// The native-endian u32 at `at` of an ioctl header.
fn ne_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes(bytes[at..at + 4].try_into().expect("4 bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_numbers_are_those_of_the_uapi_header() {
        // From linux/btrfs.h as printed by a C program on x86_64.
        assert_eq!(SUBVOL_CREATE, 0x5000_940e);
        assert_eq!(SUBVOL_CREATE_V2, 0x5000_9418);
        assert_eq!(std::mem::size_of::<VolArgsV2>(), 4096);
        assert_eq!(SNAP_DESTROY, 0x5000_940f);
        assert_eq!(TREE_SEARCH, 0xd000_9411);
        assert_eq!(INO_LOOKUP, 0xd000_9412);
        assert_eq!(QGROUP_CREATE, 0x4010_942a);
        assert_eq!(QGROUP_LIMIT, 0x8030_942b);
    }
}
