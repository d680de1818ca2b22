//! Sharper checks of the pure core, written after a `cargo mutants` run over `src/core/`
//! (see `docs/mutants.md`): the rules that the case tables and the model comparison left
//! loose. Record admission must refuse every record that does not fit (apply only
//! debug-asserts it), a checkpoint must be refused for each invariant it breaks, the
//! accessors must report the live state, and kinds must print and parse as containerd's.

use overlaysnap::core::{
    validate_labels, Checkpoint, Command, Filter, Info, Kind, Labels, Record, Snapshot, State,
    Usage, MAX_LABEL_SIZE,
};
use overlaysnap::ErrorKind;
use rstest::{fixture, rstest};
use std::collections::BTreeMap;

mod core_support;
use core_support::{commit, labels, prepare, view, T0, T1};

fn run(state: &mut State, cmd: Command) -> Record {
    let record = state
        .decide(&cmd)
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    state.apply(&record);
    record
}

/// Committed `c1` (id 1), Active `a2` above it (id 2), View `v1` above it (id 3),
/// Active `a3` without parent (id 4); the next id is 5.
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
        run(&mut s, cmd);
    }
    s
}

fn created(id: u64, kind: Kind, key: &str, parent: Option<&str>, l: Labels) -> Record {
    Record::Created {
        id,
        kind,
        key: key.into(),
        parent: parent.map(Into::into),
        labels: l,
        at: T0,
    }
}

fn committed(id: u64, key: &str, name: &str, l: Labels) -> Record {
    Record::Committed {
        id,
        key: key.into(),
        name: name.into(),
        labels: l,
        usage: Usage::default(),
        at: T1,
    }
}

fn rebased(id: u64, key: &str, name: &str, parent: &str) -> Record {
    Record::Rebased {
        id,
        key: key.into(),
        name: name.into(),
        parent: parent.into(),
        labels: Labels::new(),
        usage: Usage::default(),
        at: T1,
    }
}

fn removed(id: u64, key: &str) -> Record {
    Record::Removed {
        id,
        key: key.into(),
    }
}

fn updated(id: u64, key: &str, l: Labels) -> Record {
    Record::Updated {
        id,
        key: key.into(),
        labels: l,
        at: T1,
    }
}

fn oversized() -> Labels {
    labels(&[("k", &"v".repeat(MAX_LABEL_SIZE))])
}

