//! Recovery rules on damaged files: a torn tail is truncated and reported, anything else
//! that is wrong is `Error::Corrupt` naming the file and the offset, and nothing before the
//! tail is ever truncated. (The rule is in `journal::frame`'s header.)

mod journal_support;
mod support;

use journal_support::{prepares, states};
use overlaysnap::core::{Record, State};
use overlaysnap::fs::{FileSystem, SimFs};
use overlaysnap::journal::{
    checkpoint_file, codec, frame, segment_file, Journal, LogJournal, Recovery, Store,
};
use overlaysnap::Error;
use rstest::rstest;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The journal's directory on the simulated disk.
const DIR: &str = "/j";

/// The path of the journal's file `name`.
fn at(name: &str) -> PathBuf {
    Path::new(DIR).join(name)
}

/// The journal's directory on `disk` (sharing it).
fn store(disk: &SimFs) -> Store {
    Store::open(Arc::new(disk.clone()), DIR).unwrap()
}

/// A disk holding a journal of `records`, all appended; with a checkpoint after the first
/// `checkpoint_after` of them when given.
fn disk_with(records: &[Record], checkpoint_after: Option<usize>) -> SimFs {
    let disk = SimFs::new();
    let (journal, _) = LogJournal::open(store(&disk)).unwrap();
    let mut state = State::new();
    for i in 0..=records.len() {
        if checkpoint_after == Some(i) {
            journal.checkpoint(&state.checkpoint()).unwrap();
        }
        if let Some(record) = records.get(i) {
            journal.append(std::slice::from_ref(record)).unwrap();
            state.apply(record);
        }
    }
    disk
}

fn log0() -> String {
    segment_file(0)
}

fn bytes(disk: &SimFs, name: &str) -> Vec<u8> {
    disk.read_file(&at(name)).unwrap()
}

/// The names in the journal's directory, sorted.
fn names(disk: &SimFs) -> Vec<String> {
    let mut names: Vec<String> = disk
        .read_dir(Path::new(DIR))
        .unwrap()
        .into_iter()
        .map(|n| n.into_string().unwrap())
        .collect();
    names.sort();
    names
}

/// `(offset, total length)` of each frame of the segment `name`.
fn frames(disk: &SimFs, name: &str) -> Vec<(usize, usize)> {
    let bytes = bytes(disk, name);
    frame::Frames::new(&bytes, frame::HEADER_LEN, frame::MAX_RECORD_FRAME)
        .map(|item| match item {
            frame::Item::Frame { offset, payload } => {
                (offset as usize, frame::FRAME_HEADER_LEN + payload.len())
            }
            other => panic!("bad frame in a fresh journal: {other:?}"),
        })
        .collect()
}

/// A copy of `disk` with `name` changed by `damage`.
fn damaged(disk: &SimFs, name: &str, damage: impl FnOnce(&mut Vec<u8>)) -> SimFs {
    let copy = disk.crash();
    let mut b = bytes(&copy, name);
    damage(&mut b);
    copy.plant(&at(name), &b);
    copy
}

fn open(disk: &SimFs) -> Result<Recovery, Error> {
    LogJournal::open(Store::open(Arc::new(disk.clone()), DIR)?).map(|(_, recovery)| recovery)
}

fn assert_corrupt(result: Result<Recovery, Error>, name: &str, offset: usize, why: &str) {
    match result {
        Err(Error::Corrupt {
            path,
            offset: at,
            reason,
        }) => {
            assert_eq!(path, self::at(name).display().to_string(), "{reason}");
            assert_eq!(at, offset as u64, "{reason}");
            assert!(reason.contains(why), "{reason:?} should say {why:?}");
        }
        other => panic!("expected corruption of {name} at {offset}, got {other:?}"),
    }
}

/// Opens `disk`, expecting a torn tail of `dropped` bytes at `offset` of log 0 and the state
/// after `records` records; checks that the truncation was made durable.
fn assert_torn(disk: &SimFs, offset: usize, dropped: usize, state: &State) {
    let recovery = open(disk).unwrap();
    let torn = recovery.torn_tail.expect("a torn tail");
    assert_eq!(
        (torn.path.as_str(), torn.offset, torn.bytes_dropped),
        (
            at(&log0()).display().to_string().as_str(),
            offset as u64,
            dropped as u64
        ),
        "{}",
        torn.reason
    );
    assert_eq!(&recovery.state, state);
    let after = disk.crash();
    assert_eq!(bytes(&after, &log0()).len(), offset.max(frame::HEADER_LEN));
    let again = open(&after).unwrap();
    assert_eq!((again.torn_tail, &again.state), (None, state));
}

