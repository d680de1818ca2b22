//! Quotas on the simulated disk: a [`SimFs::with_quotas`] disk reports a quota mode and
//! implements the quota calls of the seam, so that the crash explorer runs the quota paths.
//!
//! Every inode is charged to at most one *unit* ([`Node::unit`](super::disk::Node)): in the
//! btrfs-like mode the subvolume holding it (named by the subvolume's inode number), in
//! the project-like modes its project id. A new inode joins the unit of its directory (a
//! subvolume's contents, or a project inherited with `FS_XFLAG_PROJINHERIT`).
//!
//! - **Usage** is computed from the current tree: over every inode reachable from `/` in
//!   the unit, allocated bytes as [`FileSystem::metadata`](crate::fs::FileSystem) reports
//!   them (`blocks × 512`: the number the walk of `layout/usage.rs` adds up), and inodes
//!   for projects (btrfs qgroups count none). btrfs reports the current numbers, not those
//!   of the last transaction (Commit syncs before it measures anyway).
//! - **Limits**: a write or `set_len` that grows a file past its unit's hard limit fails
//!   and lands nothing: `EDQUOT` (btrfs, ext4), `ENOSPC` for XFS (what XFS returns for a
//!   project over its hard limit, measured in the VM rig).
//! - **Renames**: a rename of anything but a subvolume into a directory of another unit
//!   fails with `EXDEV`, as btrfs does across subvolumes and XFS / ext4 do into a
//!   directory that passes on another project.
//!
//! Durability (what a power loss keeps, next to the rules of the module documentation):
//! - btrfs **subvolume creation** is a directory creation: its name in its parent is
//!   durable after an fsync of the parent (or a `syncfs`), and a crash before that loses
//!   the subvolume with everything in it. It commits no transaction (measured on this
//!   kernel with the `btrfs_transaction_commit` trace event: docs/bench.md), so it makes
//!   nothing else durable either.
//! - **Subvolume destruction** is an unlink of the directory (its name durable after an
//!   fsync of the parent), the qgroup and its limit going with it: a power loss that brings
//!   the name back brings back the subvolume with its durable limit.
//! - A **project id** set by `FS_IOC_FSSETXATTR` is inode metadata: durable after an fsync
//!   of that directory or a `syncfs`, as a mode is.
//! - A **limit** (qgroup limit item, or the project's quota record) is durable at the next
//!   transaction or journal commit: `syncfs`, or an fsync of a
//!   directory (ext4 commits its journal, XFS forces its log, which holds the quota
//!   change made before; btrfs falls back to a full commit for a directory whose
//!   subvolume entry was renamed). `fdatasync` of a file does not count (btrfs writes only
//!   its log tree). A power loss right after a commit of the file system's own
//!   ([`SimFs::crash_keeping_names`]) keeps every limit as it was.

use super::disk::{errno, Content, Disk, ROOT};
use super::SimFs;
use crate::fs::{QuotaMode, QuotaUnit, QuotaUsage};
use crate::sync::Mutex;
use nix::libc;
use std::collections::BTreeMap;
use std::io;
use std::path::Path;
use std::sync::Arc;

impl SimFs {
    /// A file system holding only an empty `/` (as [`SimFs::new`]) that reports `mode` and
    /// implements its quota calls (see the module documentation of quota.rs).
    pub fn with_quotas(mode: QuotaMode) -> SimFs {
        let mut disk = Disk::default();
        disk.quotas.mode = mode;
        SimFs {
            disk: Arc::new(Mutex::new(disk)),
        }
    }

    /// The current hard limit of every unit that has one, by unit: a subvolume's inode
    /// number, or a project id. Counts no call.
    pub fn quota_limits(&self) -> BTreeMap<u64, u64> {
        self.disk.lock().quotas.limits()
    }

    /// `create_quota_dir`: a subvolume in the btrfs-like mode, limited to `limit` (a limit
    /// like any other: durable at the next commit), else a plain directory.
    pub(super) fn create_unit_dir(
        &self,
        path: &Path,
        mode: QuotaMode,
        limit: Option<u64>,
    ) -> io::Result<()> {
        let mut disk = self.disk.lock();
        disk.call("create_quota_dir", path)?;
        if mode != QuotaMode::Btrfs {
            let (dir, name) = disk.parent(path)?;
            return disk.create(dir, name, Content::Dir(BTreeMap::new()), 0o755);
        }
        if disk.quotas.mode != QuotaMode::Btrfs {
            return Err(errno(libc::ENOTTY));
        }
        let (dir, name) = disk.parent(path)?;
        disk.create(dir, name.clone(), Content::Dir(BTreeMap::new()), 0o755)?;
        let ino = disk.entries(dir)?[&name];
        // A subvolume is its own unit for as long as its inode lives; its name in the
        // parent is durable as any new directory's is (no transaction commit).
        let inode = disk.inodes.get_mut(&ino).expect("just created");
        inode.now.unit = Some(ino);
        inode.durable.unit = Some(ino);
        if let Some(bytes) = limit {
            disk.quotas.now.insert(ino, bytes);
        }
        Ok(())
    }

    /// `assign_project`: the directory's project id, inherited by what is created in it.
    pub(super) fn set_project(&self, dir: &Path, id: u32) -> io::Result<()> {
        let mut disk = self.disk.lock();
        disk.call("assign_project", dir)?;
        if !disk.quotas.mode.uses_projects() {
            return Err(errno(libc::ENOTTY));
        }
        let ino = disk.lookup(dir, true)?;
        disk.entries(ino)?;
        disk.node_mut(ino).unit = Some(u64::from(id));
        Ok(())
    }

