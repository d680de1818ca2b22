//! The journal's flush observer ([`overlaysnap::journal::Observer`]) on a real disk, and
//! the snapshot counts by kind ([`Snapshotter::kind_counts`]) it sits beside in metrics.

use overlaysnap::core::{Kind, KindCounts, Labels, Record, Timestamp};
use overlaysnap::journal::{Flush, Journal, LogJournal, Observer};
use overlaysnap::{Options, Snapshotter};
use parking_lot::Mutex;
use std::sync::Arc;

/// Keeps every flush it is told of.
#[derive(Debug, Default)]
struct Recorder(Mutex<Vec<Flush>>);

impl Observer for Recorder {
    fn flushed(&self, flush: &Flush) {
        self.0.lock().push(*flush);
    }
}

impl Recorder {
    fn records(&self) -> u64 {
        self.0.lock().iter().map(|f| f.records).sum()
    }
}

fn created(id: u64) -> Record {
    Record::Created {
        id,
        kind: Kind::Active,
        key: format!("k{id}"),
        parent: None,
        labels: Labels::new(),
        at: Timestamp::new(1_700_000_000, 0),
    }
}

#[test]
fn every_record_is_reported_in_exactly_one_flush_with_its_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let (mut journal, _) = LogJournal::open_dir(dir.path()).unwrap();
    let recorder = Arc::new(Recorder::default());
    journal.observe(recorder.clone());
    let journal = Arc::new(journal);
    // Eight writers of 25 single-record appends, plus one append of three records.
    let writers: Vec<_> = (0..8u64)
        .map(|w| {
            let journal = Arc::clone(&journal);
            std::thread::spawn(move || {
                for i in 0..25 {
                    journal.append(&[created(1 + w * 25 + i)]).unwrap();
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    journal
        .append(&[created(201), created(202), created(203)])
        .unwrap();
    let flushes = recorder.0.lock().clone();
    assert_eq!(recorder.records(), 203, "{flushes:?}");
    assert!(flushes.iter().all(|f| f.records > 0 && f.bytes > 0));
    assert_eq!(flushes.last().unwrap().records, 3);
    assert!(flushes.len() <= 201, "more flushes than submissions");
    // Every byte of the segment after its header came through a reported flush.
    let written: u64 = flushes.iter().map(|f| f.bytes).sum();
    let segment = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap())
        .find(|e| e.file_name().to_string_lossy().starts_with("log-"))
        .unwrap();
    let len = segment.metadata().unwrap().len();
    assert!(written < len && len - written <= 64, "{written} of {len}");
}

#[test]
fn a_checkpoint_reports_the_flush_of_what_was_pending() {
    let dir = tempfile::tempdir().unwrap();
    let (mut journal, _) = LogJournal::open_dir(dir.path()).unwrap();
    let recorder = Arc::new(Recorder::default());
    journal.observe(recorder.clone());
    journal.submit(&[created(1), created(2)]).unwrap();
    let mut state = overlaysnap::core::State::new();
    state.apply(&created(1));
    state.apply(&created(2));
    journal.checkpoint(&state.checkpoint()).unwrap();
    assert_eq!(recorder.records(), 2);
    assert_eq!(recorder.0.lock().len(), 1);
}

/// The checkpoint's flush counts only what was pending, not what earlier flushes made
/// durable (found by `scripts/mutants.sh diff`: `-` replaced with `+` in that count).
#[test]
fn a_checkpoint_after_appends_reports_only_the_pending_records() {
    let dir = tempfile::tempdir().unwrap();
    let (mut journal, _) = LogJournal::open_dir(dir.path()).unwrap();
    let recorder = Arc::new(Recorder::default());
    journal.observe(recorder.clone());
    journal
        .append(&[created(1), created(2), created(3)])
        .unwrap();
    journal.submit(&[created(4), created(5)]).unwrap();
    let mut state = overlaysnap::core::State::new();
    for id in 1..=5 {
        state.apply(&created(id));
    }
    journal.checkpoint(&state.checkpoint()).unwrap();
    let flushes: Vec<u64> = recorder.0.lock().iter().map(|f| f.records).collect();
    assert_eq!(flushes, [3, 2]);
}

#[test]
fn a_snapshotter_passes_its_observer_to_the_log_and_counts_kinds() {
    let root = tempfile::tempdir().unwrap();
    let recorder = Arc::new(Recorder::default());
    let options = Options {
        journal_observer: Some(recorder.clone()),
        ..Options::default()
    };
    let s = Snapshotter::open(root.path(), options).unwrap();
    s.prepare("a", None, Labels::new()).unwrap();
    s.commit("base", "a", Labels::new()).unwrap();
    s.prepare("b", Some("base"), Labels::new()).unwrap();
    s.prepare("c", Some("base"), Labels::new()).unwrap();
    s.view("v", Some("base"), Labels::new()).unwrap();
    assert_eq!(
        s.kind_counts(),
        KindCounts {
            view: 1,
            active: 2,
            committed: 1
        }
    );
    assert_eq!(s.kind_counts().get(Kind::Active), 2);
    // Four creations and one commit, each acknowledged only after its flush.
    assert_eq!(recorder.records(), 5);
    s.remove("b").unwrap();
    assert_eq!(s.kind_counts().get(Kind::Active), 1);
    assert_eq!(recorder.records(), 6);
}