#[test]
fn torn_tail_at_every_byte_of_the_last_frame() {
    let records = prepares(3);
    let states = states(&records);
    let disk = disk_with(&records, None);
    let (last, len) = *frames(&disk, &log0()).last().unwrap();
    for cut in last + 1..last + len {
        let torn = damaged(&disk, &log0(), |b| b.truncate(cut));
        assert_torn(&torn, last, cut - last, &states[2]);
    }
}

/// Inspection reads what open would recover, and reports a torn tail without truncating
/// it (nor removing anything else): a second inspection finds the same.
#[test]
fn inspect_reports_a_torn_tail_and_changes_nothing() {
    let records = prepares(3);
    let states = states(&records);
    let disk = disk_with(&records, Some(1));
    let (last, len) = *frames(&disk, &segment_file(1)).last().unwrap();
    let torn = damaged(&disk, &segment_file(1), |b| b.truncate(last + len - 1));
    torn.plant(
        &at("checkpoint-00000000000000000001.tmp"),
        b"left by a crash",
    );
    let files = || -> Vec<(Vec<u8>, String)> {
        let names = names(&torn);
        names.into_iter().map(|n| (bytes(&torn, &n), n)).collect()
    };
    let before = files();
    for _ in 0..2 {
        let found = LogJournal::inspect(&store(&torn)).unwrap();
        assert_eq!(found.state, states[2]);
        assert_eq!(found.records_replayed, 1);
        let tail = found.torn_tail.expect("a torn tail");
        assert_eq!(
            (tail.offset, tail.bytes_dropped),
            (last as u64, len as u64 - 1)
        );
        assert_eq!(files(), before);
    }
}

#[test]
fn a_whole_last_frame_of_garbage_is_a_torn_tail() {
    let records = prepares(3);
    let disk = disk_with(&records, None);
    let (last, len) = *frames(&disk, &log0()).last().unwrap();
    let garbled = damaged(&disk, &log0(), |b| {
        b[last + frame::FRAME_HEADER_LEN..]
            .iter_mut()
            .for_each(|x| *x = 0xa5)
    });
    assert_torn(&garbled, last, len, &states(&records)[2]);
}

#[test]
fn a_zero_filled_or_garbage_tail_of_several_frames_is_torn() {
    let records = prepares(2);
    let states = states(&records);
    let disk = disk_with(&records, None);
    let end = bytes(&disk, &log0()).len();
    let zeros = damaged(&disk, &log0(), |b| b.resize(end + 100, 0));
    assert_torn(&zeros, end, 100, &states[2]);
    // a torn batch: a frame header with a plausible length and a bad checksum, then more
    let garbage = damaged(&disk, &log0(), |b| {
        b.extend_from_slice(&[20, 0, 0, 0, 1, 2, 3, 4]);
        b.extend((0..60u8).map(|i| i.wrapping_mul(37)));
    });
    assert_torn(&garbage, end, 68, &states[2]);
}

#[derive(Debug, Clone, Copy)]
enum Field {
    Len,
    Crc,
    Payload,
}

/// A bit flipped in a frame: in the middle of the log it is corruption at that frame, since
/// valid frames follow; in the last frame it cannot be told from a torn write, so the frame
/// is dropped and reported.
#[rstest]
fn a_flipped_bit_in_each_field_of_a_frame(
    #[values(Field::Len, Field::Crc, Field::Payload)] field: Field,
    #[values(1, 2)] which: usize,
) {
    let records = prepares(3);
    let states = states(&records);
    let disk = disk_with(&records, None);
    let (offset, len) = frames(&disk, &log0())[which];
    let bytes_of_field = match field {
        Field::Len => offset..offset + 4,
        Field::Crc => offset + 4..offset + 8,
        Field::Payload => offset + 8..offset + len,
    };
    for byte in bytes_of_field {
        for bit in 0..8 {
            let flipped = damaged(&disk, &log0(), |b| b[byte] ^= 1 << bit);
            if which == 2 {
                assert_torn(&flipped, offset, len, &states[2]);
            } else {
                assert_corrupt(open(&flipped), &log0(), offset, "a valid frame follows");
            }
        }
    }
}

