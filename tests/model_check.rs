//! Exhaustive bounded model checking of the core against the reference model: every
//! sequence of steps over a small universe, breadth first, up to a depth, with equal states
//! explored once. The state abstraction, the universe, the checks, the measured runs and
//! what the search cannot see are in docs/verification.md.
//!
//! - Universe ([`alphabet`]): the names `a`, `b`, `c`; Prepare and View of each name with
//!   no parent or each name as parent; Commit of each name to each name, with no labels
//!   or with `l=y` plus an empty-valued label, and with no labels and the parent `a`
//!   (containerd 2.2's rebase; one parent only, to keep the search about as wide); Remove of each name; Update of each name
//!   setting, replacing and clearing the label `l` (value `x` or `y`) and with an invalid
//!   field path; six malformed commands (empty key, name or parent, a control
//!   character, an empty label key); Restart and Checkpoint.
//! - Clock: the command at depth `d` runs at `T0 + d` seconds, so `created` and `updated`
//!   of different steps differ and are compared with the model.
//! - Canonical state ([`Key`]): the core's checkpoint without timestamps. Sound because
//!   `decide`, `admit` and `apply` only copy a command's time into the record and the
//!   snapshot, never branch on it; and because every state reached is checked to be
//!   rebuilt equal from its own checkpoint, so the state is a function of its checkpoint.
//!   The model and the journal of the path are not part of the key: the model is checked
//!   equal to the core (so it is a function of the key too), and replay is deterministic,
//!   so replaying any path's records to an equal state gives an equal state (the argument
//!   is in docs/verification.md).
//! - Checks after every transition ([`check_state`]): the same outcome (Ok, or the exact
//!   error kind) in core and model; the same snapshots (name, id, kind, parent, labels,
//!   created, updated, usage) and next id; the mount plans; the state invariants of
//!   docs/design.md#state-invariants (ids unique and below the next id, parents present and
//!   Committed, children counts and lists, usage exactly on Committed, no empty label);
//!   `from_checkpoint(checkpoint())` loads and is equal; and a `MemoryJournal` holding every
//!   record of the path recovers (through `Rebuild`) a state equal to the live one.
//! - Restart replaces the state with the one recovered from the path's records; Checkpoint
//!   replaces it with `from_checkpoint(checkpoint())` after checking that a journal holding
//!   the path's records and then that checkpoint recovers it. When the check passes both
//!   lead back to the same canonical state (a self-loop), which is already explored.
//!
//! A plain breadth-first search rather than `stateright`: the checks are on transitions
//! (outcome of core against model), which stateright's properties, predicates over
//! states, could only see by storing the last outcome in the state and so defeating
//! deduplication; `State` is not `Hash`, so stateright would need a wrapper hashing the key
//! anyway; and the search is about a hundred lines with no new dependency to build. Breadth
//! first, stopping at the first violation, gives a shortest counterexample.
//!
//! Depth: `MODEL_CHECK_DEPTH` (default [`DEFAULT_DEPTH`]). The summary line
//! `model-check: depth D, S distinct states, T transitions, V violations` shows with
//! `-- --nocapture`.

mod support;

use overlaysnap::core::{Command, Kind, Labels, Record, State, Timestamp, Usage};
use overlaysnap::journal::{Journal, MemoryJournal};
use overlaysnap::model_terms::{as_model, model_err_kind, model_kind, run_model, Answer};
use overlaysnap_model as model;
use std::collections::{BTreeSet, HashSet};

/// The depth of a plain `cargo test --test model_check` (debug build).
const DEFAULT_DEPTH: usize = 6;

/// The names of the universe; keys and names share one namespace.
const NAMES: [&str; 3] = ["a", "b", "c"];

/// Seconds of the clock before the first step; the step at depth `d` runs at `T0 + d`.
const T0: i64 = 1_700_000_000;

/// The usage every Commit measures.
const USAGE: Usage = Usage {
    size: 4096,
    inodes: 1,
};

/// One transition of the search.
#[derive(Debug, Clone)]
enum Step {
    /// A command, whose time is set by the clock when it runs.
    Run(Command),
    /// Rebuild the state from the path's records.
    Restart,
    /// Checkpoint the state and continue from the state the checkpoint loads.
    Checkpoint,
}

