//! The journal: durable, ordered storage for [`Record`]s, with checkpoints.
//!
//! The journal is the truth of overlaysnap: the state is whatever replaying it yields, and
//! the directories on disk are reconciled to that state. The effect layer decides a record
//! with [`State::decide`], hands it to [`Journal::submit`], waits for it with
//! [`Journal::wait`], and only then applies it and acts on it.
//!
//! # Pieces
//! - [`Journal`]: the seam the snapshotter uses. Five methods; a new backend is small.
//! - [`LogJournal`]: append-only log segments plus checkpoint files, in one directory,
//!   reached through the [`Backend`] storage seam. Group commit lets concurrent writers
//!   share one `fdatasync`.
//! - [`FsBackend`]: the real storage (std::fs, `fdatasync` of files, `fsync` of the
//!   directory), locked against other processes with a [`DirLock`].
//! - [`DirBackend`]: a directory of any [`FileSystem`](crate::layout::FileSystem), so that
//!   the journal can live on the same simulated disk as the layout.
//! - [`SimBackend`]: a simulated directory that keeps written and durable contents apart and
//!   fails on cue; [`FaultyJournal`] is the real [`LogJournal`] code running over it, so the
//!   framing and recovery code that ships is the code that gets crash-tested.
//! - [`MemoryJournal`]: records in memory, for embedding and tests.
//! - [`codec`] (the payload bytes) and [`frame`] (files, frames and the torn-tail rule).
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

pub mod backend;
mod checkpoint;
pub mod codec;
mod dir_backend;
pub mod frame;
mod group;
pub mod lock;
mod log;
mod memory;
mod replay;
mod sim;

pub use backend::{Backend, FsBackend};
pub use checkpoint::checkpoint_file;
pub use dir_backend::DirBackend;
pub use lock::DirLock;
pub use log::{segment_file, LogJournal};
pub use memory::MemoryJournal;
pub use sim::{Crash, Fault, FaultyJournal, SimBackend};

use crate::core::{Record, State};
use crate::error::Result;

/// Durable, ordered storage of [`Record`]s: the pluggable persistence seam.
///
/// Records are kept in submission order; a recovered state is the newest checkpoint plus
/// every record submitted after it, each checked with [`State::admit`] and applied.
/// Implementations: [`LogJournal`] (over [`FsBackend`] or [`SimBackend`]) and
/// [`MemoryJournal`].
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

    /// Makes everything submitted durable, then reads the journal back: the newest
    /// checkpoint plus every record after it, admitted and applied.
    fn recover(&self) -> Result<Recovery>;

    /// Writes a checkpoint of `state` and starts afresh after it, so that recovery no longer
    /// replays the records before it.
    ///
    /// `state` must equal the state after every record submitted so far; records submitted
    /// while this runs break that rule (the snapshotter holds its state lock across both).
    fn checkpoint(&self, state: &State) -> Result<()>;
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
/// [`frame`] for the rule), and this report is how it shows.
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

/// The error for a failed `what` (a verb phrase) on the journal file `name`.
fn io_error<B: Backend + ?Sized>(
    backend: &B,
    what: &str,
    name: &str,
    source: std::io::Error,
) -> crate::Error {
    crate::Error::io(format!("{what} {}", backend.path(name)), source)
}
