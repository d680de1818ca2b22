//! The `records` target: arbitrary bytes into the journal's decoders and its open path.
//!
//! One input is tried, in turn:
//! 1. as a record payload and as a checkpoint payload, straight into the codec: a value
//!    that re-encodes to itself, or an error; a record exactly as serde's decoding of
//!    [`Record`] reads it (the codec decodes records with its own `BorrowDecode`);
//! 2. as a whole file, through the frame reader (with both frame caps): frames that lie
//!    inside the file, in order, ending in at most one torn-tail or corrupt item;
//! 3. written into a [`SimFs`] (directory `/j`) as `log-0`, as `checkpoint-0`, and split at every
//!    file magic into a directory of several files (`OSNAPCKP…` pieces become checkpoints,
//!    `OSNAPLOG…` pieces the next log segments), then opened with [`LogJournal::open`];
//!    each of those once as given and once with every frame's checksum fixed up (so that
//!    mutated payloads reach the decoder and [`State::admit`] instead of failing the
//!    checksum). Opening yields [`ErrorKind::Corrupt`] at an offset inside the named
//!    file, or a state that keeps every invariant, is durable (a power loss right after
//!    open changes nothing), reopens to itself without a torn tail, and takes a further
//!    append and checkpoint that survive a power loss.
//!
//! No step may panic, and no step may make an allocation out of proportion to the input
//! ([`alloc_guard::bounded`]).

use super::alloc_guard;
use overlaysnap::core::{Checkpoint, Command, Record, State, Timestamp};
use overlaysnap::fs::SimFs;
use overlaysnap::journal::frame::{
    self, Frames, Item, CHECKPOINT_MAGIC, FRAME_HEADER_LEN, HEADER_LEN, LOG_MAGIC,
    MAX_CHECKPOINT_FRAME, MAX_RECORD_FRAME,
};
use overlaysnap::journal::{
    checkpoint_file, codec, segment_file, Journal, LogJournal, Recovery, Store,
};
use overlaysnap::model_terms::check_invariants;
use overlaysnap::{Error, ErrorKind};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The journal's directory on the simulated disk.
const DIR: &str = "/j";

/// The path of the journal's file `name`.
fn at(name: &str) -> PathBuf {
    Path::new(DIR).join(name)
}

/// Opens the journal in [`DIR`] of `disk` (sharing it).
fn open_journal(disk: &SimFs) -> overlaysnap::Result<(LogJournal, Recovery)> {
    LogJournal::open(Store::open(Arc::new(disk.clone()), DIR)?)
}

/// The body of the `records` target.
pub fn records(data: &[u8]) {
    let len = data.len();
    alloc_guard::bounded("decoding a record payload", len, || decode_record(data));
    alloc_guard::bounded("decoding a checkpoint payload", len, || {
        decode_checkpoint(data)
    });
    alloc_guard::bounded("reading frames", len, || {
        read_frames(data, MAX_RECORD_FRAME);
        read_frames(data, MAX_CHECKPOINT_FRAME);
    });
    for (what, files) in directories(data) {
        for fixed in [false, true] {
            let files = if fixed {
                files
                    .iter()
                    .map(|(n, b)| (n.clone(), fix_checksums(b)))
                    .collect()
            } else {
                files.clone()
            };
            let what = format!("{what}{}", if fixed { ", checksums fixed" } else { "" });
            alloc_guard::bounded(&format!("opening {what}"), len, || open(&what, &files));
        }
    }
}

/// The codec decodes a record exactly where serde's decoding of [`Record`] does, to the
/// same record, and a decoded record re-encodes to a payload that decodes to it again.
fn decode_record(data: &[u8]) {
    let decoded = codec::decode_record(data);
    let config = bincode::config::standard().with_limit::<{ 1 << 20 }>();
    let by_serde = match bincode::serde::decode_from_slice::<Record, _>(data, config) {
        Ok((record, used)) if used == data.len() => Some(record),
        _ => None,
    };
    assert_eq!(
        decoded.as_ref().ok(),
        by_serde.as_ref(),
        "decoders disagree"
    );
    let Ok(record) = decoded else {
        return;
    };
    let mut again = Vec::new();
    codec::encode_record(&record, &mut again);
    assert_eq!(
        codec::decode_record(&again).as_ref(),
        Ok(&record),
        "record round trip"
    );
}