/// What a reference answers for a command: the snapshot it now holds (None for Remove), or
/// the error kind.
type Outcome = Answer;

/// A reference the core is checked against: the model, or a planted divergence from it.
type Reference = fn(&mut model::Model, &Command) -> Outcome;

/// The canonical state: the next id and every snapshot (name, id, kind, parent, labels,
/// usage) in name order; timestamps are left out (see the module docs).
type Key = (
    u64,
    Vec<(String, u64, Kind, Option<String>, Labels, Option<Usage>)>,
);

/// A state of the search waiting to be expanded.
struct Node {
    state: State,
    model: model::Model,
    /// Every record applied on the path from the empty state.
    records: Vec<Record>,
    /// The path, as indexes into the alphabet.
    trace: Vec<usize>,
}

/// The first violation found: a shortest path to it, and what was wrong.
#[derive(Debug)]
struct Violation {
    trace: Vec<String>,
    what: String,
}

/// What a search did.
#[derive(Debug)]
struct Report {
    depth: usize,
    states: usize,
    transitions: u64,
    violation: Option<Violation>,
}

impl Report {
    fn summary(&self) -> String {
        let v = usize::from(self.violation.is_some());
        format!(
            "model-check: depth {}, {} distinct states, {} transitions, {v} violations",
            self.depth, self.states, self.transitions
        )
    }
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Every step the search tries from every state, in a fixed order (so that the search,
/// and the counterexample it reports, are deterministic).
fn alphabet() -> Vec<Step> {
    let now = Timestamp::default();
    let mut cmds = Vec::new();
    let parents = || std::iter::once(None).chain(NAMES.map(|n| Some(n.to_owned())));
    for key in NAMES.map(str::to_owned) {
        for parent in parents() {
            let (key, labels) = (key.clone(), Labels::new());
            cmds.push(Command::Prepare {
                key: key.clone(),
                parent: parent.clone(),
                labels: labels.clone(),
                now,
            });
            cmds.push(Command::View {
                key,
                parent,
                labels,
                now,
            });
        }
    }
    for key in NAMES {
        for name in NAMES {
            for l in [labels(&[]), labels(&[("l", "y"), ("m", "")])] {
                cmds.push(commit(name, key, l));
            }
            // containerd 2.2's rebase, sparingly (one parent, no labels): enough for
            // every answer (rebased, own parent, another parent, missing, not committed,
            // the key itself) without widening the search much.
            cmds.push(rebase(name, key, "a"));
        }
    }
    let updates: [(Labels, &[&str]); 6] = [
        (labels(&[("l", "x")]), &["labels.l"]),
        (labels(&[("l", "y")]), &["labels"]),
        (labels(&[]), &["labels.l"]),
        (labels(&[("l", "")]), &[]),
        (labels(&[("l", "x")]), &["parent"]),
        (labels(&[("l", "x")]), &["labels.l", "labels."]),
    ];
    for key in NAMES {
        cmds.push(Command::Remove { key: key.into() });
        for (l, paths) in &updates {
            cmds.push(update(key, l.clone(), paths));
        }
    }
    // Malformed input: each is InvalidArgument whatever the state.
    cmds.push(Command::Prepare {
        key: String::new(),
        parent: None,
        labels: Labels::new(),
        now,
    });
    cmds.push(Command::View {
        key: "a".into(),
        parent: Some(String::new()),
        labels: Labels::new(),
        now,
    });
    cmds.push(Command::Prepare {
        key: "a\n".into(),
        parent: None,
        labels: Labels::new(),
        now,
    });
    cmds.push(commit("", "a", Labels::new()));
    cmds.push(Command::Remove { key: String::new() });
    cmds.push(update("a", labels(&[("", "x")]), &["labels"]));
    let mut steps: Vec<Step> = cmds.into_iter().map(Step::Run).collect();
    steps.extend([Step::Restart, Step::Checkpoint]);
    steps
}

fn commit(name: &str, key: &str, labels: Labels) -> Command {
    Command::Commit {
        name: name.into(),
        key: key.into(),
        parent: None,
        labels,
        usage: USAGE,
        now: Timestamp::default(),
    }
}

/// Commit `key` as `name` above `parent` (containerd 2.2's `WithParent`), no labels.
fn rebase(name: &str, key: &str, parent: &str) -> Command {
    Command::Commit {
        name: name.into(),
        key: key.into(),
        parent: Some(parent.into()),
        labels: Labels::new(),
        usage: USAGE,
        now: Timestamp::default(),
    }
}

fn update(key: &str, labels: Labels, paths: &[&str]) -> Command {
    Command::Update {
        key: key.into(),
        labels,
        fieldpaths: paths.iter().map(|p| p.to_string()).collect(),
        now: Timestamp::default(),
    }
}

/// `cmd` at time `t`.
fn at(cmd: &Command, t: Timestamp) -> Command {
    let mut cmd = cmd.clone();
    match &mut cmd {
        Command::Prepare { now, .. }
        | Command::View { now, .. }
        | Command::Commit { now, .. }
        | Command::Update { now, .. } => *now = t,
        Command::Remove { .. } => {}
    }
    cmd
}

/// A step as a counterexample shows it.
fn show(step: &Step) -> String {
    let l = |l: &Labels| format!("{l:?}");
    match step {
        Step::Run(Command::Prepare {
            key,
            parent,
            labels,
            ..
        }) => format!("Prepare {key:?} parent {parent:?} labels {}", l(labels)),
        Step::Run(Command::View {
            key,
            parent,
            labels,
            ..
        }) => format!("View {key:?} parent {parent:?} labels {}", l(labels)),
        Step::Run(Command::Commit {
            name,
            key,
            parent,
            labels,
            ..
        }) => match parent {
            None => format!("Commit {key:?} as {name:?} labels {}", l(labels)),
            Some(p) => format!(
                "Commit {key:?} as {name:?} above {p:?} labels {}",
                l(labels)
            ),
        },
        Step::Run(Command::Remove { key }) => format!("Remove {key:?}"),
        Step::Run(Command::Update {
            key,
            labels,
            fieldpaths,
            ..
        }) => format!("Update {key:?} labels {} paths {fieldpaths:?}", l(labels)),
        Step::Restart => "Restart".into(),
        Step::Checkpoint => "Checkpoint".into(),
    }
}

fn key(state: &State) -> Key {
    let cp = state.checkpoint();
    let snaps = cp.snapshots.into_iter();
    let snaps = snaps.map(|(k, s)| (k, s.id, s.kind, s.parent, s.labels, s.usage));
    (cp.next_id, snaps.collect())
}

/// Fails with `what` unless `ok`.
fn ensure(ok: bool, what: impl FnOnce() -> String) -> Result<(), String> {
    if ok {
        Ok(())
    } else {
        Err(what())
    }
}

/// The state a journal holding `records`, then `checkpoint` if given, recovers.
fn recover(records: &[Record], checkpoint: Option<&State>) -> Result<State, String> {
    let journal = MemoryJournal::new();
    journal.submit(records).map_err(|e| e.to_string())?;
    if let Some(s) = checkpoint {
        journal
            .checkpoint(&s.checkpoint())
            .map_err(|e| e.to_string())?;
    }
    let recovery = journal.recover().map_err(|e| format!("recovery: {e}"))?;
    Ok(recovery.state)
}

/// Every check of a state reached by a transition (see the module docs); `records` are
/// the records of the path that reached it.
fn check_state(state: &State, m: &model::Model, records: &[Record]) -> Result<(), String> {
    let all: Vec<model::Snap> = state
        .checkpoint()
        .snapshots
        .iter()
        .map(|(k, s)| as_model(k, s))
        .collect();
    let expected = m.walk(&[]).expect("no filter always parses");
    ensure(all == expected, || {
        format!("snapshots: core {all:?}, model {expected:?}")
    })?;
    ensure(state.next_id() == m.next_id, || {
        format!("next id: core {}, model {}", state.next_id(), m.next_id)
    })?;
    let ids: BTreeSet<u64> = all.iter().map(|s| s.id).collect();
    ensure(ids.len() == all.len(), || {
        format!("ids not unique: {all:?}")
    })?;
    ensure(ids.iter().all(|&id| id < state.next_id()), || {
        format!("an id is not below the next id {}", state.next_id())
    })?;
    for s in &all {
        let parent_ok = s
            .parent
            .as_deref()
            .is_none_or(|p| state.get(p).is_some_and(|p| p.kind == Kind::Committed));
        ensure(parent_ok, || {
            format!("parent of {:?} not committed", s.name)
        })?;
        let children: Vec<&str> = all
            .iter()
            .filter(|c| c.parent.as_deref() == Some(s.name.as_str()))
            .map(|c| c.name.as_str())
            .collect();
        ensure(state.child_count(&s.name) == children.len(), || {
            format!("children count of {:?}", s.name)
        })?;
        let listed: Vec<&str> = state.children(&s.name).collect();
        ensure(listed == children, || format!("children of {:?}", s.name))?;
        ensure(
            s.usage.is_some() == (s.kind == model::Kind::Committed),
            || format!("usage of {:?}", s.name),
        )?;
        ensure(s.labels.values().all(|v| !v.is_empty()), || {
            format!("empty label value on {:?}", s.name)
        })?;
        let plan = state
            .mounts_plan(&s.name)
            .map(|p| (model_kind(p.kind), p.id, p.parents))
            .map_err(|e| model_err_kind(e.kind()));
        let want = m.mounts_plan(&s.name).map_err(Some);
        ensure(plan == want, || {
            format!("mount plan of {:?}: core {plan:?}, model {want:?}", s.name)
        })?;
    }
    match State::from_checkpoint(state.checkpoint()) {
        Ok(loaded) => ensure(&loaded == state, || {
            "checkpoint loads a different state".into()
        })?,
        Err(e) => return Err(format!("checkpoint does not load: {e}")),
    }
    let rebuilt = recover(records, None)?;
    ensure(&rebuilt == state, || {
        format!("replay gives {rebuilt:?}, live {state:?}")
    })
}

/// A transition's result when its checks pass: the state it leads to, when that may be
/// new, or None for a self-loop.
type Next = Option<(State, model::Model, Option<Record>)>;

/// Runs `step` at time `now` from `node` and checks the result.
fn transition(
    node: &Node,
    step: &Step,
    now: Timestamp,
    reference: Reference,
) -> Result<Next, String> {
    match step {
        Step::Run(cmd) => {
            let cmd = at(cmd, now);
            let mut m = node.model.clone();
            match (node.state.decide(&cmd), reference(&mut m, &cmd)) {
                (Ok(record), Ok(_)) => {
                    let mut state = node.state.clone();
                    state.apply(&record);
                    let mut records = node.records.clone();
                    records.push(record.clone());
                    check_state(&state, &m, &records)?;
                    Ok(Some((state, m, Some(record))))
                }
                (Err(e), Err(k)) => {
                    ensure(model_err_kind(e.kind()) == Some(k), || {
                        format!("core refused with {:?} ({e}), model with {k:?}", e.kind())
                    })?;
                    // decide takes &self: only the model can have changed.
                    check_state(&node.state, &m, &node.records)?;
                    Ok(None)
                }
                (core, model) => Err(format!("core {core:?}, model {model:?}")),
            }
        }
        Step::Restart => {
            let rebuilt = recover(&node.records, None)?;
            ensure(rebuilt == node.state, || {
                "restart gives another state".into()
            })?;
            Ok(Some((rebuilt, node.model.clone(), None)))
        }
        Step::Checkpoint => {
            let recovered = recover(&node.records, Some(&node.state))?;
            ensure(recovered == node.state, || {
                "recovery from the checkpoint gives another state".into()
            })?;
            let loaded = State::from_checkpoint(node.state.checkpoint())
                .map_err(|e| format!("checkpoint does not load: {e}"))?;
            check_state(&loaded, &node.model, &node.records)?;
            Ok(Some((loaded, node.model.clone(), None)))
        }
    }
}

/// Breadth-first search of every sequence of up to `depth` steps, checking every
/// transition against `reference`; stops at the first violation, which is then at the
/// smallest depth that has one.
fn search(depth: usize, reference: Reference) -> Report {
    let steps = alphabet();
    let root = Node {
        state: State::new(),
        model: model::Model::new(),
        records: Vec::new(),
        trace: Vec::new(),
    };
    let mut seen: HashSet<Key> = HashSet::from([key(&root.state)]);
    let mut frontier = vec![root];
    let mut transitions = 0;
    for level in 1..=depth {
        let now = Timestamp::new(T0 + level as i64, 0);
        let mut next = Vec::new();
        for node in &frontier {
            for (i, step) in steps.iter().enumerate() {
                transitions += 1;
                match transition(node, step, now, reference) {
                    Ok(Some((state, model, record))) => {
                        if !seen.insert(key(&state)) || level == depth {
                            continue;
                        }
                        let mut records = node.records.clone();
                        records.extend(record);
                        let mut trace = node.trace.clone();
                        trace.push(i);
                        next.push(Node {
                            state,
                            model,
                            records,
                            trace,
                        });
                    }
                    Ok(None) => {}
                    Err(what) => {
                        let path = node.trace.iter().chain([&i]);
                        return Report {
                            depth,
                            states: seen.len(),
                            transitions,
                            violation: Some(Violation {
                                trace: path.map(|&j| show(&steps[j])).collect(),
                                what,
                            }),
                        };
                    }
                }
            }
        }
        frontier = next;
    }
    Report {
        depth,
        states: seen.len(),
        transitions,
        violation: None,
    }
}

/// Runs a search and prints its summary and counterexample, if any.
fn run(depth: usize, reference: Reference) -> Report {
    let report = search(depth, reference);
    println!("{}", report.summary());
    if let Some(v) = &report.violation {
        println!("counterexample ({} steps):", v.trace.len());
        for (n, step) in v.trace.iter().enumerate() {
            println!("  {}. {step}", n + 1);
        }
        println!("violation: {}", v.what);
    }
    report
}

#[test]
fn every_sequence_up_to_the_depth_agrees_with_the_model() {
    let depth = match std::env::var("MODEL_CHECK_DEPTH") {
        Ok(d) => d.parse().expect("MODEL_CHECK_DEPTH is a number"),
        Err(_) => DEFAULT_DEPTH,
    };
    let report = run(depth, run_model);
    assert!(report.violation.is_none(), "{}", report.summary());
}

/// The model, except that removing a snapshot with children is NotFound.
fn wrong_error_kind(m: &mut model::Model, cmd: &Command) -> Outcome {
    match run_model(m, cmd) {
        Err(model::ErrKind::FailedPrecondition) if matches!(cmd, Command::Remove { .. }) => {
            Err(model::ErrKind::NotFound)
        }
        outcome => outcome,
    }
}

#[test]
fn a_planted_wrong_error_kind_is_found_with_a_shortest_counterexample() {
    let report = run(5, wrong_error_kind);
    let v = report.violation.expect("the planted divergence is found");
    assert_eq!(
        v.trace,
        [
            "Prepare \"a\" parent None labels {}",
            "Commit \"a\" as \"b\" labels {}",
            "Prepare \"a\" parent Some(\"b\") labels {}",
            "Remove \"b\"",
        ]
    );
    assert!(
        v.what.starts_with("core refused with FailedPrecondition"),
        "{}",
        v.what
    );
}

/// The model, except that Commit keeps the Active snapshot's labels when given none.
fn commit_keeps_labels(m: &mut model::Model, cmd: &Command) -> Outcome {
    let kept = match cmd {
        Command::Commit { key, labels, .. } if labels.is_empty() => m.stat(key).ok(),
        _ => None,
    };
    let mut outcome = run_model(m, cmd);
    if let (Ok(Some(snap)), Some(kept)) = (&mut outcome, kept) {
        let name = snap.name.clone();
        let l = kept.labels.iter().map(|(k, v)| (k.as_str(), v.as_str()));
        let l: Vec<_> = l.collect();
        *snap = m.update(&name, &labels(&l), &[], snap.updated).unwrap();
    }
    outcome
}

#[test]
fn a_planted_state_divergence_is_found_with_a_shortest_counterexample() {
    let report = run(5, commit_keeps_labels);
    let v = report.violation.expect("the planted divergence is found");
    assert_eq!(
        v.trace,
        [
            "Prepare \"a\" parent None labels {}",
            "Update \"a\" labels {\"l\": \"x\"} paths [\"labels.l\"]",
            "Commit \"a\" as \"b\" labels {}",
        ]
    );
    assert!(v.what.starts_with("snapshots: core"), "{}", v.what);
}
