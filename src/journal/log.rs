//! [`LogJournal`]: log segments and checkpoints in one directory, with group commit.
//!
//! # Directory layout
//! ```text
//! log-<seq>              log segment number seq (20 decimal digits): header, then one
//!                        frame per record (format in `frame`)
//! checkpoint-<seq>       the state after every record of the segments before log-<seq>
//! <either>.tmp           a file being put in place (written, synced, then renamed);
//!                        removed on open
//! ```
//! Other names (such as the root lock's `LOCK`) are not the journal's and are left alone.
//!
//! Invariants on durable storage, at every instant: with `c` the newest checkpoint (0 and
//! the empty state when there is none), the segments numbered `c` or more form an unbroken
//! run `c, c+1, ..`; replaying them in order on checkpoint `c` yields the state. Every
//! file under its final name starts with a complete header. Only the newest segment is
//! ever appended to, so only it may end in a torn tail. Files numbered below `c` are
//! superseded and may be deleted at any time.
//!
//! # Appending
//! [`Journal::submit`] encodes the records into frames and queues them; [`Journal::wait`]
//! joins group commit (see `group`): a leader writes the whole queue to the end of the
//! newest segment with one positioned write and one `fdatasync`, and acknowledges every
//! ticket it covered.
//!
//! # Checkpointing
//! With appends stopped: flush the queue, put `checkpoint-<n+1>` in place (temporary file,
//! `fdatasync`, rename, directory `fsync`), put `log-<n+1>` holding just its header in
//! place the same way, switch to it, and only then delete `log-<n>` and `checkpoint-<n>`.
//! A crash at any step leaves a directory that satisfies the invariants. Once the new
//! checkpoint may be durable, the old segment must not grow, so a failure from its rename
//! on poisons the journal; a failure before it leaves the journal as it was.
//!
//! # Opening
//! [`LogJournal::open`] reads the newest checkpoint and replays the segments after it, each
//! record checked with [`State::admit`](crate::core::State::admit) (decoding on a second thread, see `replay`); a
//! torn tail of the newest segment is truncated and reported; everything else that is
//! wrong is [`Error::Corrupt`]. It then removes superseded and temporary files, creates
//! the first segment after the checkpoint if it is missing (or a new segment after a
//! newest one of an older format version, which is never appended to), and syncs the newest segment
//! and the directory, so that the recovered state is durable before anyone acts on it.
//! Recovery time is bounded by the size of one checkpoint plus the records written since.

use super::checkpoint;
use super::files::{checkpoint_file, segment_file};
use super::frame::{self, MAX_RECORD_FRAME};
use super::group::{Failed, Group};
use super::load::{create_segment, load, remove_files, truncate, Segment};
use super::store::Store;
use super::{codec, Flush, Journal, Observer, ReadBack, Rebuild, Recovery, Replay, Ticket};
use crate::core::{Checkpoint, Record};
use crate::error::{Error, Result};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

/// A durable journal of log segments and checkpoints in a [`Store`].
///
/// Opened with [`LogJournal::open`], which also returns what was recovered. Dropping it
/// loses nothing acknowledged. After any I/O error while writing or syncing, it is
/// poisoned: every later call fails, and it does no further I/O, until reopened.
pub struct LogJournal {
    store: Store,
    group: Group<Segment>,
    /// Told of every successful flush; `None` costs one branch per flush (see `observer`).
    observer: Option<Arc<dyn Observer>>,
}

impl std::fmt::Debug for LogJournal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogJournal")
            .field("dir", &self.store.dir())
            .finish_non_exhaustive()
    }
}

impl LogJournal {
    /// Opens (creating if needed) the journal in directory `dir` of the host's file
    /// system, locked against other processes; see [`LogJournal::open`].
    pub fn open_dir(dir: impl AsRef<Path>) -> Result<(Self, Recovery)> {
        LogJournal::open(Store::open_dir(dir)?)
    }

