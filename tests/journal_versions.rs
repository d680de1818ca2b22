//! Journal format versions: version 2 (containerd 2.2's rebase, `Record::Rebased`) reads the
//! logs and checkpoints of version 1 as they are, never appends to a version 1 segment, and
//! refuses a version it does not know by the file's header.
//!
//! The version 1 files are built here from literal bytes, as version 1 wrote them (the
//! payloads are the golden bytes of `tests/journal_codec.rs`, which version 2 left
//! unchanged), not from this build's encoder.

use overlaysnap::core::{Command, Kind, Labels, Record, State, Timestamp, Usage};
use overlaysnap::fs::{FileSystem, SimFs};
use overlaysnap::journal::frame::{self, MAX_CHECKPOINT_FRAME, MAX_RECORD_FRAME};
use overlaysnap::journal::{checkpoint_file, segment_file, Journal, LogJournal, Recovery, Store};
use overlaysnap::{Error, ErrorKind};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The journal's directory on the simulated disk.
const DIR: &str = "/j";
/// 1 700 000 000 s and 7 ns, as bincode writes them.
const AT_BYTES: [u8; 6] = [252, 0x00, 0xe2, 0xa7, 0xca, 7];
const AT: Timestamp = Timestamp {
    seconds: 1_700_000_000,
    nanos: 7,
};

fn at(name: &str) -> PathBuf {
    Path::new(DIR).join(name)
}

fn open(disk: &SimFs) -> overlaysnap::Result<(LogJournal, Recovery)> {
    LogJournal::open(Store::open(Arc::new(disk.clone()), DIR)?)
}

/// A file of format `version` with `magic`, holding one frame per payload.
fn file(magic: [u8; 8], version: u32, payloads: &[Vec<u8>], max: u32) -> Vec<u8> {
    let mut out = magic.to_vec();
    out.extend_from_slice(&version.to_le_bytes());
    for payload in payloads {
        let start = frame::begin_frame(&mut out);
        out.extend_from_slice(payload);
        frame::finish_frame(&mut out, start, max).unwrap();
    }
    out
}

fn log(version: u32, payloads: &[Vec<u8>]) -> Vec<u8> {
    file(frame::LOG_MAGIC, version, payloads, MAX_RECORD_FRAME)
}

fn with_at(bytes: &[u8]) -> Vec<u8> {
    [bytes, &AT_BYTES].concat()
}

/// Version 1 payloads: Prepare "a" (id 1, no parent); Commit "a" as "base"; Prepare "c"
/// (id 2) above "base".
fn v1_records() -> Vec<Vec<u8>> {
    vec![
        with_at(&[0, 1, 1, 1, b'a', 0, 0]),
        [&[1, 1, 1, b'a', 4][..], b"base", &[0, 0, 0], &AT_BYTES].concat(),
        [&[0, 2, 1, 1, b'c', 1, 4][..], b"base", &[0], &AT_BYTES].concat(),
    ]
}

/// The state the version 1 records describe, as this build decides it.
fn v1_state() -> State {
    let mut state = State::new();
    let commands = [
        Command::Prepare {
            key: "a".into(),
            parent: None,
            labels: Labels::new(),
            now: AT,
        },
        Command::Commit {
            name: "base".into(),
            key: "a".into(),
            parent: None,
            labels: Labels::new(),
            usage: Usage::default(),
            now: AT,
        },
        Command::Prepare {
            key: "c".into(),
            parent: Some("base".into()),
            labels: Labels::new(),
            now: AT,
        },
    ];
    for cmd in &commands {
        let record = state.decide(cmd).unwrap();
        state.apply(&record);
    }
    state
}

/// Records that rebase: Prepare "x" without a parent, Commit it as "x-c" above "base".
fn rebase(state: &State) -> Vec<Record> {
    let mut state = state.clone();
    let commands = [
        Command::Prepare {
            key: "x".into(),
            parent: None,
            labels: Labels::new(),
            now: AT,
        },
        Command::Commit {
            name: "x-c".into(),
            key: "x".into(),
            parent: Some("base".into()),
            labels: Labels::new(),
            usage: Usage::default(),
            now: AT,
        },
    ];
    commands
        .iter()
        .map(|cmd| {
            let record = state.decide(cmd).unwrap();
            state.apply(&record);
            record
        })
        .collect()
}

fn version_of(disk: &SimFs, name: &str) -> u32 {
    let bytes = disk.read_file(&at(name)).unwrap();
    u32::from_le_bytes(bytes[8..12].try_into().unwrap())
}

