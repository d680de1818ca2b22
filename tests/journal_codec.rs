//! The codec's bytes are the journal's on-disk format: these golden bytes pin them, record
//! variant by record variant. If one of these fails, a type's serde shape changed and old
//! journals would no longer read: bump `frame::FORMAT_VERSION` and keep a reader for the
//! old one, do not just update the bytes.

mod journal_support;
mod support;

use journal_support::{cases, decided};
use overlaysnap::core::{Command, Kind, Labels, Record, State, Timestamp, Usage};
use overlaysnap::journal::{codec, frame};
use proptest::prelude::*;
use rstest::rstest;

fn labels() -> Labels {
    [("a".to_owned(), "b".to_owned())].into()
}

const AT: Timestamp = Timestamp {
    seconds: 1_700_000_000,
    nanos: 7,
};

/// `1_700_000_000` s zigzag-encoded (3_400_000_000: a 252 tag and 4 bytes), then 7 ns.
const AT_BYTES: [u8; 6] = [252, 0x00, 0xe2, 0xa7, 0xca, 7];

fn encoded(record: &Record) -> Vec<u8> {
    let mut out = Vec::new();
    codec::encode_record(record, &mut out);
    out
}

#[rstest]
#[case::created_active_with_parent(
    Record::Created { id: 1, kind: Kind::Active, key: "k".into(), parent: Some("p".into()), labels: labels(), at: AT },
    // variant 0, id 1, kind Active (variant 1), key "k", Some("p"), 1 label "a"="b", at
    [&[0, 1, 1, 1, b'k', 1, 1, b'p', 1, 1, b'a', 1, b'b'][..], &AT_BYTES].concat(),
)]
#[case::created_view_without_parent(
    Record::Created { id: 300, kind: Kind::View, key: "v".into(), parent: None, labels: Labels::new(), at: Timestamp::new(-1, 999_999_999) },
    // id 300 takes a 251 tag and 2 bytes; kind View (variant 0); None; no labels;
    // -1 s zigzags to 1; 999_999_999 ns takes a 252 tag and 4 bytes
    vec![0, 251, 0x2c, 0x01, 0, 1, b'v', 0, 0, 1, 252, 0xff, 0xc9, 0x9a, 0x3b],
)]
#[case::committed(
    Record::Committed { id: 1, key: "k".into(), name: "n".into(), labels: labels(), usage: Usage { size: 4096, inodes: 3 }, at: AT },
    // variant 1, id 1, key "k", name "n", labels, size 4096 zigzags to 8192 (251 tag, 2
    // bytes), inodes 3 zigzags to 6, at
    [&[1, 1, 1, b'k', 1, b'n', 1, 1, b'a', 1, b'b', 251, 0x00, 0x20, 6][..], &AT_BYTES].concat(),
)]
#[case::removed(
    Record::Removed { id: 70_000, key: "n".into() },
    // variant 2, id 70_000 takes a 252 tag and 4 bytes, key "n"
    vec![2, 252, 0x70, 0x11, 0x01, 0x00, 1, b'n'],
)]
#[case::updated(
    Record::Updated { id: 2, key: "v".into(), labels: labels(), at: AT },
    [&[3, 2, 1, b'v', 1, 1, b'a', 1, b'b'][..], &AT_BYTES].concat(),
)]
#[case::rebased(
    Record::Rebased { id: 1, key: "k".into(), name: "n".into(), parent: "p".into(), labels: labels(), usage: Usage { size: 4096, inodes: 3 }, at: AT },
    // variant 4 (format version 2), id 1, key "k", name "n", parent "p", labels, usage, at
    [&[4, 1, 1, b'k', 1, b'n', 1, b'p', 1, 1, b'a', 1, b'b', 251, 0x00, 0x20, 6][..], &AT_BYTES].concat(),
)]
fn golden_bytes_of_each_record_variant(#[case] record: Record, #[case] golden: Vec<u8>) {
    assert_eq!(encoded(&record), golden, "encoding of {record:?}");
    assert_eq!(codec::decode_record(&golden), Ok(record));
}

#[test]
fn golden_bytes_of_a_frame() {
    let mut out = Vec::new();
    let start = frame::begin_frame(&mut out);
    codec::encode_record(
        &Record::Removed {
            id: 70_000,
            key: "n".into(),
        },
        &mut out,
    );
    frame::finish_frame(&mut out, start, frame::MAX_RECORD_FRAME).unwrap();
    #[rustfmt::skip]
    let golden = [
        8, 0, 0, 0,                 // len 8, little-endian
        0xd8, 0xbd, 0xf8, 0x0d,     // CRC-32C of the len bytes and the payload
        2, 252, 0x70, 0x11, 0x01, 0x00, 1, b'n',
    ];
    assert_eq!(out, golden);
}

