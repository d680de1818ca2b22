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
//! Decoding is bounded by the payload at hand, not by the frame cap: bincode counts the
//! bytes every length and integer claims (at most 8 claimed bytes for each payload byte,
//! an integer being at least one byte and at most 8 wide), and refuses a value whose claims
//! pass its limit before allocating for it. The limit is the smallest power of two at
//! least `8 × payload + 64`, so a damaged length can drive an allocation of at most about
//! 16 times the payload, and a payload must be consumed exactly.

use crate::core::{Checkpoint, Record};
use bincode::config::{self, Config};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// The configuration for encoding: bincode's standard one (decoding adds a limit).
fn encode_config() -> impl Config {
    config::standard()
}

/// Decodes `payload` with the limit of the module documentation: one arm per power of two,
/// since bincode's limit is a constant.
macro_rules! decode_bounded {
    ($payload:expr, $($bits:literal)*) => {{
        let claim = $payload.len().saturating_mul(8).saturating_add(64);
        match claim {
            $(c if c <= 1usize << $bits => {
                decode($payload, config::standard().with_limit::<{ 1usize << $bits }>())
            })*
            _ => Err(format!("payload of {} bytes is too large to decode", $payload.len())),
        }
    }};
}

/// Appends the payload encoding of `record` to `out`.
pub fn encode_record(record: &Record, out: &mut Vec<u8>) {
    encode(record, out, encode_config());
}

/// Decodes a record payload; the error says why it does not decode.
pub fn decode_record(payload: &[u8]) -> Result<Record, String> {
    decode_bounded!(payload, 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31 32 33 34 35)
}

/// Appends the payload encoding of `checkpoint` to `out`.
pub fn encode_checkpoint(checkpoint: &Checkpoint, out: &mut Vec<u8>) {
    encode(checkpoint, out, encode_config());
}

/// Decodes a checkpoint payload; the error says why it does not decode.
pub fn decode_checkpoint(payload: &[u8]) -> Result<Checkpoint, String> {
    decode_bounded!(payload, 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31 32 33 34 35)
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
