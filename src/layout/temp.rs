//! Creating a snapshot directory: a `new-*` directory is filled, then renamed to `<id>`;
//! with btrfs quotas, an Active snapshot's `<id>` is instead created in place as a
//! subvolume at install, and `new-*` deleted.
//!
//! Why not rename a subvolume: btrfs marks the running transaction "full commit" when a
//! subvolume is renamed (`btrfs_rename`), so the next fsync on the file system, the
//! journal's for this very Prepare, commits the whole transaction instead of writing its
//! log tree: +1.8 ms per Prepare on a loop btrfs (docs/bench.md). Creating a subvolume
//! under its final name does not.

use super::dirs::Owner;
use super::in_flight::Claim;
use super::quota::assign_project;
use super::{Layout, TEMP_PREFIX};
use crate::core::Kind;
use crate::error::{Error, Result};
use crate::fs::{FileSystem, QuotaMode, QuotaUnit};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A snapshot directory under construction, `ROOT/snapshots/new-*`, with `fs` (and `work`
/// for Active) inside. [`TempDir::install`] renames it to `<id>`; dropping it uninstalled
/// deletes it.
#[must_use = "a TempDir is deleted when dropped; call install to keep it"]
#[derive(Debug)]
pub struct TempDir {
    /// `ROOT/snapshots/new-*`.
    path: PathBuf,
    /// `ROOT/snapshots`.
    snapshots: PathBuf,
    /// The file system it lives on.
    fs: Arc<dyn FileSystem>,
    /// Keeps the name in the in-flight set while the directory exists under it.
    /// Invariant: `Some` until installed.
    claim: Option<Claim>,
    /// What install makes of it besides the rename, in a quota mode.
    unit: Unit,
}

/// The quota unit [`TempDir::install`] makes of an Active snapshot's directory.
#[derive(Debug)]
enum Unit {
    /// None: a View, or no quotas.
    Plain,
    /// Project quotas: the project of the id in the root's block that starts at `base`
    /// ([`Layout::project_of`]), and this limit (`None`: no limit).
    Project {
        /// The first id of the root's block of project ids.
        base: u32,
        /// The limit in bytes.
        limit: Option<u64>,
    },
    /// btrfs: `<id>` created as a subvolume holding `fs` (owned by `owner`) and `work`, its
    /// qgroup limited to `limit`; `new-*` (filled alike, so that a failure shows before
    /// the id is issued) is then deleted.
    Subvolume {
        /// The owner of `fs`.
        owner: Option<Owner>,
        /// The qgroup limit in bytes.
        limit: Option<u64>,
    },
}

impl Layout {
    /// Creates `ROOT/snapshots/new-*` with `fs` (0755) and, for Active, `work` (0711), the
    /// modes set exactly whatever the umask. `fs` is chowned to `owner` when given
    /// (containerd: the owner of the parent's `fs`, see [`Layout::fs_owner`]).
    ///
    /// Committed snapshots are never created directly: InvalidArgument.
    pub fn prepare_dir(&self, kind: Kind, owner: Option<Owner>) -> Result<TempDir> {
        self.prepare_dir_with_limit(kind, owner, None)
    }

    /// [`Layout::prepare_dir`], the directory of an Active snapshot made its quota unit
    /// with the hard limit `limit` in a quota mode (see quota.rs) at [`TempDir::install`]:
    /// btrfs creates `<id>` as a subvolume and limits its qgroup, project quotas give the
    /// directory its project. Without quotas, or for a View, `limit` is ignored.
    pub fn prepare_dir_with_limit(
        &self,
        kind: Kind,
        owner: Option<Owner>,
        limit: Option<u64>,
    ) -> Result<TempDir> {
        if kind == Kind::Committed {
            return Err(Error::InvalidArgument(
                "cannot create the directory of a committed snapshot; commit an active one".into(),
            ));
        }
        let (path, claim) = loop {
            let claim = self.in_flight.claim(TEMP_PREFIX);
            let path = self.snapshots.join(claim.name());
            match self.fs.create_dir(&path) {
                Ok(()) => break (path, claim),
                // A leftover of an earlier process holds the name: pick another.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => {
                    return Err(Error::io(
                        format!("failed to create temp dir {}", path.display()),
                        e,
                    ))
                }
            }
        };
        let dir = TempDir {
            path,
            snapshots: self.snapshots.clone(),
            fs: Arc::clone(&self.fs),
            claim: Some(claim),
            unit: match (kind, self.quota) {
                (Kind::Active, QuotaMode::Btrfs) => Unit::Subvolume { owner, limit },
                (Kind::Active, mode) if mode.uses_projects() => match self.project_base {
                    Some(base) => Unit::Project { base, limit },
                    None => Unit::Plain,
                },
                _ => Unit::Plain,
            },
        };
        fill(&*self.fs, &dir.path, kind, owner)?;
        Ok(dir)
    }
}

