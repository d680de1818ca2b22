//! Creating a snapshot directory: a `new-*` directory is filled, then renamed to `<id>`.

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
    /// In a project-quota mode, for an Active snapshot: the root's project block
    /// ([`Layout::project_of`]) and the limit its project gets at install (`None`: no
    /// limit), when the id is known.
    project: Option<(u32, Option<u64>)>,
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
    /// with the hard limit `limit` in a quota mode (see quota.rs): btrfs makes it a
    /// subvolume and limits its qgroup now, project quotas give it its project at
    /// [`TempDir::install`]. Without quotas, or for a View, `limit` is ignored.
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
            let created = match (kind, self.quota) {
                (Kind::Active, QuotaMode::Btrfs) => self.fs.create_quota_dir(&path, self.quota),
                _ => self.fs.create_dir(&path),
            };
            match created {
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
            project: match (kind, self.project_base) {
                (Kind::Active, Some(base)) => Some((base, limit)),
                _ => None,
            },
        };
        self.set_mode(&dir.path, 0o700)?;
        let fs_dir = dir.fs_path();
        self.make_dir(&fs_dir, 0o755)?;
        if kind == Kind::Active {
            self.make_dir(&dir.path.join("work"), 0o711)?;
        }
        if let Some(Owner { uid, gid }) = owner {
            self.fs.lchown(&fs_dir, uid, gid).map_err(|e| {
                Error::io(
                    format!("failed to chown {} to {uid}:{gid}", fs_dir.display()),
                    e,
                )
            })?;
        }
        if let (Kind::Active, QuotaMode::Btrfs, Some(bytes)) = (kind, self.quota, limit) {
            self.fs
                .set_quota_limit(&dir.path, QuotaUnit::Subvolume, Some(bytes))
                .map_err(|e| {
                    Error::io(
                        format!("cannot limit {} to {bytes} bytes", dir.path.display()),
                        e,
                    )
                })?;
        }
        Ok(dir)
    }

    /// Creates `path` with exactly `mode`.
    fn make_dir(&self, path: &Path, mode: u32) -> Result<()> {
        self.fs
            .create_dir(path)
            .map_err(|e| Error::io(format!("cannot create {}", path.display()), e))?;
        self.set_mode(path, mode)
    }
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
    /// non-empty `<id>` already exists, or the project cannot be given.
    ///
    /// The rename is not fsynced: a crash may lose it, and the directory then is garbage for
    /// Cleanup, exactly as if the crash came before it. Make the layer durable with
    /// [`Layout::make_durable`] before it is committed.
    pub fn install(mut self, id: u64) -> Result<()> {
        if let Some((base, limit)) = self.project {
            assign_project(&*self.fs, &self.path, base, id, limit)?;
        }
        let target = self.snapshots.join(id.to_string());
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
