//! The core against the reference model: state-aware random sequences
//! (tests/support/machine.rs) of commands, restarts, checkpoint round-trips and walks run on
//! both; after every step the results (record or exact error kind), the full listings, the
//! mount plans and the invariants of docs/design.md#state-invariants must agree.
//!
//! The system under test ([`Core`], a `proptest_state_machine::StateMachineTest`) is the
//! core `State` with a `MemoryJournal` holding its records and checkpoints (for Restart).
//! The test drives `StateMachineTest::test_sequential` from its own `TestRunner` rather
//! than through `prop_state_machine!`, so that the same `#[test]` can, after the run,
//! check the reach counted over all cases ([`reach`]): it prints
//! `reach: ...` (see `-- --nocapture`) and, at the default case count or more, fails when
//! a pair of [`PAIRS`] was never reached or a share is below [`FLOORS`].
//!
//! Case count: `PROPTEST_CASES` (default 256 sequences of 1 to 80 steps). A failure is
//! saved to core_model.proptest-regressions (the seed that replays it) and replayed first.

mod support;

use overlaysnap::core::{Filter, State};
use overlaysnap::journal::{Journal, MemoryJournal};
use overlaysnap::model_terms::{as_model, check_invariants, listing, model_err, model_kind};
use overlaysnap::ErrorKind;
use overlaysnap_model as model;
use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence, TestRunner};
use proptest_state_machine::{ReferenceStateMachine, StateMachineTest};
use support::machine::{Machine, Reference, Step};
use support::reach::{self, Pair, Tally};

/// Every (operation, outcome) containerd defines for the core's operations, from
/// docs/semantics.md#operations and src/core/state/decide.rs (`None` is success).
/// Prepare and View: a bad key, parent or label, or a parent that is not committed →
/// InvalidArgument; no parent → NotFound; key taken → AlreadyExists. Commit: bad input →
/// InvalidArgument; no key → NotFound; name taken → AlreadyExists; key not active →
/// FailedPrecondition. Rebase (a Commit with a parent): as Commit, plus another parent
/// than the snapshot's own → InvalidArgument, a missing parent → NotFound, one not
/// committed → FailedPrecondition. Remove: bad key; missing; has children → FailedPrecondition.
/// Update: bad key, label or field path; missing. Walk: a bad filter → InvalidArgument.
const PAIRS: &[Pair] = {
    use ErrorKind::*;
    &[
        ("Prepare", None),
        ("Prepare", Some(InvalidArgument)),
        ("Prepare", Some(NotFound)),
        ("Prepare", Some(AlreadyExists)),
        ("View", None),
        ("View", Some(InvalidArgument)),
        ("View", Some(NotFound)),
        ("View", Some(AlreadyExists)),
        ("Commit", None),
        ("Commit", Some(InvalidArgument)),
        ("Commit", Some(NotFound)),
        ("Commit", Some(AlreadyExists)),
        ("Commit", Some(FailedPrecondition)),
        ("Rebase", None),
        ("Rebase", Some(InvalidArgument)),
        ("Rebase", Some(NotFound)),
        ("Rebase", Some(FailedPrecondition)),
        ("Remove", None),
        ("Remove", Some(InvalidArgument)),
        ("Remove", Some(NotFound)),
        ("Remove", Some(FailedPrecondition)),
        ("Update", None),
        ("Update", Some(InvalidArgument)),
        ("Update", Some(NotFound)),
        ("Walk", None),
        ("Walk", Some(InvalidArgument)),
    ]
};

/// The least reach a run at the default case count must have, in percent: commands
/// accepted; sequences with a chain of `reach::DEEP` ancestors; sequences that try to remove
/// a parent with children; sequences that try to commit onto a taken name.
struct Floors {
    accepted: u64,
    deep: u64,
    remove_parent: u64,
    commit_existing: u64,
}

const FLOORS: Floors = Floors {
    accepted: 50,
    deep: 25,
    remove_parent: 25,
    commit_existing: 25,
};

/// The default number of sequences, at which the floors must hold.
const DEFAULT_CASES: u32 = 256;

/// Steps in a sequence.
const STEPS: std::ops::RangeInclusive<usize> = 1..=80;

/// The core, the journal of its records and checkpoints, and what the sequence reached.
struct Core {
    state: State,
    journal: MemoryJournal,
    tally: Tally,
}

impl StateMachineTest for Core {
    type SystemUnderTest = Core;
    type Reference = Machine;

    fn init_test(_: &Reference) -> Core {
        Core {
            state: State::new(),
            journal: MemoryJournal::new(),
            tally: Tally::default(),
        }
    }

