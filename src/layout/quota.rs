//! Quotas of snapshot directories: which [`QuotaMode`] a root uses, the unit of each
//! snapshot directory, the limit an Active snapshot gets, and usage from the quota.
//!
//! - **Mode.** Chosen when the snapshotter opens ([`Layout::enable_quotas`]): what the
//!   root's file system offers ([`FileSystem::quota_mode`]), unless quotas are turned off
//!   ([`QuotaChoice::Off`]). A quota mode is recorded in `ROOT/quota` (put in place with a
//!   synced temporary file); a root whose file says a quota mode that its file system no
//!   longer offers is refused (FailedPrecondition naming the change), never measured
//!   wrongly.
//! - **Units.** Only Active snapshots get one, built when their directory is installed:
//!   with btrfs `<id>` is created in place as a subvolume (so `fs` and `work`, which
//!   overlayfs renames between, share it) and its qgroup limited (temp.rs); project quotas
//!   give the
//!   directory, `fs` and `work` the project [`Layout::project_of`]`(id)` and set its limit at
//!   install, under the writer lock, since the id is known only then. A directory that is
//!   not its snapshot's unit (made before quotas were on) is measured by the walk.
//! - **Project ids.** A root takes a block of [`PROJECT_BLOCK`] project ids for itself when
//!   it first opens in a project mode: the first block whose first id is free on the file
//!   system, claimed by giving the empty directory `ROOT/project-block` that id and
//!   checking that only it is charged to it (another root on the same file system
//!   charges its own `project-block` to its block's first id). The block's first id is recorded in `ROOT/quota`; snapshot `id`'s
//!   project is that plus `id` ([`Layout::project_of`]). Snapshot ids are never reused, so
//!   no table maps them, and a project id is never shared by two snapshots, of this root
//!   or of another. A limit left on the project of an id that was never issued (a crash
//!   before its record was durable) is overwritten when the id is issued: install always
//!   sets the limit, `None` included.
//! - **Release.** Removing a directory deletes the subvolume with its qgroup
//!   ([`FileSystem::remove_dir_all`]) or clears the project's limit. A limit left on the
//!   project of a snapshot that is not recorded (a crash before the clearing was durable)
//!   is cleared at open ([`Layout::sweep_project_limits`]).

use super::project_block::{blocks, PROJECT_BLOCK};
use super::Layout;
use crate::core::{max_size, Kind, Labels, Usage};
use crate::error::{Error, Result};
use crate::fs::{FileSystem, QuotaMode, QuotaUnit, QuotaUsage};
use std::io;

/// The file in the root that records the quota mode the root's directories were made in.
pub const QUOTA_FILE: &str = "quota";

/// Whether a snapshotter uses the file system's quotas ([`Layout::enable_quotas`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum QuotaChoice {
    /// Use what the root's file system offers (the default).
    #[default]
    Auto,
    /// Never: usage walks the layers and no limit is set, whatever the file system
    /// offers (limits set earlier stay in force in the file system).
    Off,
}

impl Layout {
    /// The quota mode in force (see the module documentation).
    pub fn quota_mode(&self) -> QuotaMode {
        self.quota
    }

    /// The project id of snapshot `id` in a project-quota mode: the root's block's first
    /// id plus `id`. `None` without project quotas, or for an id past the block (the
    /// root then cannot give new snapshots a project: [`PROJECT_BLOCK`] ids per root).
    pub fn project_of(&self, id: u64) -> Option<u32> {
        let base = self.project_base?;
        let id = u32::try_from(id).ok().filter(|&id| id < PROJECT_BLOCK)?;
        base.checked_add(id).filter(|&p| p != u32::MAX)
    }

    /// Chooses the quota mode as `choice` says, checks it against `ROOT/quota` and records
    /// it there, and sets the limit of Active snapshots without a size label
    /// (`default_size`; ignored without quotas). Call once, with the root locked.
    ///
    /// FailedPrecondition when `ROOT/quota` records a quota mode the file system no longer
    /// offers (btrfs quotas disabled, XFS or ext4 mounted without `prjquota`).
    pub fn enable_quotas(
        &mut self,
        choice: QuotaChoice,
        default_size: Option<u64>,
    ) -> Result<QuotaMode> {
        self.default_size = default_size.filter(|&n| n > 0);
        let (mode, recorded) = self.choose_quotas(choice)?;
        if mode.uses_projects() && self.project_base.is_none() {
            self.project_base = Some(self.claim_project_block()?);
        }
        if mode.has_quotas() && !recorded {
            self.record_mode(mode)?;
        }
        Ok(mode)
    }

