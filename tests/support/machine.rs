//! State-aware generation of command sequences: a [`ReferenceStateMachine`] of
//! `proptest-state-machine` whose reference state is the naive model
//! (`overlaysnap-model`), so that each command is drawn from the snapshots the model holds
//! at that point.
//!
//! Why this design: drawing keys blind from a fixed pool gets most commands refused and
//! almost never builds a chain of parents; drawing from the model's state reaches deep
//! chains, parents with children and commits onto taken names in most sequences, while a
//! share of every pool is fresh, missing or malformed input so that every refusal still
//! happens. The library's `Sequential` strategy also shrinks by deleting steps, which a
//! fixed-length list cannot. Preconditions are always true: after a step is deleted, the
//! later commands may no longer fit the state they were drawn for, but core and model
//! must agree on any command, so every shrunk sequence is still a valid test.
//!
//! The reference state also keeps the model's answer to the last command, which the system
//! under test (tests/core_model.rs) compares with the core's.

use overlaysnap::core::{Command, Labels, Timestamp, Usage};
use overlaysnap::model_terms::{run_model, Answer};
use overlaysnap_model as model;
use proptest::prelude::*;
use proptest::strategy::Union;
use proptest_state_machine::ReferenceStateMachine;

/// One step of a sequence.
#[derive(Debug, Clone)]
pub enum Step {
    /// Run a command on both sides.
    Run(Command),
    /// Rebuild the state from the journal (its checkpoint and the records after it) and
    /// compare it with the live one.
    Restart,
    /// Round-trip the state through a checkpoint, go on from the restored state, and
    /// checkpoint the journal.
    Checkpoint,
    /// Walk with these filters on both sides.
    Walk(Vec<String>),
}

/// The reference state: the model, a clock that ticks once a step (commands get strictly
/// increasing times, and fresh keys are made from it), and the model's answer to the last
/// step when it was a command.
#[derive(Debug, Clone)]
pub struct Reference {
    /// The model after every step so far.
    pub model: model::Model,
    /// Steps so far.
    pub clock: i64,
    /// The model's answer to the last step, `None` when it was no command.
    pub last: Option<Answer>,
}

/// The state machine whose transitions are [`Step`]s.
pub struct Machine;

/// Keys that no snapshot may have: every validation refusal of a key, name or parent.
const INVALID: &[&str] = &["", "bad\0key", "del\u{7f}", "c1\u{85}", "new\nline"];

/// How many ancestors `name` has in the model.
fn ancestors(m: &model::Model, name: &str) -> usize {
    let parent = |n: &str| m.snaps.iter().find(|s| s.name == n)?.parent.clone();
    let mut n = 0;
    let mut at = parent(name);
    while let Some(p) = at {
        n += 1;
        at = parent(&p);
    }
    n
}

/// The names a command can be drawn from at one state.
struct Pools {
    all: Vec<String>,
    committed: Vec<String>,
    /// The committed snapshots with the most ancestors: parents that deepen the chain.
    deepest: Vec<String>,
    active: Vec<String>,
    /// The active snapshots with the most ancestors: committing one deepens the chain.
    deep_active: Vec<String>,
    /// Active and View snapshots: never a parent, never a commit name.
    uncommitted: Vec<String>,
    /// Committed snapshots that have children.
    parents: Vec<String>,
    /// Keys no snapshot has: made from the clock, so they are new in every step.
    fresh: Vec<String>,
    missing: Vec<String>,
    invalid: Vec<String>,
}

