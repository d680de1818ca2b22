//! Checkpoint files: the whole state in one frame, in place only once it is durable.
//!
//! `checkpoint-<seq>` (the number in 20 decimal digits) holds the state after every
//! record of the segments before `log-<seq>`; its format is in [`frame`]:
//! the header with magic `OSNAPCKP`, one frame whose payload is a
//! [`Checkpoint`], and nothing after it.
//!
//! It is written as `checkpoint-<seq>.tmp` (create, write, `fdatasync`), renamed into
//! place, and the directory is synced (`store::install`). So the final name never points
//! at partial contents: a checkpoint has no torn tail, and any defect in one is corruption.

use super::files::checkpoint_file;
use super::frame::{self, Item, CHECKPOINT_MAGIC, HEADER_LEN, MAX_CHECKPOINT_FRAME};
use super::group::Failed;
use super::store::{install, Store};
use super::{codec, corrupt, Replay};
use crate::core::Checkpoint;
use crate::error::{Error, Result};

/// The bytes of a checkpoint file holding `checkpoint`.
pub(crate) fn encode(checkpoint: &Checkpoint) -> Result<Vec<u8>> {
    let mut out = frame::header(CHECKPOINT_MAGIC).to_vec();
    let start = frame::begin_frame(&mut out);
    codec::encode_checkpoint(checkpoint, &mut out);
    frame::finish_frame(&mut out, start, MAX_CHECKPOINT_FRAME)
        .map_err(|why| Error::InvalidArgument(format!("cannot checkpoint the state: {why}")))?;
    Ok(out)
}

/// Makes `bytes` durable as checkpoint `seq`.
///
/// A failure before the rename leaves the journal as it was. From the rename on, the
/// checkpoint may be durable, so the old segment must never grow again: a failure there
/// poisons.
pub(crate) fn write(store: &Store, seq: u64, bytes: &[u8]) -> Result<(), Failed> {
    install(store, &checkpoint_file(seq), bytes).map_err(|e| Failed {
        error: e.error,
        poisons: e.renamed,
    })
}

/// Delivers checkpoint `seq` into `into`; what `into` refuses is corruption.
pub(crate) fn read(store: &Store, seq: u64, into: &mut dyn Replay) -> Result<()> {
    let name = checkpoint_file(seq);
    let path = store.path(&name);
    let bytes = store
        .read(&name)
        .map_err(|e| store.error("reading checkpoint", &name, e))?;
    // Checkpoints are the same in every readable version.
    if let Err(bad) = frame::check_header(&bytes, CHECKPOINT_MAGIC) {
        return Err(corrupt(path, bad.offset, bad.reason));
    }
    let (offset, payload) =
        match frame::Frames::new(&bytes, HEADER_LEN, MAX_CHECKPOINT_FRAME).next() {
            Some(Item::Frame { offset, payload }) => (offset, payload),
            Some(Item::Torn { offset, reason } | Item::Corrupt { offset, reason }) => {
                return Err(corrupt(path, offset, reason))
            }
            None => return Err(corrupt(path, HEADER_LEN as u64, "checkpoint has no frame")),
        };
    let end = offset + (frame::FRAME_HEADER_LEN + payload.len()) as u64;
    if end != bytes.len() as u64 {
        return Err(corrupt(
            path,
            end,
            format!(
                "{} bytes after the checkpoint frame",
                bytes.len() as u64 - end
            ),
        ));
    }
    let checkpoint = codec::decode_checkpoint(payload).map_err(|why| {
        corrupt(
            path.clone(),
            offset,
            format!("checkpoint does not decode: {why}"),
        )
    })?;
    into.checkpoint(checkpoint).map_err(|e| {
        corrupt(
            path,
            offset,
            format!("checkpoint does not make a valid state: {e}"),
        )
    })
}
