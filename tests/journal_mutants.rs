//! Sharper checks of the journal, written after a `cargo mutants` run over `src/journal/`
//! (see `docs/mutants.md`): the frame reader's edges (exactly at the cap, exactly at the
//! end, a header cut short), what the memory journal promises about tickets and bad
//! records, file names that only look like the journal's, what a poisoned journal reports,
//! and the simulated disk's own bookkeeping that the crash tests rely on.

use overlaysnap::core::{Command, Labels, Record, State, Timestamp};
use overlaysnap::fs::{Fault, FileSystem, RealFs, SimFs};
use overlaysnap::journal::frame::{self, Frames, Item};
use overlaysnap::journal::{
    checkpoint_file, segment_file, Journal, LogJournal, MemoryJournal, Recovery, Store,
};
use overlaysnap::{Error, ErrorKind};
use rstest::rstest;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The journal's directory on the simulated disk.
const DIR: &str = "/j";

/// The path of the journal's file `name`.
fn at(name: &str) -> PathBuf {
    Path::new(DIR).join(name)
}

/// Opens the journal in `DIR` of `disk` (sharing it).
fn open(disk: &SimFs) -> overlaysnap::Result<(LogJournal, Recovery)> {
    LogJournal::open(Store::open(Arc::new(disk.clone()), DIR)?)
}

/// The names in the journal's directory.
fn names(disk: &SimFs) -> Vec<String> {
    disk.read_dir(Path::new(DIR))
        .unwrap()
        .into_iter()
        .map(|n| n.into_string().unwrap())
        .collect()
}

/// `n` Prepare records of keys `k0`, `k1`, ..., as the core decides them.
fn prepares(n: usize) -> Vec<Record> {
    let mut state = State::new();
    (0..n)
        .map(|i| {
            let record = state
                .decide(&Command::Prepare {
                    key: format!("k{i}"),
                    parent: None,
                    labels: Labels::new(),
                    now: Timestamp::new(1_700_000_000 + i as i64, 0),
                })
                .unwrap();
            state.apply(&record);
            record
        })
        .collect()
}

fn state_after(records: &[Record]) -> State {
    let mut state = State::new();
    for r in records {
        state.apply(r);
    }
    state
}

/// A frame of `payload` with a valid checksum, checked against `max`.
fn framed(payload: &[u8], max: u32) -> Vec<u8> {
    let mut out = Vec::new();
    let start = frame::begin_frame(&mut out);
    out.extend_from_slice(payload);
    frame::finish_frame(&mut out, start, max).unwrap();
    out
}

