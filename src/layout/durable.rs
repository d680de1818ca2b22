//! Making a layer's data durable before its Commit is acknowledged.
//!
//! One `syncfs(2)` on the layer's directory, rather than an fsync of every file and
//! directory in it. Measured on this project's machine (ext4 on a virtio disk, 2 cores),
//! 10 directories of small files (2 000 bytes each), best and worst of 6 runs:
//!
//! | files | fsync of each file and directory | one syncfs |
//! |---|---|---|
//! | 1 000 | 167–205 ms | 17–25 ms |
//! | 10 000 | 1.55–1.88 s | 139–154 ms |
//!
//! syncfs writes the dirty data of the whole file system in one journal commit, where each
//! fsync forces a commit of its own; in ext4's default `data=ordered` mode every such commit
//! already writes out the other files' dirty data too, so fsyncing file by file saves no
//! work on a busy file system either. Since Linux 5.8 syncfs reports writeback errors of the
//! file system, so a failed write is not silently dropped. The price: a Commit also waits
//! for the unrelated dirty data on the same file system.

use super::Layout;
use crate::error::{Error, Result};
use crate::fs::{FileSystem, RealFs};
use std::path::Path;

impl Layout {
    /// Makes snapshot `id`'s `fs` and everything in it durable (see [`make_durable`]).
    pub fn make_durable(&self, id: u64) -> Result<()> {
        durable_on(&*self.fs, &self.fs_path(id))
    }
}

/// Makes everything under `dir` durable, with one syncfs of its file system (see the
/// module docs for why). Changes nothing: modes and owners stay as they are.
pub fn make_durable(dir: &Path) -> Result<()> {
    durable_on(&RealFs, dir)
}

/// [`make_durable`] on the file system `fs`.
fn durable_on(fs: &dyn FileSystem, dir: &Path) -> Result<()> {
    fs.syncfs(dir).map_err(|e| {
        Error::io(
            format!("failed to sync the file system of {}", dir.display()),
            e,
        )
    })
}
