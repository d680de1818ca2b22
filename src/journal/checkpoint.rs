//! Checkpoint files: the whole state in one frame, in place only once it is durable.
//!
//! `checkpoint-<seq>` (the number in 20 decimal digits) holds the state after every
//! record of the segments before `log-<seq>`; its format is in [`frame`]:
//! the header with magic `OSNAPCKP`, one frame whose payload is a
//! [`Checkpoint`](crate::core::Checkpoint), and nothing after it.
//!
//! It is written as `checkpoint-<seq>.tmp` (create, write, `fdatasync`), renamed into
//! place, and the directory is synced (`backend::install`). So the final name never points
//! at partial contents: a checkpoint has no torn tail, and any defect in one is corruption.

use super::backend::{install, Backend};
use super::frame::{self, Item, CHECKPOINT_MAGIC, HEADER_LEN, MAX_CHECKPOINT_FRAME};
use super::group::Failed;
use super::{codec, corrupt, io_error};
use crate::core::State;
use crate::error::{Error, Result};

const PREFIX: &str = "checkpoint-";

/// The file name of checkpoint `seq`.
pub fn checkpoint_file(seq: u64) -> String {
    format!("{PREFIX}{seq:020}")
}

/// The number of checkpoint file `name`; `None` for other names.
pub(crate) fn parse(name: &str) -> Option<u64> {
    super::log::parse_seq(name.strip_prefix(PREFIX)?)
}

/// The bytes of a checkpoint file holding `state`.
pub(crate) fn encode(state: &State) -> Result<Vec<u8>> {
    let mut out = frame::header(CHECKPOINT_MAGIC).to_vec();
    let start = frame::begin_frame(&mut out);
    codec::encode_checkpoint(&state.checkpoint(), &mut out);
    frame::finish_frame(&mut out, start, MAX_CHECKPOINT_FRAME)
        .map_err(|why| Error::InvalidArgument(format!("cannot checkpoint the state: {why}")))?;
    Ok(out)
}

/// Makes `bytes` durable as checkpoint `seq`.
///
/// A failure before the rename leaves the journal as it was. From the rename on, the
/// checkpoint may be durable, so the old segment must never grow again: a failure there
/// poisons.
pub(crate) fn write<B: Backend>(backend: &B, seq: u64, bytes: &[u8]) -> Result<(), Failed> {
    install(backend, &checkpoint_file(seq), bytes).map_err(|e| Failed {
        error: e.error,
        poisons: e.renamed,
    })
}

/// The state in checkpoint `seq`, checked by [`State::from_checkpoint`].
pub(crate) fn read<B: Backend>(backend: &B, seq: u64) -> Result<State> {
    let name = checkpoint_file(seq);
    let path = backend.path(&name);
    let bytes = backend
        .read(&name)
        .map_err(|e| io_error(backend, "reading checkpoint", &name, e))?;
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
    State::from_checkpoint(checkpoint).map_err(|e| {
        corrupt(
            path,
            offset,
            format!("checkpoint does not make a valid state: {e}"),
        )
    })
}
