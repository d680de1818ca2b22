//! The storage seam under [`LogJournal`](super::LogJournal): files in one directory.
//!
//! [`Backend`] is what the journal needs of a file system, and no more: files named by
//! plain names (no `/`) in one directory, whole-file reads, positioned writes, and the two
//! syncs that make data and names durable. [`FsBackend`] is the real one;
//! [`SimBackend`](super::SimBackend) simulates a disk that loses what was not synced.
//!
//! Durability contract, as on Linux: [`Backend::sync_data`] makes a file's contents and
//! length durable; [`Backend::sync_dir`] makes the directory's names durable (created,
//! renamed and removed files). Until then a power loss may undo either.

use super::io_error;
use super::lock::DirLock;
use crate::error::{Error, Result};
use crate::sync::Mutex;
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Files in one directory, as the journal uses them.
pub trait Backend: Send + Sync {
    /// Creates `name` empty, truncating it if it exists.
    fn create(&self, name: &str) -> io::Result<()>;
    /// The whole contents of `name`.
    fn read(&self, name: &str) -> io::Result<Vec<u8>>;
    /// Writes `data` into `name` at `offset`, extending the file as needed.
    fn write(&self, name: &str, offset: u64, data: &[u8]) -> io::Result<()>;
    /// Truncates or zero-extends `name` to `len` bytes.
    fn set_len(&self, name: &str, len: u64) -> io::Result<()>;
    /// Makes the contents and length of `name` durable (`fdatasync`).
    fn sync_data(&self, name: &str) -> io::Result<()>;
    /// Renames `from` to `to`, replacing `to`.
    fn rename(&self, from: &str, to: &str) -> io::Result<()>;
    /// Removes `name`.
    fn remove(&self, name: &str) -> io::Result<()>;
    /// The names of all files in the directory, in no particular order.
    fn list(&self) -> io::Result<Vec<String>>;
    /// Makes the directory's names durable (`fsync` of the directory).
    fn sync_dir(&self) -> io::Result<()>;
    /// How to name `name` in messages and errors: its path.
    fn path(&self, name: &str) -> String;
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
pub(crate) fn install<B: Backend>(
    backend: &B,
    name: &str,
    bytes: &[u8],
) -> Result<(), InstallError> {
    let temp = format!("{name}{TEMP_SUFFIX}");
    let staged = backend
        .create(&temp)
        .and_then(|()| backend.write(&temp, 0, bytes))
        .and_then(|()| backend.sync_data(&temp));
    if let Err(e) = staged {
        let _ = backend.remove(&temp); // best effort: open removes what is left
        return Err(InstallError {
            error: io_error(backend, "writing", &temp, e),
            renamed: false,
        });
    }
    backend
        .rename(&temp, name)
        .and_then(|()| backend.sync_dir())
        .map_err(|e| InstallError {
            error: io_error(backend, "renaming into place", name, e),
            renamed: true,
        })
}

/// The real backend: files in a directory of the local file system, locked for this
/// process with a [`DirLock`] for as long as the backend lives.
///
/// Open files are cached, so an append is one `pwrite` and one `fdatasync`.
#[derive(Debug)]
pub struct FsBackend {
    dir: PathBuf,
    /// The directory itself, for `fsync`.
    dir_handle: File,
    /// Files opened so far, by name. Invariant: an entry is the file now at that name.
    files: Mutex<HashMap<String, Arc<File>>>,
    _lock: DirLock,
}

impl FsBackend {
    /// Opens the directory `dir`, creating it if missing, makes its name durable, and
    /// locks it against other processes: fails naming the holder's pid if it is locked
    /// already.
    ///
    /// The name is made durable (an fsync of the parent) on every open, not only when the
    /// directory is created here: an earlier process may have created it and died before
    /// that fsync, and records acknowledged now would then go with the directory at a
    /// power loss (found by `tests/crash_points.rs`).
    pub fn open(dir: impl AsRef<Path>) -> Result<FsBackend> {
        let dir = dir.as_ref().to_path_buf();
        if !dir.exists() {
            std::fs::create_dir_all(&dir).map_err(|e| {
                Error::io(format!("creating journal directory {}", dir.display()), e)
            })?;
        }
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            File::open(parent)
                .and_then(|p| p.sync_all())
                .map_err(|e| Error::io(format!("syncing directory {}", parent.display()), e))?;
        }
        let lock = DirLock::acquire(&dir)?;
        let dir_handle = File::open(&dir)
            .map_err(|e| Error::io(format!("opening journal directory {}", dir.display()), e))?;
        Ok(FsBackend {
            dir,
            dir_handle,
            files: Mutex::new(HashMap::new()),
            _lock: lock,
        })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn file(&self, name: &str) -> io::Result<Arc<File>> {
        let mut files = self.files.lock();
        if let Some(f) = files.get(name) {
            return Ok(Arc::clone(f));
        }
        let f = Arc::new(
            OpenOptions::new()
                .read(true)
                .write(true)
                .open(self.dir.join(name))?,
        );
        files.insert(name.to_owned(), Arc::clone(&f));
        Ok(f)
    }
}

impl Backend for FsBackend {
    fn create(&self, name: &str) -> io::Result<()> {
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(self.dir.join(name))?;
        self.files.lock().insert(name.to_owned(), Arc::new(f));
        Ok(())
    }

    fn read(&self, name: &str) -> io::Result<Vec<u8>> {
        std::fs::read(self.dir.join(name))
    }

    fn write(&self, name: &str, offset: u64, data: &[u8]) -> io::Result<()> {
        self.file(name)?.write_all_at(data, offset)
    }

    fn set_len(&self, name: &str, len: u64) -> io::Result<()> {
        self.file(name)?.set_len(len)
    }

    fn sync_data(&self, name: &str) -> io::Result<()> {
        self.file(name)?.sync_data()
    }

    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        let mut files = self.files.lock();
        std::fs::rename(self.dir.join(from), self.dir.join(to))?;
        files.remove(to);
        if let Some(f) = files.remove(from) {
            files.insert(to.to_owned(), f);
        }
        Ok(())
    }

    fn remove(&self, name: &str) -> io::Result<()> {
        let mut files = self.files.lock();
        std::fs::remove_file(self.dir.join(name))?;
        files.remove(name);
        Ok(())
    }

    fn list(&self) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(&self.dir)? {
            if let Ok(name) = entry?.file_name().into_string() {
                names.push(name);
            }
        }
        Ok(names)
    }

    fn sync_dir(&self) -> io::Result<()> {
        self.dir_handle.sync_all()
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }
}
