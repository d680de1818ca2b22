//! [`DirBackend`]: the journal's [`Backend`] over a directory of any
//! [`FileSystem`], so that the journal and the layout can share
//! one file system, and with [`SimFs`](crate::layout::SimFs) one call counter and one crash.
//!
//! Every call names its file by path (no cached descriptors), so on the host's file system
//! it costs an `open` per call: [`FsBackend`](super::FsBackend) remains the production
//! backend of [`Snapshotter::open`](crate::Snapshotter::open).

use super::backend::Backend;
use super::lock::DirLock;
use crate::error::{Error, Result};
use crate::layout::FileSystem;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Files in directory `dir` of a [`FileSystem`], locked (where the file system has locks)
/// for as long as the backend lives.
#[derive(Debug)]
pub struct DirBackend {
    fs: Arc<dyn FileSystem>,
    dir: PathBuf,
    _lock: Option<DirLock>,
}

impl DirBackend {
    /// Opens the directory `dir` of `fs` as [`FsBackend::open`](super::FsBackend::open)
    /// does: creates it if missing, makes its name durable (`fsync` of its parent, on every
    /// open: see there why), and locks it with [`FileSystem::lock`].
    pub fn open(fs: Arc<dyn FileSystem>, dir: impl AsRef<Path>) -> Result<DirBackend> {
        let dir = dir.as_ref().to_path_buf();
        let missing =
            matches!(fs.symlink_metadata(&dir), Err(e) if e.kind() == io::ErrorKind::NotFound);
        if missing {
            fs.create_dir_all(&dir, 0o777).map_err(|e| {
                Error::io(format!("creating journal directory {}", dir.display()), e)
            })?;
        }
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            fs.sync_dir(parent)
                .map_err(|e| Error::io(format!("syncing directory {}", parent.display()), e))?;
        }
        let lock = fs.lock(&dir)?;
        Ok(DirBackend {
            fs,
            dir,
            _lock: lock,
        })
    }

    fn at(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

impl Backend for DirBackend {
    fn create(&self, name: &str) -> io::Result<()> {
        self.fs.create_file(&self.at(name))
    }

    fn read(&self, name: &str) -> io::Result<Vec<u8>> {
        self.fs.read_file(&self.at(name))
    }

    fn write(&self, name: &str, offset: u64, data: &[u8]) -> io::Result<()> {
        self.fs.write_at(&self.at(name), offset, data)
    }

    fn set_len(&self, name: &str, len: u64) -> io::Result<()> {
        self.fs.set_len(&self.at(name), len)
    }

    fn sync_data(&self, name: &str) -> io::Result<()> {
        self.fs.sync_data(&self.at(name))
    }

    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        self.fs.rename(&self.at(from), &self.at(to))
    }

    fn remove(&self, name: &str) -> io::Result<()> {
        self.fs.remove_file(&self.at(name))
    }

    fn list(&self) -> io::Result<Vec<String>> {
        Ok(self
            .fs
            .read_dir(&self.dir)?
            .into_iter()
            .filter_map(|name| name.into_string().ok())
            .collect())
    }

    fn sync_dir(&self) -> io::Result<()> {
        self.fs.sync_dir(&self.dir)
    }

    fn path(&self, name: &str) -> String {
        self.at(name).display().to_string()
    }
}
