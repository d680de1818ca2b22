//! The journal: durable, ordered storage for [`Record`]s, with checkpoints.
//!
//! The journal is the truth of overlaysnap: the state is whatever replaying it yields, and
//! the directories on disk are reconciled to that state. The effect layer decides a record
//! with [`State::decide`], hands it to [`Journal::submit`], waits for it with
//! [`Journal::wait`], and only then applies it and acts on it.
//!
//! # Pieces
//! - [`Journal`]: the seam the snapshotter uses. A journal stores records and checkpoints
//!   and gives them back in order ([`Journal::read_back`]); it knows nothing of the state
//!   they build. Rebuilding the state from them is [`Rebuild`], in one place for every
//!   journal ([`Journal::recover`]).
//! - [`Backend`]: how a snapshotter opens the journal of its root: [`LogBackend`] (the
//!   default) or [`MemoryBackend`], or an embedder's own.
//! - [`LogJournal`]: append-only log segments plus checkpoint files in one directory of any
//!   [`FileSystem`](crate::fs::FileSystem), reached through a [`Store`]. Group commit lets
//!   concurrent writers share one `fdatasync`. Over a simulated disk (`SimFs`, with the
//!   `testing` feature) the framing and recovery code that ships is the code that gets
//!   crash-tested.
//! - [`MemoryJournal`]: records in memory, for embedding and tests.
//! - [`Observer`]: told of each flush of a [`LogJournal`] (batch size, write and sync
//!   times), for an embedder's metrics.
//! - `codec` (the payload bytes) and `frame` (files, frames and the torn-tail rule);
//!   public with the `testing` feature.
//!
//! # Guarantees
//! - **Acknowledged means durable.** [`Journal::wait`] (and so [`Journal::append`])
//!   returns `Ok` only after every record up to the ticket is on stable storage.
//! - **Prefix recovery.** After a crash at any point, recovery yields the state after some
//!   prefix of the submitted records that includes every acknowledged one. Records are
//!   atomic one by one: of a multi-record submit, a prefix may survive a crash.
//! - **Poisoning ("fsyncgate").** After a failed write or `fdatasync` the journal can no
//!   longer tell what is on disk (Linux may drop the dirty pages and report success on a
//!   retry), so it never retries: it is poisoned, and every later call fails, until the
//!   journal is dropped and opened again, which re-reads what really is on disk.
//! - **Nothing corrupt is skipped.** Damage anywhere but a torn tail is an
//!   [`Error::Corrupt`](crate::Error::Corrupt) naming the file and byte offset; a torn tail
//!   is truncated and reported in [`Recovery::torn_tail`] and through `tracing`.

mod backend;
mod checkpoint;
#[cfg(feature = "testing")]
pub mod codec;
#[cfg(not(feature = "testing"))]
mod codec;
mod files;
#[cfg(feature = "testing")]
pub mod frame;
#[cfg(not(feature = "testing"))]
mod frame;
mod group;
mod load;
mod log;
mod memory;
mod observer;
mod rebuild;
mod replay;
mod store;

pub use backend::{Backend, LogBackend, MemoryBackend};
pub use files::{checkpoint_file, segment_file};
pub use log::LogJournal;
pub use memory::MemoryJournal;
pub use observer::{Flush, Observer};
pub use rebuild::Rebuild;
pub use store::Store;

use crate::core::{Checkpoint, Record, State};
use crate::error::Result;

/// Durable, ordered storage of [`Record`]s: the pluggable persistence seam.
///
/// Records are kept in submission order and read back as the newest checkpoint plus every
/// record submitted after it; [`Rebuild`] turns them into a state, each record checked
/// with [`State::admit`] and applied. Implementations: [`LogJournal`] (in a [`Store`] of
/// any file system) and [`MemoryJournal`].
pub trait Journal: Send + Sync {
    /// Queues `records` for appending after everything submitted before, in call order, and
    /// returns the ticket that [`Journal::wait`] takes. Does no I/O and never waits for any.
    ///
    /// Either every record is queued or, on error, none is.
    fn submit(&self, records: &[Record]) -> Result<Ticket>;

