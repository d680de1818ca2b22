//! The core's values in the terms of the reference model (`overlaysnap-model`), and the
//! state invariants checked through the core's public API: shared by the suites that check
//! the core against the model (property suites, the bounded model checker) and by the fuzz
//! targets. With the `testing` feature.

use crate::core::{Command, Filter, Info, Kind, Snapshot, State, Timestamp};
use crate::ErrorKind;
use overlaysnap_model as model;
use std::collections::BTreeSet;

/// The model's answer to a command: the snapshot it made or changed (none for Remove).
pub type Answer = Result<Option<model::Snap>, model::ErrKind>;

/// The model's name for a core [`Kind`].
pub fn model_kind(k: Kind) -> model::Kind {
    match k {
        Kind::View => model::Kind::View,
        Kind::Active => model::Kind::Active,
        Kind::Committed => model::Kind::Committed,
    }
}

/// The model's name for a core error kind; `None` for a kind that no command may produce.
pub fn model_err_kind(k: ErrorKind) -> Option<model::ErrKind> {
    match k {
        ErrorKind::NotFound => Some(model::ErrKind::NotFound),
        ErrorKind::AlreadyExists => Some(model::ErrKind::AlreadyExists),
        ErrorKind::FailedPrecondition => Some(model::ErrKind::FailedPrecondition),
        ErrorKind::InvalidArgument => Some(model::ErrKind::InvalidArgument),
        _ => None,
    }
}

/// [`model_err_kind`], panicking on a kind that no command may produce.
pub fn model_err(k: ErrorKind) -> model::ErrKind {
    model_err_kind(k)
        .unwrap_or_else(|| panic!("the core returned {k:?}, which no command may produce"))
}

/// A core snapshot stored under `key`, as the model would hold it.
pub fn as_model(key: &str, s: &Snapshot) -> model::Snap {
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

/// A core [`Info`] as a model snapshot (the fields a filter can see; the rest zero).
pub fn info_as_model(info: &Info) -> model::Snap {
    model::Snap {
        id: 0,
        kind: model_kind(info.kind),
        name: info.name.clone(),
        parent: info.parent.clone(),
        labels: info.labels.clone(),
        created: (info.created.seconds, info.created.nanos),
        updated: (info.updated.seconds, info.updated.nanos),
        usage: None,
    }
}

/// Every snapshot of `state`, in Walk order, as the model would list them.
pub fn listing(state: &State) -> Vec<model::Snap> {
    let all = Filter::parse_all::<&str>(&[]).expect("no filter selects everything");
    state
        .walk(&all)
        .map(|i| as_model(&i.name, state.get(&i.name).expect("walked key exists")))
        .collect()
}

/// Whether `state` holds exactly the model's snapshots and id counter.
pub fn same(state: &State, m: &model::Model) -> bool {
    state.next_id() == m.next_id && listing(state) == m.walk(&[]).expect("no filter")
}

/// Runs one command on the model.
pub fn run_model(m: &mut model::Model, cmd: &Command) -> Answer {
    let t = |ts: Timestamp| (ts.seconds, ts.nanos);
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
            parent,
            labels,
            usage,
            now,
        } => m
            .commit(
                name,
                key,
                parent.as_deref(),
                labels,
                (usage.size, usage.inodes),
                t(*now),
            )
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

/// Panics, naming the rule, unless `state` keeps every state invariant of
/// docs/design.md#state-invariants: unique ids below the counter, Committed parents, an exact
/// children index, usage exactly on Committed, no empty label values, and a checkpoint round trip
/// to an equal state.
pub fn check_invariants(state: &State) {
    let all = listing(state);
    let ids: BTreeSet<u64> = all.iter().map(|s| s.id).collect();
    assert_eq!(ids.len(), all.len(), "ids are unique: {all:?}");
    assert!(
        all.iter().all(|s| s.id >= 1 && s.id < state.next_id()),
        "every id is in 1..next_id ({}): {all:?}",
        state.next_id()
    );
    assert_eq!(
        state.id_map().len(),
        all.len(),
        "id map covers every snapshot"
    );
    for s in &all {
        if let Some(p) = &s.parent {
            assert!(
                state.get(p).is_some_and(|p| p.kind == Kind::Committed),
                "parent {p:?} of {:?} exists and is committed",
                s.name
            );
        }
        let expected: Vec<&str> = all
            .iter()
            .filter(|c| c.parent.as_deref() == Some(s.name.as_str()))
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(
            state.child_count(&s.name),
            expected.len(),
            "children count of {:?}",
            s.name
        );
        let listed: Vec<&str> = state.children(&s.name).collect();
        assert_eq!(listed, expected, "children of {:?}", s.name);
        assert_eq!(
            s.usage.is_some(),
            s.kind == model::Kind::Committed,
            "usage exactly on committed: {s:?}"
        );
        assert!(
            s.labels.values().all(|v| !v.is_empty()),
            "no empty label value: {s:?}"
        );
        if s.kind != model::Kind::Committed {
            let plan = state.mounts_plan(&s.name).expect("active and view mount");
            assert_eq!(plan.id, s.id, "mount plan of {:?}", s.name);
        }
    }
    let rebuilt = State::from_checkpoint(state.checkpoint())
        .unwrap_or_else(|e| panic!("the checkpoint of a valid state is refused: {e}"));
    assert_eq!(&rebuilt, state, "checkpoint round trip");
}