    /// [`Layout::enable_quotas`] without writing `ROOT/quota`: the mode chosen, and whether
    /// `ROOT/quota` already names it (for the snapshotter's inspect, which changes
    /// nothing).
    pub fn choose_quotas(&mut self, choice: QuotaChoice) -> Result<(QuotaMode, bool)> {
        if choice == QuotaChoice::Off {
            self.quota = QuotaMode::Walk;
            return Ok((self.quota, false));
        }
        let detected = self.fs.quota_mode(&self.root).map_err(|e| {
            Error::io(
                format!("cannot find out what quotas {} offers", self.root.display()),
                e,
            )
        })?;
        let file = self.root.join(QUOTA_FILE);
        let recorded = match self.fs.read_file(&file) {
            Ok(bytes) => Some(parse_record(&String::from_utf8_lossy(&bytes)).map_err(
                |reason| Error::Corrupt {
                    path: file.display().to_string(),
                    offset: 0,
                    reason,
                },
            )?),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(Error::io(format!("cannot read {}", file.display()), e)),
        };
        if let Some((was, _)) = recorded {
            if was.has_quotas() && was != detected {
                return Err(Error::FailedPrecondition(lost_quotas(
                    &self.root.display().to_string(),
                    was,
                    detected,
                )));
            }
        }
        self.quota = detected;
        let same = recorded.filter(|&(was, _)| was == detected);
        self.project_base = same.and_then(|(_, base)| base);
        Ok((detected, same.is_some()))
    }

    /// Puts `ROOT/quota` in place, naming `mode` (and the project block), durably.
    fn record_mode(&self, mode: QuotaMode) -> Result<()> {
        let file = self.root.join(QUOTA_FILE);
        let tmp = self.root.join(format!("{QUOTA_FILE}.tmp"));
        let context = || format!("cannot record the quota mode in {}", file.display());
        let write = || -> io::Result<()> {
            let handle = self.fs.create_file(&tmp)?;
            let text = match self.project_base {
                Some(base) => format!("{mode}\nproject-base {base}\n"),
                None => format!("{mode}\n"),
            };
            handle.write_at(0, text.as_bytes())?;
            handle.sync_data()?;
            self.fs.rename(&tmp, &file)?;
            self.fs.sync_dir(&self.root)
        };
        write().map_err(|e| Error::io(context(), e))
    }

    /// The limit a new snapshot of `kind` with `labels` gets: its
    /// [`MAX_SIZE_LABEL`](crate::core::MAX_SIZE_LABEL), else the default size; `None` for
    /// Views and without quotas. A label that does not parse (stored by a build that did
    /// not check it) counts as absent.
    pub fn limit_for(&self, kind: Kind, labels: &Labels) -> Option<u64> {
        if kind != Kind::Active || !self.quota.has_quotas() {
            return None;
        }
        max_size(labels).ok().flatten().or(self.default_size)
    }

    /// The quota unit snapshot `id`'s directory has in this mode, if any.
    pub(super) fn unit_of(&self, id: u64) -> Option<QuotaUnit> {
        match self.quota {
            QuotaMode::Walk => None,
            QuotaMode::Btrfs => Some(QuotaUnit::Subvolume),
            QuotaMode::XfsProject | QuotaMode::Ext4Project => {
                self.project_of(id).map(QuotaUnit::Project)
            }
        }
    }

    /// What the quota reports of snapshot `id`'s directory: `None` without quotas, or when
    /// the directory is not its unit (made before quotas were on).
    pub fn quota_usage(&self, id: u64) -> Result<Option<QuotaUsage>> {
        let Some(unit) = self.unit_of(id) else {
            return Ok(None);
        };
        let dir = self.snapshot_dir(id);
        self.fs
            .quota_usage(&dir, unit)
            .map_err(|e| Error::io(format!("cannot read the quota of {}", dir.display()), e))
    }

    /// The usage of snapshot `id` from its quota, as containerd's Usage (btrfs counts no
    /// inodes: 0), or `None` (see [`Layout::quota_usage`]).
    pub(super) fn usage_from_quota(&self, id: u64) -> Result<Option<Usage>> {
        Ok(self.quota_usage(id)?.map(|q| Usage {
            size: i64::try_from(q.bytes).unwrap_or(i64::MAX),
            inodes: q.inodes.map_or(0, |n| i64::try_from(n).unwrap_or(i64::MAX)),
        }))
    }

    /// Clears the limit of every project of the root's block whose snapshot id is not
    /// `live` (a crash between deleting a directory and clearing its project's limit, or
    /// before the clearing was durable, leaves one); the project ids cleared. One
    /// `Q_GETNEXTQUOTA` per project with a quota record from the block on
    /// ([`FileSystem::limited_projects`]): bounded by the projects in use. Nothing outside
    /// the mode: btrfs limits go with their subvolumes; other roots' blocks are theirs.
    pub fn sweep_project_limits(&self, live: impl Fn(u64) -> bool) -> Result<Vec<u32>> {
        let Some(base) = self.project_base else {
            return Ok(Vec::new());
        };
        let limited = self
            .fs
            .limited_projects(&self.snapshots, base + 1)
            .map_err(|e| Error::io("cannot list the project quotas", e))?;
        let mut cleared = Vec::new();
        for project in limited
            .into_iter()
            .take_while(|&p| p - base < PROJECT_BLOCK)
        {
            let id = u64::from(project - base);
            if live(id) {
                continue;
            }
            self.fs
                .set_quota_limit(&self.snapshots, QuotaUnit::Project(project), None)
                .map_err(|e| {
                    Error::io(format!("cannot clear the limit of project {project}"), e)
                })?;
            cleared.push(project);
        }
        Ok(cleared)
    }