// Admission guards replay: a record read back from a journal is applied only if it fits.
#[rstest]
#[case::created_as_committed(
    created(5, Kind::Committed, "n", None, Labels::new()),
    ErrorKind::FailedPrecondition
)]
#[case::created_with_an_issued_id(
    created(4, Kind::Active, "n", None, Labels::new()),
    ErrorKind::FailedPrecondition
)]
#[case::created_with_the_first_id(
    created(1, Kind::View, "n", None, Labels::new()),
    ErrorKind::FailedPrecondition
)]
#[case::created_with_the_last_id(
    created(u64::MAX, Kind::Active, "n", None, Labels::new()),
    ErrorKind::FailedPrecondition
)]
#[case::created_over_a_key(
    created(5, Kind::Active, "a3", None, Labels::new()),
    ErrorKind::FailedPrecondition
)]
#[case::created_over_a_name(
    created(5, Kind::Active, "c1", None, Labels::new()),
    ErrorKind::FailedPrecondition
)]
#[case::created_on_a_missing_parent(
    created(5, Kind::Active, "n", Some("nope"), Labels::new()),
    ErrorKind::FailedPrecondition
)]
#[case::created_on_an_active_parent(
    created(5, Kind::Active, "n", Some("a2"), Labels::new()),
    ErrorKind::FailedPrecondition
)]
#[case::created_on_a_view_parent(
    created(5, Kind::View, "n", Some("v1"), Labels::new()),
    ErrorKind::FailedPrecondition
)]
#[case::created_with_an_empty_key(
    created(5, Kind::Active, "", None, Labels::new()),
    ErrorKind::InvalidArgument
)]
#[case::created_with_oversized_labels(
    created(5, Kind::Active, "n", None, oversized()),
    ErrorKind::InvalidArgument
)]
#[case::created_with_an_empty_label_value(
    created(5, Kind::Active, "n", None, labels(&[("l", "x"), ("gone", "")])),
    ErrorKind::FailedPrecondition
)]
#[case::committed_missing_key(
    committed(2, "nope", "n", Labels::new()),
    ErrorKind::FailedPrecondition
)]
#[case::committed_wrong_id(committed(9, "a2", "n", Labels::new()), ErrorKind::FailedPrecondition)]
#[case::committed_a_view(committed(3, "v1", "n", Labels::new()), ErrorKind::FailedPrecondition)]
#[case::committed_a_committed(
    committed(1, "c1", "n", Labels::new()),
    ErrorKind::FailedPrecondition
)]
#[case::committed_over_a_name(
    committed(2, "a2", "c1", Labels::new()),
    ErrorKind::FailedPrecondition
)]
#[case::committed_over_a_key(
    committed(2, "a2", "a3", Labels::new()),
    ErrorKind::FailedPrecondition
)]
#[case::committed_with_an_empty_name(
    committed(2, "a2", "", Labels::new()),
    ErrorKind::InvalidArgument
)]
#[case::committed_with_oversized_labels(
    committed(2, "a2", "n", oversized()),
    ErrorKind::InvalidArgument
)]
#[case::committed_with_an_empty_label_value(
    committed(2, "a2", "n", labels(&[("gone", "")])),
    ErrorKind::FailedPrecondition
)]
#[case::rebased_onto_itself(rebased(4, "a3", "n", "a3"), ErrorKind::FailedPrecondition)]
#[case::rebased_onto_an_active(rebased(4, "a3", "n", "a2"), ErrorKind::FailedPrecondition)]
#[case::rebased_onto_a_view(rebased(4, "a3", "n", "v1"), ErrorKind::FailedPrecondition)]
#[case::removed_missing(removed(4, "nope"), ErrorKind::FailedPrecondition)]
#[case::removed_wrong_id(removed(9, "a3"), ErrorKind::FailedPrecondition)]
#[case::removed_with_children(removed(1, "c1"), ErrorKind::FailedPrecondition)]
#[case::updated_missing(updated(4, "nope", Labels::new()), ErrorKind::FailedPrecondition)]
#[case::updated_wrong_id(updated(3, "a3", Labels::new()), ErrorKind::FailedPrecondition)]
#[case::updated_with_oversized_labels(updated(4, "a3", oversized()), ErrorKind::InvalidArgument)]
#[case::updated_with_an_empty_label_value(
    updated(4, "a3", labels(&[("gone", "")])),
    ErrorKind::FailedPrecondition
)]
fn admit_refuses_each_record_that_does_not_fit(
    state: State,
    #[case] record: Record,
    #[case] expected: ErrorKind,
) {
    assert_eq!(state.admit(&record).map_err(|e| e.kind()), Err(expected));
}

// Admission accepts what fits, including ids above the counter (a journal may skip some).
#[rstest]
#[case::created_with_the_next_id(created(5, Kind::Active, "n", None, Labels::new()), 6)]
#[case::created_above_the_next_id(created(7, Kind::View, "n", Some("c1"), Labels::new()), 8)]
#[case::committed(committed(2, "a2", "n", labels(&[("x", "1")])), 5)]
#[case::rebased(rebased(4, "a3", "n", "c1"), 5)]
#[case::removed_leaf(removed(4, "a3"), 5)]
#[case::removed_view(removed(3, "v1"), 5)]
#[case::updated_committed(updated(1, "c1", labels(&[("x", "1")])), 5)]
fn admit_accepts_fitting_records_and_apply_advances_the_id_counter(
    mut state: State,
    #[case] record: Record,
    #[case] next_id: u64,
) {
    state.admit(&record).unwrap();
    state.apply(&record);
    assert_eq!(state.next_id(), next_id);
}

// A created record's id raises the counter past itself, so a replayed id is never reissued.
#[rstest]
fn a_replayed_high_id_is_never_reissued(mut state: State) {
    state.apply(&created(41, Kind::Active, "n", None, Labels::new()));
    let next = state.decide(&prepare("m", None)).unwrap();
    assert_eq!(next.id(), 42);
}

