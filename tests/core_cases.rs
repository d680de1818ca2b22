//! Fixed cases of the pure core, one row per error cell of containerd's contract
//! (docs/semantics.md#operations), the Update field-path rules, and containerd's metastore cases.

use overlaysnap::core::{Command, Filter, Kind, Labels, Record, State, Usage};
use overlaysnap::ErrorKind;
use rstest::{fixture, rstest};

mod core_support;
use core_support::{commit, labels, prepare, remove, view, T0, T1};

fn run(state: &mut State, cmd: Command) -> Result<Record, ErrorKind> {
    let record = state.decide(&cmd).map_err(|e| e.kind())?;
    state.apply(&record);
    Ok(record)
}

fn update(key: &str, l: Labels, paths: &[&str]) -> Command {
    Command::Update {
        key: key.into(),
        labels: l,
        fieldpaths: paths.iter().map(|p| p.to_string()).collect(),
        now: T1,
    }
}

/// Committed `c1` (id 1), Active `a2` above it (id 2), View `v1` above it (id 3),
/// Active `a3` without parent (id 4).
#[fixture]
fn state() -> State {
    let mut s = State::new();
    for cmd in [
        prepare("a1", None),
        commit("c1", "a1"),
        prepare("a2", Some("c1")),
        view("v1", Some("c1")),
        prepare("a3", None),
    ] {
        run(&mut s, cmd).unwrap();
    }
    s
}

#[rstest]
#[case::prepare_key_exists(prepare("a2", None), ErrorKind::AlreadyExists)]
#[case::prepare_key_is_a_name(prepare("c1", None), ErrorKind::AlreadyExists)]
#[case::prepare_parent_missing(prepare("n", Some("nope")), ErrorKind::NotFound)]
#[case::prepare_parent_active(prepare("n", Some("a2")), ErrorKind::InvalidArgument)]
#[case::prepare_parent_view(prepare("n", Some("v1")), ErrorKind::InvalidArgument)]
#[case::prepare_empty_key(prepare("", None), ErrorKind::InvalidArgument)]
#[case::prepare_nul_in_key(prepare("a\0b", None), ErrorKind::InvalidArgument)]
#[case::prepare_empty_parent(prepare("n", Some("")), ErrorKind::InvalidArgument)]
#[case::view_key_exists(view("v1", Some("c1")), ErrorKind::AlreadyExists)]
#[case::view_parent_missing(view("n", Some("nope")), ErrorKind::NotFound)]
#[case::view_parent_not_committed(view("n", Some("a3")), ErrorKind::InvalidArgument)]
#[case::view_empty_key(view("", None), ErrorKind::InvalidArgument)]
#[case::commit_name_exists(commit("c1", "a2"), ErrorKind::AlreadyExists)]
#[case::commit_name_is_key(commit("a2", "a2"), ErrorKind::AlreadyExists)]
#[case::commit_key_missing(commit("n", "nope"), ErrorKind::NotFound)]
#[case::commit_view(commit("n", "v1"), ErrorKind::FailedPrecondition)]
#[case::commit_committed(commit("n", "c1"), ErrorKind::FailedPrecondition)]
#[case::commit_empty_name(commit("", "a2"), ErrorKind::InvalidArgument)]
#[case::remove_missing(remove("nope"), ErrorKind::NotFound)]
#[case::remove_with_children(remove("c1"), ErrorKind::FailedPrecondition)]
#[case::update_missing(update("nope", Labels::new(), &[]), ErrorKind::NotFound)]
#[case::update_parent_path(update("a2", Labels::new(), &["parent"]), ErrorKind::InvalidArgument)]
#[case::update_name_path(update("a2", Labels::new(), &["name"]), ErrorKind::InvalidArgument)]
#[case::update_empty_label_path(update("a2", Labels::new(), &["labels."]), ErrorKind::InvalidArgument)]
#[case::update_oversized_label(update("a2", labels(&[("k", &"v".repeat(4096))]), &[]), ErrorKind::InvalidArgument)]
#[case::prepare_empty_label_key(Command::Prepare { key: "n".into(), parent: None, labels: labels(&[("", "v")]), now: T0 }, ErrorKind::InvalidArgument)]
fn refused_commands_leave_state_untouched(
    mut state: State,
    #[case] cmd: Command,
    #[case] expected: ErrorKind,
) {
    let before = state.clone();
    assert_eq!(run(&mut state, cmd), Err(expected));
    assert_eq!(state, before);
}