/// Fills the new directory `dir` of a `kind` snapshot: mode 0700, `fs` (0755, chowned to
/// `owner`) and, for Active, `work` (0711).
fn fill(fs: &dyn FileSystem, dir: &Path, kind: Kind, owner: Option<Owner>) -> Result<()> {
    set_mode(fs, dir, 0o700)?;
    let fs_dir = dir.join("fs");
    make_dir(fs, &fs_dir, 0o755)?;
    if kind == Kind::Active {
        make_dir(fs, &dir.join("work"), 0o711)?;
    }
    if let Some(Owner { uid, gid }) = owner {
        fs.lchown(&fs_dir, uid, gid).map_err(|e| {
            Error::io(
                format!("failed to chown {} to {uid}:{gid}", fs_dir.display()),
                e,
            )
        })?;
    }
    Ok(())
}

/// Creates `path` with exactly `mode`.
fn make_dir(fs: &dyn FileSystem, path: &Path, mode: u32) -> Result<()> {
    fs.create_dir(path)
        .map_err(|e| Error::io(format!("cannot create {}", path.display()), e))?;
    set_mode(fs, path, mode)
}

/// Sets exactly `mode` on `path`, whatever the umask.
fn set_mode(fs: &dyn FileSystem, path: &Path, mode: u32) -> Result<()> {
    fs.set_mode(path, mode)
        .map_err(|e| Error::io(format!("cannot chmod {:o} {}", mode, path.display()), e))
}

/// Creates the subvolume `target` as the unit of an Active snapshot: filled as
/// [`fill`] does, its qgroup limited to `limit`. On failure it is destroyed again.
fn create_subvolume(
    fs: &dyn FileSystem,
    target: &Path,
    owner: Option<Owner>,
    limit: Option<u64>,
) -> Result<()> {
    fs.create_quota_dir(target, QuotaMode::Btrfs)
        .map_err(|e| Error::io(format!("cannot create subvolume {}", target.display()), e))?;
    let filled = fill(fs, target, Kind::Active, owner).and_then(|()| match limit {
        Some(bytes) => fs
            .set_quota_limit(target, QuotaUnit::Subvolume, Some(bytes))
            .map_err(|e| {
                Error::io(
                    format!("cannot limit {} to {bytes} bytes", target.display()),
                    e,
                )
            }),
        None => Ok(()),
    });
    if filled.is_err() {
        if let Err(e) = fs.remove_dir_all(target) {
            tracing::warn!(path = %target.display(), error = %e,
                "failed to destroy a half-made subvolume; the next open deletes it");
        }
    }
    filled
}

impl TempDir {
    /// The temporary directory, `ROOT/snapshots/new-*`.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Its `fs` directory.
    pub fn fs_path(&self) -> PathBuf {
        self.path.join("fs")
    }

    /// Renames the directory to `ROOT/snapshots/<id>`, in a project-quota mode after giving
    /// it the project of `id` and its limit. Fails (and the directory is deleted) if a
    /// non-empty `<id>` already exists, or the project cannot be given. With btrfs quotas,
    /// an Active snapshot's `<id>` is created as a subvolume instead (see the module's
    /// notes), failing if `<id>` exists, and the temporary directory is deleted.
    ///
    /// Neither is fsynced: a crash may lose it, and the directory then is garbage for
    /// Cleanup (or, recorded, re-created at open), exactly as if the crash came before it.
    /// Make the layer durable with [`Layout::make_durable`] before it is committed.
    pub fn install(mut self, id: u64) -> Result<()> {
        let target = self.snapshots.join(id.to_string());
        match self.unit {
            Unit::Plain => {}
            Unit::Project { base, limit } => {
                assign_project(&*self.fs, &self.path, base, id, limit)?
            }
            Unit::Subvolume { owner, limit } => {
                // Dropped with its claim, `new-*` is deleted.
                return create_subvolume(&*self.fs, &target, owner, limit);
            }
        }
        self.fs.rename(&self.path, &target).map_err(|e| {
            Error::io(
                format!(
                    "failed to rename {} to {}",
                    self.path.display(),
                    target.display()
                ),
                e,
            )
        })?;
        self.claim = None;
        Ok(())
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if self.claim.is_some() {
            if let Err(e) = self.fs.remove_dir_all(&self.path) {
                tracing::warn!(path = %self.path.display(), error = %e,
                    "failed to remove temp snapshot directory; Cleanup will retry");
            }
        }
    }
}
