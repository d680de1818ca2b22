//! Reading the journal's directory back ([`load`]), and the file operations that opening
//! and checkpointing share: creating a segment, truncating one, removing superseded files.

use super::checkpoint;
use super::files::{checkpoint_file, parse_checkpoint, parse_segment, segment_file};
use super::frame::{self, HEADER_LEN, LOG_MAGIC};
use super::replay;
use super::store::{install, Store, TEMP_SUFFIX};
use super::{corrupt, ReadBack, Replay};
use crate::error::Result;
use std::collections::BTreeSet;
use std::io;

/// The segment being appended to. Touched only by the holder of the group's I/O role.
pub(super) struct Segment {
    pub(super) seq: u64,
    pub(super) name: String,
    /// The segment's length: the offset of the next frame.
    pub(super) len: u64,
}

/// What [`load`] found in the directory.
pub(super) struct Found {
    pub(super) read: ReadBack,
    /// Temporary files and files the newest checkpoint supersedes.
    pub(super) garbage: Vec<String>,
    /// The newest checkpoint's number (0 when there is none): the first segment replayed.
    pub(super) base: u64,
    /// The newest segment, the length of its valid prefix and its format version, if any
    /// segment is live.
    pub(super) tail: Option<(u64, u64, u32)>,
}

/// Reads the journal back into `into` without changing anything.
pub(super) fn load(store: &Store, into: &mut dyn Replay) -> Result<Found> {
    let names = store.list().map_err(|e| store.error("listing", "", e))?;
    let (mut segments, mut checkpoints, mut garbage) =
        (BTreeSet::new(), BTreeSet::new(), Vec::new());
    let ours = |name: &str| parse_segment(name).is_some() || parse_checkpoint(name).is_some();
    for name in names {
        if let Some(seq) = parse_segment(&name) {
            segments.insert(seq);
        } else if let Some(seq) = parse_checkpoint(&name) {
            checkpoints.insert(seq);
        } else if name.strip_suffix(TEMP_SUFFIX).is_some_and(ours) {
            garbage.push(name);
        }
    }
    let base = checkpoints.last().copied().unwrap_or(0);
    let checkpoint = match checkpoints.last() {
        Some(&c) => {
            checkpoint::read(store, c, into)?;
            Some(store.path(&checkpoint_file(c)))
        }
        None => None,
    };
    garbage.extend(checkpoints.range(..base).map(|&c| checkpoint_file(c)));
    garbage.extend(segments.range(..base).map(|&s| segment_file(s)));
    let live: Vec<u64> = segments.range(base..).copied().collect();
    for (want, &seq) in (base..).zip(&live) {
        if seq != want {
            return Err(corrupt(
                store.path(&segment_file(want)),
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
        let (valid, torn, version) = replay::segment(store, seq, newest, into, &mut replayed)?;
        tail = Some((seq, valid, version));
        torn_tail = torn;
    }
    Ok(Found {
        read: ReadBack {
            records: replayed,
            checkpoint,
            torn_tail,
        },
        garbage,
        base,
        tail,
    })
}

/// Puts segment `seq`, holding just its header, durably in place.
pub(super) fn create_segment(store: &Store, seq: u64) -> Result<Segment> {
    let name = segment_file(seq);
    install(store, &name, &frame::header(LOG_MAGIC)).map_err(|e| e.error)?;
    Ok(Segment {
        seq,
        name,
        len: HEADER_LEN as u64,
    })
}

/// Cuts segment `name` to `len` bytes, durably.
pub(super) fn truncate(store: &Store, name: &str, len: u64) -> Result<()> {
    store
        .set_len(name, len)
        .and_then(|()| store.sync_data(name))
        .map_err(|e| store.error("truncating", name, e))
}

/// Removes superseded files. Failures only leave garbage that the next open removes, so
/// they are logged, not returned.
pub(super) fn remove_files(store: &Store, names: &[String]) {
    for name in names {
        match store.remove(name) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(path = %store.path(name), error = %e, "cannot remove superseded journal file")
            }
        }
    }
}
