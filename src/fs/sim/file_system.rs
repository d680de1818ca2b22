//! [`SimFs`] as a [`FileSystem`], and its open files.

use super::disk::{errno, injected, Content, Disk, MAX_HOPS};
use super::{Fault, SimFs};
use crate::error::{Error, Result};
use crate::fs::{
    DirLock, FileHandle, FileStat, FileSystem, OverlayFeatures, QuotaMode, QuotaUnit, QuotaUsage,
};
use crate::sync::Mutex;
use nix::libc;
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

impl FileSystem for SimFs {
    fn create_dir(&self, path: &Path) -> io::Result<()> {
        let mut disk = self.disk.lock();
        disk.call("create_dir", path)?;
        let (dir, name) = disk.parent(path)?;
        disk.create(dir, name, Content::Dir(BTreeMap::new()), 0o755)
    }

    fn create_dir_all(&self, path: &Path, mode: u32) -> io::Result<()> {
        let mut disk = self.disk.lock();
        disk.call("create_dir_all", path)?;
        disk.create_dir_all(path, mode & !0o022)
    }

    fn canonicalize(&self, path: &Path) -> io::Result<PathBuf> {
        let mut disk = self.disk.lock();
        disk.call("canonicalize", path)?;
        Ok(disk
            .resolve(path, true)?
            .into_iter()
            .map(|(name, _)| name)
            .collect())
    }

    fn set_mode(&self, path: &Path, mode: u32) -> io::Result<()> {
        let mut disk = self.disk.lock();
        disk.call("set_mode", path)?;
        let ino = disk.lookup(path, true)?;
        disk.node_mut(ino).mode = mode & 0o7777;
        Ok(())
    }

    fn lchown(&self, path: &Path, uid: u32, gid: u32) -> io::Result<()> {
        let mut disk = self.disk.lock();
        disk.call("lchown", path)?;
        let ino = disk.lookup(path, false)?;
        let node = disk.node_mut(ino);
        (node.uid, node.gid) = (uid, gid);
        Ok(())
    }

    fn metadata(&self, path: &Path) -> io::Result<FileStat> {
        let mut disk = self.disk.lock();
        disk.call("metadata", path)?;
        let ino = disk.lookup(path, true)?;
        Ok(disk.stat(ino))
    }

    fn symlink_metadata(&self, path: &Path) -> io::Result<FileStat> {
        let mut disk = self.disk.lock();
        disk.call("symlink_metadata", path)?;
        let ino = disk.lookup(path, false)?;
        Ok(disk.stat(ino))
    }

