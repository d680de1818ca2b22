//! One process per directory: an exclusive `flock` on a lock file that holds the pid.
//!
//! `flock` locks belong to an open file description, so a second open of the same
//! directory conflicts even within one process, and the kernel drops the lock when the
//! holder dies, however it dies. The pid in the file is only for the error message.

use crate::error::{Error, Result};
use nix::fcntl::{Flock, FlockArg};
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// The lock file's name inside the locked directory.
pub const LOCK_FILE: &str = "LOCK";

/// An exclusive lock on a directory, held until dropped.
#[derive(Debug)]
pub struct DirLock {
    _file: Flock<File>,
    path: PathBuf,
}

impl DirLock {
    /// Locks `dir` (which must exist) through `dir/LOCK`, writing this process's pid into
    /// it. Fails at once, naming the holder's pid, if another holder has it.
    pub fn acquire(dir: &Path) -> Result<DirLock> {
        let path = dir.join(LOCK_FILE);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| Error::io(format!("opening lock file {}", path.display()), e))?;
        let file = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(file) => file,
            Err((_, nix::errno::Errno::EWOULDBLOCK)) => {
                let holder = std::fs::read_to_string(&path)
                    .ok()
                    .map(|s| s.trim().to_owned())
                    .filter(|s| !s.is_empty())
                    .unwrap_or_else(|| "unknown".into());
                return Err(Error::io(
                    format!(
                        "{} is locked by process {holder} (lock file {}); \
                         only one process may open it",
                        dir.display(),
                        path.display()
                    ),
                    io::ErrorKind::WouldBlock.into(),
                ));
            }
            Err((_, errno)) => {
                return Err(Error::io(
                    format!("locking {}", path.display()),
                    io::Error::from(errno),
                ))
            }
        };
        let pid = format!("{}\n", std::process::id());
        file.set_len(0)
            .and_then(|()| file.write_all_at(pid.as_bytes(), 0))
            .map_err(|e| Error::io(format!("writing pid to {}", path.display()), e))?;
        Ok(DirLock { _file: file, path })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}