    fn apply(mut core: Core, r: &Reference, step: Step) -> Core {
        match &step {
            Step::Run(cmd) => {
                let expected = r.last.clone().expect("the model answered the command");
                let decided = core.state.decide(cmd);
                let outcome = decided.as_ref().err().map(|e| e.kind());
                match (decided, expected) {
                    (Ok(record), Ok(snap)) => {
                        core.state.apply(&record);
                        core.journal.append(std::slice::from_ref(&record)).unwrap();
                        if let Some(snap) = snap {
                            let got = core.state.get(&snap.name).map(|s| as_model(&snap.name, s));
                            assert_eq!(got, Some(snap), "after {cmd:?}");
                        }
                    }
                    (Err(e), Err(k)) => assert_eq!(model_err(e.kind()), k, "{cmd:?}: {e}"),
                    (core, model) => panic!("core {core:?} but model {model:?} for {cmd:?}"),
                }
                core.tally.command(cmd, outcome, &core.state);
            }
            Step::Restart => {
                let recovered = core.journal.recover().expect("the journal reads back");
                assert_eq!(recovered.state, core.state, "rebuilt from the journal");
                core.state = recovered.state;
            }
            Step::Checkpoint => {
                let checkpoint = core.state.checkpoint();
                core.journal.checkpoint(&checkpoint).unwrap();
                let restored = State::from_checkpoint(checkpoint).expect("a checkpoint loads");
                assert_eq!(restored, core.state, "restored from a checkpoint");
                core.state = restored;
            }
            Step::Walk(filters) => {
                let walked = Filter::parse_all(filters)
                    .map(|f| core.state.walk(&f).map(|i| i.name).collect::<Vec<_>>());
                let kind = walked.as_ref().err().map(|e| e.kind());
                core.tally.pair(("Walk", kind));
                let expected = r
                    .model
                    .walk(filters)
                    .map(|v| v.into_iter().map(|s| s.name).collect());
                assert_eq!(
                    walked.map_err(|e| model_err(e.kind())),
                    expected,
                    "filters {filters:?}"
                );
            }
        }
        core
    }

    fn check_invariants(core: &Core, r: &Reference) {
        let all = r.model.walk(&[]).unwrap();
        assert_eq!(listing(&core.state), all, "listings");
        check_invariants(&core.state);
        for s in all {
            let plan = core
                .state
                .mounts_plan(&s.name)
                .map(|p| (model_kind(p.kind), p.id, p.parents));
            assert_eq!(
                plan.map_err(|e| model_err(e.kind())),
                r.model.mounts_plan(&s.name),
                "mounts of {}",
                s.name
            );
        }
    }

    fn teardown(core: Core) {
        core.tally.finish();
    }
}

/// The case count: `PROPTEST_CASES`, or [`DEFAULT_CASES`].
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_CASES)
}

#[test]
fn core_agrees_with_model() {
    let mut config = Config::with_cases(cases());
    config.source_file = Some(file!());
    config.test_name = Some("core_model::core_agrees_with_model");
    config.failure_persistence = Some(Box::new(FileFailurePersistence::SourceParallel(
        "proptest-regressions",
    )));
    let mut runner = TestRunner::new(config.clone());
    let run = runner.run(
        &Machine::sequential_strategy(STEPS),
        |(initial, steps, seen)| {
            Core::test_sequential(config.clone(), initial, steps, seen);
            Ok(())
        },
    );
    if let Err(e) = run {
        panic!("{e}\n{runner}");
    }
    let totals = reach::totals();
    println!("{}", totals.line(PAIRS));
    if cases() < DEFAULT_CASES {
        return;
    }
    let missing: Vec<_> = PAIRS
        .iter()
        .filter(|p| !totals.reached(PAIRS).contains(p))
        .collect();
    assert!(missing.is_empty(), "never reached: {missing:?}");
    let floors = [
        ("accepted", totals.accepted_percent(), FLOORS.accepted),
        ("depth", totals.of_sequences(totals.deep), FLOORS.deep),
        (
            "remove-parent",
            totals.of_sequences(totals.remove_parent),
            FLOORS.remove_parent,
        ),
        (
            "commit-existing",
            totals.of_sequences(totals.commit_existing),
            FLOORS.commit_existing,
        ),
    ];
    for (what, got, floor) in floors {
        assert!(
            got >= floor,
            "{what}: {got}% is below the floor of {floor}%"
        );
    }
}

proptest! {
    #[test]
    fn any_filter_string_parses_or_is_invalid_argument(text in "[a-z.,=!~\"/|\\\\ _0-9^$]{0,24}") {
        let core = Filter::parse(&text).map(|_| ()).map_err(|e| e.kind());
        if let Err(kind) = core {
            prop_assert_eq!(kind, ErrorKind::InvalidArgument);
        }
        let expected = model::Model::new().walk(std::slice::from_ref(&text)).map(|_| ());
        prop_assert_eq!(core.map_err(model_err), expected, "filter {:?}", text);
    }
}
