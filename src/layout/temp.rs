//! Creating a snapshot directory. Without quotas and with project quotas, a `new-*`
//! directory is filled (its project given), then renamed to `<id>`. With btrfs quotas
//! nothing is staged: install makes `<id>` in place, an Active snapshot's as a subvolume.
//!
//! Why not stage and rename with btrfs: btrfs marks the running transaction "full commit"
//! when a subvolume is renamed (`btrfs_rename`), so the next fsync on the file system, the
//! journal's for this very Prepare, commits the whole transaction instead of writing its
//! log tree: +1.8 ms per Prepare on a loop btrfs (docs/bench.md). Creating a subvolume
//! under its final name does not; and a staged plain directory, made and deleted only to
//! show a failure before the id is issued, cost three `mkdir`s and three `rmdir`s per
//! Prepare for nothing: a failure at install is refused just as well (no record is
//! written, and the half-made `<id>` is deleted).

use super::dirs::Owner;
use super::in_flight::Claim;
use super::quota::assign_project;
use super::{Layout, TEMP_PREFIX};
use crate::core::Kind;
use crate::error::{Error, Result};
use crate::fs::{FileSystem, QuotaMode};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A snapshot directory under construction: `ROOT/snapshots/new-*` with `fs` (and `work`
/// for Active) inside, or in the btrfs quota mode nothing yet. [`TempDir::install`] makes
/// it `<id>`; dropping it uninstalled deletes what was staged.
#[must_use = "a TempDir is deleted when dropped; call install to keep it"]
#[derive(Debug)]
pub struct TempDir {
    /// The staged `new-*` directory. Invariant: `Some` until installed, except in the
    /// btrfs quota mode, where it is always `None`.
    staged: Option<Staged>,
    /// `ROOT/snapshots`.
    snapshots: PathBuf,
    /// The file system it lives on.
    fs: Arc<dyn FileSystem>,
    /// What install makes of it, in a quota mode.
    unit: Unit,
    /// What the snapshot is.
    kind: Kind,
    /// The owner of its `fs`, if not the process's.
    owner: Option<Owner>,
}

/// A staged directory, `ROOT/snapshots/new-*`.
#[derive(Debug)]
struct Staged {
    /// Its path.
    path: PathBuf,
    /// Keeps the name in the in-flight set while the directory exists under it.
    _claim: Claim,
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
    /// btrfs: `<id>` a subvolume holding `fs` and `work`, its qgroup limited to `limit`.
    Subvolume {
        /// The qgroup limit in bytes.
        limit: Option<u64>,
    },
}

impl Layout {
    /// Creates `ROOT/snapshots/new-*` with `fs` (0755) and, for Active, `work` (0711), the
    /// modes set exactly whatever the umask. `fs` is chowned to `owner` when given
    /// (containerd: the owner of the parent's `fs`, see [`Layout::fs_owner`]). In the
    /// btrfs quota mode nothing is made until [`TempDir::install`].
    ///
    /// Committed snapshots are never created directly: InvalidArgument.
    pub fn prepare_dir(&self, kind: Kind, owner: Option<Owner>) -> Result<TempDir> {
        self.prepare_dir_with_limit(kind, owner, None)
    }

    /// [`Layout::prepare_dir`], the directory of an Active snapshot made its quota unit
    /// with the hard limit `limit` in a quota mode (see quota.rs) at [`TempDir::install`]:
    /// with btrfs `<id>` is a subvolume whose qgroup is limited, project quotas give the
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
        let mut dir = TempDir {
            staged: None,
            snapshots: self.snapshots.clone(),
            fs: Arc::clone(&self.fs),
            unit: match (kind, self.quota) {
                (Kind::Active, QuotaMode::Btrfs) => Unit::Subvolume { limit },
                (Kind::Active, mode) if mode.uses_projects() => match self.project_base {
                    Some(base) => Unit::Project { base, limit },
                    None => Unit::Plain,
                },
                _ => Unit::Plain,
            },
            kind,
            owner,
        };
        if self.quota == QuotaMode::Btrfs {
            return Ok(dir);
        }
        let staged = loop {
            let claim = self.in_flight.claim(TEMP_PREFIX);
            let path = self.snapshots.join(claim.name());
            match self.fs.create_dir(&path) {
                Ok(()) => {
                    break Staged {
                        path,
                        _claim: claim,
                    }
                }
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
        let path = staged.path.clone();
        dir.staged = Some(staged);
        fill(&*self.fs, &path, kind, owner)?;
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

impl TempDir {
    /// The staged directory, `ROOT/snapshots/new-*`; `None` in the btrfs quota mode.
    pub fn path(&self) -> Option<&Path> {
        self.staged.as_ref().map(|s| s.path.as_path())
    }

    /// The staged directory's `fs`; `None` in the btrfs quota mode.
    pub fn fs_path(&self) -> Option<PathBuf> {
        self.path().map(|p| p.join("fs"))
    }

    /// Makes the directory `ROOT/snapshots/<id>`. Staged, it is renamed there, in a
    /// project-quota mode after being given the project of `id` and its limit; this fails
    /// (and the directory is deleted) if a non-empty `<id>` already exists, or the project
    /// cannot be given. In the btrfs quota mode `<id>` is made in place (an Active
    /// snapshot's as a subvolume, its qgroup limited), failing if it exists; on failure
    /// what was made is deleted.
    ///
    /// Nothing is fsynced: a crash may lose it, and the directory then is garbage for
    /// Cleanup (or, recorded, re-created at open), exactly as if the crash came before it.
    /// Make the layer durable with [`Layout::make_durable`] before it is committed.
    pub fn install(mut self, id: u64) -> Result<()> {
        let target = self.snapshots.join(id.to_string());
        let Some(staged) = &self.staged else {
            return self.make_in_place(&target);
        };
        if let Unit::Project { base, limit } = self.unit {
            assign_project(&*self.fs, &staged.path, base, id, limit)?;
        }
        self.fs.rename(&staged.path, &target).map_err(|e| {
            Error::io(
                format!(
                    "failed to rename {} to {}",
                    staged.path.display(),
                    target.display()
                ),
                e,
            )
        })?;
        // Gone from its name: the claim goes with it.
        self.staged = None;
        Ok(())
    }

    /// The btrfs quota mode's install of `<id>` at `target` (see [`TempDir::install`]).
    fn make_in_place(&self, target: &Path) -> Result<()> {
        let fs = &*self.fs;
        let limit = match self.unit {
            Unit::Subvolume { limit } => limit,
            _ => None,
        };
        let made = match self.kind {
            // Limited in the same call: one ioctl, one transaction join.
            Kind::Active => fs
                .create_quota_dir(target, QuotaMode::Btrfs, limit)
                .map_err(|e| {
                    Error::io(
                        format!(
                            "cannot create subvolume {} limited to {limit:?} bytes",
                            target.display()
                        ),
                        e,
                    )
                }),
            _ => fs
                .create_dir(target)
                .map_err(|e| Error::io(format!("cannot create {}", target.display()), e)),
        };
        made?;
        let filled = fill(fs, target, self.kind, self.owner);
        if filled.is_err() {
            if let Err(e) = fs.remove_dir_all(target) {
                tracing::warn!(path = %target.display(), error = %e,
                    "failed to delete a half-made snapshot directory; the next open deletes it");
            }
        }
        filled
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if let Some(staged) = &self.staged {
            if let Err(e) = self.fs.remove_dir_all(&staged.path) {
                tracing::warn!(path = %staged.path.display(), error = %e,
                    "failed to remove temp snapshot directory; Cleanup will retry");
            }
        }
    }
}
