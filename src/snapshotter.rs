//! The Snapshotter: the pure core, a journal and the on-disk layout joined into containerd's
//! overlay snapshotter.
//!
//! # Locking
//! Three locks. `pending` is always taken last and never held across anything but a queue
//! operation; `visible` and `writer` are never held together.
//! - `visible` (a read-write lock) holds the state readers see: every record that is
//!   durable and whose directory is in place. Stat, Mounts, Walk and Usage take it for
//!   reading only long enough to copy what they need; they never wait behind I/O, and
//!   whoever holds it for writing only applies records from `pending`.
//! - `writer` holds the *decided* state: `visible` plus the records submitted to the
//!   journal but not yet published. A write decides against it, applies the record to it,
//!   submits the record and queues it in `pending` while holding it (microseconds, no
//!   waiting for disk), then waits for durability without it, so concurrent writers share
//!   one fsync (group commit). Checkpoints hold it while they write.
//! - `pending` queues the submitted records in submission order until they are published.
//!
//! Slow work (mkdir, chown, du, fsync of a layer) happens before the writer lock and is
//! checked again when the record is decided under it. Concurrent Commits share their
//! layer's syncfs (a shared flush with its own lock, taken with none of the others held).
//! Records reach `visible` strictly in submission order: a writer whose ticket is durable
//! publishes every pending record up to its own, since tickets become durable in order.
//!
//! # Crash rules
//! A snapshot's `<id>` directory is installed (renamed from `new-*`) under the writer lock,
//! just before its record is submitted. After a crash, [`Snapshotter::open`] reconciles the
//! directories with the recovered state: `<id>` directories of ids the journal never issued
//! are deleted (their records were never acknowledged), missing directories of Active and
//! View snapshots are re-created empty (owned like their parent's, as Prepare made them),
//! and missing directories of Committed snapshots are reported as damage, never
//! re-created. Everything else that is not live is garbage for [`Snapshotter::cleanup`].
//! [`Snapshotter::inspect`] reports what opening would change, and changes nothing.

use crate::core::{
    Command, Filter, Info, Kind, Labels, MountPlan, Record, State, Timestamp, Usage,
};
use crate::error::{Error, Result};
use crate::fs::{DirLock, FileSystem, Mount, RealFs};
use crate::journal::{Backend, Journal, LogBackend, LogJournal, Recovery, Store, Ticket, TornTail};
use crate::layout::{Entry, Layout};
use crate::shared_flush::SharedFlush;
use crate::sync::{Mutex, RwLock};
use std::collections::{BTreeSet, VecDeque};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// containerd's label that carries the upper directory when [`Options::upperdir_label`] is
/// set (`WithUpperdirLabel`).
pub const UPPERDIR_LABEL: &str = "containerd.io/snapshot/overlay.upperdir";

/// How a [`Snapshotter`] behaves; `Options::default()` is containerd's default overlay
/// snapshotter with a durable log.
#[derive(Debug, Clone)]
pub struct Options {
    /// Delete a removed snapshot's directory at once (containerd's sync remove). When false
    /// (containerd's default, async remove) directories go at the next [`Snapshotter::cleanup`].
    pub sync_remove: bool,
    /// Add [`UPPERDIR_LABEL`] with the upper directory to every Info returned.
    pub upperdir_label: bool,
    /// Options appended to every overlay mount (containerd's `mount_options`).
    pub mount_options: Vec<String>,
    /// Where the records go: the journal opened at `ROOT/journal` ([`LogBackend`], the
    /// durable default; [`MemoryBackend`](crate::journal::MemoryBackend); or an
    /// embedder's own [`Backend`]).
    pub journal: Arc<dyn Backend>,
    /// Take a checkpoint after this many records, so recovery replays at most about this
    /// many; 0 never checkpoints automatically.
    pub checkpoint_every: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            sync_remove: false,
            upperdir_label: false,
            mount_options: Vec::new(),
            journal: Arc::new(LogBackend),
            checkpoint_every: 100_000,
        }
    }
}

