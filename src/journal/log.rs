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
//! Other names (such as [`FsBackend`]'s `LOCK`) are not the journal's and are left alone.
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
//! record checked with [`State::admit`] (decoding on a second thread, see `replay`); a
//! torn tail of the newest segment is truncated and reported; everything else that is
//! wrong is [`Error::Corrupt`]. It then removes superseded and temporary files, creates
//! the first segment after the checkpoint if it is missing, and syncs the newest segment
//! and the directory, so that the recovered state is durable before anyone acts on it.
//! Recovery time is bounded by the size of one checkpoint plus the records written since.

use super::backend::{install, Backend, FsBackend, TEMP_SUFFIX};
use super::checkpoint::{self, checkpoint_file};
use super::frame::{self, Item, FRAME_HEADER_LEN, HEADER_LEN, LOG_MAGIC, MAX_RECORD_FRAME};
use super::group::{Failed, Group};
use super::replay;
use super::{codec, corrupt, io_error, Journal, Recovery, Ticket};
use crate::core::{Record, State};
use crate::error::{Error, Result};
use std::collections::BTreeSet;
use std::io;
use std::path::Path;

const PREFIX: &str = "log-";

/// The file name of log segment `seq`.
pub fn segment_file(seq: u64) -> String {
    format!("{PREFIX}{seq:020}")
}

fn parse_segment(name: &str) -> Option<u64> {
    parse_seq(name.strip_prefix(PREFIX)?)
}

/// A file number: exactly 20 decimal digits.
pub(crate) fn parse_seq(digits: &str) -> Option<u64> {
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// A durable journal of log segments and checkpoints over a [`Backend`].
///
/// Opened with [`LogJournal::open`], which also returns what was recovered. Dropping it
/// loses nothing acknowledged. After any I/O error while writing or syncing, it is
/// poisoned: every later call fails, and it does no further I/O, until reopened.
pub struct LogJournal<B: Backend> {
    backend: B,
    group: Group<Segment>,
}

impl<B: Backend> std::fmt::Debug for LogJournal<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogJournal")
            .field("dir", &self.backend.path(""))
            .finish_non_exhaustive()
    }
}

/// The segment being appended to. Touched only by the holder of the group's I/O role.
struct Segment {
    seq: u64,
    name: String,
    /// The segment's length: the offset of the next frame.
    len: u64,
}

impl LogJournal<FsBackend> {
    /// Opens (creating if needed) the journal in directory `dir` of the local file
    /// system, locked against other processes; see [`LogJournal::open`].
    pub fn open_dir(dir: impl AsRef<Path>) -> Result<(Self, Recovery)> {
        LogJournal::open(FsBackend::open(dir)?)
    }
}

impl<B: Backend> LogJournal<B> {
    /// Opens the journal stored in `backend` (an empty one starts an empty journal) and
    /// returns it with the recovered state; see the module documentation for what opening
    /// checks, repairs and makes durable.
    pub fn open(backend: B) -> Result<(Self, Recovery)> {
        let found = load(&backend)?;
        remove_files(&backend, &found.garbage);
        let segment = match found.tail {
            Some((seq, valid)) => {
                let name = segment_file(seq);
                if let Some(torn) = &found.recovery.torn_tail {
                    truncate(&backend, &name, valid)?;
                    tracing::warn!(
                        path = %torn.path,
                        offset = torn.offset,
                        bytes_dropped = torn.bytes_dropped,
                        reason = %torn.reason,
                        "truncated the torn tail of the journal"
                    );
                }
                // Replayed records may have been written but not synced by the last holder.
                backend
                    .sync_data(&name)
                    .and_then(|()| backend.sync_dir())
                    .map_err(|e| io_error(&backend, "syncing", &name, e))?;
                Segment {
                    seq,
                    name,
                    len: valid,
                }
            }
            None => create_segment(&backend, found.base)?,
        };
        tracing::debug!(
            records_replayed = found.recovery.records_replayed,
            checkpoint = ?found.recovery.checkpoint,
            segment = %backend.path(&segment.name),
            "journal opened"
        );
        let journal = LogJournal {
            backend,
            group: Group::new(segment),
        };
        Ok((journal, found.recovery))
    }