#[rstest]
#[case::magic(0, "bad magic")]
#[case::version(8, "unknown format version")]
fn a_flipped_bit_in_the_header_is_corrupt(#[case] byte: usize, #[case] why: &str) {
    let disk = disk_with(&prepares(2), None);
    for bit in 0..8 {
        let flipped = damaged(&disk, &log0(), |b| b[byte] ^= 1 << bit);
        assert_corrupt(open(&flipped), &log0(), byte, why);
    }
}

#[rstest]
#[case::segment(segment_file(1))]
#[case::checkpoint(checkpoint_file(1))]
fn a_header_from_the_future_is_corrupt(#[case] name: String) {
    let records = prepares(2);
    let disk = disk_with(&records, Some(1));
    let future = damaged(&disk, &name, |b| {
        b[8..12].copy_from_slice(&3u32.to_le_bytes())
    });
    assert_corrupt(
        open(&future),
        &name,
        8,
        "unknown format version 3 (this build reads 1 to 2)",
    );
}

/// Files are put in place whole, header included, so a short header is never a torn
/// write: a zero-length file, or one cut inside its header, is damage wherever it is.
#[rstest]
#[case::newest_segment(segment_file(1), 0)]
#[case::checkpoint(checkpoint_file(1), 0)]
#[case::older_segment(segment_file(0), 0)]
#[case::cut_header(segment_file(1), 5)]
fn a_zero_length_file_or_a_cut_header_is_corrupt(#[case] name: String, #[case] keep: usize) {
    let disk = disk_with(&prepares(2), Some(1));
    // an older segment is one with a newer segment after it and no checkpoint before
    disk.plant(&at(&segment_file(0)), &frame::header(frame::LOG_MAGIC));
    if name == segment_file(0) {
        disk.remove_file(&at(&checkpoint_file(1))).unwrap();
        disk.sync_dir(Path::new(DIR)).unwrap();
    }
    let cut = damaged(&disk, &name, |b| b.truncate(keep));
    assert_corrupt(
        open(&cut),
        &name,
        keep,
        &format!("file shorter than its header: {keep} of 12 bytes"),
    );
}

/// Appends a frame with `payload` and a valid checksum to log 0 of `disk`; its offset.
fn append_raw_frame(disk: &SimFs, payload: &[u8]) -> usize {
    let mut b = bytes(disk, &log0());
    let at = b.len();
    let start = frame::begin_frame(&mut b);
    b.extend_from_slice(payload);
    frame::finish_frame(&mut b, start, frame::MAX_RECORD_FRAME).unwrap();
    disk.plant(&self::at(&log0()), &b);
    at
}

#[test]
fn an_undecodable_frame_is_corrupt_even_at_the_end() {
    let disk = disk_with(&prepares(2), None);
    let at = append_raw_frame(&disk, &[9, 9, 9]);
    assert_corrupt(open(&disk), &log0(), at, "record does not decode");
}

#[test]
fn a_record_that_does_not_fit_the_state_is_corrupt() {
    let disk = disk_with(&prepares(2), None);
    let mut payload = Vec::new();
    codec::encode_record(
        &Record::Removed {
            id: 99,
            key: "nope".into(),
        },
        &mut payload,
    );
    let at = append_raw_frame(&disk, &payload);
    assert_corrupt(open(&disk), &log0(), at, "record does not fit the state");
}

/// Replay checks frames and decodes records on one thread and applies them on another: in
/// a segment long enough that the reader runs ahead by many batches (and blocks), the
/// first bad frame in file order is the one reported, whichever thread finds it, and
/// nothing hangs when the applier stops first.
#[rstest]
#[case::a_misfit_long_before_an_undecodable_frame(100, 30_000)]
#[case::an_undecodable_frame_long_before_a_misfit(30_000, 100)]
#[case::a_misfit_just_before_an_undecodable_frame(1_500, 1_501)]
#[case::an_undecodable_frame_just_before_a_misfit(1_501, 1_500)]
fn the_first_bad_frame_of_a_long_segment_is_reported(
    #[case] misfit: usize,
    #[case] undecodable: usize,
) {
    let mut removed = Vec::new();
    codec::encode_record(
        &Record::Removed {
            id: 99,
            key: "nope".into(),
        },
        &mut removed,
    );
    let mut log = frame::header(frame::LOG_MAGIC).to_vec();
    let mut offsets = Vec::new();
    for (i, record) in prepares(40_000).iter().enumerate() {
        let mut payload = Vec::new();
        codec::encode_record(record, &mut payload);
        if i == misfit {
            payload = removed.clone();
        } else if i == undecodable {
            payload = vec![9, 9, 9];
        }
        offsets.push(log.len());
        let start = frame::begin_frame(&mut log);
        log.extend_from_slice(&payload);
        frame::finish_frame(&mut log, start, frame::MAX_RECORD_FRAME).unwrap();
    }
    let disk = SimFs::new();
    disk.plant(&at(&log0()), &log);
    let (first, why) = if misfit < undecodable {
        (misfit, "record does not fit the state")
    } else {
        (undecodable, "record does not decode")
    };
    assert_corrupt(open(&disk), &log0(), offsets[first], why);
}