    /// Clears the limit of the project of snapshot `id`, whose directory is gone.
    pub(super) fn release_project(&self, id: u64) -> Result<()> {
        match self.project_of(id) {
            Some(project) => self
                .fs
                .set_quota_limit(&self.snapshots, QuotaUnit::Project(project), None)
                .map_err(|e| Error::io(format!("cannot clear the limit of project {project}"), e)),
            None => Ok(()),
        }
    }
}

/// Makes the directory `dir` (holding `fs` and `work`) the project of snapshot `id` in
/// the block that starts at `base` ([`Layout::project_of`]), with `limit` (`None` clears
/// a limit left from before): the last step before it is installed.
pub(super) fn assign_project(
    fs: &dyn FileSystem,
    dir: &std::path::Path,
    base: u32,
    id: u64,
    limit: Option<u64>,
) -> Result<()> {
    let project = u32::try_from(id)
        .ok()
        .filter(|&id| id < PROJECT_BLOCK)
        .and_then(|id| base.checked_add(id))
        .filter(|&p| p != u32::MAX)
        .ok_or_else(|| {
            Error::FailedPrecondition(format!(
                "snapshot id {id} has no project id: a root gives out at most {} project ids",
                PROJECT_BLOCK - 1
            ))
        })?;
    let context = || format!("cannot give {} project {project}", dir.display());
    for d in [dir.to_path_buf(), dir.join("fs"), dir.join("work")] {
        fs.assign_project(&d, project)
            .map_err(|e| Error::io(context(), e))?;
    }
    fs.set_quota_limit(dir, QuotaUnit::Project(project), limit)
        .map_err(|e| Error::io(context(), e))
}

/// The content of `ROOT/quota`: the mode's name on the first line, then, in a project
/// mode, `project-base N`.
fn parse_record(text: &str) -> std::result::Result<(QuotaMode, Option<u32>), String> {
    let mut lines = text.lines();
    let name = lines.next().unwrap_or("").trim();
    let mode = QuotaMode::from_name(name).ok_or(format!("unknown quota mode {name:?}"))?;
    let base = match lines.next().map(str::trim) {
        None | Some("") if !mode.uses_projects() => None,
        Some(line) if mode.uses_projects() => {
            let base = line
                .strip_prefix("project-base ")
                .and_then(|n| n.parse::<u32>().ok())
                .filter(|b| blocks().any(|k| k == *b))
                .ok_or(format!("bad project block {line:?}"))?;
            Some(base)
        }
        other => return Err(format!("unexpected line {other:?} after {name:?}")),
    };
    Ok((mode, base))
}

/// The message for a root whose file system lost the quotas it was made with.
fn lost_quotas(root: &str, was: QuotaMode, now: QuotaMode) -> String {
    let how = match was {
        QuotaMode::Btrfs => "btrfs quotas are disabled; run `btrfs quota enable` on it".to_owned(),
        QuotaMode::XfsProject | QuotaMode::Ext4Project => {
            "its file system is mounted without project quotas; remount it with -o prjquota"
                .to_owned()
        }
        QuotaMode::Walk => String::new(),
    };
    format!(
        "root {root} was made with {was} quotas ({root}/{QUOTA_FILE}), but its file system now \
         offers {now}: {how}, or open it with quotas off to measure by walking"
    )
}

#[cfg(test)]
mod tests {
    use super::super::project_block::PROJECT_ID_BASE;
    use super::*;

    #[test]
    fn the_record_names_the_mode_and_in_a_project_mode_the_block() {
        let base = PROJECT_ID_BASE + 3 * PROJECT_BLOCK;
        assert_eq!(parse_record("btrfs\n"), Ok((QuotaMode::Btrfs, None)));
        assert_eq!(
            parse_record(&format!("xfs-project\nproject-base {base}\n")),
            Ok((QuotaMode::XfsProject, Some(base)))
        );
        for bad in [
            "zfs\n".to_owned(),
            "xfs-project\n".to_owned(),
            format!("ext4-project\nproject-base {}\n", base + 1),
            "ext4-project\nproject-base x\n".to_owned(),
            format!("btrfs\nproject-base {base}\n"),
        ] {
            assert!(parse_record(&bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_lost_quota_message_names_the_modes_and_the_fix() {
        let m = lost_quotas("/r", QuotaMode::XfsProject, QuotaMode::Walk);
        assert!(
            m.contains("xfs-project") && m.contains("walk") && m.contains("prjquota"),
            "{m}"
        );
        let m = lost_quotas("/r", QuotaMode::Btrfs, QuotaMode::Walk);
        assert!(m.contains("btrfs quota enable"), "{m}");
    }
}
