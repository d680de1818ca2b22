//! Sharper checks of the journal, written after a `cargo mutants` run over `src/journal/`
//! (see `docs/mutants.md`): the frame reader's edges (exactly at the cap, exactly at the
//! end, a header cut short), what the memory journal promises about tickets and bad
//! records, file names that only look like the journal's, what a poisoned journal reports,
//! and the simulated disk's own bookkeeping that the crash tests rely on.

use overlaysnap::core::{Command, Labels, Record, State, Timestamp};
use overlaysnap::journal::frame::{self, Frames, Item};
use overlaysnap::journal::{
    checkpoint_file, segment_file, Backend, Crash, Fault, FsBackend, Journal, LogJournal,
    MemoryJournal, SimBackend,
};
use overlaysnap::{Error, ErrorKind};
use rstest::rstest;
use std::sync::{Arc, Mutex};

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
    assert_eq!(frame::check_header(&bytes, frame::LOG_MAGIC), Ok(()));
    assert_eq!(Frames::new(&bytes, frame::HEADER_LEN, 16).next(), None);
    let bad = frame::check_header(&bytes, frame::CHECKPOINT_MAGIC).unwrap_err();
    assert_eq!(bad.offset, 0);
}

// A checkpoint file must hold one frame: a header alone is corrupt right after the header.
#[rstest]
fn a_checkpoint_without_a_frame_is_corrupt() {
    let disk = SimBackend::new();
    disk.set_contents(&checkpoint_file(1), &frame::header(frame::CHECKPOINT_MAGIC));
    disk.set_contents(&segment_file(1), &frame::header(frame::LOG_MAGIC));
    match LogJournal::open(disk) {
        Err(Error::Corrupt {
            path,
            offset,
            reason,
        }) => {
            assert_eq!(path, format!("sim:{}", checkpoint_file(1)));
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
    let disk = SimBackend::new();
    let (journal, _) = LogJournal::open(disk.clone()).unwrap();
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
        disk.set_contents(name, b"not a journal file");
    }
    let (_, recovery) = LogJournal::open(disk.clone()).unwrap();
    assert_eq!(recovery.state, state_after(&records));
    assert_eq!(recovery.records_replayed, 2);
    let names = disk.list().unwrap();
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
    journal.checkpoint(&state_after(&records[..2])).unwrap();
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
    let disk = SimBackend::new();
    let (journal, _) = LogJournal::open(disk.clone()).unwrap();
    journal.append(&records[..1]).unwrap();
    disk.remove(&segment_file(0)).unwrap(); // the segment vanishes under the journal
    let first = journal.append(&records[1..]).unwrap_err();
    let later = journal.submit(&records[1..]).unwrap_err();
    for err in [first, later] {
        match err {
            Error::Io { source, .. } => {
                assert_eq!(source.kind(), std::io::ErrorKind::NotFound, "{source}")
            }
            other => panic!("{other:?}"),
        }
    }
}

// The journal's Debug output names its directory.
#[rstest]
fn debug_output_names_the_directory() {
    let (journal, _) = LogJournal::open(SimBackend::new()).unwrap();
    assert_eq!(format!("{journal:?}"), r#"LogJournal { dir: "sim:", .. }"#);
}

// The file backend reports the directory it was opened on and paths inside it.
#[rstest]
fn file_backend_reports_its_directory() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let backend = FsBackend::open(dir.path()).unwrap();
    assert_eq!(backend.dir(), dir.path());
    assert_eq!(
        backend.path("log-x"),
        dir.path().join("log-x").display().to_string()
    );
}

// The file backend's cache of open files follows renames and removals.
#[rstest]
fn file_backend_follows_renames_and_removals() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let backend = FsBackend::open(dir.path()).unwrap();
    backend.create("a").unwrap();
    backend.write("a", 0, b"first").unwrap();
    backend.create("b").unwrap();
    backend.write("b", 0, b"second").unwrap();
    backend.rename("a", "b").unwrap();
    backend.write("b", 5, b"!").unwrap();
    assert_eq!(backend.read("b").unwrap(), b"first!");
    assert_eq!(std::fs::read(dir.path().join("b")).unwrap(), b"first!");
    backend.set_len("b", 2).unwrap();
    backend.sync_data("b").unwrap();
    assert_eq!(backend.read("b").unwrap(), b"fi");
    backend.remove("b").unwrap();
    assert!(backend.read("b").is_err());
    assert!(backend.write("b", 0, b"x").is_err(), "no stale handle");
    let mut names = backend.list().unwrap();
    names.sort();
    assert_eq!(names, ["LOCK"]);
    backend.sync_dir().unwrap();
}