// Record::id names the snapshot of every variant, as the effect layer uses it for `snapshots/<id>`.
#[rstest]
#[case::created(created(7, Kind::Active, "n", None, Labels::new()), 7)]
#[case::committed(committed(8, "a", "n", Labels::new()), 8)]
#[case::removed(removed(9, "a"), 9)]
#[case::updated(updated(10, "a", Labels::new()), 10)]
fn record_id_is_the_snapshot_id(#[case] record: Record, #[case] id: u64) {
    assert_eq!(record.id(), id);
}

// Accessors report the live state: ids, counts, lookups and the children index.
#[rstest]
fn accessors_report_the_live_state(state: State) {
    let ids: BTreeMap<u64, &str> = [(1, "c1"), (2, "a2"), (3, "v1"), (4, "a3")].into();
    assert_eq!(state.id_map(), ids);
    let mut live: Vec<u64> = state.ids().collect();
    live.sort_unstable();
    assert_eq!(live, ids.keys().copied().collect::<Vec<_>>());
    assert_eq!(state.len(), 4);
    assert!(!state.is_empty());
    assert_eq!(
        state.get("v1").map(|s| (s.id, s.kind)),
        Some((3, Kind::View))
    );
    assert!(state.get("nope").is_none());
    assert_eq!(state.children("c1").collect::<Vec<_>>(), ["a2", "v1"]);
    assert_eq!(state.children("a3").count(), 0);
    assert_eq!(state.next_id(), 5);
    let counts = state.kind_counts();
    assert_eq!((counts.view, counts.active, counts.committed), (1, 2, 1));
    for (kind, n) in [(Kind::View, 1), (Kind::Active, 2), (Kind::Committed, 1)] {
        assert_eq!(counts.get(kind), n, "{kind}");
    }

    let empty = State::new();
    assert!(empty.is_empty());
    assert_eq!(empty.len(), 0);
    assert!(empty.id_map().is_empty());
    assert_eq!(empty.next_id(), 1);
    assert_eq!(empty.kind_counts().get(Kind::Active), 0);
}

// Stat returns the snapshot's own Info: kind, name, parent, labels and both times.
#[rstest]
fn stat_reports_every_field(mut state: State) {
    run(
        &mut state,
        Command::Update {
            key: "v1".into(),
            labels: labels(&[("x", "1")]),
            fieldpaths: vec![],
            now: T1,
        },
    );
    assert_eq!(
        state.stat("v1").unwrap(),
        Info {
            kind: Kind::View,
            name: "v1".into(),
            parent: Some("c1".into()),
            labels: labels(&[("x", "1")]),
            created: T0,
            updated: T1,
        }
    );
}

// A View's mounts are read-only over its parent chain.
#[rstest]
fn mounts_plan_of_a_view(state: State) {
    let plan = state.mounts_plan("v1").unwrap();
    assert_eq!((plan.id, plan.kind, plan.parents), (3, Kind::View, vec![1]));
}

// Labels with empty values are dropped on every path into the state.
#[rstest]
fn empty_label_values_are_never_stored(mut state: State) {
    let given = labels(&[("e", ""), ("x", "1")]);
    let r = run(
        &mut state,
        Command::Prepare {
            key: "n".into(),
            parent: None,
            labels: given.clone(),
            now: T0,
        },
    );
    let Record::Created { labels: stored, .. } = r else {
        panic!("{r:?}")
    };
    assert_eq!(stored, labels(&[("x", "1")]));
    run(
        &mut state,
        Command::Commit {
            name: "m".into(),
            key: "n".into(),
            parent: None,
            labels: given,
            usage: Usage::default(),
            now: T1,
        },
    );
    assert_eq!(state.stat("m").unwrap().labels, labels(&[("x", "1")]));
}

// Walk with a filter yields Infos equal to Stat's, not placeholders.
#[rstest]
fn walk_yields_full_infos(state: State) {
    let f = Filter::parse("name==a2").unwrap();
    let walked: Vec<Info> = state.walk(&f).collect();
    assert_eq!(walked, [state.stat("a2").unwrap()]);
}

