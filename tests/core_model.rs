//! The core against the reference model: random command sequences (with restarts as a
//! transition) run on both; after every step the results, the full listings and the
//! invariants of docs/design.md#state-invariants must agree. Random filters select the same
//! snapshots in both.
//!
//! Case count: `PROPTEST_CASES` (default 256 sequences of up to 40 steps).

mod support;

use overlaysnap::core::{Command, Filter, Kind, Record, Snapshot, State};
use overlaysnap::ErrorKind;
use overlaysnap_model as model;
use proptest::prelude::*;
use std::collections::BTreeSet;

#[derive(Debug, Clone)]
enum Op {
    Run(Command),
    /// Rebuild the state from every record so far and compare it with the live one.
    Restart,
    /// Walk with these filters on both sides.
    Walk(Vec<String>),
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    support::commands(40).prop_flat_map(|cmds| {
        let n = cmds.len();
        (
            Just(cmds),
            prop::collection::vec(prop::option::weighted(0.2, restart_or_walk()), n),
        )
            .prop_map(|(cmds, extra)| {
                cmds.into_iter()
                    .zip(extra)
                    .flat_map(|(c, e)| std::iter::once(Op::Run(c)).chain(e))
                    .collect()
            })
    })
}

fn restart_or_walk() -> impl Strategy<Value = Op> {
    prop_oneof![
        1 => Just(Op::Restart),
        3 => prop::collection::vec(filter_text(), 1..3).prop_map(Op::Walk),
    ]
}

/// Filters built from the grammar's pieces, so that most parse and many select something.
fn filter_text() -> impl Strategy<Value = String> {
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
    let value = prop::sample::select(
        &[
            "active",
            "committed",
            "view",
            "a",
            "x",
            "\"\"",
            "^s",
            "/a|b/",
            "|c|",
            "\"y\"",
            "[",
            "",
        ][..],
    );
    let selector = (field, op, value).prop_map(|(f, o, v)| {
        if o.is_empty() {
            f.to_string()
        } else {
            format!("{f}{o}{v}")
        }
    });
    prop::collection::vec(selector, 0..3).prop_map(|s| s.join(","))
}

fn model_kind(k: Kind) -> model::Kind {
    match k {
        Kind::View => model::Kind::View,
        Kind::Active => model::Kind::Active,
        Kind::Committed => model::Kind::Committed,
    }
}

fn model_err(k: ErrorKind) -> model::ErrKind {
    match k {
        ErrorKind::NotFound => model::ErrKind::NotFound,
        ErrorKind::AlreadyExists => model::ErrKind::AlreadyExists,
        ErrorKind::FailedPrecondition => model::ErrKind::FailedPrecondition,
        ErrorKind::InvalidArgument => model::ErrKind::InvalidArgument,
        other => panic!("the core returned {other:?}, which no command may produce"),
    }
}

fn as_model(key: &str, s: &Snapshot) -> model::Snap {
    model::Snap {
        id: s.id,
        kind: model_kind(s.kind),
        name: key.to_owned(),
        parent: s.parent.clone(),
        labels: s.labels.clone(),
        created: (s.created.seconds, s.created.nanos),
        updated: (s.updated.seconds, s.updated.nanos),
        usage: s.usage.map(|u| (u.size, u.inodes)),
    }
}

/// The core's full listing in the model's terms, through the public query API.
fn listing(state: &State) -> Vec<model::Snap> {
    state
        .walk(&Filter::parse_all::<&str>(&[]).unwrap())
        .map(|i| as_model(&i.name, state.get(&i.name).unwrap()))
        .collect()
}

