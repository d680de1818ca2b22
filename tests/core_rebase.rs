//! containerd 2.2's rebase in the pure core: a Commit with a parent (snapshots API v1.10,
//! `CommitSnapshotRequest.parent`), case by case as containerd's `CommitActive`
//! (`core/snapshots/storage/bolt.go`, v2.2.0) decides it, each refusal with its error kind,
//! and the model agreeing on every case.

use overlaysnap::core::{Command, Kind, Labels, Record, State, Usage};
use overlaysnap::ErrorKind;
use rstest::{fixture, rstest};

mod core_support;
use core_support::{commit, prepare, remove, view, T1};

fn run(state: &mut State, cmd: Command) -> Result<Record, ErrorKind> {
    let record = state.decide(&cmd).map_err(|e| e.kind())?;
    state.apply(&record);
    Ok(record)
}

/// Commit `key` as `name` with the commit option `WithParent(parent)`.
fn commit_above(name: &str, key: &str, parent: &str) -> Command {
    match commit(name, key) {
        Command::Commit {
            name,
            key,
            labels,
            usage,
            now,
            ..
        } => Command::Commit {
            name,
            key,
            parent: Some(parent.into()),
            labels,
            usage,
            now,
        },
        _ => unreachable!("commit builds a Commit"),
    }
}

/// Committed `base` (id 1) and `other` (id 2), both without a parent; Active `free` (id 3)
/// without a parent, Active `child` (id 4) above `base`, View `view` (id 5) above `base`,
/// Active `layer` (id 6) without a parent.
#[fixture]
fn state() -> State {
    let mut s = State::new();
    for cmd in [
        prepare("b", None),
        commit("base", "b"),
        prepare("o", None),
        commit("other", "o"),
        prepare("free", None),
        prepare("child", Some("base")),
        view("view", Some("base")),
        prepare("layer", None),
    ] {
        run(&mut s, cmd).unwrap();
    }
    s
}

#[rstest]
fn a_parentless_active_is_committed_above_the_given_parent(mut state: State) {
    let record = run(&mut state, commit_above("c", "free", "base")).unwrap();
    assert_eq!(
        record,
        Record::Rebased {
            id: 3,
            key: "free".into(),
            name: "c".into(),
            parent: "base".into(),
            labels: Labels::new(),
            usage: Usage {
                size: 512,
                inodes: 1
            },
            at: T1,
        }
    );
    let c = state.get("c").unwrap();
    assert_eq!(
        (c.id, c.kind, c.parent.as_deref()),
        (3, Kind::Committed, Some("base"))
    );
    assert!(state.get("free").is_none());
    // The rebased layer is a child of its new parent: the parent cannot go first, and
    // a snapshot prepared above the layer mounts the layer, then the parent's chain.
    assert_eq!(
        run(&mut state, remove("base")),
        Err(ErrorKind::FailedPrecondition)
    );
    run(&mut state, prepare("top", Some("c"))).unwrap();
    assert_eq!(state.mounts_plan("top").unwrap().parents, [3, 1]);
    run(&mut state, remove("top")).unwrap();
    run(&mut state, remove("c")).unwrap();
    run(&mut state, remove("child")).unwrap();
    run(&mut state, remove("view")).unwrap();
    run(&mut state, remove("base")).unwrap();
}

#[rstest]
fn the_own_parent_commits_as_without_a_parent(mut state: State) {
    let record = run(&mut state, commit_above("c", "child", "base")).unwrap();
    assert!(
        matches!(record, Record::Committed { id: 4, .. }),
        "{record:?}"
    );
    assert_eq!(state.get("c").unwrap().parent.as_deref(), Some("base"));
}

