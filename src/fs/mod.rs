//! The file-system seam: every call that the journal and the layout make to a file system
//! goes through [`FileSystem`], so that the same code runs on the host ([`RealFs`]) and, in
//! crash tests, on a simulated disk that forgets what was not made durable (`SimFs`, with
//! the `testing` feature). This module is the bottom of the effect layer: it imports
//! neither the journal nor the layout, and both import it.
//!
//! It also holds what belongs to the host's file systems rather than to overlaysnap's use of
//! them: the root lock ([`DirLock`]), containerd's [`Mount`] and performing mounts
//! ([`mount_all`], [`unmount`]), and the probes of what the host's overlayfs supports.
//!
//! # Durability contract
//! As on Linux (ext4, read strictly):
//! - a file's contents and length are durable after [`FileHandle::sync_data`]
//!   (`fdatasync(2)`), its mode and owner are not;
//! - an inode's mode and owner, and a directory's names, are durable after
//!   [`FileSystem::sync_dir`] of that directory;
//! - a created, renamed or removed name is durable after [`FileSystem::sync_dir`] of the
//!   directory holding it;
//! - [`FileSystem::syncfs`] makes everything on the file system durable.
//!
//! Until then a power loss may undo any of them; a process that dies (SIGKILL) with the
//! machine still running loses nothing that a call completed.

mod lock;
mod mount;
mod mounter;
mod probe;
mod quota;
mod real;
#[cfg(feature = "testing")]
mod sim;

pub use lock::{DirLock, LOCK_FILE};
pub use mount::Mount;
pub use mounter::{mount_all, unmount, unmount_all, Unmount};
pub(crate) use mounter::{page_size, MountCall};
pub use probe::{
    needs_userxattr, release_at_least, running_in_user_ns, supports_d_type, supports_index,
    uid_map_in_user_ns, OverlayFeatures,
};
pub use quota::{QuotaMode, QuotaUnit, QuotaUsage};
pub use real::{RealFile, RealFs};
#[cfg(feature = "testing")]
pub use sim::{Fault, SimFs};

use crate::error::Result;
use std::ffi::OsString;
use std::fmt::Debug;
use std::io;
use std::path::{Path, PathBuf};

/// What a file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// A directory.
    Dir,
    /// A regular file.
    File,
    /// A symbolic link.
    Symlink,
    /// Anything else (device, socket, fifo).
    Other,
}

/// What the layout reads of a file's metadata (`stat(2)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileStat {
    /// What the file is.
    pub kind: FileKind,
    /// The device of its file system.
    pub dev: u64,
    /// Its inode number.
    pub ino: u64,
    /// How many names it has.
    pub nlink: u64,
    /// Allocated 512-byte blocks.
    pub blocks: u64,
    /// Its length in bytes.
    pub len: u64,
    /// Owner user id.
    pub uid: u32,
    /// Owner group id.
    pub gid: u32,
    /// Permission bits (the low 12 bits of `st_mode`).
    pub mode: u32,
}