#[test]
fn a_version_1_log_opens_and_later_records_go_to_a_new_version_2_segment() {
    let disk = SimFs::new();
    let v1 = log(1, &v1_records());
    disk.plant(&at(&segment_file(0)), &v1);
    let (journal, recovery) = open(&disk).unwrap();
    assert_eq!(recovery.state, v1_state());
    assert_eq!(recovery.records_replayed, 3);
    // The version 1 segment is left as it was; appends go to a version 2 segment after it.
    assert_eq!(disk.read_file(&at(&segment_file(0))).unwrap(), v1);
    assert_eq!(version_of(&disk, &segment_file(1)), 2);
    let records = rebase(&recovery.state);
    assert!(matches!(records[1], Record::Rebased { .. }));
    journal.append(&records).unwrap();
    drop(journal);
    assert_eq!(disk.read_file(&at(&segment_file(0))).unwrap(), v1);

    let (_, again) = open(&disk).unwrap();
    assert_eq!(again.records_replayed, 5);
    let rebased = again.state.get("x-c").unwrap();
    assert_eq!(rebased.kind, Kind::Committed);
    assert_eq!(rebased.parent.as_deref(), Some("base"));
    // Reopening a version 2 segment appends to it: no third segment.
    assert!(disk.read_file(&at(&segment_file(2))).is_err());
}

#[test]
fn a_version_1_checkpoint_and_the_version_1_segment_after_it_open() {
    let disk = SimFs::new();
    // next_id 2; "base": id 1, Committed (variant 2), no parent, no labels, created,
    // updated, usage Some(0, 0).
    let checkpoint = [
        &[2, 1, 4][..],
        b"base",
        &[1, 2, 0, 0],
        &AT_BYTES,
        &AT_BYTES,
        &[1, 0, 0],
    ]
    .concat();
    disk.plant(
        &at(&checkpoint_file(1)),
        &file(
            frame::CHECKPOINT_MAGIC,
            1,
            &[checkpoint],
            MAX_CHECKPOINT_FRAME,
        ),
    );
    disk.plant(&at(&segment_file(1)), &log(1, &v1_records()[2..]));
    let (_, recovery) = open(&disk).unwrap();
    assert_eq!(recovery.state, v1_state());
    assert_eq!(recovery.records_replayed, 1);
    assert_eq!(version_of(&disk, &segment_file(2)), 2);
}

#[test]
fn a_rebase_record_in_a_version_1_segment_is_corrupt() {
    let disk = SimFs::new();
    let mut payloads = v1_records();
    // Prepare "x" (id 3) without a parent; then Rebased (variant 4): id 3, key "x",
    // name "x-c", parent "base", no labels, usage 0.
    payloads.push(with_at(&[0, 3, 1, 1, b'x', 0, 0]));
    payloads.push(
        [
            &[4, 3, 1, b'x', 3][..],
            b"x-c",
            &[4],
            b"base",
            &[0, 0, 0],
            &AT_BYTES,
        ]
        .concat(),
    );
    let bytes = log(1, &payloads);
    let offset = frame::HEADER_LEN
        + payloads[..4]
            .iter()
            .map(|p| frame::FRAME_HEADER_LEN + p.len())
            .sum::<usize>();
    disk.plant(&at(&segment_file(0)), &bytes);
    match open(&disk) {
        Err(Error::Corrupt {
            offset: got,
            reason,
            ..
        }) => {
            assert_eq!(got, offset as u64);
            assert!(reason.contains("format version 2"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    // The same frames under a version 2 header are a valid journal.
    disk.plant(&at(&segment_file(0)), &log(2, &payloads));
    let (_, recovery) = open(&disk).unwrap();
    assert_eq!(
        recovery.state.get("x-c").unwrap().parent.as_deref(),
        Some("base")
    );
}

#[test]
fn an_unknown_version_is_refused_by_the_header() {
    for (version, name) in [(3, segment_file(0)), (0, segment_file(0))] {
        let disk = SimFs::new();
        disk.plant(&at(&name), &log(version, &v1_records()));
        let err = open(&disk).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Corrupt);
        match err {
            Error::Corrupt { offset, reason, .. } => {
                assert_eq!(offset, 8);
                assert_eq!(
                    reason,
                    format!("unknown format version {version} (this build reads 1 to 2)")
                );
            }
            other => panic!("{other:?}"),
        }
    }
}