impl Pools {
    fn of(r: &Reference) -> Pools {
        let m = &r.model;
        let names = |keep: &dyn Fn(&model::Snap) -> bool| -> Vec<String> {
            m.snaps
                .iter()
                .filter(|s| keep(s))
                .map(|s| s.name.clone())
                .collect()
        };
        let committed = names(&|s| s.kind == model::Kind::Committed);
        let most = committed.iter().map(|c| ancestors(m, c)).max();
        let deepest = committed
            .iter()
            .filter(|c| Some(ancestors(m, c)) == most)
            .cloned()
            .collect();
        let active = names(&|s| s.kind == model::Kind::Active);
        let most = active.iter().map(|a| ancestors(m, a)).max();
        let deep_active = active
            .iter()
            .filter(|a| Some(ancestors(m, a)) == most)
            .cloned()
            .collect();
        let parents = names(&|s| {
            s.kind == model::Kind::Committed
                && m.snaps.iter().any(|c| c.parent.as_deref() == Some(&s.name))
        });
        let t = r.clock;
        Pools {
            all: names(&|_| true),
            committed,
            deepest,
            active,
            deep_active,
            uncommitted: names(&|s| s.kind != model::Kind::Committed),
            parents,
            fresh: vec![
                format!("k{t}"),
                format!("sha256:{t:04x}"),
                format!("g/h{t}"),
            ],
            missing: vec![format!("missing{t}")],
            invalid: INVALID.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// A name from the weighted pools, leaving out the empty ones (the fresh, missing and
    /// invalid pools never are).
    fn pick(&self, weights: &[(u32, &Vec<String>)]) -> BoxedStrategy<String> {
        Union::new_weighted(
            weights
                .iter()
                .filter(|(w, pool)| *w > 0 && !pool.is_empty())
                .map(|(w, pool)| (*w, prop::sample::select((*pool).clone()).boxed()))
                .collect::<Vec<_>>(),
        )
        .boxed()
    }

    /// A parent for Commit (containerd 2.2's rebase): mostly none, as containerd sends one
    /// only for a layer prepared without a parent; otherwise mostly a committed snapshot,
    /// and now and then one that is missing, not committed, or malformed.
    fn rebase_parent(&self) -> BoxedStrategy<Option<String>> {
        let some = if self.committed.is_empty() { 1 } else { 4 };
        self.weighted_parent(8, some, 6)
    }

    /// A parent for Prepare or View: mostly the deepest committed snapshot, none while
    /// nothing is committed.
    fn parent(&self) -> BoxedStrategy<Option<String>> {
        let none = if self.committed.is_empty() { 24 } else { 2 };
        self.weighted_parent(none, 12, 12)
    }

    /// None with weight `none`, else (weight `some`) the deepest committed snapshot (weight
    /// `deepest` among the rest: committed 4, missing, uncommitted and malformed 1 each).
    fn weighted_parent(&self, none: u32, some: u32, deepest: u32) -> BoxedStrategy<Option<String>> {
        prop_oneof![
            none => Just(None),
            some => self
                .pick(&[
                    (deepest, &self.deepest),
                    (4, &self.committed),
                    (1, &self.missing),
                    (1, &self.uncommitted),
                    (1, &self.invalid),
                ])
                .prop_map(Some),
        ]
        .boxed()
    }
}

/// Labels: mostly valid, with empty values (never stored), an empty label key and an
/// oversized pair mixed in.
pub fn labels() -> impl Strategy<Value = Labels> {
    let key = prop_oneof![
        30 => prop::sample::select(&["l", "m", "containerd.io/gc.root"][..]).prop_map(str::to_owned),
        1 => Just(String::new()),
    ];
    let value = prop_oneof![
        30 => prop::sample::select(&["x", "y", ""][..]).prop_map(str::to_owned),
        1 => Just("v".repeat(4096)),
    ];
    prop::collection::btree_map(key, value, 0..3)
}

/// Field paths for Update: mostly valid, sometimes not (`parent`, `labels.`).
pub fn fieldpaths() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec(
        prop_oneof![
            12 => prop::sample::select(
                &["labels", "labels.l", "labels.m", "labels.containerd.io/gc.root"][..]
            ),
            1 => prop::sample::select(&["parent", "labels.", "kind"][..]),
        ]
        .prop_map(str::to_owned),
        0..3,
    )
}

/// Filters built from the grammar's pieces and the state's names, so that most parse and
/// many select something.
pub fn filter_text(names: Vec<String>) -> impl Strategy<Value = String> {
    let field = prop::sample::select(
        &[
            "kind",
            "name",
            "parent",
            "labels.l",
            "labels.m",
            "labels.\"containerd.io/gc.root\"",
            "labels",
            "other",
        ][..],
    );
    let op = prop::sample::select(&["", "==", "!=", "~="][..]);
    let fixed = prop::sample::select(
        &[
            "active",
            "committed",
            "view",
            "k1",
            "x",
            "\"\"",
            "^s",
            "/k|g/",
            "|c|",
            "\"y\"",
            "[",
            "",
        ][..],
    )
    .prop_map(str::to_owned);
    let value = if names.is_empty() {
        fixed.boxed()
    } else {
        let quoted = prop::sample::select(names).prop_map(|n| format!("{n:?}"));
        prop_oneof![2 => fixed, 1 => quoted].boxed()
    };
    let selector = (field, op, value).prop_map(|(f, o, v)| {
        if o.is_empty() {
            f.to_string()
        } else {
            format!("{f}{o}{v}")
        }
    });
    prop::collection::vec(selector, 0..3).prop_map(|s| s.join(","))
}

impl ReferenceStateMachine for Machine {
    type State = Reference;
    type Transition = Step;