/// Runs one command on the model; `Some(snap)` is what the core's state must now hold.
fn run_model(m: &mut model::Model, cmd: &Command) -> Result<Option<model::Snap>, model::ErrKind> {
    let t = |ts: overlaysnap::core::Timestamp| (ts.seconds, ts.nanos);
    match cmd {
        Command::Prepare {
            key,
            parent,
            labels,
            now,
        } => m.prepare(key, parent.as_deref(), labels, t(*now)).map(Some),
        Command::View {
            key,
            parent,
            labels,
            now,
        } => m.view(key, parent.as_deref(), labels, t(*now)).map(Some),
        Command::Commit {
            name,
            key,
            labels,
            usage,
            now,
        } => m
            .commit(name, key, labels, (usage.size, usage.inodes), t(*now))
            .map(Some),
        Command::Remove { key } => m.remove(key).map(|()| None),
        Command::Update {
            key,
            labels,
            fieldpaths,
            now,
        } => m.update(key, labels, fieldpaths, t(*now)).map(Some),
    }
}

/// The state invariants (docs/design.md#state-invariants), checked through the public API.
fn check_invariants(state: &State) -> Result<(), TestCaseError> {
    let all = listing(state);
    let ids: BTreeSet<u64> = all.iter().map(|s| s.id).collect();
    prop_assert_eq!(ids.len(), all.len(), "ids are unique");
    prop_assert!(
        all.iter().all(|s| s.id < state.next_id()),
        "next id above all"
    );
    prop_assert_eq!(state.id_map().len(), all.len());
    for s in &all {
        if let Some(p) = &s.parent {
            let parent = state.get(p);
            prop_assert!(parent.is_some_and(|p| p.kind == Kind::Committed));
        }
        let expected: Vec<&str> = all
            .iter()
            .filter(|c| c.parent.as_deref() == Some(s.name.as_str()))
            .map(|c| c.name.as_str())
            .collect();
        prop_assert_eq!(
            state.child_count(&s.name),
            expected.len(),
            "children count of {}",
            s.name
        );
        let listed: Vec<&str> = state.children(&s.name).collect();
        prop_assert_eq!(listed, expected, "children of {}", s.name);
        prop_assert_eq!(s.usage.is_some(), s.kind == model::Kind::Committed);
        prop_assert!(s.labels.values().all(|v| !v.is_empty()));
    }
    Ok(())
}

fn replay(records: &[Record]) -> State {
    let mut s = State::new();
    for r in records {
        s.admit(r).expect("a decided record fits on replay");
        s.apply(r);
    }
    s
}

proptest! {
    #[test]
    fn core_agrees_with_model(ops in ops()) {
        let mut state = State::new();
        let mut m = model::Model::new();
        let mut records = Vec::new();
        for op in &ops {
            match op {
                Op::Run(cmd) => {
                    let before = state.clone();
                    let core = state.decide(cmd);
                    let expected = run_model(&mut m, cmd);
                    match (core, expected) {
                        (Ok(record), Ok(snap)) => {
                            state.apply(&record);
                            records.push(record);
                            if let Some(snap) = snap {
                                let got = state.get(&snap.name).map(|s| as_model(&snap.name, s));
                                prop_assert_eq!(got, Some(snap));
                            }
                        }
                        (Err(e), Err(k)) => {
                            prop_assert_eq!(model_err(e.kind()), k, "{}", e);
                            prop_assert_eq!(&state, &before, "a refused command changed the state");
                        }
                        (core, model) => prop_assert!(false, "core {:?} but model {:?} for {:?}", core, model, cmd),
                    }
                    prop_assert_eq!(listing(&state), m.walk(&[]).unwrap());
                    check_invariants(&state)?;
                    for s in m.walk(&[]).unwrap() {
                        let plan = state.mounts_plan(&s.name).map(|p| (model_kind(p.kind), p.id, p.parents));
                        prop_assert_eq!(plan.map_err(|e| model_err(e.kind())), m.mounts_plan(&s.name));
                    }
                }
                Op::Restart => {
                    let rebuilt = replay(&records);
                    prop_assert_eq!(&rebuilt, &state);
                    state = rebuilt;
                }
                Op::Walk(filters) => {
                    let core = Filter::parse_all(filters)
                        .map(|f| state.walk(&f).map(|i| i.name).collect::<Vec<_>>())
                        .map_err(|e| model_err(e.kind()));
                    let expected = m.walk(filters).map(|v| v.into_iter().map(|s| s.name).collect());
                    prop_assert_eq!(core, expected, "filters {:?}", filters);
                }
            }
        }
    }

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