    /// Reads the journal stored in `backend` back without changing anything: the state
    /// [`LogJournal::open`] would recover, with a torn tail reported but not truncated.
    /// Superseded and temporary files stay too. For inspection (`overlaysnap check`).
    pub fn inspect(backend: &B) -> Result<Recovery> {
        load(backend).map(|found| found.recovery)
    }

    /// Truncates log segment `file` (a name such as `log-00000000000000000000`) at
    /// `offset`, dropping every record from there on, and makes that durable; returns the
    /// bytes dropped.
    ///
    /// This is the explicit answer to an [`Error::Corrupt`] in a segment, with the offset it
    /// names: records after it are lost, acknowledged or not, so it is never done
    /// implicitly. `offset` must be a frame boundary with only valid frames before it.
    pub fn repair(backend: &B, file: &str, offset: u64) -> Result<u64> {
        if parse_segment(file).is_none() {
            return Err(Error::InvalidArgument(format!(
                "{file:?} is not a log segment name ({PREFIX} and 20 digits)"
            )));
        }
        let path = backend.path(file);
        let bytes = backend
            .read(file)
            .map_err(|e| io_error(backend, "reading", file, e))?;
        let len = bytes.len() as u64;
        if let Err(bad) = frame::check_header(&bytes, LOG_MAGIC) {
            return Err(corrupt(path, bad.offset, bad.reason));
        }
        if !(HEADER_LEN as u64..=len).contains(&offset) {
            return Err(Error::InvalidArgument(format!(
                "cannot truncate {path} at {offset}: frames lie between {HEADER_LEN} and {len}"
            )));
        }
        let mut frames = frame::Frames::new(&bytes, HEADER_LEN, MAX_RECORD_FRAME);
        let mut at = HEADER_LEN as u64;
        while at < offset {
            match frames.next() {
                Some(Item::Frame { payload, .. }) => {
                    at += (FRAME_HEADER_LEN + payload.len()) as u64
                }
                Some(
                    Item::Torn {
                        offset: bad,
                        reason,
                    }
                    | Item::Corrupt {
                        offset: bad,
                        reason,
                    },
                ) => {
                    return Err(Error::InvalidArgument(format!(
                        "cannot truncate {path} at {offset}: the frame at {bad} before it is \
                         bad ({reason}); truncate at {bad}"
                    )))
                }
                None => break,
            }
        }
        if at != offset {
            return Err(Error::InvalidArgument(format!(
                "cannot truncate {path} at {offset}: not a frame boundary (next one at {at})"
            )));
        }
        truncate(backend, file, offset)?;
        tracing::warn!(%path, offset, bytes_dropped = len - offset, "repaired journal by truncation");
        Ok(len - offset)
    }

    /// Writes the queued `batch` at the end of the segment and syncs it.
    fn flush(&self, segment: &mut Segment, batch: &[u8]) -> Result<()> {
        self.backend
            .write(&segment.name, segment.len, batch)
            .map_err(|e| io_error(&self.backend, "appending to", &segment.name, e))?;
        segment.len += batch.len() as u64;
        self.backend
            .sync_data(&segment.name)
            .map_err(|e| io_error(&self.backend, "syncing", &segment.name, e))
    }
}

impl<B: Backend> Journal for LogJournal<B> {
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
        self.group.wait(ticket, |s, batch| self.flush(s, batch))
    }

    fn recover(&self) -> Result<Recovery> {
        self.group.exclusive(
            |s, batch| self.flush(s, batch),
            |_| {
                load(&self.backend)
                    .map(|found| found.recovery)
                    .map_err(|error| Failed {
                        error,
                        poisons: false,
                    })
            },
        )
    }

    fn checkpoint(&self, state: &State) -> Result<()> {
        let bytes = checkpoint::encode(state)?;
        self.group.exclusive(
            |s, batch| self.flush(s, batch),
            |segment| {
                let seq = segment.seq + 1;
                checkpoint::write(&self.backend, seq, &bytes)?;
                let fresh = create_segment(&self.backend, seq).map_err(|error| Failed {
                    error,
                    poisons: true,
                })?;
                let old = std::mem::replace(segment, fresh);
                remove_files(
                    &self.backend,
                    &[segment_file(old.seq), checkpoint_file(old.seq)],
                );
                Ok(())
            },
        )
    }
}

