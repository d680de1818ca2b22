//! The directories of a root: opening (creating) a root, the paths of a snapshot, listing
//! `ROOT/snapshots` and removing a snapshot directory.

use super::in_flight::InFlight;
use super::mounts::overlay_options;
use super::{Layout, REMOVING_PREFIX};
use crate::error::{Error, Result};
use crate::fs::page_size;
use crate::fs::OverlayFeatures;
use crate::fs::{FileKind, FileSystem, RealFs};
use std::collections::BTreeSet;
use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Owner of a file: what a new snapshot's `fs` inherits from its parent's `fs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Owner {
    /// User id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
}

/// One entry of `ROOT/snapshots`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Entry {
    /// The directory of snapshot `id`: the name is exactly the id in decimal.
    Snapshot(u64),
    /// Anything else: `new-*`, `rm-*`, or a name nobody should have put there.
    Other(OsString),
}

impl Layout {
    /// Opens the root `root`, probing the host for what overlay mounts need
    /// ([`OverlayFeatures::probe`]); `mount_options` are appended to every overlay mount
    /// (containerd's `mount_options` setting).
    ///
    /// Creates `root` (0700), `root/snapshots` (0700) and `root/l` (0700) when missing and
    /// refuses a file system without `d_type` (containerd's check and message).
    pub fn open(root: impl AsRef<Path>, mount_options: &[String]) -> Result<Layout> {
        Layout::open_on(Arc::new(RealFs), root, mount_options)
    }

    /// Opens the root `root` of the file system `fs` as [`Layout::open`] does; the overlay
    /// features come from [`FileSystem::overlay_features`]. Every later file-system call of
    /// the layout goes to `fs`.
    pub fn open_on(
        fs: Arc<dyn FileSystem>,
        root: impl AsRef<Path>,
        mount_options: &[String],
    ) -> Result<Layout> {
        let root = create_root(&*fs, root.as_ref())?;
        let features = fs.overlay_features(&root);
        Layout::at(fs, root, mount_options, features)
    }

    /// Opens the root `root` as [`Layout::open`] does, with the host's overlay features
    /// given instead of probed.
    pub fn open_with_features(
        root: impl AsRef<Path>,
        mount_options: &[String],
        features: OverlayFeatures,
    ) -> Result<Layout> {
        let root = create_root(&RealFs, root.as_ref())?;
        Layout::at(Arc::new(RealFs), root, mount_options, features)
    }

    fn at(
        fs: Arc<dyn FileSystem>,
        root: PathBuf,
        mount_options: &[String],
        features: OverlayFeatures,
    ) -> Result<Layout> {
        let layout = Layout {
            fs,
            snapshots: root.join("snapshots"),
            links: root.join("l"),
            root,
            overlay_options: overlay_options(mount_options, features),
            empty_lower: None,
            page_size: page_size(),
            in_flight: InFlight::default(),
            quota: crate::fs::QuotaMode::Walk,
            default_size: None,
            project_base: None,
        };
        layout.create_private_dir(&layout.snapshots)?;
        layout.create_private_dir(&layout.links)?;
        if !layout.fs.supports_d_type(&layout.root)? {
            return Err(Error::FailedPrecondition(format!(
                "{} does not support d_type. If the backing filesystem is xfs, please reformat \
                 with ftype=1 to enable d_type support",
                layout.root.display()
            )));
        }
        Ok(layout)
    }

    /// The file system the layout lives on.
    pub fn file_system(&self) -> &Arc<dyn FileSystem> {
        &self.fs
    }

    /// The root: absolute, canonical.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `ROOT/snapshots`.
    pub fn snapshots_dir(&self) -> &Path {
        &self.snapshots
    }

    /// `ROOT/snapshots/<id>`.
    pub fn snapshot_dir(&self, id: u64) -> PathBuf {
        self.snapshots.join(id.to_string())
    }

    /// `ROOT/snapshots/<id>/fs`: the layer's content, the overlay upperdir when Active.
    pub fn fs_path(&self, id: u64) -> PathBuf {
        self.snapshot_dir(id).join("fs")
    }

    /// `ROOT/snapshots/<id>/work`: the overlay workdir of an Active snapshot.
    pub fn work_path(&self, id: u64) -> PathBuf {
        self.snapshot_dir(id).join("work")
    }

    /// The options appended to every overlay mount (see [`overlay_options`]).
    pub fn overlay_options(&self) -> &[String] {
        &self.overlay_options
    }

    /// The owner of snapshot `id`'s `fs`, for [`Layout::prepare_dir`] of its children.
    pub fn fs_owner(&self, id: u64) -> Result<Owner> {
        let path = self.fs_path(id);
        let md = self
            .fs
            .metadata(&path)
            .map_err(|e| Error::io(format!("failed to stat parent {}", path.display()), e))?;
        Ok(Owner {
            uid: md.uid,
            gid: md.gid,
        })
    }

    /// Every entry of `ROOT/snapshots`, in no particular order.
    pub fn list_entries(&self) -> Result<Vec<Entry>> {
        let context = || format!("cannot list {}", self.snapshots.display());
        let mut entries = Vec::new();
        let names = self
            .fs
            .read_dir(&self.snapshots)
            .map_err(|e| Error::io(context(), e))?;
        for name in names {
            entries.push(match name.to_str().and_then(parse_id) {
                Some(id) => Entry::Snapshot(id),
                None => Entry::Other(name),
            });
        }
        Ok(entries)
    }

    /// Deletes the directory of snapshot `id` and its short link; a missing directory is
    /// not an error, so the call can be repeated (e.g. when replaying a removal).
    ///
    /// The directory is first renamed to `rm-*`, so a crash leaves either the whole `<id>`
    /// or garbage for Cleanup. Refused (FailedPrecondition) while anything is mounted
    /// inside it: deleting would reach into the mounted file system.
    pub fn remove_dir(&self, id: u64) -> Result<()> {
        self.remove_link(id)?;
        let mounts = self.fs.mount_points()?;
        self.remove_entry(&OsString::from(id.to_string()), &mounts)
            .map(drop)
    }

    /// Renames `ROOT/snapshots/<name>` to a fresh `rm-*` name, then deletes it, unless one
    /// of `mounts` (every mount point, see [`FileSystem::mount_points`]) is inside it.
    /// Returns whether there was something to delete.
    pub(crate) fn remove_entry(&self, name: &OsString, mounts: &[PathBuf]) -> Result<bool> {
        let path = self.snapshots.join(name);
        if let Some(mount) = mounts.iter().find(|m| m.starts_with(&path)) {
            return Err(Error::FailedPrecondition(format!(
                "cannot remove {}: {} is mounted inside it",
                path.display(),
                mount.display()
            )));
        }
        let claim = loop {
            let claim = self.in_flight.claim(REMOVING_PREFIX);
            let doomed = self.snapshots.join(claim.name());
            match self.fs.rename(&path, &doomed) {
                Ok(()) => break claim,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
                // A leftover rm-* of an earlier process holds the name: pick another.
                Err(e)
                    if matches!(
                        e.raw_os_error(),
                        Some(nix::libc::ENOTEMPTY | nix::libc::EEXIST)
                    ) => {}
                Err(e) => {
                    return Err(Error::io(
                        format!("cannot rename {} for removal", path.display()),
                        e,
                    ))
                }
            }
        };
        let doomed = self.snapshots.join(claim.name());
        let is_dir = self
            .fs
            .symlink_metadata(&doomed)
            .is_ok_and(|md| md.kind == FileKind::Dir);
        let removed = if is_dir {
            self.fs.remove_dir_all(&doomed)
        } else {
            self.fs.remove_file(&doomed)
        };
        removed.map_err(|e| Error::io(format!("cannot remove {}", doomed.display()), e))?;
        if let Some(id) = name.to_str().and_then(parse_id) {
            self.release_project(id)?;
        }
        Ok(true)
    }
}

/// `name` as a snapshot id when it is exactly an id in decimal (no sign, no leading zero).
fn parse_id(name: &str) -> Option<u64> {
    let id: u64 = name.parse().ok()?;
    (id.to_string() == name).then_some(id)
}

/// Creates `root` (0700) when missing, makes its name durable, and returns it absolute and
/// canonical, refusing a path that overlay mount options cannot carry.
///
/// Durable name (found by `tests/crash_points.rs`): records are acknowledged once synced in
/// `ROOT/journal`, and the journal fsyncs `ROOT` itself, but nothing made the entry of a
/// freshly created `ROOT` in its parent durable, so a power loss could take the whole root
/// and every acknowledged record with it. So the directory holding each component created
/// here is fsynced, and the one holding the root always (an earlier process may have
/// created the root and died before it was durable). A directory this process may not read
/// (and so cannot fsync) is skipped with a warning rather than refusing the root.
fn create_root(fs: &dyn FileSystem, root: &Path) -> Result<PathBuf> {
    let absolute = std::path::absolute(root)
        .map_err(|e| Error::io(format!("cannot resolve root {}", root.display()), e))?;
    let missing: Vec<PathBuf> = absolute
        .ancestors()
        .filter(
            |dir| matches!(fs.symlink_metadata(dir), Err(e) if e.kind() == io::ErrorKind::NotFound),
        )
        .map(Path::to_path_buf)
        .collect();
    fs.create_dir_all(root, 0o700)
        .map_err(|e| Error::io(format!("cannot create root {}", root.display()), e))?;
    let root = fs
        .canonicalize(root)
        .map_err(|e| Error::io(format!("cannot resolve root {}", root.display()), e))?;
    let holders: BTreeSet<&Path> = missing
        .iter()
        .map(PathBuf::as_path)
        .chain([root.as_path()])
        .filter_map(Path::parent)
        .collect();
    for dir in holders {
        match fs.sync_dir(dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                tracing::warn!(dir = %dir.display(), error = %e,
                    "cannot fsync a directory holding the root; its creation may not be durable");
            }
            Err(e) => {
                return Err(Error::io(
                    format!("cannot sync {} to make the root durable", dir.display()),
                    e,
                ))
            }
        }
    }
    match root.to_str() {
        Some(s) if !s.contains([',', ':']) => Ok(root),
        _ => Err(Error::InvalidArgument(format!(
            "root {} must be valid UTF-8 without ',' or ':' (they separate overlay options)",
            root.display()
        ))),
    }
}

impl Layout {
    /// Creates `path` with mode 0700 (whatever the umask) unless it exists.
    fn create_private_dir(&self, path: &Path) -> Result<()> {
        match self.fs.create_dir(path) {
            // The mode is the directory's own metadata: only an fsync of the directory
            // makes it durable (the fsync of the root that makes the name durable need
            // not), and a reopen does not chmod a directory it finds.
            Ok(()) => self.set_mode(path, 0o700).and_then(|()| {
                self.fs
                    .sync_dir(path)
                    .map_err(|e| Error::io(format!("cannot sync {}", path.display()), e))
            }),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
            Err(e) => Err(Error::io(format!("cannot create {}", path.display()), e)),
        }
    }

    /// Sets the permission bits of `path` exactly (mkdir's mode is filtered by the umask).
    pub(crate) fn set_mode(&self, path: &Path, mode: u32) -> Result<()> {
        self.fs
            .set_mode(path, mode)
            .map_err(|e| Error::io(format!("cannot chmod {:o} {}", mode, path.display()), e))
    }
}