#[rstest]
// A different existing parent: "cannot change parent of active snapshot on commit".
#[case::a_different_parent("c", "child", "other", ErrorKind::InvalidArgument)]
#[case::a_missing_parent("c", "free", "missing", ErrorKind::NotFound)]
// containerd deletes the Active key before it looks the parent up.
#[case::the_key_itself_as_parent("c", "free", "free", ErrorKind::NotFound)]
// The new name does not exist before the Commit (containerd's bolt would link the
// snapshot to itself; see docs/semantics.md, Differences).
#[case::the_new_name_as_parent("c", "free", "c", ErrorKind::NotFound)]
#[case::an_active_parent("c", "free", "layer", ErrorKind::FailedPrecondition)]
#[case::a_view_parent("c", "free", "view", ErrorKind::FailedPrecondition)]
#[case::a_malformed_parent("c", "free", "a\nb", ErrorKind::InvalidArgument)]
#[case::an_empty_parent("c", "free", "", ErrorKind::InvalidArgument)]
// Commit's own checks come first, in their order.
#[case::a_missing_key("c", "missing", "missing", ErrorKind::NotFound)]
#[case::a_taken_name("other", "free", "missing", ErrorKind::AlreadyExists)]
#[case::a_view_key("c", "view", "missing", ErrorKind::FailedPrecondition)]
fn refusals_have_containerds_kinds_and_change_nothing(
    mut state: State,
    #[case] name: &str,
    #[case] key: &str,
    #[case] parent: &str,
    #[case] kind: ErrorKind,
) {
    let before = state.clone();
    let cmd = commit_above(name, key, parent);
    assert_eq!(run(&mut state, cmd.clone()), Err(kind));
    assert_eq!(state, before);
    // The model answers the same.
    let mut m = model(&before);
    let answer = m.commit(name, key, Some(parent), &Labels::new(), (512, 1), (0, 0));
    assert_eq!(answer.map(drop).map_err(kind_of), Err(kind), "{cmd:?}");
}

#[rstest]
fn a_rebased_record_must_fit_when_read_back(state: State) {
    let record = state.decide(&commit_above("c", "free", "base")).unwrap();
    state.admit(&record).unwrap();
    let with = |f: &dyn Fn(&mut Record)| {
        let mut r = record.clone();
        f(&mut r);
        r
    };
    let bad = [
        with(&|r| set(r, |_, key, _| *key = "child".into())),
        with(&|r| set(r, |id, key, _| (*id, *key) = (4, "child".into()))),
        with(&|r| set(r, |_, _, p| *p = "layer".into())),
        with(&|r| set(r, |_, _, p| *p = "missing".into())),
        with(&|r| set(r, |_, _, p| *p = "free".into())),
        with(&|r| set(r, |id, key, _| (*id, *key) = (5, "view".into()))),
    ];
    for r in bad {
        assert_eq!(
            state.admit(&r).map_err(|e| e.kind()),
            Err(ErrorKind::FailedPrecondition),
            "{r:?}"
        );
    }
}

/// Changes the id, key and parent of a [`Record::Rebased`].
fn set(r: &mut Record, f: impl Fn(&mut u64, &mut String, &mut String)) {
    if let Record::Rebased {
        id, key, parent, ..
    } = r
    {
        f(id, key, parent);
    }
}

/// The model holding the same snapshots as `state` (built by the fixture's commands).
fn model(state: &State) -> overlaysnap_model::Model {
    let mut m = overlaysnap_model::Model::new();
    let none = Labels::new();
    m.prepare("b", None, &none, (0, 0)).unwrap();
    m.commit("base", "b", None, &none, (512, 1), (0, 0))
        .unwrap();
    m.prepare("o", None, &none, (0, 0)).unwrap();
    m.commit("other", "o", None, &none, (512, 1), (0, 0))
        .unwrap();
    m.prepare("free", None, &none, (0, 0)).unwrap();
    m.prepare("child", Some("base"), &none, (0, 0)).unwrap();
    m.view("view", Some("base"), &none, (0, 0)).unwrap();
    m.prepare("layer", None, &none, (0, 0)).unwrap();
    assert_eq!(m.snaps.len(), state.len());
    m
}

fn kind_of(e: overlaysnap_model::ErrKind) -> ErrorKind {
    use overlaysnap_model::ErrKind as M;
    match e {
        M::InvalidArgument => ErrorKind::InvalidArgument,
        M::NotFound => ErrorKind::NotFound,
        M::AlreadyExists => ErrorKind::AlreadyExists,
        M::FailedPrecondition => ErrorKind::FailedPrecondition,
    }
}
