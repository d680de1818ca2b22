//! Disk usage of a layer, as containerd's `fs.DiskUsage` (continuity `du_unix.go`) counts
//! it: allocated blocks × 512 and inodes, each hard-linked inode once, the directory itself
//! included, symbolic links not followed. Unlike containerd, the walk stays on the file
//! system of the directory (like `du -x`): anything mounted inside is neither counted nor
//! entered. Entries deleted while the walk runs are skipped, since an Active layer may be
//! changing under it.

use super::Layout;
use crate::core::Usage;
use crate::error::{Error, Result};
use crate::fs::{FileKind, FileStat, FileSystem, RealFs};
use std::collections::HashSet;
use std::io;
use std::path::Path;

impl Layout {
    /// The usage of snapshot `id`: one query of its quota when its directory is its quota
    /// unit (see quota.rs: the whole directory, `work` included), else the walk of its `fs`
    /// (see the module docs).
    pub fn usage(&self, id: u64) -> Result<Usage> {
        match self.usage_from_quota(id)? {
            Some(usage) => Ok(usage),
            None => usage_on(&*self.fs, &self.fs_path(id)),
        }
    }
}

/// The usage of the tree at `dir` (see the module docs).
pub fn disk_usage(dir: &Path) -> Result<Usage> {
    usage_on(&RealFs, dir)
}

/// [`disk_usage`] on the file system `fs`.
fn usage_on(fs: &dyn FileSystem, dir: &Path) -> Result<Usage> {
    let context = |p: &Path| format!("failed to compute disk usage of {}", p.display());
    let top = fs
        .symlink_metadata(dir)
        .map_err(|e| Error::io(context(dir), e))?;
    let device = top.dev;
    let mut total = Total::default();
    total.add(&top);
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        let names = match fs.read_dir(&current) {
            Ok(names) => names,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::io(context(&current), e)),
        };
        for name in names {
            let path = current.join(name);
            let md = match fs.symlink_metadata(&path) {
                Ok(md) => md,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::io(context(&path), e)),
            };
            if md.dev != device {
                continue;
            }
            total.add(&md);
            if md.kind == FileKind::Dir {
                pending.push(path);
            }
        }
    }
    Ok(Usage {
        size: total.size,
        inodes: total.inodes,
    })
}

/// Running totals of a walk.
#[derive(Default)]
struct Total {
    size: i64,
    inodes: i64,
    /// (device, inode) of the files with several links seen so far; files with one link
    /// cannot be met twice, so they are not remembered.
    linked: HashSet<(u64, u64)>,
}

impl Total {
    fn add(&mut self, md: &FileStat) {
        let seen =
            md.kind != FileKind::Dir && md.nlink > 1 && !self.linked.insert((md.dev, md.ino));
        if !seen {
            let bytes = i64::try_from(md.blocks.saturating_mul(512)).unwrap_or(i64::MAX);
            self.inodes += 1;
            self.size = self.size.saturating_add(bytes);
        }
    }
}