    /// `set_quota_limit`. A subvolume limit on a directory that is not a subvolume is
    /// refused (`EINVAL`), where the kernel would limit the subvolume holding it.
    pub(super) fn set_limit(
        &self,
        dir: &Path,
        unit: QuotaUnit,
        limit: Option<u64>,
    ) -> io::Result<()> {
        let mut disk = self.disk.lock();
        disk.call("set_quota_limit", dir)?;
        let ino = disk.lookup(dir, true)?;
        let key = disk.unit_key(ino, unit)?.ok_or(errno(libc::EINVAL))?;
        match limit {
            Some(bytes) => disk.quotas.now.insert(key, bytes),
            None => disk.quotas.now.remove(&key),
        };
        Ok(())
    }

    /// `quota_usage`: `None` when `dir` is not the unit.
    pub(super) fn unit_usage(&self, dir: &Path, unit: QuotaUnit) -> io::Result<Option<QuotaUsage>> {
        let mut disk = self.disk.lock();
        disk.call("quota_usage", dir)?;
        let ino = disk.lookup(dir, true)?;
        let Some(key) = disk.unit_key(ino, unit)? else {
            return Ok(None);
        };
        if disk.node(ino).unit != Some(key) {
            return Ok(None);
        }
        let (bytes, inodes) = disk.usage(key);
        Ok(Some(QuotaUsage {
            bytes,
            inodes: disk.quotas.mode.uses_projects().then_some(inodes),
            limit: disk.quotas.now.get(&key).copied(),
        }))
    }
}

impl SimFs {
    /// `limited_projects`: the project ids from `from` on with a current limit.
    pub(super) fn projects_with_limits(&self, dir: &Path, from: u32) -> io::Result<Vec<u32>> {
        let mut disk = self.disk.lock();
        disk.call("limited_projects", dir)?;
        disk.lookup(dir, true)?;
        if !disk.quotas.mode.uses_projects() {
            return Err(errno(libc::ENOTTY));
        }
        Ok(disk
            .quotas
            .now
            .range(u64::from(from)..)
            .filter_map(|(&id, _)| u32::try_from(id).ok())
            .collect())
    }
}

impl Disk {
    /// The key of `unit` as seen from the directory `ino`: a subvolume's inode number
    /// (`None` when `ino` is not a subvolume) or a project id. `ENOTTY` when the disk's
    /// mode has no such unit.
    fn unit_key(&self, ino: u64, unit: QuotaUnit) -> io::Result<Option<u64>> {
        match (self.quotas.mode, unit) {
            (QuotaMode::Btrfs, QuotaUnit::Subvolume) => {
                Ok((self.node(ino).unit == Some(ino)).then_some(ino))
            }
            (mode, QuotaUnit::Project(id)) if mode.uses_projects() => Ok(Some(u64::from(id))),
            _ => Err(errno(libc::ENOTTY)),
        }
    }

    /// Allocated bytes and inodes charged to the unit `key`, over the current tree.
    fn usage(&self, key: u64) -> (u64, u64) {
        let (mut bytes, mut inodes) = (0, 0);
        let mut todo = vec![ROOT];
        while let Some(ino) = todo.pop() {
            let node = self.node(ino);
            if let Content::Dir(entries) = &node.content {
                todo.extend(entries.values().copied());
            }
            if node.unit == Some(key) {
                bytes += self.stat(ino).blocks * 512;
                inodes += 1;
            }
        }
        (bytes, inodes)
    }

    /// Fails (`EDQUOT`, `ENOSPC` on XFS) when growing the file `ino` to `len` bytes takes
    /// its unit past its hard limit.
    pub(super) fn charge(&self, ino: u64, len: usize) -> io::Result<()> {
        let node = self.node(ino);
        let Some(limit) = node.unit.and_then(|key| self.quotas.now.get(&key)) else {
            return Ok(());
        };
        let had = self.stat(ino).blocks * 512;
        let will = (len as u64).div_ceil(4096) * 4096;
        let (used, _) = self.usage(node.unit.expect("a unit with a limit"));
        if will > had && used - had.min(used) + will > *limit {
            let code = match self.quotas.mode {
                QuotaMode::XfsProject => libc::ENOSPC,
                _ => libc::EDQUOT,
            };
            return Err(errno(code));
        }
        Ok(())
    }

    /// `EXDEV` when `ino` may not move into the directory `to`: it is not a subvolume and
    /// `to` is in another unit (btrfs), or `to` passes on a project `ino` is not in.
    pub(super) fn check_move(&self, ino: u64, to: u64) -> io::Result<()> {
        let (unit, target) = (self.node(ino).unit, self.node(to).unit);
        let crosses = match self.quotas.mode {
            QuotaMode::Btrfs => unit != Some(ino) && unit != target,
            // Projects; without quotas no inode has a unit, so nothing crosses.
            _ => target.is_some() && unit != target,
        };
        if crosses {
            return Err(errno(libc::EXDEV));
        }
        Ok(())
    }

    /// Destroying the directory `ino`: a subvolume's qgroup (and limit) goes with it.
    pub(super) fn forget_unit(&mut self, ino: u64) {
        if self.quotas.mode == QuotaMode::Btrfs && self.node(ino).unit == Some(ino) {
            self.quotas.now.remove(&ino);
        }
    }
}
