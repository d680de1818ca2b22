//! Replay of one log segment, on two threads: a scoped reader thread checks the frames and
//! decodes their records, and the calling thread hands them to the [`Replay`] (which, when
//! rebuilding the state, admits and applies them). Each half is about half of the work
//! (checksums and decoding against hash lookups and moves), so on two cores a long log replays in a little over half the time of one loop.
//!
//! The outcome is exactly that of one loop over the frames in file order: the reader hands
//! records over in order, in batches, and stops at the first frame that is torn, corrupt or
//! undecodable, sending that as its last message; the applier stops at the first record
//! that does not fit the state, or at that last message, whichever comes first in the
//! file. When the applier stops first it drops its receiver, and the reader stops at its
//! next send. At most [`IN_FLIGHT`] batches are decoded ahead of the state.

use super::codec::{self, RecordRef};
use super::files::segment_file;
use super::frame::{self, Item, FRAME_HEADER_LEN, HEADER_LEN, LOG_MAGIC, MAX_RECORD_FRAME};
use super::store::Store;
use super::{corrupt, Replay, TornTail};
use crate::error::Result;
use std::sync::mpsc::{sync_channel, SyncSender};
use std::thread;

/// Records per hand-off from the reader to the applier.
const BATCH: usize = 1024;

/// Batches the reader may be ahead of the applier.
const IN_FLIGHT: usize = 4;

/// A record decoded from the frame at `offset`, which ends at `end`. Its strings are still
/// the segment's bytes: the applier copies them, so that a record is allocated and freed
/// on one thread (allocators are slow at freeing what another thread allocated).
struct Decoded<'a> {
    offset: u64,
    end: u64,
    record: RecordRef<'a>,
}

/// Why the reader stopped before the end of the segment, at byte `offset`.
enum Stop {
    /// The frame there is a torn tail by the rule of [`frame`].
    Torn { offset: u64, reason: String },
    /// The frame there is corrupt, or its record does not decode.
    Corrupt { offset: u64, reason: String },
}

/// Delivers the records of segment `seq` into `into`; returns the length of its valid prefix,
/// for the `newest` segment only a torn tail, and the segment's format version. A torn
/// tail in an older segment is corruption: it was synced whole before the next segment was
/// created.
pub(super) fn segment(
    store: &Store,
    seq: u64,
    newest: bool,
    into: &mut dyn Replay,
    replayed: &mut u64,
) -> Result<(u64, Option<TornTail>, u32)> {
    let name = segment_file(seq);
    let path = store.path(&name);
    let bytes = store
        .read(&name)
        .map_err(|e| store.error("reading", &name, e))?;
    let version = frame::check_header(&bytes, LOG_MAGIC)
        .map_err(|bad| corrupt(path.clone(), bad.offset, bad.reason))?;
    let len = bytes.len() as u64;
    thread::scope(|scope| {
        let (sender, batches) = sync_channel(IN_FLIGHT);
        scope.spawn(|| read(&bytes, version, sender));
        let mut valid = HEADER_LEN as u64;
        for batch in batches {
            let stop = match batch {
                Ok(decoded) => {
                    for Decoded {
                        offset,
                        end,
                        record,
                    } in decoded
                    {
                        into.record(record.into_record()).map_err(|e| {
                            corrupt(
                                path.clone(),
                                offset,
                                format!("record does not fit the state: {e}"),
                            )
                        })?;
                        *replayed += 1;
                        valid = end;
                    }
                    continue;
                }
                Err(stop) => stop,
            };
            return match stop {
                Stop::Torn { offset, reason } if newest => Ok((
                    offset,
                    Some(TornTail {
                        path,
                        offset,
                        bytes_dropped: len - offset,
                        reason,
                    }),
                    version,
                )),
                Stop::Torn { offset, reason } => Err(corrupt(
                    path,
                    offset,
                    format!("{reason}, in an older segment"),
                )),
                Stop::Corrupt { offset, reason } => Err(corrupt(path, offset, reason)),
            };
        }
        Ok((valid, None, version))
    })
}

/// The reader thread: sends the records of `bytes` (a whole segment of format `version`,
/// header checked) in batches, then the reason it stopped early, if it did. A failed send
/// means that the applier has stopped and needs nothing more.
fn read<'a>(bytes: &'a [u8], version: u32, sender: SyncSender<Result<Vec<Decoded<'a>>, Stop>>) {
    let mut batch = Vec::with_capacity(BATCH);
    let mut stop = None;
    for item in frame::Frames::new(bytes, HEADER_LEN, MAX_RECORD_FRAME) {
        match item {
            Item::Frame { offset, payload } => match codec::decode_record_ref(payload) {
                Ok(RecordRef::Rebased { .. }) if version < 2 => {
                    let reason = format!(
                        "a rebase record (format version 2) in a version {version} segment"
                    );
                    stop = Some(Stop::Corrupt { offset, reason });
                    break;
                }
                Ok(record) => batch.push(Decoded {
                    offset,
                    end: offset + (FRAME_HEADER_LEN + payload.len()) as u64,
                    record,
                }),
                Err(why) => {
                    let reason = format!("record does not decode: {why}");
                    stop = Some(Stop::Corrupt { offset, reason });
                    break;
                }
            },
            Item::Torn { offset, reason } => {
                stop = Some(Stop::Torn { offset, reason });
                break;
            }
            Item::Corrupt { offset, reason } => {
                stop = Some(Stop::Corrupt { offset, reason });
                break;
            }
        }
        if batch.len() == BATCH {
            let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
            if sender.send(Ok(full)).is_err() {
                return;
            }
        }
    }
    if sender.send(Ok(batch)).is_ok() {
        if let Some(stop) = stop {
            let _ = sender.send(Err(stop));
        }
    }
}
