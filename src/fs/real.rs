//! [`RealFs`]: the host's file system, through std and nix. Open files are real file
//! descriptors ([`RealFile`]), so an append through one is one `pwrite` and its sync one
//! `fdatasync`.

use super::lock::DirLock;
use super::probe::{supports_d_type, OverlayFeatures};
use super::quota::{self, QuotaMode, QuotaUnit, QuotaUsage};
use super::{FileHandle, FileKind, FileStat, FileSystem};
use crate::error::{Error, Result};
use nix::unistd::syncfs;
use std::ffi::OsString;
use std::fs::{self, DirBuilder, File, OpenOptions, Permissions};
use std::io;
use std::os::unix::fs::{lchown, symlink, DirBuilderExt, FileExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

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

/// An open file of the host: a file descriptor.
#[derive(Debug)]
pub struct RealFile(File);

impl FileHandle for RealFile {
    fn write_at(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.0.write_all_at(data, offset)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }

    fn sync_data(&self) -> io::Result<()> {
        self.0.sync_data()
    }
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
        quota::remove_dir_all(path)
    }

    fn symlink(&self, target: &Path, link: &Path) -> io::Result<()> {
        symlink(target, link)
    }

    fn read_link(&self, path: &Path) -> io::Result<PathBuf> {
        fs::read_link(path)
    }

    fn create_file(&self, path: &Path) -> io::Result<Box<dyn FileHandle>> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)?;
        Ok(Box::new(RealFile(file)))
    }

    fn open_file(&self, path: &Path) -> io::Result<Box<dyn FileHandle>> {
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        Ok(Box::new(RealFile(file)))
    }

    fn read_file(&self, path: &Path) -> io::Result<Vec<u8>> {
        fs::read(path)
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
            .map(|field| PathBuf::from(quota::unescape_mountinfo(field)))
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

    fn quota_mode(&self, root: &Path) -> io::Result<QuotaMode> {
        quota::probe(root)
    }

    fn create_quota_dir(&self, path: &Path, mode: QuotaMode, limit: Option<u64>) -> io::Result<()> {
        quota::create_dir(path, mode, limit)
    }

    fn assign_project(&self, dir: &Path, id: u32) -> io::Result<()> {
        quota::assign_project(dir, id)
    }

    fn set_quota_limit(&self, dir: &Path, unit: QuotaUnit, limit: Option<u64>) -> io::Result<()> {
        quota::set_limit(dir, unit, limit)
    }

    fn quota_usage(&self, dir: &Path, unit: QuotaUnit) -> io::Result<Option<QuotaUsage>> {
        quota::usage(dir, unit)
    }

    fn limited_projects(&self, dir: &Path, from: u32) -> io::Result<Vec<u32>> {
        quota::limited_projects(dir, from)
    }
}
