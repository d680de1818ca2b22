//! Opening a snapshotter: locking the root, opening and recovering the journal that
//! [`Options::journal`] names, reconciling the directories with the
//! recovered state (see `reconcile`), and [`Snapshotter::inspect`], which reports what
//! opening would do without doing it.

use super::pipeline::Writer;
use super::reconcile::{reconcile, Reconcile};
use super::{OpenReport, Options, Snapshotter};
use crate::error::{Error, Result};
use crate::fs::{DirLock, FileSystem, RealFs};
use crate::journal::{Journal, LogJournal, Recovery, Store};
use crate::layout::{Layout, QuotaChoice};
use crate::shared_flush::SharedFlush;
use crate::sync::{Mutex, RwLock};
use std::collections::VecDeque;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

impl Snapshotter {
    /// Opens (creating if needed) the snapshotter at `root`: locks the root against other
    /// processes, recovers the state from the journal chosen in `options` and reconciles the
    /// directories with it (see the module documentation).
    pub fn open(root: impl AsRef<Path>, options: Options) -> Result<Snapshotter> {
        Snapshotter::open_with_fs(Arc::new(RealFs), root, options)
    }

    /// Opens the snapshotter at `root` of the file system `fs` as [`Snapshotter::open`]
    /// does, with every file-system call of the layout and of the journal going to `fs`.
    /// With the simulated disk (`SimFs`, feature `testing`), crash tests run the production
    /// code over a disk that forgets what was not made durable. Mounting stays the host's:
    /// the returned mounts name paths of `fs`.
    pub fn open_with_fs(
        fs: Arc<dyn FileSystem>,
        root: impl AsRef<Path>,
        options: Options,
    ) -> Result<Snapshotter> {
        let layout = Layout::open_on(Arc::clone(&fs), root.as_ref(), &options.mount_options)?;
        let mut layout = with_options(layout, &options)?;
        let lock = fs.lock(layout.root())?;
        layout.enable_quotas(options.quota, options.default_size)?;
        let (journal, recovery) = options.journal.open(
            fs,
            &layout.root().join("journal"),
            options.journal_observer.clone(),
        )?;
        Snapshotter::assemble(layout, lock, journal, recovery, options)
    }

    /// Opens the snapshotter at `root` over a journal of the caller's (for example a
    /// fault-injecting one), with the state `recovery` read back from it.
    pub fn open_with_journal(
        root: impl AsRef<Path>,
        options: Options,
        journal: Box<dyn Journal>,
        recovery: Recovery,
    ) -> Result<Snapshotter> {
        let layout = Layout::open(root.as_ref(), &options.mount_options)?;
        let mut layout = with_options(layout, &options)?;
        let lock = DirLock::acquire(layout.root())?;
        layout.enable_quotas(options.quota, options.default_size)?;
        Snapshotter::assemble(layout, Some(lock), journal, recovery, options)
    }

    fn assemble(
        layout: Layout,
        lock: Option<DirLock>,
        journal: Box<dyn Journal>,
        recovery: Recovery,
        options: Options,
    ) -> Result<Snapshotter> {
        let state = recovery.state;
        let mut report = reconcile(&layout, &state, Reconcile::Repair)?;
        report.records_replayed = recovery.records_replayed;
        report.torn_tail = recovery.torn_tail;
        tracing::info!(
            root = %layout.root().display(),
            snapshots = report.snapshots,
            replayed = report.records_replayed,
            recreated = report.recreated.len(),
            damaged = report.damaged.len(),
            orphans = report.orphans,
            quota = %layout.quota_mode(),
            "snapshotter opened"
        );
        if !layout.quota_mode().has_quotas() {
            tracing::info!(
                "no quotas in force: usage walks each layer, and the \
                 containerd.io/snapshot/max-size label and default_size are accepted and ignored"
            );
        }
        Ok(Snapshotter {
            writer: Mutex::new(Writer {
                state: state.clone(),
                since_checkpoint: report.records_replayed,
                poisoned: None,
            }),
            visible: RwLock::new(state),
            pending: Mutex::new(VecDeque::new()),
            layout,
            journal,
            layer_sync: SharedFlush::default(),
            options,
            report,
            closed: AtomicBool::new(false),
            _lock: lock,
        })
    }

    /// What [`Snapshotter::open`] would find at the log-journaled root `root` and do there,
    /// without doing it: the journal is read back but not repaired, and the directories are
    /// compared with the recovered state but not changed (see the fields of
    /// [`OpenReport`]). Like `open`, it locks the root for its duration, so it refuses a
    /// root that a live process holds. It writes only the lock files (and the empty
    /// `snapshots`, `l` and `journal` directories of a root that lacks them). A missing
    /// root is NotFound, not created.
    pub fn inspect(root: impl AsRef<Path>) -> Result<OpenReport> {
        let root = root.as_ref();
        if !root.exists() {
            return Err(Error::NotFound(format!(
                "snapshotter root {} does not exist",
                root.display()
            )));
        }
        let mut layout = Layout::open(root, &[])?;
        let _lock = DirLock::acquire(layout.root())?;
        layout.choose_quotas(QuotaChoice::Auto)?;
        let recovery = LogJournal::inspect(&Store::open_dir(layout.root().join("journal"))?)?;
        let mut report = reconcile(&layout, &recovery.state, Reconcile::Inspect)?;
        report.records_replayed = recovery.records_replayed;
        report.torn_tail = recovery.torn_tail;
        Ok(report)
    }
}

/// `layout` with what `options` ask of it beyond the mount options: the empty lower layer
/// of parentless Active snapshots for [`Options::rebase`], created (or checked) like
/// `snapshots` and `l` before the root is locked, so that a refusal writes nothing (not
/// even the lock file).
fn with_options(layout: Layout, options: &Options) -> Result<Layout> {
    match options.rebase {
        true => layout.with_empty_lower(),
        false => Ok(layout),
    }
}
