//! Replay: for random command sequences, with checkpoints and restarts at random points,
//! what a journal recovers equals the live state, field for field, for every journal.

mod journal_support;
mod support;

use journal_support::{cases, prepares, steps, Step};
use overlaysnap::core::State;
use overlaysnap::journal::{
    checkpoint_file, segment_file, Backend, FsBackend, Journal, LogJournal, MemoryJournal,
    SimBackend,
};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

/// Runs `steps` on the log journal stored in what `backend()` opens, checking after every
/// reopen and at the end that the recovered state is the live one.
fn check_log<B: Backend>(backend: impl Fn() -> B, steps: &[Step]) -> Result<(), TestCaseError> {
    let (mut journal, recovery) = LogJournal::open(backend()).unwrap();
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
            Step::Checkpoint => journal.checkpoint(&live).unwrap(),
            Step::Reopen => {
                drop(journal);
                let (reopened, recovery) = LogJournal::open(backend()).unwrap();
                journal = reopened;
                prop_assert_eq!(&recovery.state, &live);
                prop_assert_eq!(recovery.torn_tail, None);
            }
        }
    }
    prop_assert_eq!(&journal.recover().unwrap().state, &live);
    drop(journal);
    prop_assert_eq!(&LogJournal::open(backend()).unwrap().1.state, &live);
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
                Step::Checkpoint => journal.checkpoint(&live).unwrap(),
                Step::Reopen => prop_assert_eq!(&journal.recover().unwrap().state, &live),
            }
        }
        prop_assert_eq!(journal.recover().unwrap().state, live);
    }

    #[test]
    fn log_journal_on_a_simulated_disk_recovers_the_live_state(steps in steps(40)) {
        let disk = SimBackend::new();
        check_log(|| disk.clone(), &steps)?;
    }
}

proptest! {
    // Real fdatasync on every append: fewer cases.
    #![proptest_config(ProptestConfig::with_cases(cases(128) / 4))]

    #[test]
    fn log_journal_on_real_files_recovers_the_live_state(steps in steps(24)) {
        let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
        check_log(|| FsBackend::open(dir.path()).unwrap(), &steps)?;
    }
}

#[test]
fn a_checkpoint_bounds_replay_and_supersedes_the_old_files() {
    let disk = SimBackend::new();
    let (journal, _) = LogJournal::open(disk.clone()).unwrap();
    let records = prepares(10);
    let mut live = State::new();
    for (i, record) in records.iter().enumerate() {
        journal.append(std::slice::from_ref(record)).unwrap();
        live.apply(record);
        if i == 3 || i == 7 {
            journal.checkpoint(&live).unwrap();
        }
    }
    let mut names = disk.list().unwrap();
    names.sort();
    assert_eq!(names, [checkpoint_file(2), segment_file(2)]);
    let recovery = journal.recover().unwrap();
    assert_eq!(recovery.state, live);
    assert_eq!(recovery.records_replayed, 2);
    assert_eq!(
        recovery.checkpoint,
        Some(format!("sim:{}", checkpoint_file(2)))
    );
    // a checkpoint with nothing after it replays nothing
    journal.checkpoint(&live).unwrap();
    drop(journal);
    let (_, recovery) = LogJournal::open(disk).unwrap();
    assert_eq!((recovery.state, recovery.records_replayed), (live, 0));
}

#[test]
fn a_multi_record_submit_is_kept_in_order() {
    let records = prepares(5);
    let memory = MemoryJournal::new();
    let disk = SimBackend::new();
    let (log, _) = LogJournal::open(disk).unwrap();
    for journal in [&memory as &dyn Journal, &log] {
        journal.append(&records).unwrap();
        assert_eq!(
            journal.recover().unwrap().state,
            journal_support::states(&records)[5]
        );
    }
}