/// A decoded checkpoint round-trips; if it makes a state, the state keeps every invariant
/// and holds exactly the checkpoint's snapshots.
fn decode_checkpoint(data: &[u8]) {
    let Ok(checkpoint) = codec::decode_checkpoint(data) else {
        return;
    };
    let mut again = Vec::new();
    codec::encode_checkpoint(&checkpoint, &mut again);
    assert_eq!(
        codec::decode_checkpoint(&again).as_ref(),
        Ok(&checkpoint),
        "checkpoint round trip"
    );
    let Ok(state) = State::from_checkpoint(checkpoint.clone()) else {
        return;
    };
    check_invariants(&state);
    let sorted = |cp: Checkpoint| cp.snapshots.into_iter().collect::<BTreeMap<_, _>>();
    assert_eq!(state.next_id(), checkpoint.next_id, "checkpoint's next id");
    assert_eq!(
        sorted(state.checkpoint()),
        sorted(checkpoint),
        "the state holds the checkpoint's snapshots"
    );
}

/// Frames lie inside the file, one after another; at most one final torn or corrupt item.
fn read_frames(data: &[u8], max: u32) {
    let mut next = HEADER_LEN.min(data.len()) as u64;
    let mut ended = false;
    for item in Frames::new(data, HEADER_LEN, max) {
        assert!(!ended, "an item after a torn tail or corruption: {item:?}");
        match item {
            Item::Frame { offset, payload } => {
                assert_eq!(offset, next, "frames are contiguous");
                assert!(!payload.is_empty() && payload.len() <= max as usize);
                let start = payload.as_ptr() as usize - data.as_ptr() as usize;
                assert_eq!(start as u64, offset + FRAME_HEADER_LEN as u64);
                next = (start + payload.len()) as u64;
            }
            Item::Torn { offset, .. } | Item::Corrupt { offset, .. } => {
                assert_eq!(offset, next, "the bad frame is where the good ones end");
                ended = true;
            }
        }
    }
    if !ended {
        assert_eq!(next, data.len() as u64, "frames cover the file");
    }
}

/// Files by name, as planted on the simulated disk.
type Files = Vec<(String, Vec<u8>)>;

/// Journal directories made of `data`: `(description, files)`.
fn directories(data: &[u8]) -> Vec<(String, Files)> {
    let mut dirs = vec![
        (
            "a log segment".to_owned(),
            vec![(segment_file(0), data.to_vec())],
        ),
        (
            "a checkpoint".to_owned(),
            vec![(checkpoint_file(0), data.to_vec())],
        ),
    ];
    let pieces = split_at_magics(data);
    if pieces.len() > 1 {
        let mut seq = 0;
        let mut files = Vec::new();
        for piece in pieces {
            let name = if piece.starts_with(&CHECKPOINT_MAGIC) {
                checkpoint_file(seq)
            } else {
                seq += 1;
                segment_file(seq - 1)
            };
            // Two checkpoints in a row: the later one replaces the earlier.
            files.retain(|(n, _)| *n != name);
            files.push((name, piece.to_vec()));
        }
        let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
        dirs.push((format!("files {names:?}"), files));
    }
    dirs
}

/// `data` cut before every file magic after its start.
fn split_at_magics(data: &[u8]) -> Vec<&[u8]> {
    let mut pieces = Vec::new();
    let mut start = 0;
    for at in 1..data.len() {
        let rest = &data[at..];
        if rest.starts_with(&LOG_MAGIC) || rest.starts_with(&CHECKPOINT_MAGIC) {
            pieces.push(&data[start..at]);
            start = at;
        }
    }
    pieces.push(&data[start..]);
    pieces
}

/// `file` with the checksum of every frame made to match, as far as frame lengths chain.
fn fix_checksums(file: &[u8]) -> Vec<u8> {
    let mut out = file.to_vec();
    let mut pos = HEADER_LEN;
    while pos + FRAME_HEADER_LEN <= out.len() {
        let len = u32::from_le_bytes(out[pos..pos + 4].try_into().expect("4 bytes")) as usize;
        if len == 0 || len > out.len() - pos - FRAME_HEADER_LEN {
            break;
        }
        // The frame module's own encoder computes the checksum.
        let mut framed = Vec::with_capacity(FRAME_HEADER_LEN + len);
        let start = frame::begin_frame(&mut framed);
        framed.extend_from_slice(&out[pos + FRAME_HEADER_LEN..pos + FRAME_HEADER_LEN + len]);
        frame::finish_frame(&mut framed, start, u32::MAX).expect("length is in range");
        out[pos + 4..pos + 8].copy_from_slice(&framed[4..8]);
        pos += FRAME_HEADER_LEN + len;
    }
    out
}