#[test]
fn a_length_over_the_cap_is_torn_at_the_end_and_corrupt_in_the_middle() {
    let records = prepares(3);
    let disk = disk_with(&records, None);
    let frames = frames(&disk, &log0());
    let huge = (frame::MAX_RECORD_FRAME + 1).to_le_bytes();
    let (last, len) = frames[2];
    let at_end = damaged(&disk, &log0(), |b| b[last..last + 4].copy_from_slice(&huge));
    assert_torn(&at_end, last, len, &states(&records)[2]);
    let (middle, _) = frames[1];
    let inside = damaged(&disk, &log0(), |b| {
        b[middle..middle + 4].copy_from_slice(&huge)
    });
    assert_corrupt(open(&inside), &log0(), middle, "exceeds the cap");
}

#[test]
fn a_damaged_checkpoint_is_corrupt() {
    let records = prepares(3);
    let disk = disk_with(&records, Some(2));
    let name = checkpoint_file(1);
    let len = bytes(&disk, &name).len();
    for byte in [frame::HEADER_LEN + 5, len - 1] {
        let flipped = damaged(&disk, &name, |b| b[byte] ^= 1);
        assert_corrupt(
            open(&flipped),
            &name,
            frame::HEADER_LEN,
            "checksum mismatch",
        );
    }
    let longer = damaged(&disk, &name, |b| b.push(0));
    assert_corrupt(
        open(&longer),
        &name,
        len,
        "1 bytes after the checkpoint frame",
    );
}

#[test]
fn a_missing_segment_is_corrupt() {
    let disk = disk_with(&prepares(2), None);
    disk.plant(&at(&segment_file(2)), &frame::header(frame::LOG_MAGIC));
    assert_corrupt(open(&disk), &segment_file(1), 0, "segment 1 is missing");
}

#[test]
fn open_removes_temporaries_and_superseded_files_and_ignores_others() {
    let records = prepares(3);
    let disk = disk_with(&records, Some(2));
    disk.plant(&at(&segment_file(0)), &frame::header(frame::LOG_MAGIC));
    disk.plant(&at(&checkpoint_file(0)), b"superseded");
    disk.plant(&at(&format!("{}.tmp", checkpoint_file(2))), b"half");
    disk.plant(&at("LOCK"), b"123\n");
    let recovery = open(&disk).unwrap();
    assert_eq!(recovery.state, states(&records)[3]);
    assert_eq!(recovery.records_replayed, 1);
    assert_eq!(
        recovery.checkpoint,
        Some(at(&checkpoint_file(1)).display().to_string())
    );
    assert_eq!(
        names(&disk),
        ["LOCK".to_owned(), checkpoint_file(1), segment_file(1)]
    );
}

#[test]
fn a_torn_tail_in_a_real_file_is_truncated() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let records = prepares(3);
    {
        let (journal, _) = LogJournal::open_dir(dir.path()).unwrap();
        journal.append(&records).unwrap();
    }
    let path = dir.path().join(log0());
    let len = std::fs::metadata(&path).unwrap().len();
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    file.set_len(len - 3).unwrap();
    let (_journal, recovery) = LogJournal::open_dir(dir.path()).unwrap();
    assert_eq!(recovery.state, states(&records)[2]);
    let torn = recovery.torn_tail.unwrap();
    assert_eq!(torn.path, path.display().to_string());
    assert_eq!(std::fs::metadata(&path).unwrap().len(), torn.offset);
}
