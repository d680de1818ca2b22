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

use crate::core::{Checkpoint, Kind, Labels, Record, Timestamp, Usage};
use bincode::config::{self, Config};
use serde::de::{DeserializeOwned, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use std::fmt;

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
    let decoded: RecordIn = decode_bounded!(payload, 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31 32 33 34 35)?;
    Ok(decoded.into())
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

/// [`Record`] as it is decoded: the same serde shape (variants and fields in the same
/// order, so the same bytes), with strings copied from the payload, where `Record`'s own
/// `Deserialize` would have bincode zero a buffer for each string before filling it.
/// Replay decodes millions of records, and this was a fifth of its instructions.
#[derive(Deserialize)]
enum RecordIn {
    Created {
        id: u64,
        kind: Kind,
        key: Text,
        parent: Option<Text>,
        labels: LabelsIn,
        at: Timestamp,
    },
    Committed {
        id: u64,
        key: Text,
        name: Text,
        labels: LabelsIn,
        usage: Usage,
        at: Timestamp,
    },
    Removed {
        id: u64,
        key: Text,
    },
    Updated {
        id: u64,
        key: Text,
        labels: LabelsIn,
        at: Timestamp,
    },
}

impl From<RecordIn> for Record {
    fn from(record: RecordIn) -> Record {
        match record {
            RecordIn::Created {
                id,
                kind,
                key,
                parent,
                labels,
                at,
            } => Record::Created {
                id,
                kind,
                key: key.0,
                parent: parent.map(|p| p.0),
                labels: labels.0,
                at,
            },
            RecordIn::Committed {
                id,
                key,
                name,
                labels,
                usage,
                at,
            } => Record::Committed {
                id,
                key: key.0,
                name: name.0,
                labels: labels.0,
                usage,
                at,
            },
            RecordIn::Removed { id, key } => Record::Removed { id, key: key.0 },
            RecordIn::Updated {
                id,
                key,
                labels,
                at,
            } => Record::Updated {
                id,
                key: key.0,
                labels: labels.0,
                at,
            },
        }
    }
}

/// A string decoded from the borrowed bytes of the payload.
struct Text(String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Text, D::Error> {
        struct TextVisitor;
        impl Visitor<'_> for TextVisitor {
            type Value = Text;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Text, E> {
                Ok(Text(v.to_owned()))
            }
        }
        deserializer.deserialize_str(TextVisitor)
    }
}

/// Labels whose strings are decoded as [`Text`].
struct LabelsIn(Labels);

impl<'de> Deserialize<'de> for LabelsIn {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<LabelsIn, D::Error> {
        struct LabelsVisitor;
        impl<'de> Visitor<'de> for LabelsVisitor {
            type Value = LabelsIn;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map of labels")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<LabelsIn, A::Error> {
                let mut labels = Labels::new();
                while let Some((Text(k), Text(v))) = map.next_entry()? {
                    labels.insert(k, v);
                }
                Ok(LabelsIn(labels))
            }
        }
        deserializer.deserialize_map(LabelsVisitor)
    }
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