// A payload of exactly the cap is a frame; one byte more is not, and the reader says why.
#[rstest]
fn a_frame_of_exactly_the_cap_is_valid() {
    let bytes = framed(b"abc", 3);
    let items: Vec<Item> = Frames::new(&bytes, 0, 3).collect();
    assert_eq!(
        items,
        [Item::Frame {
            offset: 0,
            payload: b"abc"
        }]
    );
    match Frames::new(&bytes, 0, 2).next() {
        Some(Item::Torn { offset: 0, reason }) => {
            assert!(reason.contains("exceeds the cap 2"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
}

// finish_frame refuses an empty or oversized payload and leaves `out` as it was before the frame.
#[rstest]
#[case::empty(b"" as &[u8], 4)]
#[case::over_the_cap(b"abcde", 4)]
fn finish_frame_refuses_and_removes_a_frame_that_does_not_fit(
    #[case] payload: &[u8],
    #[case] max: u32,
) {
    let mut out = b"head".to_vec();
    let start = frame::begin_frame(&mut out);
    assert_eq!(start, 4);
    out.extend_from_slice(payload);
    let why = frame::finish_frame(&mut out, start, max).unwrap_err();
    assert!(why.contains(&format!("(1..={max})")), "{why}");
    assert_eq!(out, b"head");
}

// Frames after a start offset: the offset of each frame is where its length field begins.
#[rstest]
fn frames_are_read_from_the_start_offset_in_order() {
    let mut bytes = frame::header(frame::LOG_MAGIC).to_vec();
    bytes.extend(framed(b"one", 16));
    bytes.extend(framed(b"two!", 16));
    let items: Vec<Item> = Frames::new(&bytes, frame::HEADER_LEN, 16).collect();
    assert_eq!(
        items,
        [
            Item::Frame {
                offset: 12,
                payload: b"one"
            },
            Item::Frame {
                offset: 23,
                payload: b"two!"
            },
        ]
    );
    // a start past the end yields nothing
    assert_eq!(Frames::new(&bytes, bytes.len() + 5, 16).next(), None);
}

// The reason for a bad tail names what is wrong: a cut header, or a length past the end.
#[rstest]
#[case::seven_bytes(7, "frame header cut short: 7 of 8 bytes")]
#[case::header_only(8, "frame length 3 runs past the end of the file (0 bytes left)")]
#[case::one_payload_byte(9, "frame length 3 runs past the end of the file (1 bytes left)")]
fn a_short_tail_is_torn_with_the_precise_reason(#[case] keep: usize, #[case] why: &str) {
    let mut bytes = framed(b"one", 16);
    let first = bytes.len();
    bytes.extend(&framed(b"two", 16)[..keep]);
    let items: Vec<Item> = Frames::new(&bytes, 0, 16).collect();
    assert_eq!(items.len(), 2, "{items:?}");
    assert_eq!(
        items[1],
        Item::Torn {
            offset: first as u64,
            reason: why.to_owned()
        }
    );
}

// After reporting a bad frame the reader stops, even when valid frames follow it.
#[rstest]
fn the_reader_stops_after_the_first_bad_frame() {
    let mut bytes = framed(b"one", 16);
    let bad = bytes.len();
    let mut damaged = framed(b"two", 16);
    damaged[9] ^= 1;
    bytes.extend(damaged);
    bytes.extend(framed(b"three", 16));
    let mut frames = Frames::new(&bytes, 0, 16);
    assert!(matches!(frames.next(), Some(Item::Frame { .. })));
    match frames.next() {
        Some(Item::Corrupt { offset, reason }) => {
            assert_eq!(offset, bad as u64);
            assert!(
                reason.ends_with(&format!("a valid frame follows at offset {}", bad + 11)),
                "{reason}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(frames.next(), None);
    assert_eq!(frames.next(), None);
}

// A file that is exactly a header has no frames.
#[rstest]
fn a_header_alone_has_no_frames() {
    let bytes = frame::header(frame::LOG_MAGIC);
    assert_eq!(
        frame::check_header(&bytes, frame::LOG_MAGIC),
        Ok(frame::FORMAT_VERSION)
    );
    assert_eq!(Frames::new(&bytes, frame::HEADER_LEN, 16).next(), None);
    let bad = frame::check_header(&bytes, frame::CHECKPOINT_MAGIC).unwrap_err();
    assert_eq!(bad.offset, 0);
}

// A checkpoint file must hold one frame: a header alone is corrupt right after the header.
#[rstest]
fn a_checkpoint_without_a_frame_is_corrupt() {
    let disk = SimFs::new();
    disk.plant(
        &at(&checkpoint_file(1)),
        &frame::header(frame::CHECKPOINT_MAGIC),
    );
    disk.plant(&at(&segment_file(1)), &frame::header(frame::LOG_MAGIC));
    match open(&disk) {
        Err(Error::Corrupt {
            path,
            offset,
            reason,
        }) => {
            assert_eq!(path, at(&checkpoint_file(1)).display().to_string());
            assert_eq!(offset, frame::HEADER_LEN as u64);
            assert_eq!(reason, "checkpoint has no frame");
        }
        other => panic!("{other:?}"),
    }
}

// Names that only look like journal files (wrong digit count, a non-digit) are left alone.
#[rstest]
fn names_that_are_not_twenty_digits_are_not_journal_files() {
    let records = prepares(2);
    let disk = SimFs::new();
    let (journal, _) = open(&disk).unwrap();
    journal.append(&records).unwrap();
    drop(journal);
    let strangers = [
        "log-1".to_owned(),
        "log-0000000000000000000x".to_owned(),
        "log-+0000000000000000001".to_owned(),
        format!("{}0", segment_file(0)),
        "checkpoint-7".to_owned(),
        "checkpoint-0000000000000000000x".to_owned(),
        "log-1.tmp".to_owned(),
    ];
    for name in &strangers {
        disk.plant(&at(name), b"not a journal file");
    }
    let (_, recovery) = open(&disk).unwrap();
    assert_eq!(recovery.state, state_after(&records));
    assert_eq!(recovery.records_replayed, 2);
    let names = names(&disk);
    for name in &strangers {
        assert!(names.contains(name), "{name} was removed: {names:?}");
    }
}

// Checkpoint and segment names are the prefix and 20 decimal digits.
#[rstest]
fn file_names_have_twenty_digits() {
    assert_eq!(segment_file(7), "log-00000000000000000007");
    assert_eq!(checkpoint_file(42), "checkpoint-00000000000000000042");
    assert_eq!(
        segment_file(u64::MAX),
        format!("log-{}", u64::MAX) // 18446744073709551615 is 20 digits
    );
}

// Memory journal tickets count records, and a ticket means nothing to another journal.
#[rstest]
fn memory_journal_tickets_count_records() {
    let records = prepares(3);
    let one = MemoryJournal::new();
    let other = MemoryJournal::new();
    let first = one.submit(&records[..2]).unwrap();
    let second = one.submit(&records[2..]).unwrap();
    assert!(first < second);
    one.wait(first).unwrap();
    one.wait(second).unwrap();
    other.submit(&records[..1]).unwrap();
    other.wait(other.submit(&[]).unwrap()).unwrap();
    let err = other.wait(first).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert_eq!(
        err.to_string(),
        "invalid argument: ticket 2 was not issued by this journal (last issued: 1)"
    );
}

// A memory journal recovers by replay, names its checkpoint and counts replayed records.
#[rstest]
fn memory_journal_reports_its_checkpoint_and_replay_count() {
    let records = prepares(5);
    let journal = MemoryJournal::new();
    journal.append(&records[..2]).unwrap();
    let before = journal.recover().unwrap();
    assert_eq!(
        (before.checkpoint, before.records_replayed, before.torn_tail),
        (None, 2, None)
    );
    journal
        .checkpoint(&state_after(&records[..2]).checkpoint())
        .unwrap();
    journal.append(&records[2..]).unwrap();
    let after = journal.recover().unwrap();
    assert_eq!(after.state, state_after(&records));
    assert_eq!(after.records_replayed, 3);
    assert_eq!(
        after.checkpoint.as_deref(),
        Some("memory journal checkpoint")
    );
}

// A record that does not fit is reported by its index in the memory journal.
#[rstest]
fn memory_journal_reports_a_record_that_does_not_fit_by_index() {
    let records = prepares(2);
    let journal = MemoryJournal::new();
    journal.append(&records).unwrap();
    journal
        .append(&[Record::Removed {
            id: 99,
            key: "nope".into(),
        }])
        .unwrap();
    match journal.recover() {
        Err(Error::Corrupt {
            path,
            offset,
            reason,
        }) => {
            assert_eq!((path.as_str(), offset), ("memory journal", 2));
            assert!(
                reason.starts_with("record 2 does not fit the state"),
                "{reason}"
            );
        }
        other => panic!("{other:?}"),
    }
}

// A poisoned journal keeps reporting the kind of the I/O failure that poisoned it.
#[rstest]
fn a_poisoned_journal_reports_the_first_failure_kind() {
    let records = prepares(2);
    let disk = SimFs::new();
    let (journal, _) = open(&disk).unwrap();
    journal.append(&records[..1]).unwrap();
    // The disk fails every later call with EIO, whose kind is neither NotFound nor Other
    // (an injected fault's), so that the kind reported must be the failure's own.
    disk.crash_after(disk.calls());
    let eio = std::io::Error::from_raw_os_error(5).kind();
    assert_ne!(eio, std::io::ErrorKind::Other);
    let first = journal.append(&records[1..]).unwrap_err();
    assert!(disk.crashed());
    let later = journal.submit(&records[1..]).unwrap_err();
    for err in [first, later] {
        match err {
            Error::Io { source, .. } => assert_eq!(source.kind(), eio, "{source}"),
            other => panic!("{other:?}"),
        }
    }
}

// The journal's Debug output names its directory.
#[rstest]
fn debug_output_names_the_directory() {
    let (journal, _) = open(&SimFs::new()).unwrap();
    assert_eq!(format!("{journal:?}"), r#"LogJournal { dir: "/j", .. }"#);
}

// A store on the host reports the directory it was opened on and paths inside it.
#[rstest]
fn file_store_reports_its_directory() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let store = Store::open_dir(dir.path()).unwrap();
    assert_eq!(store.dir(), dir.path());
    assert_eq!(
        store.path("log-x"),
        dir.path().join("log-x").display().to_string()
    );
}

// A host file handle names its file, not its path: it follows a rename that replaces
// another file, and the name goes with a removal. (The store's cache of open handles,
// which follows renames and removals by name, is crate-private now; a missed rename there
// shows as an extra `open_file` call in tests/journal_group.rs.)
#[rstest]
fn file_handles_follow_renames_and_removals() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let _store = Store::open_dir(dir.path()).unwrap(); // holds the lock
    let fs = RealFs;
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let first = fs.create_file(&a).unwrap();
    first.write_at(0, b"first").unwrap();
    let second = fs.create_file(&b).unwrap();
    second.write_at(0, b"second").unwrap();
    fs.rename(&a, &b).unwrap();
    first.write_at(5, b"!").unwrap();
    assert_eq!(fs.read_file(&b).unwrap(), b"first!");
    assert_eq!(std::fs::read(&b).unwrap(), b"first!");
    first.set_len(2).unwrap();
    first.sync_data().unwrap();
    assert_eq!(fs.read_file(&b).unwrap(), b"fi");
    fs.remove_file(&b).unwrap();
    assert_eq!(
        fs.read_file(&b).unwrap_err().kind(),
        std::io::ErrorKind::NotFound
    );
    assert_eq!(
        fs.open_file(&b).unwrap_err().kind(),
        std::io::ErrorKind::NotFound,
        "no file to open"
    );
    assert_eq!(fs.read_dir(dir.path()).unwrap(), ["LOCK"]);
    fs.sync_dir(dir.path()).unwrap();
}

// Files planted on the simulated disk are independent, and each survives a power loss.
#[rstest]
fn planted_files_are_independent_and_durable() {
    let disk = SimFs::new();
    disk.plant(&at("a"), b"one");
    disk.plant(&at("b"), b"two");
    let c = disk.create_file(&at("c")).unwrap();
    c.write_at(0, b"three").unwrap();
    c.sync_data().unwrap();
    disk.sync_dir(Path::new(DIR)).unwrap();
    let after = disk.crash();
    for (name, bytes) in [("a", &b"one"[..]), ("b", b"two"), ("c", b"three")] {
        assert_eq!(after.read_file(&at(name)).unwrap(), bytes, "{name}");
    }
}

// Each injected fault fires once, at its call, and counting starts afresh after a crash.
#[rstest]
fn an_injected_fault_fires_once_at_its_op() {
    let disk = SimFs::new();
    let f = disk.create_file(Path::new("/f")).unwrap(); // call 1
    disk.inject(3, Fault::Fail);
    f.write_at(0, b"ab").unwrap(); // call 2
    let err = f.write_at(2, b"cd").unwrap_err(); // call 3
    assert!(err.to_string().contains("injected fault"), "{err}");
    f.write_at(2, b"ef").unwrap(); // call 4
    assert_eq!(disk.calls(), 4);
    assert_eq!(disk.read_file(Path::new("/f")).unwrap(), b"abef");
    let after = disk.restart();
    assert_eq!(after.calls(), 0);
    assert_eq!(after.read_file(Path::new("/f")).unwrap(), b"abef");
}

// A torn write keeps a prefix; a garbled one keeps a prefix and changes the rest.
#[rstest]
fn torn_and_garbled_writes_land_as_documented() {
    let disk = SimFs::new();
    let t = disk.create_file(Path::new("/t")).unwrap(); // call 1
    let g = disk.create_file(Path::new("/g")).unwrap(); // call 2
    let data = [0u8; 64];
    disk.inject(3, Fault::Tear { keep: 5 });
    let torn = t.write_at(0, &data).unwrap_err(); // call 3
    assert!(torn.to_string().contains("injected fault"), "{torn}");
    assert_eq!(disk.read_file(Path::new("/t")).unwrap(), [0u8; 5]); // call 4
    disk.inject(5, Fault::Garble { keep: 9 });
    let garbled = g.write_at(0, &data).unwrap_err(); // call 5
    assert!(garbled.to_string().contains("injected fault"), "{garbled}");
    assert_eq!(disk.calls(), 5);
    let landed = disk.read_file(Path::new("/g")).unwrap();
    assert_eq!(landed.len(), 64);
    assert_eq!(landed[..9], data[..9]);
    assert_ne!(landed[9..], data[9..], "the rest must be garbage");
}

const RELATIVE_CHILD: &str = "OVERLAYSNAP_RELATIVE_JOURNAL_CHILD";

// A journal directory given relative to the working directory (its parent is "") opens.
#[rstest]
fn a_relative_journal_directory_is_created_and_locked() {
    if std::env::var_os(RELATIVE_CHILD).is_some() {
        // In the child, whose working directory is a fresh temporary directory.
        let store = Store::open_dir("journal").unwrap();
        assert!(std::path::Path::new("journal/LOCK").exists());
        assert_eq!(store.dir(), std::path::Path::new("journal"));
        return;
    }
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_relative_journal_directory_is_created_and_locked",
            "--test-threads=1",
        ])
        .env(RELATIVE_CHILD, "1")
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "child failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dir.path().join("journal/LOCK").exists());
}

// A file that does not exist cannot be opened to be synced, instead of pretending it is
// durable (the store opens a file it did not create before writing or syncing it).
#[rstest]
fn file_sync_of_a_missing_file_fails() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let fs = RealFs;
    let err = fs.open_file(&dir.path().join("missing")).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
    assert!(
        !dir.path().join("missing").exists(),
        "opening creates nothing"
    );
    fs.create_file(&dir.path().join("present")).unwrap();
    fs.open_file(&dir.path().join("present"))
        .unwrap()
        .sync_data()
        .unwrap();
}

// A torn tail of plausible frame headers (small lengths, wrong checksums) is still torn:
// checking them stays within the search budget.
#[rstest]
fn a_tail_of_plausible_bad_frames_is_torn() {
    let mut bytes = framed(b"one", 16);
    let tail = bytes.len();
    for _ in 0..8 {
        bytes.extend_from_slice(&[4, 0, 0, 0, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4]);
    }
    let items: Vec<Item> = Frames::new(&bytes, 0, 16).collect();
    assert!(
        matches!(&items[..], [Item::Frame { .. }, Item::Torn { offset, .. }] if *offset == tail as u64),
        "{items:?}"
    );
}

// The search for a later valid frame starts after the bad frame's first byte: a frame that
// would start one byte earlier, overlapping the last good frame, does not count.
#[rstest]
fn a_valid_frame_overlapping_the_last_good_one_does_not_make_a_tail_corrupt() {
    // The good frame's payload ends with 3, the first byte of the frame of "xyz" (length 3);
    // the rest of that frame follows, so a valid frame starts one byte before the tail.
    let mut bytes = framed(b"ab\x03", 16);
    let tail = bytes.len();
    let overlapping = framed(b"xyz", 16);
    assert_eq!(overlapping[0], 3);
    bytes.extend_from_slice(&overlapping[1..]);
    assert!(matches!(
        Frames::new(&bytes, tail - 1, 16).next(),
        Some(Item::Frame {
            payload: b"xyz",
            ..
        })
    ));
    let items: Vec<Item> = Frames::new(&bytes, 0, 16).collect();
    assert!(
        matches!(&items[..], [Item::Frame { .. }, Item::Torn { offset, .. }] if *offset == tail as u64),
        "{items:?}"
    );
}

/// A subscriber that keeps the message and fields of every WARN event.
#[derive(Clone, Default)]
struct Warnings(Arc<Mutex<Vec<String>>>);

impl Warnings {
    fn taken(&self) -> Vec<String> {
        std::mem::take(&mut self.0.lock().unwrap())
    }
}

impl tracing::field::Visit for Warnings {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if let Some(last) = self.0.lock().unwrap().last_mut() {
            last.push_str(&format!(" {}={value:?}", field.name()));
        }
    }
}

impl tracing::Subscriber for Warnings {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        if *event.metadata().level() == tracing::Level::WARN {
            self.0.lock().unwrap().push(String::new());
            event.record(&mut self.clone());
        }
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

// Removing superseded files: a file that is already gone is no news, any other failure is
// a warning naming the file, and neither fails the journal.
#[rstest]
fn failed_removals_of_superseded_files_are_warned_not_returned() {
    let warnings = Warnings::default();
    tracing::subscriber::with_default(warnings.clone(), || {
        let records = prepares(2);
        let disk = SimFs::new();
        let (journal, _) = open(&disk).unwrap();
        journal.append(&records[..1]).unwrap();
        // checkpoint-0 never existed: its removal finds nothing, silently
        journal
            .checkpoint(&state_after(&records[..1]).checkpoint())
            .unwrap();
        assert_eq!(warnings.taken(), Vec::<String>::new());
        drop(journal);

        let stale = format!("{}.tmp", checkpoint_file(9));
        disk.plant(&at(&stale), b"half");
        // The first mutating call of open, after it opened the store (symlink_metadata,
        // sync_dir of the parent, lock) and read the directory, checkpoint 1 and segment 1.
        disk.record_trace();
        disk.inject(disk.calls() + 7, Fault::Fail);
        let (journal, recovery) = open(&disk).unwrap();
        let trace = disk.trace();
        assert!(
            trace[6].ends_with(&format!(" remove_file {}", at(&stale).display())),
            "{trace:?}"
        );
        assert_eq!(recovery.state, state_after(&records[..1]));
        let warned = warnings.taken();
        assert_eq!(warned.len(), 1, "{warned:?}");
        assert!(
            warned[0].contains("cannot remove superseded journal file")
                && warned[0].contains(&at(&stale).display().to_string()),
            "{warned:?}"
        );
        assert!(names(&disk).contains(&stale));
        journal.append(&records[1..]).unwrap();
    });
}

// Only the newest segment may end torn: an older one was synced whole before the next one
// was created, so a cut in it is corruption, reported and never truncated.
#[rstest]
fn a_torn_tail_in_an_older_segment_is_corrupt() {
    let records = prepares(2);
    let source = SimFs::new();
    let (journal, _) = open(&source).unwrap();
    journal.append(&records).unwrap();
    drop(journal);
    let mut old = source.read_file(&at(&segment_file(0))).unwrap();
    let last = Frames::new(&old, frame::HEADER_LEN, frame::MAX_RECORD_FRAME)
        .last()
        .map(|item| match item {
            Item::Frame { offset, .. } => offset,
            other => panic!("{other:?}"),
        })
        .unwrap();
    old.pop();

    let disk = SimFs::new();
    disk.plant(&at(&segment_file(0)), &old);
    disk.plant(&at(&segment_file(1)), &frame::header(frame::LOG_MAGIC));
    match open(&disk) {
        Err(Error::Corrupt {
            path,
            offset,
            reason,
        }) => {
            assert_eq!(path, at(&segment_file(0)).display().to_string());
            assert_eq!(offset, last);
            assert!(reason.ends_with(", in an older segment"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        disk.read_file(&at(&segment_file(0))).unwrap(),
        old,
        "left as it was"
    );
}
