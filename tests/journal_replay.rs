//! Replay: for random command sequences, with checkpoints and restarts at random points,
//! what a journal recovers equals the live state, field for field, for every journal.

mod journal_support;
mod support;

use journal_support::{cases, prepares, steps, Step};
use overlaysnap::core::State;
use overlaysnap::fs::{FileSystem, SimFs};
use overlaysnap::journal::{
    checkpoint_file, segment_file, Journal, LogJournal, MemoryJournal, Store,
};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use std::path::Path;
use std::sync::Arc;

/// The journal's directory on the simulated disk.
const DIR: &str = "/j";

/// The journal's directory on `disk` (sharing it).
fn store(disk: &SimFs) -> Store {
    Store::open(Arc::new(disk.clone()), DIR).unwrap()
}

/// Runs `steps` on the log journal stored in what `store()` opens, checking after every
/// reopen and at the end that the recovered state is the live one.
fn check_log(store: impl Fn() -> Store, steps: &[Step]) -> Result<(), TestCaseError> {
    let (mut journal, recovery) = LogJournal::open(store()).unwrap();
    prop_assert_eq!(recovery.state, State::new());
    let mut live = State::new();
    for step in steps {
        match step {
            Step::Command(cmd) => {
                if let Ok(record) = live.decide(cmd) {
                    journal.append(std::slice::from_ref(&record)).unwrap();
                    live.apply(&record);
                }
            }
            Step::Checkpoint => journal.checkpoint(&live.checkpoint()).unwrap(),
            Step::Reopen => {
                drop(journal);
                let (reopened, recovery) = LogJournal::open(store()).unwrap();
                journal = reopened;
                prop_assert_eq!(&recovery.state, &live);
                prop_assert_eq!(recovery.torn_tail, None);
            }
        }
    }
    prop_assert_eq!(&journal.recover().unwrap().state, &live);
    drop(journal);
    prop_assert_eq!(&LogJournal::open(store()).unwrap().1.state, &live);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(128)))]

    #[test]
    fn memory_journal_recovers_the_live_state(steps in steps(40)) {
        let journal = MemoryJournal::new();
        let mut live = State::new();
        for step in &steps {
            match step {
                Step::Command(cmd) => {
                    if let Ok(record) = live.decide(cmd) {
                        journal.append(std::slice::from_ref(&record)).unwrap();
                        live.apply(&record);
                    }
                }
                Step::Checkpoint => journal.checkpoint(&live.checkpoint()).unwrap(),
                Step::Reopen => prop_assert_eq!(&journal.recover().unwrap().state, &live),
            }
        }
        prop_assert_eq!(journal.recover().unwrap().state, live);
    }

    #[test]
    fn log_journal_on_a_simulated_disk_recovers_the_live_state(steps in steps(40)) {
        let disk = SimFs::new();
        check_log(|| store(&disk), &steps)?;
    }
}

proptest! {
    // Real fdatasync on every append: fewer cases.
    #![proptest_config(ProptestConfig::with_cases(cases(128) / 4))]

    #[test]
    fn log_journal_on_real_files_recovers_the_live_state(steps in steps(24)) {
        let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
        check_log(|| Store::open_dir(dir.path()).unwrap(), &steps)?;
    }
}

#[test]
fn a_checkpoint_bounds_replay_and_supersedes_the_old_files() {
    let disk = SimFs::new();
    let (journal, _) = LogJournal::open(store(&disk)).unwrap();
    let records = prepares(10);
    let mut live = State::new();
    for (i, record) in records.iter().enumerate() {
        journal.append(std::slice::from_ref(record)).unwrap();
        live.apply(record);
        if i == 3 || i == 7 {
            journal.checkpoint(&live.checkpoint()).unwrap();
        }
    }
    let mut names: Vec<String> = disk
        .read_dir(Path::new(DIR))
        .unwrap()
        .into_iter()
        .map(|n| n.into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, [checkpoint_file(2), segment_file(2)]);
    let recovery = journal.recover().unwrap();
    assert_eq!(recovery.state, live);
    assert_eq!(recovery.records_replayed, 2);
    assert_eq!(
        recovery.checkpoint,
        Some(
            Path::new(DIR)
                .join(checkpoint_file(2))
                .display()
                .to_string()
        )
    );
    // a checkpoint with nothing after it replays nothing
    journal.checkpoint(&live.checkpoint()).unwrap();
    drop(journal);
    let (_, recovery) = LogJournal::open(store(&disk)).unwrap();
    assert_eq!((recovery.state, recovery.records_replayed), (live, 0));
}

#[test]
fn a_multi_record_submit_is_kept_in_order() {
    let records = prepares(5);
    let memory = MemoryJournal::new();
    let (log, _) = LogJournal::open(store(&SimFs::new())).unwrap();
    for journal in [&memory as &dyn Journal, &log] {
        journal.append(&records).unwrap();
        assert_eq!(
            journal.recover().unwrap().state,
            journal_support::states(&records)[5]
        );
    }
}