/// The file-system calls of the effect layer. Paths are absolute; nothing is recursive
/// unless its name says so. See the module documentation for the durability contract.
pub trait FileSystem: Send + Sync + Debug {
    /// `mkdir(2)` with the default mode; AlreadyExists when the name is taken.
    fn create_dir(&self, path: &Path) -> io::Result<()>;
    /// Creates `path` and its missing ancestors with `mode` (as filtered by the umask).
    fn create_dir_all(&self, path: &Path, mode: u32) -> io::Result<()>;
    /// `path` absolute, with every symbolic link resolved.
    fn canonicalize(&self, path: &Path) -> io::Result<PathBuf>;
    /// Sets the permission bits of `path` exactly (`chmod(2)`).
    fn set_mode(&self, path: &Path, mode: u32) -> io::Result<()>;
    /// Changes the owner of `path`, not following a symbolic link (`lchown(2)`).
    fn lchown(&self, path: &Path, uid: u32, gid: u32) -> io::Result<()>;
    /// The metadata of `path`, following symbolic links (`stat(2)`).
    fn metadata(&self, path: &Path) -> io::Result<FileStat>;
    /// The metadata of `path` itself (`lstat(2)`).
    fn symlink_metadata(&self, path: &Path) -> io::Result<FileStat>;
    /// The names in directory `path` (without `.` and `..`), in no particular order.
    fn read_dir(&self, path: &Path) -> io::Result<Vec<OsString>>;
    /// `rename(2)`: replaces `to` if it is a file or an empty directory.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Removes the file or symbolic link `path`.
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// Removes the directory `path` and everything in it (a symbolic link: the link).
    fn remove_dir_all(&self, path: &Path) -> io::Result<()>;
    /// Creates the symbolic link `link` pointing at `target`.
    fn symlink(&self, target: &Path, link: &Path) -> io::Result<()>;
    /// Where the symbolic link `path` points.
    fn read_link(&self, path: &Path) -> io::Result<PathBuf>;
    /// Creates the file `path` empty (truncating it if it exists) and opens it for
    /// writing.
    fn create_file(&self, path: &Path) -> io::Result<Box<dyn FileHandle>>;
    /// Opens the existing file `path` for writing.
    fn open_file(&self, path: &Path) -> io::Result<Box<dyn FileHandle>>;
    /// The whole contents of the file `path`.
    fn read_file(&self, path: &Path) -> io::Result<Vec<u8>>;
    /// Makes the names in directory `path` durable (`fsync(2)` of the directory).
    fn sync_dir(&self, path: &Path) -> io::Result<()>;
    /// Makes everything on the file system of `path` durable (`syncfs(2)`).
    fn syncfs(&self, path: &Path) -> io::Result<()>;
    /// Every mount point of this process' mount namespace.
    fn mount_points(&self) -> Result<Vec<PathBuf>>;
    /// Whether the file system of the non-empty directory `dir` reports `d_type` (see
    /// [`supports_d_type`]).
    fn supports_d_type(&self, dir: &Path) -> Result<bool>;
    /// What overlay mounts of layers under `root` need (see [`OverlayFeatures::probe`]).
    fn overlay_features(&self, root: &Path) -> OverlayFeatures;
    /// Locks the existing directory `dir` against other processes for as long as the
    /// returned lock lives; `None` where no other process can reach the file system.
    fn lock(&self, dir: &Path) -> Result<Option<DirLock>>;
    /// What per-directory accounting the file system of the directory `root` offers (see
    /// [`QuotaMode`]).
    fn quota_mode(&self, root: &Path) -> io::Result<QuotaMode>;
    /// Creates the directory `path` (default mode) as an accounting unit of `mode`: a
    /// btrfs subvolume for [`QuotaMode::Btrfs`], its qgroup limited to `limit` bytes in
    /// the same call; a plain directory otherwise (`limit` ignored: a project's limit is
    /// [`FileSystem::set_quota_limit`]'s). [`FileSystem::remove_dir_all`] deletes either.
    fn create_quota_dir(&self, path: &Path, mode: QuotaMode, limit: Option<u64>) -> io::Result<()>;
    /// Gives the directory `dir` the project `id` with the inherit flag, so that what is
    /// created below it joins the project (`FS_IOC_FSSETXATTR`).
    fn assign_project(&self, dir: &Path, id: u32) -> io::Result<()>;
    /// Sets (`Some`) or removes (`None`) the hard limit in bytes of `unit`, whose
    /// directory is `dir`. Durable once the file system's own journal commits it.
    fn set_quota_limit(&self, dir: &Path, unit: QuotaUnit, limit: Option<u64>) -> io::Result<()>;
    /// The usage and limit of `unit`, whose directory is `dir`; `None` when `dir` is not
    /// that unit (a directory made without quotas). btrfs reports the numbers of the last
    /// committed transaction: [`FileSystem::syncfs`] first to include every write.
    fn quota_usage(&self, dir: &Path, unit: QuotaUnit) -> io::Result<Option<QuotaUsage>>;
    /// The project ids from `from` on that have a hard limit on the file system of `dir`,
    /// in order (`quotactl(Q_GETNEXTQUOTA)`: one call per project holding a quota record,
    /// whatever the size of the id space).
    fn limited_projects(&self, dir: &Path, from: u32) -> io::Result<Vec<u32>>;
}

/// A file opened for writing by [`FileSystem::create_file`] or [`FileSystem::open_file`].
///
/// It names its inode, not its path: after a rename it writes to the same file under the
/// new name, as a file descriptor does.
pub trait FileHandle: Send + Sync + Debug {
    /// Writes all of `data` at `offset`, extending the file as needed (`pwrite(2)`).
    fn write_at(&self, offset: u64, data: &[u8]) -> io::Result<()>;
    /// Truncates or zero-extends the file to `len` bytes (`ftruncate(2)`).
    fn set_len(&self, len: u64) -> io::Result<()>;
    /// Makes the file's contents and length durable (`fdatasync(2)`).
    fn sync_data(&self) -> io::Result<()>;
}