fn snapshot_mut<'a>(cp: &'a mut Checkpoint, key: &str) -> &'a mut Snapshot {
    &mut cp
        .snapshots
        .iter_mut()
        .find(|(k, _)| k == key)
        .unwrap_or_else(|| panic!("{key} not in checkpoint"))
        .1
}

fn committed_snapshot(id: u64, parent: Option<&str>) -> Snapshot {
    Snapshot {
        id,
        kind: Kind::Committed,
        parent: parent.map(Into::into),
        labels: Labels::new(),
        created: T0,
        updated: T0,
        usage: Some(Usage::default()),
    }
}

/// A change that breaks a checkpoint.
type Damage = fn(&mut Checkpoint);

fn breaking(f: Damage) -> Damage {
    f
}

// A checkpoint is loaded only if it keeps every invariant of the state.
#[rstest]
#[case::id_zero(breaking(|cp| snapshot_mut(cp, "a3").id = 0), ErrorKind::FailedPrecondition)]
#[case::id_at_next_id(breaking(|cp| cp.next_id = 4), ErrorKind::FailedPrecondition)]
#[case::next_id_zero(breaking(|cp| {
    cp.snapshots.clear();
    cp.next_id = 0;
}), ErrorKind::FailedPrecondition)]
#[case::id_above_next_id(breaking(|cp| snapshot_mut(cp, "a3").id = 9), ErrorKind::FailedPrecondition)]
#[case::duplicate_id(breaking(|cp| snapshot_mut(cp, "a3").id = 2), ErrorKind::FailedPrecondition)]
#[case::duplicate_key(breaking(|cp| {
    let again = cp.snapshots[0].clone();
    cp.snapshots.push((again.0, Snapshot { id: 5, ..again.1 }));
    cp.next_id = 6;
}), ErrorKind::FailedPrecondition)]
#[case::usage_on_active(breaking(|cp| snapshot_mut(cp, "a2").usage = Some(Usage::default())), ErrorKind::FailedPrecondition)]
#[case::usage_on_view(breaking(|cp| snapshot_mut(cp, "v1").usage = Some(Usage::default())), ErrorKind::FailedPrecondition)]
#[case::no_usage_on_committed(breaking(|cp| snapshot_mut(cp, "c1").usage = None), ErrorKind::FailedPrecondition)]
#[case::parent_missing(breaking(|cp| snapshot_mut(cp, "a3").parent = Some("nope".into())), ErrorKind::FailedPrecondition)]
#[case::parent_active(breaking(|cp| snapshot_mut(cp, "a3").parent = Some("a2".into())), ErrorKind::FailedPrecondition)]
#[case::parent_view(breaking(|cp| snapshot_mut(cp, "a3").parent = Some("v1".into())), ErrorKind::FailedPrecondition)]
#[case::self_parent(breaking(|cp| snapshot_mut(cp, "c1").parent = Some("c1".into())), ErrorKind::FailedPrecondition)]
#[case::two_cycle(breaking(|cp| {
    snapshot_mut(&mut *cp, "c1").parent = Some("c2".into());
    cp.snapshots.push(("c2".into(), committed_snapshot(5, Some("c1"))));
    cp.next_id = 6;
}), ErrorKind::FailedPrecondition)]
#[case::empty_key(breaking(|cp| cp.snapshots[0].0 = String::new()), ErrorKind::InvalidArgument)]
#[case::oversized_labels(breaking(|cp| snapshot_mut(cp, "a3").labels = oversized()), ErrorKind::InvalidArgument)]
#[case::empty_label_value(
    breaking(|cp| snapshot_mut(cp, "a3").labels = labels(&[("gone", "")])),
    ErrorKind::FailedPrecondition
)]
fn from_checkpoint_refuses_each_broken_invariant(
    state: State,
    #[case] damage: Damage,
    #[case] expected: ErrorKind,
) {
    let mut cp = state.checkpoint();
    damage(&mut cp);
    assert_eq!(
        State::from_checkpoint(cp).map_err(|e| e.kind()),
        Err(expected)
    );
}