/// What [`load`] found in the directory.
struct Found {
    recovery: Recovery,
    /// Temporary files and files the newest checkpoint supersedes.
    garbage: Vec<String>,
    /// The newest checkpoint's number (0 when there is none): the first segment replayed.
    base: u64,
    /// The newest segment and the length of its valid prefix, if any segment is live.
    tail: Option<(u64, u64)>,
}

/// Reads the journal back without changing anything.
fn load<B: Backend>(backend: &B) -> Result<Found> {
    let names = backend
        .list()
        .map_err(|e| io_error(backend, "listing", "", e))?;
    let (mut segments, mut checkpoints, mut garbage) =
        (BTreeSet::new(), BTreeSet::new(), Vec::new());
    let ours = |name: &str| parse_segment(name).is_some() || checkpoint::parse(name).is_some();
    for name in names {
        if let Some(seq) = parse_segment(&name) {
            segments.insert(seq);
        } else if let Some(seq) = checkpoint::parse(&name) {
            checkpoints.insert(seq);
        } else if name.strip_suffix(TEMP_SUFFIX).is_some_and(ours) {
            garbage.push(name);
        }
    }
    let base = checkpoints.last().copied().unwrap_or(0);
    let (mut state, checkpoint) = match checkpoints.last() {
        Some(&c) => (
            checkpoint::read(backend, c)?,
            Some(backend.path(&checkpoint_file(c))),
        ),
        None => (State::new(), None),
    };
    garbage.extend(checkpoints.range(..base).map(|&c| checkpoint_file(c)));
    garbage.extend(segments.range(..base).map(|&s| segment_file(s)));
    let live: Vec<u64> = segments.range(base..).copied().collect();
    for (want, &seq) in (base..).zip(&live) {
        if seq != want {
            return Err(corrupt(
                backend.path(&segment_file(want)),
                0,
                format!("segment {want} is missing, but segment {seq} exists"),
            ));
        }
    }
    let mut replayed = 0;
    let mut tail = None;
    let mut torn_tail = None;
    for (i, &seq) in live.iter().enumerate() {
        let newest = i + 1 == live.len();
        let (valid, torn) = replay::segment(backend, seq, newest, &mut state, &mut replayed)?;
        tail = Some((seq, valid));
        torn_tail = torn;
    }
    Ok(Found {
        recovery: Recovery {
            state,
            records_replayed: replayed,
            checkpoint,
            torn_tail,
        },
        garbage,
        base,
        tail,
    })
}

/// Puts segment `seq`, holding just its header, durably in place.
fn create_segment<B: Backend>(backend: &B, seq: u64) -> Result<Segment> {
    let name = segment_file(seq);
    install(backend, &name, &frame::header(LOG_MAGIC)).map_err(|e| e.error)?;
    Ok(Segment {
        seq,
        name,
        len: HEADER_LEN as u64,
    })
}

/// Cuts segment `name` to `len` bytes, durably.
fn truncate<B: Backend>(backend: &B, name: &str, len: u64) -> Result<()> {
    backend
        .set_len(name, len)
        .and_then(|()| backend.sync_data(name))
        .map_err(|e| io_error(backend, "truncating", name, e))
}

/// Removes superseded files. Failures only leave garbage that the next open removes, so
/// they are logged, not returned.
fn remove_files<B: Backend>(backend: &B, names: &[String]) {
    for name in names {
        match backend.remove(name) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(path = %backend.path(name), error = %e, "cannot remove superseded journal file")
            }
        }
    }
}
