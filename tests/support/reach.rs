//! How far a run of random command sequences reached, counted across all its cases.
//!
//! Each sequence keeps a [`Tally`]; when it ends, [`Tally::finish`] adds it to the totals of
//! the test binary (a static, so that the cases of one proptest run add up), and
//! [`totals`] reads them after the run. A tally counts commands by their outcome and
//! remembers whether the sequence ever built a deep parent chain, tried to remove a parent
//! that has children, or tried to commit onto a name that exists.

use overlaysnap::core::{Command, Filter, State};
use overlaysnap::ErrorKind;
use std::collections::BTreeSet;
use std::sync::Mutex;

/// An operation and its outcome: `None` for success, else the error kind.
pub type Pair = (&'static str, Option<ErrorKind>);

/// The operation a command performs, as containerd names it; a Commit with a parent
/// (containerd 2.2's rebase) counts as "Rebase".
pub fn operation(cmd: &Command) -> &'static str {
    match cmd {
        Command::Prepare { .. } => "Prepare",
        Command::View { .. } => "View",
        Command::Commit {
            parent: Some(_), ..
        } => "Rebase",
        Command::Commit { .. } => "Commit",
        Command::Remove { .. } => "Remove",
        Command::Update { .. } => "Update",
    }
}

/// The longest parent chain in `state`: how many ancestors its deepest snapshot has.
pub fn depth(state: &State) -> usize {
    let all = Filter::parse_all::<&str>(&[]).expect("no filter parses");
    state
        .walk(&all)
        .map(|info| {
            let mut n = 0;
            let mut at = state.get(&info.name).and_then(|s| s.parent.clone());
            while let Some(p) = at {
                n += 1;
                at = state.get(&p).and_then(|s| s.parent.clone());
            }
            n
        })
        .max()
        .unwrap_or(0)
}

/// What one sequence reached.
#[derive(Debug, Default)]
pub struct Tally {
    commands: u64,
    accepted: u64,
    depth: usize,
    remove_parent: bool,
    commit_existing: bool,
    pairs: BTreeSet<(&'static str, Option<String>)>,
}

impl Tally {
    /// Counts `cmd`, whose outcome was `outcome`, with `state` the state after it.
    pub fn command(&mut self, cmd: &Command, outcome: Option<ErrorKind>, state: &State) {
        self.commands += 1;
        let op = operation(cmd);
        match (op, outcome) {
            (_, None) => self.accepted += 1,
            ("Remove", Some(ErrorKind::FailedPrecondition)) => self.remove_parent = true,
            ("Commit", Some(ErrorKind::AlreadyExists)) => self.commit_existing = true,
            _ => {}
        }
        self.pair((op, outcome));
        self.depth = self.depth.max(depth(state));
    }

    /// Counts an outcome of an operation that is no command (Walk).
    pub fn pair(&mut self, (op, outcome): Pair) {
        self.pairs.insert((op, outcome.map(|k| format!("{k:?}"))));
    }

    /// Adds this sequence to the binary's totals.
    pub fn finish(self) {
        let mut t = TOTALS.lock().unwrap_or_else(|e| e.into_inner());
        t.sequences += 1;
        t.commands += self.commands;
        t.accepted += self.accepted;
        t.deep += u64::from(self.depth >= DEEP);
        t.remove_parent += u64::from(self.remove_parent);
        t.commit_existing += u64::from(self.commit_existing);
        t.pairs.extend(self.pairs);
    }
}

/// A chain counts as deep from this many ancestors on.
pub const DEEP: usize = 4;

/// The totals over every finished sequence.
#[derive(Debug, Default, Clone)]
pub struct Totals {
    /// Sequences finished.
    pub sequences: u64,
    /// Commands run.
    pub commands: u64,
    /// Commands the core accepted.
    pub accepted: u64,
    /// Sequences in which some snapshot had [`DEEP`] ancestors or more.
    pub deep: u64,
    /// Sequences that tried to remove a snapshot with children.
    pub remove_parent: u64,
    /// Sequences that tried to commit onto a taken name.
    pub commit_existing: u64,
    /// Every (operation, outcome) seen, the error kind as its `Debug` text.
    pub pairs: BTreeSet<(&'static str, Option<String>)>,
}

static TOTALS: Mutex<Totals> = Mutex::new(Totals {
    sequences: 0,
    commands: 0,
    accepted: 0,
    deep: 0,
    remove_parent: 0,
    commit_existing: 0,
    pairs: BTreeSet::new(),
});

/// The totals so far.
pub fn totals() -> Totals {
    TOTALS.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

impl Totals {
    /// Percent of `n` over the sequences (0 when there are none).
    pub fn of_sequences(&self, n: u64) -> u64 {
        (100 * n).checked_div(self.sequences).unwrap_or(0)
    }

    /// Percent of commands accepted.
    pub fn accepted_percent(&self) -> u64 {
        (100 * self.accepted)
            .checked_div(self.commands)
            .unwrap_or(0)
    }

    /// Which of `expected` were reached.
    pub fn reached<'a>(&self, expected: &'a [Pair]) -> Vec<&'a Pair> {
        expected
            .iter()
            .filter(|(op, k)| self.pairs.contains(&(*op, k.map(|k| format!("{k:?}")))))
            .collect()
    }

    /// The one-line summary, against the `expected` pairs.
    pub fn line(&self, expected: &[Pair]) -> String {
        format!(
            "reach: accepted {}% of {} commands; depth>={DEEP} in {}% of sequences; remove-parent {}%; commit-existing {}%; pairs {}/{}",
            self.accepted_percent(),
            self.commands,
            self.of_sequences(self.deep),
            self.of_sequences(self.remove_parent),
            self.of_sequences(self.commit_existing),
            self.reached(expected).len(),
            expected.len()
        )
    }
}