// A checkpoint keeps the id counter even when the highest ids were removed, and chains load.
#[rstest]
fn from_checkpoint_keeps_the_counter_and_long_chains(mut state: State) {
    run(&mut state, commit("c2", "a2"));
    run(&mut state, prepare("a5", Some("c2")));
    run(&mut state, commit("c3", "a5"));
    run(&mut state, prepare("top", Some("c3")));
    run(&mut state, view("leaf", Some("c3")));
    run(&mut state, Command::Remove { key: "leaf".into() });
    let back = State::from_checkpoint(state.checkpoint()).unwrap();
    assert_eq!(back.next_id(), 8);
    assert_eq!(back.parent_ids("top").unwrap(), [5, 2, 1]);
    assert_eq!(back.children("c2").collect::<Vec<_>>(), ["c3"]);
    assert_eq!(back, state);
}

// Kinds use containerd's strings; parsing is case-insensitive and Display honours padding.
#[rstest]
#[case::view(Kind::View, "view", "VIEW")]
#[case::active(Kind::Active, "active", "Active")]
#[case::committed(Kind::Committed, "committed", "committeD")]
fn kind_strings_are_containerds(#[case] kind: Kind, #[case] text: &str, #[case] odd_case: &str) {
    assert_eq!(kind.as_str(), text);
    assert_eq!(kind.to_string(), text);
    assert_eq!(format!("{kind:>10}|"), format!("{text:>10}|"));
    assert_eq!(Kind::parse(text), Some(kind));
    assert_eq!(Kind::parse(odd_case), Some(kind));
}

// Anything but the three kind names does not parse.
#[rstest]
#[case::empty("")]
#[case::other("xyzzy")]
#[case::plural("views")]
fn unknown_kind_strings_do_not_parse(#[case] text: &str) {
    assert_eq!(Kind::parse(text), None);
}

// The label size limit counts key and value together, exactly up to MAX_LABEL_SIZE.
#[rstest]
#[case::key_and_value_at_the_limit("kk", 4094, true)]
#[case::key_and_value_one_over("kk", 4095, false)]
#[case::long_key_short_value("k".repeat(4000).leak(), 96, true)]
#[case::long_key_one_over("k".repeat(4000).leak(), 97, false)]
fn label_limit_counts_key_and_value(#[case] key: &str, #[case] value_len: usize, #[case] ok: bool) {
    let l = labels(&[(key, &"v".repeat(value_len))]);
    assert_eq!(validate_labels(&l).is_ok(), ok);
}

// A refused key names the argument, the key and the control character.
#[rstest]
fn refusals_name_the_argument_and_the_reason(state: State) {
    let err = state.decide(&prepare("a\u{7}b", None)).unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"invalid argument: key "a\u{7}b" has control character 0x07 at byte 1"#
    );
    let err = state.decide(&prepare("n", Some("a2"))).unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"invalid argument: parent "a2" is not a committed snapshot (it is active)"#
    );
    let err = state
        .decide(&Command::Remove { key: "x".into() })
        .unwrap_err();
    assert_eq!(err.to_string(), r#"not found: snapshot "x" does not exist"#);
}

fn named(name: &str) -> Info {
    Info {
        kind: Kind::Active,
        name: name.into(),
        parent: None,
        labels: Labels::new(),
        created: T0,
        updated: T0,
    }
}

// `\U` escapes reach the last Unicode scalar value, U+10FFFF, and stop just past it.
#[rstest]
#[case::upper_hex(r#"name=="\U0010FFFF""#)]
#[case::lower_hex(r#"name=="\U0010ffff""#)]
fn big_u_escape_reaches_the_last_scalar_value(#[case] text: &str) {
    let f = Filter::parse(text).unwrap();
    assert!(f.matches(&named("\u{10FFFF}")));
    assert!(!f.matches(&named("\u{10FFFE}")));
    assert_eq!(
        Filter::parse(r#"name=="\U00110000""#).unwrap_err().kind(),
        ErrorKind::InvalidArgument
    );
}