/// Opens the journal in `files` and checks what it yields; see the module documentation.
fn open(what: &str, files: &[(String, Vec<u8>)]) {
    let disk = SimFs::new();
    for (name, bytes) in files {
        disk.plant(&at(name), bytes);
    }
    disk.record_trace();
    let (journal, recovery) = match open_journal(&disk) {
        Ok(opened) => opened,
        Err(e) => return check_refusal(what, files, &disk, &e),
    };
    let state = recovery.state;
    check_invariants(&state);
    if let Some(torn) = &recovery.torn_tail {
        let newest = files
            .iter()
            .filter(|(n, _)| n.starts_with("log-"))
            .max_by(|a, b| a.0.cmp(&b.0))
            .expect("a torn tail is in a segment");
        assert_eq!(
            torn.path,
            at(&newest.0).display().to_string(),
            "{what}: torn tail's file"
        );
        assert!(torn.offset >= HEADER_LEN as u64, "{what}: {torn:?}");
        assert_eq!(
            torn.offset + torn.bytes_dropped,
            newest.1.len() as u64,
            "{what}: the torn tail runs to the end of the file"
        );
    }

    // What open recovered is durable and reopens to itself, with nothing left to truncate.
    let after_power_loss = disk.crash();
    for (how, disk) in [("reopened", &disk), ("after power loss", &after_power_loss)] {
        let again = open_journal(disk)
            .unwrap_or_else(|e| panic!("{what}: {how}, the opened journal fails: {e}"))
            .1;
        assert_eq!(again.state, state, "{what}: {how}");
        assert_eq!(again.torn_tail, None, "{what}: {how}");
    }

    // The journal goes on: an append and a checkpoint after recovery survive power loss.
    let key = (0..)
        .map(|i| format!("fuzz-after-open-{i}"))
        .find(|k| state.get(k).is_none())
        .expect("a free key");
    let mut live = state;
    let record = live
        .decide(&Command::Prepare {
            key,
            parent: None,
            labels: Default::default(),
            now: Timestamp::new(1_900_000_000, 0),
        })
        .expect("a fresh key is prepared");
    append(what, &journal, &record);
    live.apply(&record);
    journal
        .checkpoint(&live.checkpoint())
        .unwrap_or_else(|e| panic!("{what}: checkpoint after open fails: {e}"));
    drop(journal);
    let last = open_journal(&disk.crash())
        .unwrap_or_else(|e| panic!("{what}: reopening after append and checkpoint: {e}"))
        .1;
    assert_eq!(last.state, live, "{what}: append and checkpoint after open");
}

fn append(what: &str, journal: &LogJournal, record: &Record) {
    journal
        .append(std::slice::from_ref(record))
        .unwrap_or_else(|e| panic!("{what}: append after open fails: {e}"));
}

/// A refused open is [`ErrorKind::Corrupt`] at an offset inside the file it names, and
/// changes nothing on disk: it only read (the trace of `disk` starts before the open),
/// besides the sync of the directory's parent with which every open of a store starts.
fn check_refusal(what: &str, files: &[(String, Vec<u8>)], disk: &SimFs, e: &Error) {
    let Error::Corrupt { path, offset, .. } = e else {
        panic!("{what}: open refused with {:?}, not Corrupt: {e}", e.kind());
    };
    assert_eq!(e.kind(), ErrorKind::Corrupt);
    let named = files
        .iter()
        .find(|(n, _)| at(n).display().to_string() == *path);
    if let Some((_, bytes)) = named {
        assert!(
            *offset <= bytes.len() as u64,
            "{what}: corrupt at {offset}, beyond the {} bytes of {path}: {e}",
            bytes.len()
        );
    }
    for call in disk.trace() {
        let (_, call) = call.split_once(' ').expect("a numbered call");
        let (name, _) = call.split_once(' ').expect("a call and its path");
        assert!(
            matches!(name, "symlink_metadata" | "lock" | "read_dir" | "read_file")
                || call == "sync_dir /",
            "{what}: a refused open wrote to the disk ({call}): {e}"
        );
    }
}
