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
//!
//! # Files
//! - `options`: how a snapshotter behaves ([`Options`], including its journal's
//!   [`Backend`](crate::journal::Backend), and [`UPPERDIR_LABEL`]);
//! - `open`: opening (and inspecting) a root and its journal;
//! - `reconcile`: the crash rules above, applied to the directories after recovery;
//! - `pipeline`: the write pipeline and its locks (decide, prepare directories, submit
//!   and wait, apply, publish; checkpoints);
//! - `ops`: containerd's operations, built on the pipeline;
//! - `live`: read-only views of an open snapshotter for a live daemon ([`Status`],
//!   [`Snapshotter::check`]).

mod live;
mod open;
mod ops;
mod options;
mod pipeline;
mod reconcile;

pub use live::Status;
pub use options::{Options, UPPERDIR_LABEL};

use crate::core::{KindCounts, Record, State};
use crate::error::{Error, Result};
use crate::fs::{DirLock, QuotaMode};
use crate::journal::{Journal, Ticket, TornTail};
use crate::layout::Layout;
use crate::shared_flush::SharedFlush;
use crate::sync::{Mutex, RwLock};
use pipeline::Writer;
use std::collections::VecDeque;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

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
    /// Entries of `ROOT/snapshots` that belong to no live snapshot: garbage for Cleanup
    /// (in a project-quota mode, deleted at open: see `reconcile`).
    pub orphans: usize,
    /// How usage is measured and sizes limited on this root ([`Snapshotter::quota_mode`];
    /// [`Snapshotter::inspect`]: what opening would choose with quotas on auto).
    pub quota: QuotaMode,
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
    /// system no other process can reach
    /// ([`FileSystem::lock`](crate::fs::FileSystem::lock)).
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

impl Snapshotter {
    /// What opening found and did.
    pub fn open_report(&self) -> &OpenReport {
        &self.report
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        self.layout.root()
    }

    /// How many snapshots of each kind there are now: [`State::kind_counts`] of the
    /// published state, one pass under its read lock (writers publishing meanwhile wait
    /// for it). Works after [`Snapshotter::close`] too.
    pub fn kind_counts(&self) -> KindCounts {
        self.visible.read().kind_counts()
    }

    /// How usage is measured and sizes are limited on this root (chosen at open from
    /// [`Options::quota`] and what the root's file system offers).
    pub fn quota_mode(&self) -> QuotaMode {
        self.layout.quota_mode()
    }

    /// The options the snapshotter was opened with.
    pub fn options(&self) -> &Options {
        &self.options
    }

    /// Refuses every call after [`Snapshotter::close`].
    fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::FailedPrecondition("snapshotter is closed".into()));
        }
        Ok(())
    }
}