    /// Opens the journal kept in `store` (an empty one starts an empty journal) and
    /// returns it with the recovered state; see the module documentation for what opening
    /// checks, repairs and makes durable.
    pub fn open(store: Store) -> Result<(Self, Recovery)> {
        let mut rebuild = Rebuild::new();
        let found = load(&store, &mut rebuild)?;
        remove_files(&store, &found.garbage);
        let segment = match found.tail {
            Some((seq, valid, version)) => {
                let name = segment_file(seq);
                if let Some(torn) = &found.read.torn_tail {
                    truncate(&store, &name, valid)?;
                    tracing::warn!(
                        path = %torn.path,
                        offset = torn.offset,
                        bytes_dropped = torn.bytes_dropped,
                        reason = %torn.reason,
                        "truncated the torn tail of the journal"
                    );
                }
                // Replayed records may have been written but not synced by the last holder.
                store
                    .sync_data(&name)
                    .and_then(|()| store.sync_dir())
                    .map_err(|e| store.error("syncing", &name, e))?;
                if version < frame::FORMAT_VERSION {
                    // An older format's segment is never appended to (see `frame`).
                    create_segment(&store, seq + 1)?
                } else {
                    Segment {
                        seq,
                        name,
                        len: valid,
                    }
                }
            }
            None => create_segment(&store, found.base)?,
        };
        tracing::debug!(
            records_replayed = found.read.records,
            checkpoint = ?found.read.checkpoint,
            segment = %store.path(&segment.name),
            "journal opened"
        );
        let journal = LogJournal {
            store,
            group: Group::new(segment),
            observer: None,
        };
        Ok((journal, rebuild.finish(found.read)))
    }

    /// Reads the journal stored in `store` back without changing anything: the state
    /// [`LogJournal::open`] would recover, with a torn tail reported but not truncated.
    /// Superseded and temporary files stay too. For inspection (`overlaysnap check`).
    pub fn inspect(store: &Store) -> Result<Recovery> {
        let mut rebuild = Rebuild::new();
        let found = load(store, &mut rebuild)?;
        Ok(rebuild.finish(found.read))
    }

    /// Tells `observer` of every later successful flush (its batch size, write and sync
    /// times), replacing any observer set before.
    pub fn observe(&mut self, observer: Arc<dyn Observer>) {
        self.observer = Some(observer);
    }

    /// Writes the queued `batch`, the frames of `records` records, at the end of the
    /// segment and syncs it; then tells the observer, if there is one.
    fn flush(&self, segment: &mut Segment, batch: &[u8], records: u64) -> Result<()> {
        let start = self.observer.as_ref().map(|_| Instant::now());
        self.store
            .write(&segment.name, segment.len, batch)
            .map_err(|e| self.store.error("appending to", &segment.name, e))?;
        segment.len += batch.len() as u64;
        let written = start.map(|_| Instant::now());
        self.store
            .sync_data(&segment.name)
            .map_err(|e| self.store.error("syncing", &segment.name, e))?;
        if let (Some(observer), Some(start), Some(written)) = (&self.observer, start, written) {
            observer.flushed(&Flush {
                records,
                bytes: batch.len() as u64,
                write: written - start,
                sync: written.elapsed(),
            });
        }
        Ok(())
    }
}

impl Journal for LogJournal {
    fn submit(&self, records: &[Record]) -> Result<Ticket> {
        let mut frames = Vec::with_capacity(records.len() * 64);
        for record in records {
            let start = frame::begin_frame(&mut frames);
            codec::encode_record(record, &mut frames);
            frame::finish_frame(&mut frames, start, MAX_RECORD_FRAME).map_err(|why| {
                Error::InvalidArgument(format!(
                    "record about snapshot id {} does not fit the journal: {why}",
                    record.id()
                ))
            })?;
        }
        self.group.submit(&frames, records.len() as u64)
    }

    fn wait(&self, ticket: Ticket) -> Result<()> {
        self.group
            .wait(ticket, |s, batch, records| self.flush(s, batch, records))
    }

    fn read_back(&self, into: &mut dyn Replay) -> Result<ReadBack> {
        self.group.exclusive(
            |s, batch, records| self.flush(s, batch, records),
            |_| {
                load(&self.store, into)
                    .map(|found| found.read)
                    .map_err(|error| Failed {
                        error,
                        poisons: false,
                    })
            },
        )
    }

    fn checkpoint(&self, checkpoint: &Checkpoint) -> Result<()> {
        let bytes = checkpoint::encode(checkpoint)?;
        self.group.exclusive(
            |s, batch, records| self.flush(s, batch, records),
            |segment| {
                let seq = segment.seq + 1;
                checkpoint::write(&self.store, seq, &bytes)?;
                let fresh = create_segment(&self.store, seq).map_err(|error| Failed {
                    error,
                    poisons: true,
                })?;
                let old = std::mem::replace(segment, fresh);
                remove_files(
                    &self.store,
                    &[segment_file(old.seq), checkpoint_file(old.seq)],
                );
                Ok(())
            },
        )
    }
}
