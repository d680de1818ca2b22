//! [`Store`]: the journal's files, in one directory of a [`FileSystem`].
//!
//! A thin adapter over the file-system seam: files named by plain names (no `/`) in one
//! directory, whole-file reads, positioned writes, and the two syncs that make data and
//! names durable (see the durability contract in [`crate::fs`]). Open files are kept, so an
//! append is one positioned write and one `fdatasync` on the host.

use crate::error::{Error, Result};
use crate::fs::{DirLock, FileHandle, FileSystem, RealFs};
use crate::sync::Mutex;
use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The journal's directory, locked (where the file system has locks) for as long as the
/// store lives.
#[derive(Debug)]
pub struct Store {
    fs: Arc<dyn FileSystem>,
    dir: PathBuf,
    /// Files opened so far, by name. Invariant: an entry is the file now at that name.
    files: Mutex<HashMap<String, Arc<dyn FileHandle>>>,
    _lock: Option<DirLock>,
}

impl Store {
    /// Opens the directory `dir` of the host's file system; see [`Store::open`].
    pub fn open_dir(dir: impl AsRef<Path>) -> Result<Store> {
        Store::open(Arc::new(RealFs), dir)
    }

    /// Opens the directory `dir` of `fs`, creating it if missing, makes its name durable,
    /// and locks it against other processes ([`FileSystem::lock`]): fails naming the
    /// holder's pid if it is locked already.
    ///
    /// The name is made durable (an fsync of the parent) on every open, not only when the
    /// directory is created here: an earlier process may have created it and died before
    /// that fsync, and records acknowledged now would then go with the directory at a
    /// power loss (found by `tests/crash_points.rs`).
    pub fn open(fs: Arc<dyn FileSystem>, dir: impl AsRef<Path>) -> Result<Store> {
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
        Ok(Store {
            fs,
            dir,
            files: Mutex::new(HashMap::new()),
            _lock: lock,
        })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn at(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn file(&self, name: &str) -> io::Result<Arc<dyn FileHandle>> {
        let mut files = self.files.lock();
        if let Some(f) = files.get(name) {
            return Ok(Arc::clone(f));
        }
        let f: Arc<dyn FileHandle> = Arc::from(self.fs.open_file(&self.at(name))?);
        files.insert(name.to_owned(), Arc::clone(&f));
        Ok(f)
    }

    /// Creates `name` empty, truncating it if it exists.
    pub(crate) fn create(&self, name: &str) -> io::Result<()> {
        let f = self.fs.create_file(&self.at(name))?;
        self.files.lock().insert(name.to_owned(), Arc::from(f));
        Ok(())
    }

    /// The whole contents of `name`.
    pub(crate) fn read(&self, name: &str) -> io::Result<Vec<u8>> {
        self.fs.read_file(&self.at(name))
    }

    /// Writes `data` into `name` at `offset`, extending the file as needed.
    pub(crate) fn write(&self, name: &str, offset: u64, data: &[u8]) -> io::Result<()> {
        self.file(name)?.write_at(offset, data)
    }

    /// Truncates or zero-extends `name` to `len` bytes.
    pub(crate) fn set_len(&self, name: &str, len: u64) -> io::Result<()> {
        self.file(name)?.set_len(len)
    }

    /// Makes the contents and length of `name` durable (`fdatasync`).
    pub(crate) fn sync_data(&self, name: &str) -> io::Result<()> {
        self.file(name)?.sync_data()
    }

    /// Renames `from` to `to`, replacing `to`.
    pub(crate) fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        let mut files = self.files.lock();
        self.fs.rename(&self.at(from), &self.at(to))?;
        files.remove(to);
        if let Some(f) = files.remove(from) {
            files.insert(to.to_owned(), f);
        }
        Ok(())
    }

    /// Removes `name`.
    pub(crate) fn remove(&self, name: &str) -> io::Result<()> {
        let mut files = self.files.lock();
        self.fs.remove_file(&self.at(name))?;
        files.remove(name);
        Ok(())
    }

    /// The names of all files in the directory, in no particular order.
    pub(crate) fn list(&self) -> io::Result<Vec<String>> {
        Ok(self
            .fs
            .read_dir(&self.dir)?
            .into_iter()
            .filter_map(|name| name.into_string().ok())
            .collect())
    }

    /// Makes the directory's names durable (`fsync` of the directory).
    pub(crate) fn sync_dir(&self) -> io::Result<()> {
        self.fs.sync_dir(&self.dir)
    }

    /// How to name `name` in messages and errors: its path.
    pub fn path(&self, name: &str) -> String {
        self.at(name).display().to_string()
    }

    /// The error for a failed `what` (a verb phrase) on the file `name`.
    pub(crate) fn error(&self, what: &str, name: &str, source: io::Error) -> Error {
        Error::io(format!("{what} {}", self.path(name)), source)
    }
}

/// The suffix of a file being put in place by [`install`].
pub(crate) const TEMP_SUFFIX: &str = ".tmp";

/// A failed [`install`]: the error, and whether it came at or after the rename, so that
/// `name` may now hold the new contents, durably or not.
pub(crate) struct InstallError {
    pub error: Error,
    pub renamed: bool,
}

/// Puts `bytes` under `name` all at once and durably: written to `name.tmp`, synced,
/// renamed to `name`, directory synced. After a crash, `name` is either absent (or as it
/// was) or holds all of `bytes`; a stale `name.tmp` may be left for the next open to remove.
pub(crate) fn install(store: &Store, name: &str, bytes: &[u8]) -> Result<(), InstallError> {
    let temp = format!("{name}{TEMP_SUFFIX}");
    let staged = store
        .create(&temp)
        .and_then(|()| store.write(&temp, 0, bytes))
        .and_then(|()| store.sync_data(&temp));
    if let Err(e) = staged {
        let _ = store.remove(&temp); // best effort: open removes what is left
        return Err(InstallError {
            error: store.error("writing", &temp, e),
            renamed: false,
        });
    }
    store
        .rename(&temp, name)
        .and_then(|()| store.sync_dir())
        .map_err(|e| InstallError {
            error: store.error("renaming into place", name, e),
            renamed: true,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The cache of open files follows renames and removals: a renamed file is written
    /// through its new name, and a removed name is not written through a stale handle.
    #[test]
    fn open_files_follow_renames_and_removals() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_dir(dir.path()).unwrap();
        store.create("a").unwrap();
        store.write("a", 0, b"one").unwrap();
        store.rename("a", "b").unwrap();
        store.write("b", 3, b"two").unwrap();
        assert_eq!(store.read("b").unwrap(), b"onetwo");
        assert_eq!(
            store.write("a", 0, b"x").unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
        store.remove("b").unwrap();
        assert_eq!(
            store.write("b", 0, b"x").unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
        assert!(!dir.path().join("b").exists());
    }
}