    fn init_state() -> BoxedStrategy<Reference> {
        Just(Reference {
            model: model::Model::new(),
            clock: 0,
            last: None,
        })
        .boxed()
    }

    fn transitions(r: &Reference) -> BoxedStrategy<Step> {
        let p = Pools::of(r);
        let now = Timestamp::new(1_700_000_000 + r.clock, 7);
        let new_key = p.pick(&[(24, &p.fresh), (2, &p.all), (1, &p.invalid)]);
        let create = (new_key, p.parent(), labels().boxed());
        let commit = (
            p.pick(&[(16, &p.fresh), (3, &p.all), (1, &p.invalid)]),
            p.pick(&[
                (10, &p.deep_active),
                (6, &p.active),
                (1, &p.missing),
                (1, &p.all),
                (1, &p.invalid),
            ]),
            p.rebase_parent(),
            labels(),
            0i64..1 << 20,
            0i64..64,
        );
        let remove = p.pick(&[
            (6, &p.all),
            (3, &p.parents),
            (1, &p.missing),
            (1, &p.invalid),
        ]);
        let update = (
            p.pick(&[(10, &p.all), (1, &p.missing), (1, &p.invalid)]),
            labels(),
            fieldpaths(),
        );
        // Commands that need a snapshot are rare until one exists.
        let some = |pool: &Vec<String>, w: u32| if pool.is_empty() { 1 } else { w };
        prop_oneof![
            10 => create.clone().prop_map(move |(key, parent, labels)| Step::Run(Command::Prepare { key, parent, labels, now })),
            2 => create.prop_map(move |(key, parent, labels)| Step::Run(Command::View { key, parent, labels, now })),
            some(&p.active, 9) => commit.prop_map(move |(name, key, parent, labels, size, inodes)| Step::Run(Command::Commit {
                name, key, parent, labels, usage: Usage { size, inodes }, now,
            })),
            some(&p.all, 3) => remove.prop_map(|key| Step::Run(Command::Remove { key })),
            some(&p.all, 2) => update.prop_map(move |(key, labels, fieldpaths)| Step::Run(Command::Update { key, labels, fieldpaths, now })),
            1 => Just(Step::Restart),
            1 => Just(Step::Checkpoint),
            2 => prop::collection::vec(filter_text(p.all.clone()), 1..3).prop_map(Step::Walk),
        ]
        .boxed()
    }

    fn apply(mut r: Reference, step: &Step) -> Reference {
        r.clock += 1;
        r.last = match step {
            Step::Run(cmd) => Some(run_model(&mut r.model, cmd)),
            Step::Restart | Step::Checkpoint | Step::Walk(_) => None,
        };
        r
    }
}
