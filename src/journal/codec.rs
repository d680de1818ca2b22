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
//! Records are decoded by [`RecordRef`]'s `BorrowDecode`, bincode's own decoding
//! (no serde): the same shape written out field by field, with the strings borrowed from
//! the payload, so that replay can decode on one thread and allocate on another (see
//! `replay`). Parsing the million records of the recovery benchmark this way took 140–185
//! ms, where serde's decoding into owned records took 320–450 ms (`docs/bench.md`).
//! `tests/journal_codec.rs` checks that it reads exactly what serde's decoding of
//! [`Record`] reads, on valid and damaged bytes; the `records` fuzz target checks it on
//! arbitrary ones. It allocates nothing a claimed length asks for: strings are borrowed,
//! and labels are pushed one by one as they decode.
//!
//! Checkpoints decode through serde, bounded by the payload at hand, not by the frame cap:
//! bincode counts the bytes every length and integer claims (at most 8 claimed bytes for
//! each payload byte, an integer being at least one byte and at most 8 wide), and refuses
//! a value whose claims pass its limit before allocating for it. The limit is the smallest
//! power of two at least `8 × payload + 64`, so a damaged length can drive an allocation
//! of at most about 16 times the payload.
//!
//! Either way a payload must be consumed exactly.

use crate::core::{Checkpoint, Kind, Labels, Record, Timestamp, Usage};
use bincode::config::{self, Config};
use bincode::de::{BorrowDecode, BorrowDecoder, Decode, Decoder};
use bincode::error::{AllowedEnumVariants, DecodeError};
use serde::de::DeserializeOwned;
use serde::Serialize;
use smallvec::SmallVec;

/// The configuration for encoding: bincode's standard one (decoding a checkpoint adds a limit).
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

/// Decodes a record payload; the error says why it does not decode. (Replay decodes with
/// [`decode_record_ref`]; this owned form is for tests and fuzzing.)
#[cfg(feature = "testing")]
pub fn decode_record(payload: &[u8]) -> Result<Record, String> {
    decode_record_ref(payload).map(RecordRef::into_record)
}

/// Decodes a record payload without copying its strings; the error says why it does not
/// decode. Replay checks and decodes frames on one thread and builds the state on another
/// (see `replay`), and this keeps every allocation of a record on the thread that keeps or
/// frees it.
pub fn decode_record_ref(payload: &[u8]) -> Result<RecordRef<'_>, String> {
    exactly(
        payload,
        bincode::borrow_decode_from_slice(payload, config::standard()),
    )
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

/// A [`Record`] as it is decoded: the same serde shape (variants and fields in the same
/// order, so the same bytes), with its strings borrowed from the payload.
#[derive(Debug)]
#[allow(missing_docs)] // the fields are those of `Record`
pub enum RecordRef<'a> {
    /// [`Record::Created`].
    Created {
        id: u64,
        kind: Kind,
        key: &'a str,
        parent: Option<&'a str>,
        labels: LabelsRef<'a>,
        at: Timestamp,
    },
    /// [`Record::Committed`].
    Committed {
        id: u64,
        key: &'a str,
        name: &'a str,
        labels: LabelsRef<'a>,
        usage: Usage,
        at: Timestamp,
    },
    /// [`Record::Removed`].
    Removed { id: u64, key: &'a str },
    /// [`Record::Updated`].
    Updated {
        id: u64,
        key: &'a str,
        labels: LabelsRef<'a>,
        at: Timestamp,
    },
    /// [`Record::Rebased`] (format version 2).
    Rebased {
        id: u64,
        key: &'a str,
        name: &'a str,
        parent: &'a str,
        labels: LabelsRef<'a>,
        usage: Usage,
        at: Timestamp,
    },
}

impl RecordRef<'_> {
    /// The owned record: its strings copied, its labels in a map (a label key given twice
    /// keeps its last value).
    pub fn into_record(self) -> Record {
        match self {
            RecordRef::Created {
                id,
                kind,
                key,
                parent,
                labels,
                at,
            } => Record::Created {
                id,
                kind,
                key: key.to_owned(),
                parent: parent.map(str::to_owned),
                labels: labels.to_labels(),
                at,
            },
            RecordRef::Committed {
                id,
                key,
                name,
                labels,
                usage,
                at,
            } => Record::Committed {
                id,
                key: key.to_owned(),
                name: name.to_owned(),
                labels: labels.to_labels(),
                usage,
                at,
            },
            RecordRef::Removed { id, key } => Record::Removed {
                id,
                key: key.to_owned(),
            },
            RecordRef::Updated {
                id,
                key,
                labels,
                at,
            } => Record::Updated {
                id,
                key: key.to_owned(),
                labels: labels.to_labels(),
                at,
            },
            RecordRef::Rebased {
                id,
                key,
                name,
                parent,
                labels,
                usage,
                at,
            } => Record::Rebased {
                id,
                key: key.to_owned(),
                name: name.to_owned(),
                parent: parent.to_owned(),
                labels: labels.to_labels(),
                usage,
                at,
            },
        }
    }
}