/// What [`Snapshotter::open`] found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OpenReport {
    /// Snapshots recovered from the journal.
    pub snapshots: usize,
    /// Records replayed on top of the newest checkpoint.
    pub records_replayed: u64,
    /// A torn tail the journal truncated ([`Snapshotter::inspect`]: found, not truncated).
    pub torn_tail: Option<TornTail>,
    /// Ids of Active or View snapshots whose missing directories were re-created empty
    /// ([`Snapshotter::inspect`]: found missing, not re-created).
    pub recreated: Vec<u64>,
    /// `<id>` directories of ids never issued (records lost before acknowledgement),
    /// deleted ([`Snapshotter::inspect`]: found, not deleted).
    pub unissued: Vec<u64>,
    /// Committed snapshots whose directory is missing: (name, id). Their layers are lost;
    /// nothing re-creates them.
    pub damaged: Vec<(String, u64)>,
    /// Entries of `ROOT/snapshots` that belong to no live snapshot: garbage for Cleanup.
    pub orphans: usize,
}

/// The state a writer works on.
struct Writer {
    /// Visible state plus every submitted record. Invariant: equals the journal's state
    /// after everything submitted.
    state: State,
    /// Records submitted since the last checkpoint.
    since_checkpoint: u64,
    /// Set when the journal failed: what is durable is then unknown, so no more writes
    /// until the snapshotter is reopened.
    poisoned: Option<String>,
}

/// A containerd overlay snapshotter over a root directory. See the module documentation
/// for its locking and crash rules. All methods take `&self`: share it across threads.
pub struct Snapshotter {
    layout: Layout,
    journal: Box<dyn Journal>,
    /// The published state (see the module documentation).
    visible: RwLock<State>,
    writer: Mutex<Writer>,
    /// Records submitted but not yet in `visible`, in submission order.
    pending: Mutex<VecDeque<(Ticket, Record)>>,
    /// The syncfs of Commits, shared by concurrent ones (see [`SharedFlush`]).
    layer_sync: SharedFlush,
    options: Options,
    report: OpenReport,
    closed: AtomicBool,
    /// Held for the snapshotter's lifetime: one process per root. `None` only on a file
    /// system no other process can reach ([`FileSystem::lock`]).
    _lock: Option<DirLock>,
}

