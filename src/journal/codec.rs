//! The one codec of the journal: frame payloads are serde values encoded with bincode.
//!
//! bincode 2's `standard` configuration: little-endian, variable-length integers (a value
//! below 251 is one byte; larger values are a tag byte 251/252/253 followed by 2/4/8
//! little-endian bytes; signed integers are zigzag-encoded first), enum variants as their
//! index in declaration order (a varint), strings and sequences as a varint length then
//! the items, `Option` as a 0/1 byte then the value, structs as their fields in order.
//!
//! The serde shapes of [`Record`] and [`Checkpoint`] are therefore the on-disk format. The
//! golden-byte tests (`tests/journal_codec.rs`) pin the exact bytes of every record
//! variant: changing a type so that they fail needs a new
//! [`FORMAT_VERSION`](super::frame::FORMAT_VERSION).
//!
//! Decoding is bounded: bincode refuses any length that claims more bytes than the
//! frame's cap, so a damaged length can never drive a large allocation, and a payload must
//! be consumed exactly.

use super::frame::{MAX_CHECKPOINT_FRAME, MAX_RECORD_FRAME};
use crate::core::{Checkpoint, Record};
use bincode::config::{self, Config};
use serde::de::DeserializeOwned;
use serde::Serialize;

fn record_config() -> impl Config {
    config::standard().with_limit::<{ MAX_RECORD_FRAME as usize }>()
}

fn checkpoint_config() -> impl Config {
    config::standard().with_limit::<{ MAX_CHECKPOINT_FRAME as usize }>()
}

/// Appends the payload encoding of `record` to `out`.
pub fn encode_record(record: &Record, out: &mut Vec<u8>) {
    encode(record, out, record_config());
}

/// Decodes a record payload; the error says why it does not decode.
pub fn decode_record(payload: &[u8]) -> Result<Record, String> {
    decode(payload, record_config())
}

/// Appends the payload encoding of `checkpoint` to `out`.
pub fn encode_checkpoint(checkpoint: &Checkpoint, out: &mut Vec<u8>) {
    encode(checkpoint, out, checkpoint_config());
}

/// Decodes a checkpoint payload; the error says why it does not decode.
pub fn decode_checkpoint(payload: &[u8]) -> Result<Checkpoint, String> {
    decode(payload, checkpoint_config())
}

fn encode<T: Serialize>(value: &T, out: &mut Vec<u8>, config: impl Config) {
    // Every field of a record or checkpoint is a plain serde type with a known length and
    // a Vec never fails to grow, so encoding cannot fail; the frame checks the size.
    bincode::serde::encode_into_std_write(value, out, config)
        .expect("records and checkpoints always encode");
}

fn decode<T: DeserializeOwned>(payload: &[u8], config: impl Config) -> Result<T, String> {
    let (value, used) =
        bincode::serde::decode_from_slice(payload, config).map_err(|e| e.to_string())?;
    if used != payload.len() {
        return Err(format!(
            "{} trailing bytes after the value",
            payload.len() - used
        ));
    }
    Ok(value)
}
