//! Read-only views of an open snapshotter, for a live daemon's operators:
//! [`Snapshotter::status`] (counts and journal size) and [`Snapshotter::check`] (what
//! [`Snapshotter::inspect`] reports of an offline root, computed without stopping the
//! snapshotter or taking the root's lock). Neither changes anything.

use super::reconcile::{reconcile, Reconcile};
use super::{OpenReport, Snapshotter};
use crate::error::{Error, Result};
use crate::fs::{FileKind, QuotaMode};
use crate::journal::Rebuild;

/// A snapshotter's counts at one moment ([`Snapshotter::status`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Status {
    /// Active snapshots.
    pub active: usize,
    /// Views.
    pub views: usize,
    /// Committed snapshots.
    pub committed: usize,
    /// Records written since the last checkpoint (or since opening, counting those
    /// replayed): what the next open would replay.
    pub records_since_checkpoint: u64,
    /// Bytes of the regular files in the journal directory `ROOT/journal` (log segments
    /// and checkpoints); 0 for a journal that keeps nothing there.
    pub journal_bytes: u64,
    /// How usage is measured and sizes are limited ([`Snapshotter::quota_mode`]).
    pub quota: QuotaMode,
    /// Why every change is refused until the snapshotter is reopened: the failed journal
    /// write or sync that stopped the writer (it never retries; reads keep working).
    /// `None` while changes are accepted.
    pub writes_refused: Option<String>,
}

impl Snapshotter {
    /// The published snapshots counted by kind, the records since the last checkpoint, the
    /// size of the journal directory and whether changes are refused. Reads memory and the
    /// journal directory's metadata; takes the writer lock only to read two fields.
    pub fn status(&self) -> Result<Status> {
        self.check_open()?;
        let kinds = self.kind_counts();
        let mut status = Status {
            active: kinds.active,
            views: kinds.view,
            committed: kinds.committed,
            quota: self.quota_mode(),
            ..Status::default()
        };
        {
            let w = self.writer.lock();
            status.records_since_checkpoint = w.since_checkpoint;
            status.writes_refused = w.poisoned.clone();
        }
        status.journal_bytes = self.journal_bytes()?;
        Ok(status)
    }

    /// What [`Snapshotter::inspect`] reports of an offline root, for this open snapshotter,
    /// changing nothing: the journal is read back through the live journal (after making
    /// everything submitted durable) and must rebuild exactly the state the snapshotter
    /// holds, and the directories are compared with that state as opening would (see the
    /// fields of [`OpenReport`]; `records_replayed` is what the next open would replay,
    /// and a live journal has no torn tail).
    ///
    /// Writers wait while it runs: it holds the writer lock, so that the journal, the state
    /// and the directories are looked at in one moment. A journal that does not read back
    /// into the live state is [`Error::Corrupt`].
    pub fn check(&self) -> Result<OpenReport> {
        self.check_open()?;
        let w = self.writer.lock();
        let mut rebuild = Rebuild::new();
        let read = self.journal.read_back(&mut rebuild)?;
        let recovery = rebuild.finish(read);
        if recovery.state != w.state {
            return Err(Error::Corrupt {
                path: self.layout.root().join("journal").display().to_string(),
                offset: 0,
                reason: format!(
                    "reading the journal back yields {} snapshots (next id {}), but the \
                     snapshotter holds {} (next id {})",
                    recovery.state.len(),
                    recovery.state.next_id(),
                    w.state.len(),
                    w.state.next_id()
                ),
            });
        }
        let mut report = reconcile(&self.layout, &w.state, Reconcile::Inspect)?;
        report.records_replayed = recovery.records_replayed;
        report.torn_tail = recovery.torn_tail;
        Ok(report)
    }

    /// The bytes of the regular files directly in `ROOT/journal`; 0 when it is missing.
    fn journal_bytes(&self) -> Result<u64> {
        let fs = self.layout.file_system();
        let dir = self.layout.root().join("journal");
        let names = match fs.read_dir(&dir) {
            Ok(names) => names,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(Error::io(format!("listing {}", dir.display()), e)),
        };
        let mut bytes = 0;
        for name in names {
            let path = dir.join(name);
            match fs.symlink_metadata(&path) {
                Ok(stat) if stat.kind == FileKind::File => bytes += stat.len,
                Ok(_) => {}
                // Replaced by a checkpoint between listing and looking.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io(format!("examining {}", path.display()), e)),
            }
        }
        Ok(bytes)
    }
}