#[test]
fn golden_bytes_of_a_file_header() {
    assert_eq!(
        &frame::header(frame::LOG_MAGIC),
        b"OSNAPLOG\x02\x00\x00\x00"
    );
    assert_eq!(
        &frame::header(frame::CHECKPOINT_MAGIC),
        b"OSNAPCKP\x02\x00\x00\x00"
    );
}

#[test]
fn golden_bytes_of_a_checkpoint() {
    let mut state = State::new();
    let cmd = Command::Prepare {
        key: "k".into(),
        parent: None,
        labels: Labels::new(),
        now: AT,
    };
    let record = state.decide(&cmd).unwrap();
    state.apply(&record);
    let mut out = Vec::new();
    codec::encode_checkpoint(&state.checkpoint(), &mut out);
    // next_id 2, 1 snapshot: key "k", id 1, kind Active (variant 1), no parent, no labels,
    // created, updated, usage None
    let golden = [&[2, 1, 1, b'k', 1, 1, 0, 0][..], &AT_BYTES, &AT_BYTES, &[0]].concat();
    assert_eq!(out, golden);
    assert_eq!(
        State::from_checkpoint(codec::decode_checkpoint(&golden).unwrap()).unwrap(),
        state
    );
}

#[test]
fn a_length_claiming_more_than_the_cap_is_refused_without_allocating() {
    // Created, id 1, kind Active, then a key whose length claims 2^60 bytes.
    let mut payload = vec![0, 1, 1, 253];
    payload.extend_from_slice(&(1u64 << 60).to_le_bytes());
    payload.extend_from_slice(b"k");
    assert!(codec::decode_record(&payload).is_err());
    let mut checkpoint = vec![2, 253];
    checkpoint.extend_from_slice(&(1u64 << 60).to_le_bytes());
    assert!(codec::decode_checkpoint(&checkpoint).is_err());
}

#[test]
fn an_unknown_variant_does_not_decode() {
    assert!(codec::decode_record(&[5, 1, 1, b'n']).is_err());
}

/// The record that serde's decoding of [`Record`] reads from `bytes`, if it takes them all:
/// the oracle for the codec's own decoder, which must read exactly the same.
fn serde_decoded(bytes: &[u8]) -> Option<Record> {
    let config = bincode::config::standard().with_limit::<{ 1 << 20 }>();
    match bincode::serde::decode_from_slice::<Record, _>(bytes, config) {
        Ok((record, used)) if used == bytes.len() => Some(record),
        _ => None,
    }
}

#[test]
fn a_label_given_twice_keeps_its_last_value_as_with_serde() {
    // Updated, id 2, key "v", two labels "a"="b" and "a"="c", at.
    let bytes = [
        &[3, 2, 1, b'v', 2, 1, b'a', 1, b'b', 1, b'a', 1, b'c'][..],
        &AT_BYTES,
    ]
    .concat();
    let record = codec::decode_record(&bytes).unwrap();
    assert_eq!(Some(&record), serde_decoded(&bytes).as_ref());
    let Record::Updated { labels, .. } = record else {
        panic!("not an update: {record:?}")
    };
    assert_eq!(labels, [("a".to_owned(), "c".to_owned())].into());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(128)))]

    /// Every byte of every record variant's encoding, replaced by values that matter to
    /// the format (0, 1, varint tags, the byte with a bit flipped, invalid UTF-8): the
    /// codec's decoder and serde's agree on whether it decodes, and on what to.
    #[test]
    fn the_record_decoder_reads_what_serde_reads(commands in support::commands(16)) {
        for record in decided(&commands) {
            let bytes = encoded(&record);
            for at in 0..bytes.len() {
                for value in [0, 1, 2, 3, 4, 250, 251, 252, 253, 254, 255, 0xc0, bytes[at] ^ 1] {
                    let mut damaged = bytes.clone();
                    damaged[at] = value;
                    prop_assert_eq!(
                        codec::decode_record(&damaged).ok(),
                        serde_decoded(&damaged),
                        "byte {} set to {}", at, value
                    );
                }
            }
        }
    }

    #[test]
    fn records_round_trip_and_every_damaged_length_is_refused(commands in support::commands(24)) {
        for record in decided(&commands) {
            let bytes = encoded(&record);
            prop_assert_eq!(codec::decode_record(&bytes), Ok(record.clone()));
            for cut in 0..bytes.len() {
                prop_assert!(codec::decode_record(&bytes[..cut]).is_err(), "prefix of {} bytes", cut);
            }
            let mut longer = bytes.clone();
            longer.push(0);
            prop_assert!(codec::decode_record(&longer).is_err());
        }
    }

    #[test]
    fn checkpoints_round_trip(commands in support::commands(24)) {
        let mut state = State::new();
        for record in decided(&commands) {
            state.apply(&record);
        }
        let mut bytes = Vec::new();
        codec::encode_checkpoint(&state.checkpoint(), &mut bytes);
        let back = State::from_checkpoint(codec::decode_checkpoint(&bytes).unwrap()).unwrap();
        prop_assert_eq!(back, state);
    }
}
