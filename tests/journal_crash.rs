//! Crash consistency on the simulated disk: the real `LogJournal` dies at every write and
//! sync point (the op fails, tears or garbles, then the process dies or the power goes),
//! and what it recovers must be the state after some prefix of the submitted records that
//! contains every acknowledged one. Also: after a failed write or sync the journal is
//! poisoned and touches the disk no more ("fsyncgate").

mod journal_support;
mod support;

use journal_support::{cases, decided, prepares, states};
use overlaysnap::core::{Command, Record, State, Timestamp};
use overlaysnap::fs::{Fault, SimFs};
use overlaysnap::journal::{Journal, LogJournal, Recovery, Store};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::TestCaseError;
use proptest_state_machine::ReferenceStateMachine;
use rstest::rstest;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use support::machine::{Machine, Step};

/// The journal's directory on the simulated disk.
const DIR: &str = "/j";

/// Opens the journal in `DIR` of `fs` (sharing its disk).
fn open(fs: &SimFs) -> overlaysnap::Result<(LogJournal, Recovery)> {
    LogJournal::open(Store::open(Arc::new(fs.clone()), DIR)?)
}

/// What survives a crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Crash {
    /// The process dies, the kernel does not: everything written survives, synced or not.
    Process,
    /// The machine loses power: only what was synced survives.
    PowerLoss,
}

impl Crash {
    /// The disk whoever comes after a crash of this kind finds.
    fn of(self, fs: &SimFs) -> SimFs {
        match self {
            Crash::Process => fs.restart(),
            Crash::PowerLoss => fs.crash(),
        }
    }
}

#[derive(Debug, Clone)]
enum Op {
    Append(Record),
    Checkpoint,
}

/// Up to `max` records decided from a state-aware command sequence (tests/support/
/// machine.rs: drawn from the model's state, so most commands are accepted), with
/// checkpoints between them at random. Shrinking deletes steps of the sequence.
fn ops(max: usize) -> impl Strategy<Value = Vec<Op>> {
    (
        Machine::sequential_strategy(max..=3 * max),
        prop::collection::vec(prop::bool::weighted(0.3), max),
    )
        .prop_map(move |((_, steps, seen), checkpoints)| {
            // Every step is used: tell the shrinker, which would otherwise drop all of them.
            if let Some(seen) = seen {
                seen.fetch_add(steps.len(), Ordering::SeqCst);
            }
            let commands: Vec<Command> = steps
                .into_iter()
                .filter_map(|step| match step {
                    Step::Run(cmd) => Some(cmd),
                    Step::Restart | Step::Checkpoint | Step::Walk(_) => None,
                })
                .collect();
            decided(&commands)
                .into_iter()
                .take(max)
                .zip(checkpoints)
                .flat_map(|(record, checkpoint)| {
                    std::iter::once(Op::Append(record)).chain(checkpoint.then_some(Op::Checkpoint))
                })
                .collect()
        })
}

/// Every fault tried at each call: nothing lands, a prefix lands (a header, part of one, all
/// of it), or a prefix lands and garbage follows.
const FAULTS: [Fault; 7] = [
    Fault::Fail,
    Fault::Tear { keep: 0 },
    Fault::Tear { keep: 5 },
    Fault::Tear { keep: 11 },
    Fault::Tear { keep: usize::MAX },
    Fault::Garble { keep: 0 },
    Fault::Garble { keep: 9 },
];

const CRASHES: [Crash; 2] = [Crash::Process, Crash::PowerLoss];

/// How far a run got before it died at its first error.
struct Run {
    records: Vec<Record>,
    /// Records whose append returned Ok.
    acked: usize,
    /// Records handed to the journal, acknowledged or not.
    submitted: usize,
}

/// Runs `ops` on a journal over `fs` until the first error, as a process that dies there.
fn run(fs: &SimFs, ops: &[Op]) -> Run {
    let mut run = Run {
        records: Vec::new(),
        acked: 0,
        submitted: 0,
    };
    let Ok((journal, recovery)) = open(fs) else {
        return run;
    };
    assert_eq!(recovery.state, State::new());
    let mut live = State::new();
    for op in ops {
        match op {
            Op::Append(record) => {
                run.records.push(record.clone());
                run.submitted += 1;
                if journal.append(std::slice::from_ref(record)).is_err() {
                    return run;
                }
                live.apply(record);
                run.acked += 1;
            }
            Op::Checkpoint => {
                if journal.checkpoint(&live.checkpoint()).is_err() {
                    return run;
                }
            }
        }
    }
    run
}

/// How many calls (reads included) `ops` take on a disk that never fails, opening the
/// journal included.
fn calls_needed(ops: &[Op]) -> u64 {
    let fs = SimFs::new();
    let run = run(&fs, ops);
    assert_eq!(run.acked, run.submitted);
    fs.calls()
}