    /// Blocks until every record up to `ticket` is durable. Group commit: one sync serves
    /// every ticket submitted before it started.
    fn wait(&self, ticket: Ticket) -> Result<()>;

    /// [`Journal::submit`] then [`Journal::wait`]: returns once `records` are durable.
    fn append(&self, records: &[Record]) -> Result<()> {
        let ticket = self.submit(records)?;
        self.wait(ticket)
    }

    /// Makes everything submitted durable, then reads the journal back into `into`: the
    /// newest checkpoint (if any), then every record after it, in submission order. Stops
    /// at the first item that `into` refuses, with [`Error::Corrupt`](crate::Error::Corrupt)
    /// naming where the journal holds it.
    fn read_back(&self, into: &mut dyn Replay) -> Result<ReadBack>;

    /// Writes `checkpoint` and starts afresh after it, so that reading back no longer
    /// yields the records before it.
    ///
    /// `checkpoint` must be the state after every record submitted so far; records
    /// submitted while this runs break that rule (the snapshotter holds its state lock
    /// across both).
    fn checkpoint(&self, checkpoint: &Checkpoint) -> Result<()>;

    /// Reads the journal back into a state: [`Journal::read_back`] into a [`Rebuild`].
    fn recover(&self) -> Result<Recovery> {
        let mut rebuild = Rebuild::new();
        let read = self.read_back(&mut rebuild)?;
        Ok(rebuild.finish(read))
    }
}

/// What a journal delivers when read back ([`Journal::read_back`]): at most one checkpoint,
/// first, then the records after it, in order. An error refuses the item: the journal
/// stops there and reports it as corruption at the item's place.
pub trait Replay {
    /// The newest checkpoint.
    fn checkpoint(&mut self, checkpoint: Checkpoint) -> Result<()>;
    /// The next record.
    fn record(&mut self, record: Record) -> Result<()>;
}

/// What reading a journal back found, besides the items it delivered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadBack {
    /// How many records were delivered after the checkpoint; bounded by the records
    /// written since the last checkpoint, however long the journal has lived.
    pub records: u64,
    /// The checkpoint delivered first (where it is kept), or `None` when there is none.
    pub checkpoint: Option<String>,
    /// A torn tail found at the end of the log; [`LogJournal::open`] has truncated it.
    pub torn_tail: Option<TornTail>,
}

/// A position in a journal's submission order, returned by [`Journal::submit`].
///
/// The number of records submitted to this journal, since it was opened, up to and
/// including the submit that issued the ticket. Tickets of one journal are ordered; a ticket
/// means nothing to another journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ticket(pub(crate) u64);

/// What reading a journal back yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovery {
    /// The newest checkpoint plus every record after it.
    pub state: State,
    /// How many records were replayed on top of the checkpoint; bounded by the records
    /// written since the last checkpoint, however long the journal has lived.
    pub records_replayed: u64,
    /// The checkpoint the state started from (its path), or `None` when it started empty.
    pub checkpoint: Option<String>,
    /// A torn tail found at the end of the log; [`LogJournal::open`] has truncated it.
    pub torn_tail: Option<TornTail>,
}

/// A partial write at the end of the log, left by a crash.
///
/// Only records that were never acknowledged can be in a torn tail, except when the last
/// complete frame of the log rots: that is indistinguishable from a torn write (see
/// `journal/frame.rs` for the rule), and this report is how it shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornTail {
    /// The log segment that held it.
    pub path: String,
    /// Where the tail began: the segment was truncated to this length.
    pub offset: u64,
    /// How many bytes were dropped.
    pub bytes_dropped: u64,
    /// Why the bytes at `offset` are not a frame.
    pub reason: String,
}

/// The error for bad bytes at `offset` of the file at `path`.
fn corrupt(path: String, offset: u64, reason: impl Into<String>) -> crate::Error {
    crate::Error::Corrupt {
        path,
        offset,
        reason: reason.into(),
    }
}