    fn read_dir(&self, path: &Path) -> io::Result<Vec<OsString>> {
        let mut disk = self.disk.lock();
        disk.call("read_dir", path)?;
        let ino = disk.lookup(path, true)?;
        Ok(disk.entries(ino)?.keys().cloned().collect())
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut disk = self.disk.lock();
        disk.call("rename", from)?;
        // Both parents resolve before the source is looked up, as in Linux.
        let (from_dir, from_name) = disk.parent(from)?;
        let (to_dir, to_name) = disk.parent(to)?;
        let ino = *disk
            .entries(from_dir)?
            .get(&from_name)
            .ok_or(errno(libc::ENOENT))?;
        let moving_dir = matches!(disk.node(ino).content, Content::Dir(_));
        let to_chain = disk.resolve(to.parent().ok_or(errno(libc::EINVAL))?, true)?;
        if moving_dir && to_chain.iter().any(|&(_, i)| i == ino) {
            // A directory cannot move into itself.
            return Err(errno(libc::EINVAL));
        }
        if let Some(&existing) = disk.entries(to_dir)?.get(&to_name) {
            let from_chain = disk.resolve(from.parent().ok_or(errno(libc::EINVAL))?, true)?;
            if from_chain.iter().any(|&(_, i)| i == existing) {
                // The target holds the source: it is not empty.
                return Err(errno(libc::ENOTEMPTY));
            }
            if existing == ino {
                return Ok(());
            }
            match (&disk.node(existing).content, moving_dir) {
                (Content::Dir(entries), true) if !entries.is_empty() => {
                    return Err(errno(libc::ENOTEMPTY))
                }
                (Content::Dir(_), true) => {}
                (Content::Dir(_), false) => return Err(errno(libc::EISDIR)),
                (_, true) => return Err(errno(libc::ENOTDIR)),
                (_, false) => {}
            }
        }
        disk.check_move(ino, to_dir)?;
        disk.entries_mut(from_dir)?.remove(&from_name);
        disk.entries_mut(to_dir)?.insert(to_name, ino);
        Ok(())
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let mut disk = self.disk.lock();
        disk.call("remove_file", path)?;
        let (dir, name) = disk.parent(path)?;
        let ino = *disk.entries(dir)?.get(&name).ok_or(errno(libc::ENOENT))?;
        if matches!(disk.node(ino).content, Content::Dir(_)) {
            return Err(errno(libc::EISDIR));
        }
        disk.entries_mut(dir)?.remove(&name);
        Ok(())
    }

    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        let mut disk = self.disk.lock();
        disk.call("remove_dir_all", path)?;
        let (dir, name) = disk.parent(path)?;
        let ino = *disk.entries(dir)?.get(&name).ok_or(errno(libc::ENOENT))?;
        match disk.node(ino).content {
            Content::File(_) => return Err(errno(libc::ENOTDIR)),
            // Its entries stay in the unlinked tree: nothing reaches them now, and a power
            // loss before the removal is durable brings back their durable versions.
            Content::Dir(_) => disk.forget_unit(ino),
            Content::Symlink(_) => {}
        }
        disk.entries_mut(dir)?.remove(&name);
        Ok(())
    }

    fn symlink(&self, target: &Path, link: &Path) -> io::Result<()> {
        let mut disk = self.disk.lock();
        disk.call("symlink", link)?;
        let (dir, name) = disk.parent(link)?;
        disk.create(dir, name, Content::Symlink(target.to_owned()), 0o777)
    }

    fn read_link(&self, path: &Path) -> io::Result<PathBuf> {
        let mut disk = self.disk.lock();
        disk.call("read_link", path)?;
        let ino = disk.lookup(path, false)?;
        match &disk.node(ino).content {
            Content::Symlink(target) => Ok(target.clone()),
            _ => Err(errno(libc::EINVAL)),
        }
    }

    fn create_file(&self, path: &Path) -> io::Result<Box<dyn FileHandle>> {
        let mut disk = self.disk.lock();
        disk.call("create_file", path)?;
        // A dangling symbolic link at `path` is followed, and its target created, as by
        // open(2) with O_CREAT.
        let mut target = path.to_owned();
        for hop in 0.. {
            match disk.file_mut(&target) {
                Ok(data) => {
                    data.clear();
                    let ino = disk.lookup(&target, true)?;
                    let inode = disk.inodes.get_mut(&ino).expect("a linked inode");
                    inode.unsynced_write = None;
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
            let (dir, name) = disk.parent(&target)?;
            let content = disk
                .entries(dir)?
                .get(&name)
                .map(|&ino| &disk.node(ino).content);
            match content {
                Some(Content::Symlink(to)) if hop < MAX_HOPS => {
                    target = target.with_file_name(to);
                }
                Some(_) => return Err(errno(libc::ELOOP)),
                None => {
                    disk.create(dir, name, Content::File(Vec::new()), 0o644)?;
                    break;
                }
            }
        }
        let ino = disk.lookup(path, true)?;
        Ok(self.handle(path, ino))
    }

    fn open_file(&self, path: &Path) -> io::Result<Box<dyn FileHandle>> {
        let mut disk = self.disk.lock();
        disk.call("open_file", path)?;
        disk.file_mut(path)?;
        let ino = disk.lookup(path, true)?;
        Ok(self.handle(path, ino))
    }

    fn read_file(&self, path: &Path) -> io::Result<Vec<u8>> {
        let mut disk = self.disk.lock();
        disk.call("read_file", path)?;
        disk.file_mut(path).map(|data| data.clone())
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        let mut disk = self.disk.lock();
        disk.call("sync_dir", path)?;
        let ino = disk.lookup(path, true)?;
        disk.sync(ino);
        disk.quotas.commit();
        Ok(())
    }

    fn syncfs(&self, path: &Path) -> io::Result<()> {
        let mut disk = self.disk.lock();
        disk.call("syncfs", path)?;
        disk.lookup(path, true)?;
        for inode in disk.inodes.values_mut() {
            inode.durable = inode.now.clone();
            inode.unsynced_write = None;
        }
        disk.quotas.commit();
        Ok(())
    }

    fn mount_points(&self) -> Result<Vec<PathBuf>> {
        let mut disk = self.disk.lock();
        disk.call("mount_points", Path::new("/"))
            .map_err(|e| Error::io("cannot list the mount points", e))?;
        Ok(Vec::new())
    }

    fn supports_d_type(&self, dir: &Path) -> Result<bool> {
        let mut disk = self.disk.lock();
        disk.call("supports_d_type", dir)
            .map_err(|e| Error::io(format!("cannot read {} to check d_type", dir.display()), e))?;
        Ok(true)
    }

    fn overlay_features(&self, _root: &Path) -> OverlayFeatures {
        OverlayFeatures::default()
    }

    fn lock(&self, dir: &Path) -> Result<Option<DirLock>> {
        let mut disk = self.disk.lock();
        disk.call("lock", dir)
            .map_err(|e| Error::io(format!("locking {}", dir.display()), e))?;
        disk.lookup(dir, true)
            .map_err(|e| Error::io(format!("locking {}", dir.display()), e))?;
        Ok(None)
    }

    // Quotas: see quota.rs. Without them the disk reports the walk and refuses the calls.
    fn quota_mode(&self, _root: &Path) -> io::Result<QuotaMode> {
        Ok(self.disk.lock().quotas.mode)
    }

    fn create_quota_dir(&self, path: &Path, mode: QuotaMode, limit: Option<u64>) -> io::Result<()> {
        self.with_quota_mode(path)?;
        self.create_unit_dir(path, mode, limit)
    }

    fn assign_project(&self, dir: &Path, id: u32) -> io::Result<()> {
        self.with_quota_mode(dir)?;
        self.set_project(dir, id)
    }

    fn set_quota_limit(&self, dir: &Path, unit: QuotaUnit, limit: Option<u64>) -> io::Result<()> {
        self.with_quota_mode(dir)?;
        self.set_limit(dir, unit, limit)
    }

    fn quota_usage(&self, dir: &Path, unit: QuotaUnit) -> io::Result<Option<QuotaUsage>> {
        self.with_quota_mode(dir)?;
        self.unit_usage(dir, unit)
    }

    fn limited_projects(&self, dir: &Path, from: u32) -> io::Result<Vec<u32>> {
        self.with_quota_mode(dir)?;
        self.projects_with_limits(dir, from)
    }
}

impl SimFs {
    /// Refuses a quota call on a disk made without quotas ([`SimFs::new`]).
    fn with_quota_mode(&self, path: &Path) -> io::Result<()> {
        if self.disk.lock().quotas.mode.has_quotas() {
            return Ok(());
        }
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!("{}: the simulated disk has no quotas", path.display()),
        ))
    }

    fn handle(&self, path: &Path, ino: u64) -> Box<dyn FileHandle> {
        Box::new(SimFile {
            disk: Arc::clone(&self.disk),
            ino,
            path: path.to_owned(),
        })
    }
}