/// Fails call `at` (numbered from 1) with `fault`, lets the run die there, crashes the disk
/// as `how`, and checks what reopening recovers.
fn crash_at(ops: &[Op], at: u64, fault: Fault, how: Crash) -> Result<(), TestCaseError> {
    let fs = SimFs::new();
    fs.inject(at, fault);
    let run = run(&fs, ops);
    let after = how.of(&fs);
    let context = format!("{fault:?} at call {at}, then {how:?}");
    let recovery = match open(&after) {
        Ok((_, recovery)) => recovery,
        Err(e) => {
            return Err(TestCaseError::fail(format!(
                "{context}: reopen failed: {e}"
            )))
        }
    };
    let states = states(&run.records);
    prop_assert!(
        states[run.acked..=run.submitted].contains(&recovery.state),
        "{}: recovered a state that is not after {}..={} records",
        context,
        run.acked,
        run.submitted
    );
    // What open recovered is durable: losing power right after it changes nothing.
    let (_, again) = open(&after.crash()).unwrap();
    prop_assert_eq!(
        &again.state,
        &recovery.state,
        "{}: recovered twice",
        context
    );
    prop_assert_eq!(again.torn_tail, None);
    // And the reopened journal goes on durably: what it acknowledges survives power loss.
    let (journal, _) = open(&after).unwrap();
    let mut live = recovery.state;
    let record = live
        .decide(&Command::Prepare {
            key: "after-the-crash".into(),
            parent: None,
            labels: Default::default(),
            now: Timestamp::new(1_800_000_000, 0),
        })
        .unwrap();
    journal.append(std::slice::from_ref(&record)).unwrap();
    live.apply(&record);
    let (_, last) = open(&after.crash()).unwrap();
    prop_assert_eq!(&last.state, &live, "{}: appended after recovery", context);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(96)))]

    /// Sequences of up to 3 commands: every call (reads included), every fault, both kinds
    /// of crash (and a crash after the last call, with no fault).
    #[test]
    fn crash_at_every_op_of_short_sequences(ops in ops(3)) {
        for at in 1..=calls_needed(&ops) + 1 {
            for fault in FAULTS {
                for how in CRASHES {
                    crash_at(&ops, at, fault, how)?;
                }
            }
        }
    }

    /// Longer sequences: one random call, fault and kind of crash each.
    #[test]
    fn crash_at_a_random_op_of_longer_sequences(
        ops in ops(24),
        at in any::<Index>(),
        fault in prop::sample::select(&FAULTS[..]),
        how in prop::sample::select(&CRASHES[..]),
    ) {
        let needed = calls_needed(&ops);
        crash_at(&ops, 1 + at.index(needed as usize + 1) as u64, fault, how)?;
    }
}

/// Where the next append's write or sync fails (`call`, counted from 0 after the first
/// append, is the `name`d call), and what each kind of crash recovers (how many of the two
/// records).
#[rstest]
#[case::failed_write(0, "write_at", Fault::Fail, 1, 1)]
#[case::torn_write(0, "write_at", Fault::Tear { keep: 5 }, 1, 1)]
#[case::failed_sync(1, "sync_data", Fault::Fail, 2, 1)]
fn a_failed_write_or_sync_poisons_the_journal(
    #[case] call: u64,
    #[case] name: &str,
    #[case] fault: Fault,
    #[case] after_process_crash: usize,
    #[case] after_power_loss: usize,
) {
    let records = prepares(3);
    let states = states(&records);
    let fs = SimFs::new();
    let (journal, _) = open(&fs).unwrap();
    let first = journal.submit(&records[..1]).unwrap();
    journal.wait(first).unwrap();
    fs.record_trace();
    fs.inject(fs.calls() + 1 + call, fault);
    assert!(journal.append(&records[1..2]).is_err());
    let trace = fs.trace();
    assert!(
        trace[call as usize].contains(&format!(" {name} {DIR}/log-")),
        "the fault hit {trace:?}"
    );

    let calls = fs.calls();
    let poisoned = |result: overlaysnap::Result<()>| {
        let e = result.expect_err("a poisoned journal must refuse");
        assert!(e.to_string().contains("poisoned"), "{e}");
    };
    poisoned(journal.submit(&records[2..]).map(drop));
    poisoned(journal.wait(first));
    poisoned(journal.append(&records[2..]));
    poisoned(journal.checkpoint(&states[1].checkpoint()));
    poisoned(journal.recover().map(drop));
    assert_eq!(fs.calls(), calls, "a poisoned journal does no more I/O");
    drop(journal);

    for (how, n) in [
        (Crash::Process, after_process_crash),
        (Crash::PowerLoss, after_power_loss),
    ] {
        let (reopened, recovery) = open(&how.of(&fs)).unwrap();
        assert_eq!(recovery.state, states[n], "{how:?}");
        reopened.append(&records[2..]).unwrap();
    }
}

/// The calls of a checkpoint, counted from 0: create, write and sync the temporary file,
/// rename it into place, sync the directory. Fails the `call`th, checking that it is the
/// `name`d one on the temporary file.
fn fail_checkpoint_call(fs: &SimFs, journal: &LogJournal, state: &State, call: u64, name: &str) {
    fs.record_trace();
    fs.inject(fs.calls() + 1 + call, Fault::Fail);
    assert!(journal.checkpoint(&state.checkpoint()).is_err());
    let trace = fs.trace();
    assert!(
        trace[call as usize].contains(&format!(" {name} {DIR}/checkpoint-")),
        "the fault hit {trace:?}"
    );
    assert!(trace[call as usize].ends_with(".tmp"), "{trace:?}");
}

#[test]
fn a_checkpoint_that_fails_before_its_rename_leaves_the_journal_usable() {
    let records = prepares(2);
    let states = states(&records);
    let fs = SimFs::new();
    let (journal, _) = open(&fs).unwrap();
    journal.append(&records[..1]).unwrap();
    fail_checkpoint_call(&fs, &journal, &states[1], 1, "write_at");
    journal.append(&records[1..]).unwrap();
    journal.checkpoint(&states[2].checkpoint()).unwrap();
    assert_eq!(journal.recover().unwrap().state, states[2]);
}

#[test]
fn a_checkpoint_that_fails_at_its_rename_poisons() {
    let records = prepares(2);
    let states = states(&records);
    let fs = SimFs::new();
    let (journal, _) = open(&fs).unwrap();
    journal.append(&records[..1]).unwrap();
    fail_checkpoint_call(&fs, &journal, &states[1], 3, "rename");
    assert!(journal.append(&records[1..]).is_err());
    drop(journal);
    let (_, recovery) = open(&fs.crash()).unwrap();
    assert_eq!(recovery.state, states[1]);
}
