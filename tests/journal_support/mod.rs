//! Shared support of the journal tests: records decided by the core, the states after each
//! prefix of them, and sequences of journal steps.
#![allow(dead_code)] // each test binary uses a different part of it

use crate::support;
use overlaysnap::core::{Command, Record, State};
use proptest::prelude::*;

/// The case count: `PROPTEST_CASES` if set, else `default` (kept small enough that all
/// journal tests run in well under a minute on two cores).
pub fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The records the core decides for `commands`, run in order from an empty state (refused
/// commands yield none).
pub fn decided(commands: &[Command]) -> Vec<Record> {
    let mut state = State::new();
    let mut records = Vec::new();
    for cmd in commands {
        if let Ok(record) = state.decide(cmd) {
            state.apply(&record);
            records.push(record);
        }
    }
    records
}

/// `states(records)[i]` is the state after the first `i` records.
pub fn states(records: &[Record]) -> Vec<State> {
    let mut state = State::new();
    let mut out = vec![state.clone()];
    for record in records {
        state.apply(record);
        out.push(state.clone());
    }
    out
}

/// `n` Prepare records of keys `k0`, `k1`, ... with no parent.
pub fn prepares(n: usize) -> Vec<Record> {
    let commands: Vec<Command> = (0..n)
        .map(|i| Command::Prepare {
            key: format!("k{i}"),
            parent: None,
            labels: [("l".to_owned(), format!("v{i}"))].into(),
            now: overlaysnap::core::Timestamp::new(1_700_000_000 + i as i64, 0),
        })
        .collect();
    decided(&commands)
}

/// One step of a journal's life.
#[derive(Debug, Clone)]
pub enum Step {
    /// Decide the command; append the record if the core accepts it.
    Command(Command),
    /// Checkpoint the live state.
    Checkpoint,
    /// Drop the journal and open it again.
    Reopen,
}

/// Up to `max` commands, with checkpoints and reopens at random points between them.
pub fn steps(max: usize) -> impl Strategy<Value = Vec<Step>> {
    support::commands(max)
        .prop_flat_map(|commands| {
            let n = commands.len();
            let extra = prop_oneof![
                6 => Just(None),
                1 => Just(Some(Step::Checkpoint)),
                1 => Just(Some(Step::Reopen)),
            ];
            (Just(commands), prop::collection::vec(extra, n))
        })
        .prop_map(|(commands, extras)| {
            commands
                .into_iter()
                .zip(extras)
                .flat_map(|(cmd, extra)| std::iter::once(Step::Command(cmd)).chain(extra))
                .collect()
        })
}