/// An open file of a [`SimFs`]: its inode (on the disk it was opened on, so a handle of a
/// process that crashed writes to nothing the next process sees).
#[derive(Debug)]
struct SimFile {
    disk: Arc<Mutex<Disk>>,
    ino: u64,
    /// The path it was opened by, for the trace and errors.
    path: PathBuf,
}

impl SimFile {
    fn data<'a>(&self, disk: &'a mut Disk) -> &'a mut Vec<u8> {
        match &mut disk.node_mut(self.ino).content {
            Content::File(data) => data,
            _ => unreachable!("a handle is opened on a regular file, and inodes keep their type"),
        }
    }
}

impl FileHandle for SimFile {
    fn write_at(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        let mut disk = self.disk.lock();
        let fault = disk.write_call("write_at", &self.path)?;
        let landed: Vec<u8> = match fault {
            None => data.to_vec(),
            Some(fault @ (Fault::Fail | Fault::Errno(_))) => {
                return Err(injected(fault, "write_at", &self.path))
            }
            Some(Fault::Tear { keep }) => data[..keep.min(data.len())].to_vec(),
            Some(Fault::Garble { keep }) => {
                let keep = keep.min(data.len());
                let garbage = data[keep..].iter().map(|b| !b);
                data[..keep].iter().copied().chain(garbage).collect()
            }
        };
        let start = usize::try_from(offset).map_err(|_| errno(libc::EFBIG))?;
        if landed.is_empty() {
            // Writing nothing does not extend the file, as pwrite(2).
            return match fault {
                None => Ok(()),
                Some(fault) => Err(injected(fault, "write_at", &self.path)),
            };
        }
        let end = start + landed.len();
        let len = self.data(&mut disk).len().max(end);
        disk.charge(self.ino, len)?;
        let file = self.data(&mut disk);
        file.resize(file.len().max(end), 0);
        file[start..end].copy_from_slice(&landed);
        disk.inodes
            .get_mut(&self.ino)
            .expect("an open inode")
            .unsynced_write = Some((start, landed));
        match fault {
            None => Ok(()),
            Some(fault) => Err(injected(fault, "write_at", &self.path)),
        }
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        let mut disk = self.disk.lock();
        disk.call("set_len", &self.path)?;
        let len = usize::try_from(len).map_err(|_| errno(libc::EFBIG))?;
        disk.charge(self.ino, len)?;
        self.data(&mut disk).resize(len, 0);
        disk.inodes
            .get_mut(&self.ino)
            .expect("an open inode")
            .unsynced_write = None;
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        let mut disk = self.disk.lock();
        disk.call("sync_data", &self.path)?;
        disk.sync_data(self.ino);
        Ok(())
    }
}
