//! The file-system seam of the effect layer: every file-system call the layout (and the
//! journal opened by [`Snapshotter::open_with_fs`](crate::Snapshotter::open_with_fs))
//! makes goes through [`FileSystem`].
//!
//! [`RealFs`] is the host's file system (std, nix), exactly what the layout always called;
//! [`SimFs`](super::SimFs) is an in-memory one that forgets what was not made durable, for
//! crash-point exploration. The trait is deliberately small and path based: what the layout
//! and the journal really call, and no more.
//!
//! Durability contract, as on Linux (ext4, strict reading): a file's contents are durable
//! after [`FileSystem::sync_data`]; a created, renamed or removed name is durable after
//! [`FileSystem::sync_dir`] of the directory holding it; [`FileSystem::syncfs`] makes
//! everything durable.

use super::probe::{supports_d_type, OverlayFeatures};
use crate::error::{Error, Result};
use crate::journal::DirLock;
use nix::unistd::syncfs;
use std::ffi::OsString;
use std::fmt::Debug;
use std::fs::{self, DirBuilder, File, OpenOptions, Permissions};
use std::io;
use std::os::unix::fs::{lchown, symlink, DirBuilderExt, FileExt, MetadataExt, PermissionsExt};
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
    /// Creates the file `path` empty, truncating it if it exists.
    fn create_file(&self, path: &Path) -> io::Result<()>;
    /// The whole contents of the file `path`.
    fn read_file(&self, path: &Path) -> io::Result<Vec<u8>>;
    /// Writes `data` into the file `path` at `offset`, extending it as needed.
    fn write_at(&self, path: &Path, offset: u64, data: &[u8]) -> io::Result<()>;
    /// Truncates or zero-extends the file `path` to `len` bytes.
    fn set_len(&self, path: &Path, len: u64) -> io::Result<()>;
    /// Makes the contents and length of the file `path` durable (`fdatasync(2)`).
    fn sync_data(&self, path: &Path) -> io::Result<()>;
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
}

/// The host's file system, through std and nix.
#[derive(Debug, Clone, Copy, Default)]
pub struct RealFs;

fn stat_of(md: &fs::Metadata) -> FileStat {
    let ft = md.file_type();
    let kind = if ft.is_dir() {
        FileKind::Dir
    } else if ft.is_file() {
        FileKind::File
    } else if ft.is_symlink() {
        FileKind::Symlink
    } else {
        FileKind::Other
    };
    FileStat {
        kind,
        dev: md.dev(),
        ino: md.ino(),
        nlink: md.nlink(),
        blocks: md.blocks(),
        len: md.len(),
        uid: md.uid(),
        gid: md.gid(),
        mode: md.mode() & 0o7777,
    }
}

fn open_rw(path: &Path) -> io::Result<File> {
    OpenOptions::new().read(true).write(true).open(path)
}

impl FileSystem for RealFs {
    fn create_dir(&self, path: &Path) -> io::Result<()> {
        fs::create_dir(path)
    }

    fn create_dir_all(&self, path: &Path, mode: u32) -> io::Result<()> {
        DirBuilder::new().recursive(true).mode(mode).create(path)
    }

    fn canonicalize(&self, path: &Path) -> io::Result<PathBuf> {
        path.canonicalize()
    }

    fn set_mode(&self, path: &Path, mode: u32) -> io::Result<()> {
        fs::set_permissions(path, Permissions::from_mode(mode))
    }

    fn lchown(&self, path: &Path, uid: u32, gid: u32) -> io::Result<()> {
        lchown(path, Some(uid), Some(gid))
    }

    fn metadata(&self, path: &Path) -> io::Result<FileStat> {
        fs::metadata(path).map(|md| stat_of(&md))
    }

    fn symlink_metadata(&self, path: &Path) -> io::Result<FileStat> {
        fs::symlink_metadata(path).map(|md| stat_of(&md))
    }

    fn read_dir(&self, path: &Path) -> io::Result<Vec<OsString>> {
        fs::read_dir(path)?
            .map(|entry| entry.map(|e| e.file_name()))
            .collect()
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }

    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        fs::remove_dir_all(path)
    }

    fn symlink(&self, target: &Path, link: &Path) -> io::Result<()> {
        symlink(target, link)
    }

    fn read_link(&self, path: &Path) -> io::Result<PathBuf> {
        fs::read_link(path)
    }

    fn create_file(&self, path: &Path) -> io::Result<()> {
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .map(drop)
    }

    fn read_file(&self, path: &Path) -> io::Result<Vec<u8>> {
        fs::read(path)
    }

    fn write_at(&self, path: &Path, offset: u64, data: &[u8]) -> io::Result<()> {
        open_rw(path)?.write_all_at(data, offset)
    }

    fn set_len(&self, path: &Path, len: u64) -> io::Result<()> {
        open_rw(path)?.set_len(len)
    }

    fn sync_data(&self, path: &Path) -> io::Result<()> {
        open_rw(path)?.sync_data()
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        File::open(path)?.sync_all()
    }

    fn syncfs(&self, path: &Path) -> io::Result<()> {
        let handle = File::open(path)?;
        syncfs(&handle).map_err(io::Error::from)
    }

    fn mount_points(&self) -> Result<Vec<PathBuf>> {
        let info = fs::read_to_string("/proc/self/mountinfo")
            .map_err(|e| Error::io("cannot read /proc/self/mountinfo", e))?;
        Ok(info
            .lines()
            .filter_map(|line| line.split(' ').nth(4))
            .map(|field| PathBuf::from(unescape_mountinfo(field)))
            .collect())
    }

    fn supports_d_type(&self, dir: &Path) -> Result<bool> {
        supports_d_type(dir)
    }

    fn overlay_features(&self, root: &Path) -> OverlayFeatures {
        OverlayFeatures::probe(root)
    }

    fn lock(&self, dir: &Path) -> Result<Option<DirLock>> {
        DirLock::acquire(dir).map(Some)
    }
}

/// Undoes mountinfo's octal escapes (`\040` for a space, `\134` for a backslash, …).
fn unescape_mountinfo(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| bytes[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)))
            .map(|d| d.iter().fold(0u32, |n, c| n * 8 + u32::from(c - b'0')))
            .and_then(|n| u8::try_from(n).ok());
        match octal {
            Some(byte) => {
                out.push(byte);
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