// Files planted on the simulated disk are independent, and each survives a power loss.
#[rstest]
fn planted_files_are_independent_and_durable() {
    let disk = SimBackend::new();
    disk.set_contents("a", b"one");
    disk.set_contents("b", b"two");
    disk.create("c").unwrap();
    disk.write("c", 0, b"three").unwrap();
    disk.sync_data("c").unwrap();
    disk.sync_dir().unwrap();
    let after = disk.crash(Crash::PowerLoss);
    for (name, bytes) in [("a", &b"one"[..]), ("b", b"two"), ("c", b"three")] {
        assert_eq!(after.read(name).unwrap(), bytes, "{name}");
    }
}

// Each injected fault fires once, at its op, and counting starts afresh after a crash.
#[rstest]
fn an_injected_fault_fires_once_at_its_op() {
    let disk = SimBackend::new();
    disk.create("f").unwrap(); // op 0
    disk.inject(2, Fault::Fail);
    disk.write("f", 0, b"ab").unwrap(); // op 1
    assert!(disk.write("f", 2, b"cd").is_err()); // op 2
    disk.write("f", 2, b"ef").unwrap(); // op 3
    assert_eq!(disk.ops(), 4);
    assert_eq!(disk.read("f").unwrap(), b"abef");
    let after = disk.crash(Crash::Process);
    assert_eq!(after.ops(), 0);
    assert_eq!(after.read("f").unwrap(), b"abef");
}

// A torn write keeps a prefix; a garbled one keeps a prefix and changes the rest.
#[rstest]
fn torn_and_garbled_writes_land_as_documented() {
    let disk = SimBackend::new();
    disk.create("t").unwrap();
    disk.create("g").unwrap();
    let data = [0u8; 64];
    disk.inject(2, Fault::Tear { keep: 5 });
    assert!(disk.write("t", 0, &data).is_err());
    assert_eq!(disk.read("t").unwrap(), [0u8; 5]);
    disk.inject(3, Fault::Garble { keep: 9 });
    assert!(disk.write("g", 0, &data).is_err());
    let landed = disk.read("g").unwrap();
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
        let backend = FsBackend::open("journal").unwrap();
        assert!(std::path::Path::new("journal/LOCK").exists());
        assert_eq!(backend.dir(), std::path::Path::new("journal"));
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

// Syncing a file that does not exist fails instead of pretending it is durable.
#[rstest]
fn file_backend_sync_of_a_missing_file_fails() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let backend = FsBackend::open(dir.path()).unwrap();
    let err = backend.sync_data("missing").unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
    backend.create("present").unwrap();
    backend.sync_data("present").unwrap();
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
        let disk = SimBackend::new();
        let (journal, _) = LogJournal::open(disk.clone()).unwrap();
        journal.append(&records[..1]).unwrap();
        // checkpoint-0 never existed: its removal finds nothing, silently
        journal.checkpoint(&state_after(&records[..1])).unwrap();
        assert_eq!(warnings.taken(), Vec::<String>::new());
        drop(journal);

        let stale = format!("{}.tmp", checkpoint_file(9));
        disk.set_contents(&stale, b"half");
        disk.inject(disk.ops(), Fault::Fail); // the first op of open: removing `stale`
        let (journal, recovery) = LogJournal::open(disk.clone()).unwrap();
        assert_eq!(recovery.state, state_after(&records[..1]));
        let warned = warnings.taken();
        assert_eq!(warned.len(), 1, "{warned:?}");
        assert!(
            warned[0].contains("cannot remove superseded journal file")
                && warned[0].contains(&format!("sim:{stale}")),
            "{warned:?}"
        );
        assert!(disk.list().unwrap().contains(&stale));
        journal.append(&records[1..]).unwrap();
    });
}

// Only the newest segment may end torn: an older one was synced whole before the next one
// was created, so a cut in it is corruption, reported and never truncated.
#[rstest]
fn a_torn_tail_in_an_older_segment_is_corrupt() {
    let records = prepares(2);
    let source = SimBackend::new();
    let (journal, _) = LogJournal::open(source.clone()).unwrap();
    journal.append(&records).unwrap();
    drop(journal);
    let mut old = source.read(&segment_file(0)).unwrap();
    let last = Frames::new(&old, frame::HEADER_LEN, frame::MAX_RECORD_FRAME)
        .last()
        .map(|item| match item {
            Item::Frame { offset, .. } => offset,
            other => panic!("{other:?}"),
        })
        .unwrap();
    old.pop();

    let disk = SimBackend::new();
    disk.set_contents(&segment_file(0), &old);
    disk.set_contents(&segment_file(1), &frame::header(frame::LOG_MAGIC));
    match LogJournal::open(disk.clone()) {
        Err(Error::Corrupt {
            path,
            offset,
            reason,
        }) => {
            assert_eq!(path, format!("sim:{}", segment_file(0)));
            assert_eq!(offset, last);
            assert!(reason.ends_with(", in an older segment"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(disk.read(&segment_file(0)).unwrap(), old, "left as it was");
}
