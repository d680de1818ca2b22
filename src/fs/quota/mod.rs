//! Per-directory accounting that a file system offers, as the kernel exposes it: btrfs
//! qgroups (a snapshot directory is a subvolume) and XFS / ext4 project quotas (a snapshot
//! directory carries its own project id with the inherit flag). [`QuotaMode`] names what a
//! root's file system offers; the calls themselves are methods of the
//! [`FileSystem`](super::FileSystem) seam, implemented for the host by [`RealFs`](super::RealFs)
//! with the functions of this module (no `btrfs` or `xfs_quota` process is spawned).
//!
//! - `btrfs`: subvolumes and qgroups through ioctls;
//! - `project`: `FS_IOC_FSSETXATTR` and `quotactl` for `PRJQUOTA`;
//! - `mountinfo`: the block device `quotactl` names a file system by;
//! - `ioctl`: the raw calls.

mod btrfs;
mod ioctl;
mod mountinfo;
mod project;

pub(super) use mountinfo::unescape_mountinfo;
use std::fmt;
use std::io;
use std::path::Path;

/// How the usage of a snapshot is measured, and whether it can be limited: what the root's
/// file system offers, chosen when a snapshotter opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum QuotaMode {
    /// No per-directory accounting: usage walks the layer, sizes cannot be limited.
    #[default]
    Walk,
    /// btrfs with quotas enabled: every Active snapshot's directory is a subvolume, its
    /// qgroup holds usage and limit.
    Btrfs,
    /// XFS mounted with `prjquota`: every Active snapshot's directory has its own project.
    XfsProject,
    /// ext4 with the `project` and `quota` features mounted with `prjquota`: as XFS.
    Ext4Project,
}

impl QuotaMode {
    /// The name used in logs, the CLI and the root's `quota` file.
    pub fn name(self) -> &'static str {
        match self {
            QuotaMode::Walk => "walk",
            QuotaMode::Btrfs => "btrfs",
            QuotaMode::XfsProject => "xfs-project",
            QuotaMode::Ext4Project => "ext4-project",
        }
    }

    /// The mode named `name` (see [`QuotaMode::name`]).
    pub fn from_name(name: &str) -> Option<QuotaMode> {
        [
            QuotaMode::Walk,
            QuotaMode::Btrfs,
            QuotaMode::XfsProject,
            QuotaMode::Ext4Project,
        ]
        .into_iter()
        .find(|m| m.name() == name)
    }

    /// Whether the mode measures and limits through the file system's quotas.
    pub fn has_quotas(self) -> bool {
        self != QuotaMode::Walk
    }

    /// Whether the mode uses project ids.
    pub fn uses_projects(self) -> bool {
        matches!(self, QuotaMode::XfsProject | QuotaMode::Ext4Project)
    }
}

impl fmt::Display for QuotaMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The accounting unit of one snapshot directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QuotaUnit {
    /// The directory is a btrfs subvolume; its qgroup is `0/<subvolume id>`.
    Subvolume,
    /// The directory and everything below it belong to this project id.
    Project(u32),
}

/// What a file system's quota reports of one unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QuotaUsage {
    /// Bytes charged to the unit (btrfs: referenced bytes of the qgroup, data and the
    /// subvolume's metadata; projects: `dqb_curspace`).
    pub bytes: u64,
    /// Inodes charged to the unit, where the file system counts them (projects:
    /// `dqb_curinodes`; btrfs qgroups count none).
    pub inodes: Option<u64>,
    /// The hard limit in bytes, if one is set.
    pub limit: Option<u64>,
}

/// What the file system of the directory `root` offers (see [`QuotaMode`]): its `statfs`
/// type, then whether quotas are on (btrfs: the quota tree's status item; XFS and ext4:
/// `Q_GETINFO` for `PRJQUOTA` on the mount's device).
pub(super) fn probe(root: &Path) -> io::Result<QuotaMode> {
    use nix::sys::statfs::{statfs, BTRFS_SUPER_MAGIC, EXT4_SUPER_MAGIC, XFS_SUPER_MAGIC};
    let kind = statfs(root).map_err(io::Error::from)?.filesystem_type();
    let mode = if kind == BTRFS_SUPER_MAGIC {
        if btrfs::quotas_enabled(root)? {
            QuotaMode::Btrfs
        } else {
            QuotaMode::Walk
        }
    } else if kind == XFS_SUPER_MAGIC || kind == EXT4_SUPER_MAGIC {
        let (device, _) = project::device_of(root)?;
        match project::accounting_on(&device)? {
            true if kind == XFS_SUPER_MAGIC => QuotaMode::XfsProject,
            true => QuotaMode::Ext4Project,
            false => QuotaMode::Walk,
        }
    } else {
        QuotaMode::Walk
    };
    Ok(mode)
}

/// Creates the directory `path` as a unit of `mode`: a subvolume for btrfs, its qgroup
/// limited to `limit`; a plain directory otherwise (a project and its limit are given with
/// [`assign_project`] and [`set_limit`]).
pub(super) fn create_dir(path: &Path, mode: QuotaMode, limit: Option<u64>) -> io::Result<()> {
    match mode {
        QuotaMode::Btrfs => btrfs::create_subvolume(path, limit),
        _ => std::fs::create_dir(path),
    }
}

/// Gives the directory `dir` the project `id`, inherited by what is created below it.
pub(super) fn assign_project(dir: &Path, id: u32) -> io::Result<()> {
    project::assign(dir, id)
}

/// Sets (`Some`) or removes (`None`) the hard limit in bytes of `unit`, whose directory is
/// `dir`.
pub(super) fn set_limit(dir: &Path, unit: QuotaUnit, limit: Option<u64>) -> io::Result<()> {
    match unit {
        QuotaUnit::Subvolume => btrfs::set_limit(dir, limit),
        QuotaUnit::Project(id) => project::set_limit(&project::device_of(dir)?.0, id, limit),
    }
}

/// The usage of `unit`, whose directory is `dir`; `None` when `dir` is not that unit (a
/// directory made before quotas were on).
pub(super) fn usage(dir: &Path, unit: QuotaUnit) -> io::Result<Option<QuotaUsage>> {
    match unit {
        QuotaUnit::Subvolume => btrfs::usage(dir),
        QuotaUnit::Project(id) => {
            if project::project_of(dir)? != Some(id) {
                return Ok(None);
            }
            project::usage(&project::device_of(dir)?.0, id).map(Some)
        }
    }
}

/// The project ids from `from` on with a hard limit on the file system of `dir` (see
/// `project::limited`).
pub(super) fn limited_projects(dir: &Path, from: u32) -> io::Result<Vec<u32>> {
    project::limited(&project::device_of(dir)?.0, from)
}

/// Deletes `path` and everything in it; a btrfs subvolume with the destroy ioctl (and its
/// qgroup), anything else as `rm -r`.
pub(super) fn remove_dir_all(path: &Path) -> io::Result<()> {
    if btrfs::is_subvolume(path)? {
        btrfs::destroy_subvolume(path)
    } else {
        std::fs::remove_dir_all(path)
    }
}