#[rstest]
#[case::missing("nope", ErrorKind::NotFound)]
#[case::committed("c1", ErrorKind::FailedPrecondition)]
#[case::empty("", ErrorKind::InvalidArgument)]
fn mounts_plan_errors(state: State, #[case] key: &str, #[case] expected: ErrorKind) {
    assert_eq!(state.mounts_plan(key).map_err(|e| e.kind()), Err(expected));
}

#[rstest]
fn stat_missing_is_not_found(state: State) {
    assert_eq!(
        state.stat("nope").map_err(|e| e.kind()),
        Err(ErrorKind::NotFound)
    );
}

#[rstest]
fn label_of_exactly_4096_bytes_is_accepted(mut state: State) {
    let l = labels(&[("k", &"v".repeat(4095))]);
    run(&mut state, update("a2", l.clone(), &[])).unwrap();
    assert_eq!(state.stat("a2").unwrap().labels, l);
}

#[rstest]
#[case::no_paths_replace_all(&[], &[("x", "1")], &[("x", "1")])]
#[case::labels_replaces_all(&["labels"], &[("x", "1")], &[("x", "1")])]
#[case::one_label_set(&["labels.x"], &[("x", "1"), ("y", "2")], &[("keep", "k"), ("old", "o"), ("x", "1")])]
#[case::one_label_overwritten(&["labels.old"], &[("old", "new")], &[("keep", "k"), ("old", "new")])]
#[case::absent_value_deletes(&["labels.old"], &[], &[("keep", "k")])]
#[case::empty_value_deletes(&["labels.old"], &[("old", "")], &[("keep", "k")])]
#[case::dotted_label_key(&["labels.a.b"], &[("a.b", "1")], &[("a.b", "1"), ("keep", "k"), ("old", "o")])]
#[case::empty_values_never_stored(&[], &[("x", ""), ("y", "1")], &[("y", "1")])]
fn update_fieldpaths(
    #[case] paths: &[&str],
    #[case] given: &[(&str, &str)],
    #[case] expected: &[(&str, &str)],
) {
    let mut s = State::new();
    let initial = labels(&[("keep", "k"), ("old", "o")]);
    run(
        &mut s,
        Command::Prepare {
            key: "k".into(),
            parent: None,
            labels: initial,
            now: T0,
        },
    )
    .unwrap();
    run(&mut s, update("k", labels(given), paths)).unwrap();
    let info = s.stat("k").unwrap();
    assert_eq!(info.labels, labels(expected));
    assert_eq!((info.created, info.updated), (T0, T1));
    assert_eq!(info.kind, Kind::Active);
}

#[rstest]
fn commit_keeps_id_replaces_labels_and_renames_child_entry() {
    let mut s = State::new();
    run(&mut s, prepare("base", None)).unwrap();
    run(&mut s, commit("c", "base")).unwrap();
    run(
        &mut s,
        Command::Prepare {
            key: "k".into(),
            parent: Some("c".into()),
            labels: labels(&[("old", "1")]),
            now: T0,
        },
    )
    .unwrap();
    let id = s.get("k").unwrap().id;
    run(
        &mut s,
        Command::Commit {
            name: "n".into(),
            key: "k".into(),
            parent: None,
            labels: labels(&[("new", "2")]),
            usage: Usage {
                size: 4096,
                inodes: 3,
            },
            now: T1,
        },
    )
    .unwrap();
    assert!(s.get("k").is_none());
    let n = s.get("n").unwrap();
    assert_eq!(n.id, id);
    assert_eq!(n.kind, Kind::Committed);
    assert_eq!(n.labels, labels(&[("new", "2")]));
    assert_eq!((n.created, n.updated), (T1, T1));
    assert_eq!(
        n.usage,
        Some(Usage {
            size: 4096,
            inodes: 3
        })
    );
    assert_eq!(s.children("c").collect::<Vec<_>>(), ["n"]);
}

// containerd's snapshots/storage metastore cases.