/// Labels borrowed from a payload, in their encoded order. Snapshots rarely carry more
/// than a few labels, and up to four take no allocation.
#[derive(Debug)]
pub struct LabelsRef<'a>(SmallVec<[(&'a str, &'a str); 4]>);

impl LabelsRef<'_> {
    fn to_labels(&self) -> Labels {
        self.0
            .iter()
            .map(|&(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }
}

/// [`Record`]'s serde shape, field by field: a change to [`Record`] must be made here too
/// (the golden bytes and the agreement test with serde's decoding fail until it is).
impl<'de: 'a, 'a, C> BorrowDecode<'de, C> for RecordRef<'a> {
    fn borrow_decode<D: BorrowDecoder<'de, Context = C>>(d: &mut D) -> Result<Self, DecodeError> {
        Ok(match u32::decode(d)? {
            0 => RecordRef::Created {
                id: u64::decode(d)?,
                kind: kind(d)?,
                key: BorrowDecode::borrow_decode(d)?,
                parent: BorrowDecode::borrow_decode(d)?,
                labels: BorrowDecode::borrow_decode(d)?,
                at: timestamp(d)?,
            },
            1 => RecordRef::Committed {
                id: u64::decode(d)?,
                key: BorrowDecode::borrow_decode(d)?,
                name: BorrowDecode::borrow_decode(d)?,
                labels: BorrowDecode::borrow_decode(d)?,
                usage: usage(d)?,
                at: timestamp(d)?,
            },
            2 => RecordRef::Removed {
                id: u64::decode(d)?,
                key: BorrowDecode::borrow_decode(d)?,
            },
            3 => RecordRef::Updated {
                id: u64::decode(d)?,
                key: BorrowDecode::borrow_decode(d)?,
                labels: BorrowDecode::borrow_decode(d)?,
                at: timestamp(d)?,
            },
            4 => RecordRef::Rebased {
                id: u64::decode(d)?,
                key: BorrowDecode::borrow_decode(d)?,
                name: BorrowDecode::borrow_decode(d)?,
                parent: BorrowDecode::borrow_decode(d)?,
                labels: BorrowDecode::borrow_decode(d)?,
                usage: usage(d)?,
                at: timestamp(d)?,
            },
            found => {
                return Err(DecodeError::UnexpectedVariant {
                    type_name: "Record",
                    allowed: &AllowedEnumVariants::Range { min: 0, max: 4 },
                    found,
                })
            }
        })
    }
}

impl<'de: 'a, 'a, C> BorrowDecode<'de, C> for LabelsRef<'a> {
    fn borrow_decode<D: BorrowDecoder<'de, Context = C>>(d: &mut D) -> Result<Self, DecodeError> {
        let len = u64::decode(d)?;
        let mut labels = SmallVec::new();
        for _ in 0..len {
            labels.push(BorrowDecode::borrow_decode(d)?);
        }
        Ok(LabelsRef(labels))
    }
}

/// A [`Kind`] as serde encodes a unit variant: its index in declaration order.
fn kind<D: Decoder>(d: &mut D) -> Result<Kind, DecodeError> {
    match u32::decode(d)? {
        0 => Ok(Kind::View),
        1 => Ok(Kind::Active),
        2 => Ok(Kind::Committed),
        found => Err(DecodeError::UnexpectedVariant {
            type_name: "Kind",
            allowed: &AllowedEnumVariants::Range { min: 0, max: 2 },
            found,
        }),
    }
}

/// A [`Usage`]: its fields in order.
fn usage<D: Decoder>(d: &mut D) -> Result<Usage, DecodeError> {
    Ok(Usage {
        size: i64::decode(d)?,
        inodes: i64::decode(d)?,
    })
}

/// A [`Timestamp`]: its fields in order.
fn timestamp<D: Decoder>(d: &mut D) -> Result<Timestamp, DecodeError> {
    Ok(Timestamp {
        seconds: i64::decode(d)?,
        nanos: u32::decode(d)?,
    })
}

fn decode<T: DeserializeOwned>(payload: &[u8], config: impl Config) -> Result<T, String> {
    exactly(payload, bincode::serde::decode_from_slice(payload, config))
}

/// The decoded value if it took all of `payload`.
fn exactly<T>(payload: &[u8], decoded: Result<(T, usize), DecodeError>) -> Result<T, String> {
    let (value, used) = decoded.map_err(|e| e.to_string())?;
    if used != payload.len() {
        return Err(format!(
            "{} trailing bytes after the value",
            payload.len() - used
        ));
    }
    Ok(value)
}