impl std::fmt::Debug for Snapshotter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshotter")
            .field("root", &self.layout.root())
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// The current time as the core takes it.
fn now() -> Timestamp {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    Timestamp::new(d.as_secs() as i64, d.subsec_nanos())
}

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
        let lock = fs.lock(layout.root())?;
        let (journal, recovery) = options.journal.open(fs, &layout.root().join("journal"))?;
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
        let lock = DirLock::acquire(layout.root())?;
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
            "snapshotter opened"
        );
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
        let layout = Layout::open(root, &[])?;
        let _lock = DirLock::acquire(layout.root())?;
        let recovery = LogJournal::inspect(&Store::open_dir(layout.root().join("journal"))?)?;
        let mut report = reconcile(&layout, &recovery.state, Reconcile::Inspect)?;
        report.records_replayed = recovery.records_replayed;
        report.torn_tail = recovery.torn_tail;
        Ok(report)
    }

    /// What opening found and did.
    pub fn open_report(&self) -> &OpenReport {
        &self.report
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        self.layout.root()
    }

    /// The options the snapshotter was opened with.
    pub fn options(&self) -> &Options {
        &self.options
    }

    fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::FailedPrecondition("snapshotter is closed".into()));
        }
        Ok(())
    }

    /// Decides `cmd` under the writer lock and runs `on_decided` with the state it was
    /// decided on and the record (still under the lock; it may refuse, and what it returns
    /// is what the caller answers, so it never has to look the key up again), then submits
    /// the record, waits until it is durable and publishes it.
    fn execute<T>(
        &self,
        cmd: &Command,
        on_decided: impl FnOnce(&State, &Record) -> Result<T>,
    ) -> Result<(Record, T)> {
        self.check_open()?;
        let (ticket, record, answer) = {
            let mut w = self.writer.lock();
            if let Some(why) = &w.poisoned {
                return Err(Error::io(
                    "snapshotter refuses writes after a journal failure; reopen it",
                    std::io::Error::other(why.clone()),
                ));
            }
            let decided = w
                .state
                .decide(cmd)
                .and_then(|record| Ok((on_decided(&w.state, &record)?, record)));
            let (answer, record) = match decided {
                Ok(decided) => decided,
                Err(refusal) => {
                    drop(w);
                    return Err(self.settle(refusal));
                }
            };
            let ticket = match self.journal.submit(std::slice::from_ref(&record)) {
                Ok(t) => t,
                Err(e) => {
                    w.poisoned = Some(e.to_string());
                    return Err(e);
                }
            };
            w.state.apply(&record);
            self.pending.lock().push_back((ticket, record.clone()));
            w.since_checkpoint += 1;
            (ticket, record, answer)
        };
        if let Err(e) = self.journal.wait(ticket) {
            self.writer.lock().poisoned = Some(e.to_string());
            return Err(e);
        }
        self.publish(ticket);
        self.maybe_checkpoint();
        Ok((record, answer))
    }

    /// Returns `refusal` only once every record it may have been decided on is durable and
    /// published: a refusal must not reflect a write that a crash could still undo, nor one
    /// that the caller's next read cannot see yet.
    fn settle(&self, refusal: Error) -> Error {
        let newest = self.pending.lock().back().map(|(ticket, _)| *ticket);
        if let Some(ticket) = newest {
            if let Err(e) = self.journal.wait(ticket) {
                self.writer.lock().poisoned = Some(e.to_string());
                return e;
            }
            self.publish(ticket);
        }
        refusal
    }

    /// The answer for slow work on snapshot `id` that failed with `error` outside the
    /// locks: when `cmd` (decided again now) is refused, or now names another snapshot, the
    /// disk changed under it because of a concurrent call, and that is the answer;
    /// otherwise `error` itself.
    fn recheck(&self, cmd: &Command, id: u64, error: Error) -> Error {
        match self.visible.read().decide(cmd) {
            Err(refused) => refused,
            Ok(record) if record.id() != id => replaced(cmd),
            Ok(_) => error,
        }
    }

    /// Moves every pending record up to `upto` (all durable) into the visible state.
    fn publish(&self, upto: Ticket) {
        let mut visible = self.visible.write();
        let mut pending = self.pending.lock();
        while pending.front().is_some_and(|(t, _)| *t <= upto) {
            if let Some((_, record)) = pending.pop_front() {
                visible.apply(&record);
            }
        }
    }

    fn maybe_checkpoint(&self) {
        let every = self.options.checkpoint_every;
        let mut w = self.writer.lock();
        if every == 0 || w.since_checkpoint < every || w.poisoned.is_some() {
            return;
        }
        match self.journal.checkpoint(&w.state.checkpoint()) {
            Ok(()) => w.since_checkpoint = 0,
            Err(e) => {
                tracing::error!(error = %e, "checkpoint failed; refusing further writes");
                w.poisoned = Some(e.to_string());
            }
        }
    }

    /// Writes a checkpoint now, so that the next open replays nothing.
    pub fn checkpoint(&self) -> Result<()> {
        self.check_open()?;
        let mut w = self.writer.lock();
        self.journal.checkpoint(&w.state.checkpoint())?;
        w.since_checkpoint = 0;
        Ok(())
    }

    /// containerd's Prepare: a new Active snapshot `key` above the committed `parent`,
    /// with the mounts to use it.
    pub fn prepare(&self, key: &str, parent: Option<&str>, labels: Labels) -> Result<Vec<Mount>> {
        self.create(Kind::Active, key, parent, labels)
    }

    /// containerd's View: a new read-only snapshot `key` of the committed `parent`, with the
    /// mounts to use it.
    pub fn view(&self, key: &str, parent: Option<&str>, labels: Labels) -> Result<Vec<Mount>> {
        self.create(Kind::View, key, parent, labels)
    }

    fn create(
        &self,
        kind: Kind,
        key: &str,
        parent: Option<&str>,
        labels: Labels,
    ) -> Result<Vec<Mount>> {
        let now = now();
        let (owned_key, owned_parent) = (key.to_owned(), parent.map(str::to_owned));
        let cmd = match kind {
            Kind::View => Command::View {
                key: owned_key,
                parent: owned_parent,
                labels,
                now,
            },
            _ => Command::Prepare {
                key: owned_key,
                parent: owned_parent,
                labels,
                now,
            },
        };
        self.check_open()?;
        // Refuse bad requests before touching the disk, and learn the parent's id.
        let parent_id = {
            let visible = self.visible.read();
            visible.decide(&cmd)?;
            parent.and_then(|p| visible.get(p)).map(|s| s.id)
        };
        let prepared = parent_id
            .map(|id| {
                self.layout
                    .fs_owner(id)
                    .map_err(|e| self.recheck_parent(&cmd, id, e))
            })
            .transpose()
            .and_then(|owner| self.layout.prepare_dir(kind, owner));
        let mut temp = Some(prepared?);
        let (_, plan) = self.execute(&cmd, |state, record| {
            if parent.and_then(|p| state.get(p)).map(|s| s.id) != parent_id {
                return Err(replaced(&cmd));
            }
            if let Some(t) = temp.take() {
                t.install(record.id())?;
            }
            let parents = match parent {
                Some(p) => std::iter::once(state.get(p).map_or(0, |s| s.id))
                    .chain(state.parent_ids(p)?)
                    .collect(),
                None => Vec::new(),
            };
            Ok(MountPlan {
                id: record.id(),
                kind,
                parents,
            })
        })?;
        self.layout.mounts(&plan)
    }

    /// [`Snapshotter::recheck`] for a failure on the parent (id `parent_id`) of the
    /// snapshot that `cmd` creates.
    fn recheck_parent(&self, cmd: &Command, parent_id: u64, error: Error) -> Error {
        let visible = self.visible.read();
        let parent = match cmd {
            Command::Prepare { parent, .. } | Command::View { parent, .. } => parent.as_deref(),
            _ => None,
        };
        match visible.decide(cmd) {
            Err(refused) => refused,
            Ok(_) if parent.and_then(|p| visible.get(p)).map(|s| s.id) != Some(parent_id) => {
                replaced(cmd)
            }
            Ok(_) => error,
        }
    }

    /// containerd's Mounts: the mounts of the Active or View snapshot `key`.
    pub fn mounts(&self, key: &str) -> Result<Vec<Mount>> {
        self.check_open()?;
        let plan = self.visible.read().mounts_plan(key)?;
        self.layout.mounts(&plan)
    }

    /// containerd's Commit: the Active snapshot `key` becomes the Committed snapshot
    /// `name`, its usage measured and its layer made durable before the record is.
    pub fn commit(&self, name: &str, key: &str, labels: Labels) -> Result<()> {
        self.check_open()?;
        let mut cmd = Command::Commit {
            name: name.to_owned(),
            key: key.to_owned(),
            labels,
            usage: Usage::default(),
            now: now(),
        };
        // Refuse bad requests before the slow work, and learn the id.
        let id = self.visible.read().decide(&cmd)?.id();
        let measured = self
            .layout
            .usage(id)
            .and_then(|usage| {
                // One syncfs covers the whole file system: a Commit arriving while another
                // one's runs waits for the next and shares it.
                let sync = || self.layout.make_durable(id);
                self.layer_sync.run(sync).map(|()| usage)
            })
            .map_err(|e| self.recheck(&cmd, id, e))?;
        if let Command::Commit { usage, .. } = &mut cmd {
            *usage = measured;
        }
        self.execute(&cmd, |_, record| {
            if record.id() == id {
                Ok(())
            } else {
                Err(replaced(&cmd))
            }
        })?;
        Ok(())
    }

    /// containerd's Remove: the snapshot `key` goes at once; its directory now
    /// ([`Options::sync_remove`]) or at the next Cleanup.
    pub fn remove(&self, key: &str) -> Result<()> {
        let (record, ()) = self.execute(
            &Command::Remove {
                key: key.to_owned(),
            },
            |_, _| Ok(()),
        )?;
        if self.options.sync_remove {
            if let Err(e) = self.layout.remove_dir(record.id()) {
                tracing::warn!(key, id = record.id(), error = %e,
                    "failed to delete a removed snapshot's directory; Cleanup will retry");
            }
        }
        Ok(())
    }

    /// containerd's Stat.
    pub fn stat(&self, key: &str) -> Result<Info> {
        self.check_open()?;
        let info = self.visible.read().stat(key)?;
        Ok(self.labelled(info))
    }

    /// containerd's Update: changes the labels of `key` as `fieldpaths` say (see
    /// [`Command::Update`]) and returns the new Info.
    pub fn update(&self, key: &str, labels: Labels, fieldpaths: &[String]) -> Result<Info> {
        let cmd = Command::Update {
            key: key.to_owned(),
            labels,
            fieldpaths: fieldpaths.to_vec(),
            now: now(),
        };
        let (_, info) = self.execute(&cmd, |state, record| {
            let mut info = state.stat(key)?;
            if let Record::Updated { labels, at, .. } = record {
                info.labels = labels.clone();
                info.updated = *at;
            }
            Ok(info)
        })?;
        Ok(self.labelled(info))
    }

    /// containerd's Walk: calls `f` with the Info of every snapshot selected by any of
    /// `filters` (all when none), ordered by name. No lock is held while `f` runs, so it may
    /// call any method of the snapshotter; the listing is the state when Walk began.
    pub fn walk(&self, filters: &[String], mut f: impl FnMut(Info) -> Result<()>) -> Result<()> {
        self.check_open()?;
        let filter = Filter::parse_all(filters)?;
        let infos: Vec<Info> = self.visible.read().walk(&filter).collect();
        for info in infos {
            f(self.labelled(info))?;
        }
        Ok(())
    }

    /// containerd's Usage: for an Active snapshot, measured now; for a Committed one, the
    /// value measured at Commit; a View uses nothing of its own.
    pub fn usage(&self, key: &str) -> Result<Usage> {
        self.check_open()?;
        let (id, kind, stored) = {
            let visible = self.visible.read();
            visible.stat(key)?;
            let s = visible.get(key).expect("stat found it");
            (s.id, s.kind, s.usage)
        };
        match kind {
            Kind::Active => self
                .layout
                .usage(id)
                .map_err(|e| match self.visible.read().get(key) {
                    Some(s) if s.id == id => e,
                    _ => Error::NotFound(format!("snapshot {key:?} was removed while measured")),
                }),
            _ => Ok(stored.unwrap_or_default()),
        }
    }

    /// containerd's Cleanup: deletes every entry of `ROOT/snapshots` (and every short link)
    /// that belongs to no live snapshot, except the directories of operations in flight.
    /// Returns how many entries were deleted.
    pub fn cleanup(&self) -> Result<usize> {
        self.check_open()?;
        // The ids are read under the writer lock, which orders them with installs, and
        // after listing (see find_garbage); listing and deleting need no lock.
        let garbage = self
            .layout
            .find_garbage(|| self.writer.lock().state.ids().collect::<Vec<_>>())?;
        Ok(self.layout.remove_garbage(garbage)?.len())
    }

    /// containerd's Close: refuses every later call; a second Close is Ok.
    pub fn close(&self) -> Result<()> {
        self.closed.store(true, Ordering::Release);
        Ok(())
    }

    /// The Info as returned to callers: with [`UPPERDIR_LABEL`] when configured.
    fn labelled(&self, mut info: Info) -> Info {
        if self.options.upperdir_label {
            if let Some(s) = self.visible.read().get(&info.name) {
                let upper = self.layout.fs_path(s.id);
                info.labels
                    .insert(UPPERDIR_LABEL.to_owned(), upper.display().to_string());
            }
        }
        info
    }
}

/// The error for a snapshot that was removed and created again (or whose parent was)
/// while `cmd` did its slow work outside the locks.
fn replaced(cmd: &Command) -> Error {
    let key = match cmd {
        Command::Prepare { key, .. }
        | Command::View { key, .. }
        | Command::Commit { key, .. }
        | Command::Remove { key }
        | Command::Update { key, .. } => key,
    };
    Error::FailedPrecondition(format!(
        "snapshot {key:?} (or its parent) was removed and created again during the call; retry"
    ))
}

/// Whether [`reconcile`] changes the directories or only reports what it would change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reconcile {
    Repair,
    Inspect,
}

/// Makes the directories match a recovered state (see the module documentation), or with
/// [`Reconcile::Inspect`] only reports what that would change.
fn reconcile(layout: &Layout, state: &State, mode: Reconcile) -> Result<OpenReport> {
    let ids = state.id_map();
    let mut report = OpenReport {
        snapshots: state.len(),
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
                present.insert(id);
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
            layout.prepare_dir(s.kind, owner)?.install(id)?;
            report.recreated.push(id);
        }
    }
    Ok(report)
}