#[rstest]
fn create_active_from_active_fails() {
    let mut s = State::new();
    run(&mut s, prepare("active", None)).unwrap();
    assert_eq!(
        run(&mut s, prepare("active-child", Some("active"))),
        Err(ErrorKind::InvalidArgument)
    );
}

#[rstest]
fn commit_view_fails(mut state: State) {
    assert_eq!(
        run(&mut state, commit("committed-view", "v1")),
        Err(ErrorKind::FailedPrecondition)
    );
}

#[rstest]
fn remove_with_children_then_without(mut state: State) {
    assert_eq!(
        run(&mut state, remove("c1")),
        Err(ErrorKind::FailedPrecondition)
    );
    run(&mut state, remove("a2")).unwrap();
    assert_eq!(
        run(&mut state, remove("c1")),
        Err(ErrorKind::FailedPrecondition)
    );
    run(&mut state, remove("v1")).unwrap();
    run(&mut state, remove("c1")).unwrap();
    assert_eq!(state.children("c1").count(), 0);
}

#[rstest]
fn parent_ids_of_a_three_chain() {
    let mut s = State::new();
    run(&mut s, prepare("k1", None)).unwrap();
    run(&mut s, commit("c1", "k1")).unwrap();
    run(&mut s, prepare("k2", Some("c1"))).unwrap();
    run(&mut s, commit("c2", "k2")).unwrap();
    run(&mut s, prepare("k3", Some("c2"))).unwrap();
    assert_eq!(s.parent_ids("k3").unwrap(), [2, 1]);
    assert_eq!(s.parent_ids("c2").unwrap(), [1]);
    assert!(s.parent_ids("c1").unwrap().is_empty());
    let plan = s.mounts_plan("k3").unwrap();
    assert_eq!(
        (plan.id, plan.kind, plan.parents),
        (3, Kind::Active, vec![2, 1])
    );
}

#[rstest]
fn ids_are_never_reused() {
    let mut s = State::new();
    run(&mut s, prepare("a", None)).unwrap();
    run(&mut s, remove("a")).unwrap();
    let r = run(&mut s, prepare("a", None)).unwrap();
    assert_eq!(r.id(), 2);
    assert_eq!(s.next_id(), 3);
}

#[rstest]
fn walk_is_ordered_by_bytes_and_filtered(state: State) {
    let all: Vec<_> = state
        .walk(&Filter::parse_all::<&str>(&[]).unwrap())
        .map(|i| i.name)
        .collect();
    assert_eq!(all, ["a2", "a3", "c1", "v1"]);
    let f = Filter::parse_all(&["kind==active", "kind==view"]).unwrap();
    let some: Vec<_> = state.walk(&f).map(|i| i.name).collect();
    assert_eq!(some, ["a2", "a3", "v1"]);
}

#[rstest]
fn checkpoint_round_trips(state: State) {
    let back = State::from_checkpoint(state.checkpoint()).unwrap();
    assert_eq!(back, state);
}

#[rstest]
fn checkpoint_with_dangling_parent_is_refused(state: State) {
    let mut cp = state.checkpoint();
    cp.snapshots.retain(|(k, _)| k != "c1");
    assert_eq!(
        State::from_checkpoint(cp).unwrap_err().kind(),
        ErrorKind::FailedPrecondition
    );
}

#[rstest]
fn admit_refuses_records_that_do_not_fit(state: State) {
    let reused_id = Record::Created {
        id: 1,
        kind: Kind::Active,
        key: "n".into(),
        parent: None,
        labels: Labels::new(),
        at: T0,
    };
    assert_eq!(
        state.admit(&reused_id).unwrap_err().kind(),
        ErrorKind::FailedPrecondition
    );
    let wrong_id = Record::Removed {
        id: 9,
        key: "a3".into(),
    };
    assert_eq!(
        state.admit(&wrong_id).unwrap_err().kind(),
        ErrorKind::FailedPrecondition
    );
    let with_children = Record::Removed {
        id: 1,
        key: "c1".into(),
    };
    assert_eq!(
        state.admit(&with_children).unwrap_err().kind(),
        ErrorKind::FailedPrecondition
    );
}

/// `State::default()` is `State::new()`: its first id is 1, like every fresh state's.
#[test]
fn a_default_state_hands_out_id_1_first() {
    assert_eq!(State::default(), State::new());
    assert_eq!(State::default().next_id(), 1);
}
