//! Reconciling the directories with a recovered state, after a crash or any restart: the
//! crash rules of the module documentation of [`snapshotter`](super), carried out
//! ([`Reconcile::Repair`], by open) or only reported ([`Reconcile::Inspect`], by inspect).

use super::OpenReport;
use crate::core::{Kind, State};
use crate::error::Result;
use crate::layout::{Entry, Layout};
use std::collections::BTreeSet;
use std::io;
use std::path::Path;

/// Whether [`reconcile`] changes the directories or only reports what it would change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Reconcile {
    /// Delete, re-create: what opening does.
    Repair,
    /// Change nothing, report what Repair would change.
    Inspect,
}

/// Makes the directories match a recovered state (the crash rules of
/// [`snapshotter`](super)), or with [`Reconcile::Inspect`] only reports what that would
/// change.
pub(super) fn reconcile(layout: &Layout, state: &State, mode: Reconcile) -> Result<OpenReport> {
    let ids = state.id_map();
    let mut report = OpenReport {
        snapshots: state.len(),
        quota: layout.quota_mode(),
        ..OpenReport::default()
    };
    let mut present = BTreeSet::new();
    for entry in layout.list_entries()? {
        match entry {
            Entry::Snapshot(id) if id >= state.next_id() => {
                if mode == Reconcile::Repair {
                    tracing::warn!(id, "deleting the directory of an id never issued");
                    layout.remove_dir(id)?;
                }
                report.unissued.push(id);
            }
            Entry::Snapshot(id) if ids.contains_key(&id) => {
                let s = state.get(ids[&id]).expect("id_map names live keys");
                // A snapshot directory made durable before what is in it (a btrfs
                // subvolume committed by the file system before its `fs` and `work` were):
                // an Active or View one is made again like a missing one; a Committed one
                // is damaged, as missing.
                if s.kind == Kind::Committed || complete(layout, id, s.kind) {
                    present.insert(id);
                } else if mode == Reconcile::Repair {
                    tracing::warn!(id, "deleting the incomplete directory of a snapshot");
                    layout.remove_dir(id)?;
                }
            }
            // In a project-quota mode a temporary directory may carry the project of an id
            // that was never issued, and that the next Prepare issues again: it goes now,
            // before anything measures that project (nothing is in flight while opening).
            Entry::Other(name)
                if mode == Reconcile::Repair && layout.quota_mode().uses_projects() =>
            {
                tracing::warn!(name = ?name, "deleting a temporary directory left by a crash");
                layout.remove_leftover(&name)?;
                report.orphans += 1;
            }
            _ => report.orphans += 1,
        }
    }
    for (&id, &key) in &ids {
        if present.contains(&id) {
            continue;
        }
        let s = state.get(key).expect("id_map names live keys");
        if s.kind == Kind::Committed {
            tracing::error!(key, id, "the directory of a committed snapshot is missing");
            report.damaged.push((key.to_owned(), id));
        } else if mode == Reconcile::Inspect {
            report.recreated.push(id);
        } else {
            tracing::warn!(key, id, "re-creating the missing directory of a snapshot");
            // Owned like the parent's fs, as Prepare made it; a parent whose directory is
            // missing too (reported as damaged) leaves it to the process's owner.
            let owner = s
                .parent
                .as_deref()
                .and_then(|p| state.get(p))
                .and_then(|parent| layout.fs_owner(parent.id).ok());
            let limit = layout.limit_for(s.kind, &s.labels);
            layout
                .prepare_dir_with_limit(s.kind, owner, limit)?
                .install(id)?;
            report.recreated.push(id);
        }
    }
    if mode == Reconcile::Repair {
        // After the directories: a limit of a project whose snapshot is not recorded (its
        // directory deleted, the clearing of its limit lost) goes.
        let stale = layout.sweep_project_limits(|id| ids.contains_key(&id))?;
        if !stale.is_empty() {
            tracing::warn!(
                ?stale,
                "cleared the limits of projects of no recorded snapshot"
            );
        }
    }
    Ok(report)
}

/// Whether the directory of snapshot `id`, a `kind` snapshot, holds what it is made with:
/// `fs`, and `work` for an Active one. An error other than NotFound counts as complete:
/// the snapshot's own operations then report it.
fn complete(layout: &Layout, id: u64, kind: Kind) -> bool {
    let fs = layout.file_system();
    let missing =
        |p: &Path| matches!(fs.symlink_metadata(p), Err(e) if e.kind() == io::ErrorKind::NotFound);
    !(missing(&layout.fs_path(id)) || (kind == Kind::Active && missing(&layout.work_path(id))))
}
