//! Concurrent histories of one snapshotter, checked for linearizability against the
//! reference model.
//!
//! Each history: 3 or 4 real threads start together and run 6 to 8 random operations each
//! (Prepare, View, Commit, Remove, Stat, Update, Usage, Walk over a pool of a few keys) on
//! one snapshotter with the memory journal. Every operation records its arguments, its
//! result, and the instants it was invoked and returned (ticks of one global counter, taken
//! just before the call and just after it). The checker (Wing & Gong's search, with Lowe's
//! cache of visited (done-set, model-state) pairs) then looks for one sequential order of all
//! operations that respects real time (an operation that returned before another was invoked
//! comes first) and in which the model (`overlaysnap_model::Model`) gives every operation
//! the result it really had.
//!
//! What is compared, and why it is sound:
//! - Prepare and View: the snapshot ids their mounts name, in order (own id, then the
//!   parents' for Active; as the layout mounts a View), against the model's ids: ids are
//!   handed out in linearization order in both.
//! - Stat and Update: kind, name, parent and labels. Timestamps are left out: the
//!   snapshotter reads its own clock, and the model takes whatever time it is given.
//! - Commit: the model takes the usage as an argument. Nothing writes into any layer here,
//!   so every layer is an empty directory, and its usage is a constant of the file system;
//!   the test measures it once on a probe snapshotter (Active, and after Commit) and gives
//!   that constant to the model, so Usage results are compared exactly too.
//! - Errors: by kind. One error is not the model's: "removed and created again during the
//!   call; retry" (FailedPrecondition) is the snapshotter refusing a call whose key or
//!   parent was replaced under its slow work; such a call has no effect, so the checker
//!   may place it anywhere as a no-op. The run prints how many there were.
//!
//! Both tests check [`Spec::Strict`]; any departure fails with the whole history and its
//! seed. [`Spec::EarlyRefusals`] describes the bug the snapshotter once had (a refused
//! write answered before the in-flight writes it was decided on were visible): the checker's
//! own tests show that Strict rejects such a history and EarlyRefusals accepts it, so the
//! strict tests are known to catch that bug.
//!
//! Histories: `LINEARIZABILITY_HISTORIES` (default 1000), stopped early after
//! `LINEARIZABILITY_SECONDS` (default 8; about 2 s on two cores). Run:
//! ```text
//! cargo test --test linearizability -- --nocapture     # prints the tally
//! ```

#[allow(dead_code)] // a generator shared by several test binaries; this one picks without `pct`
#[path = "support/rng.rs"]
mod rng;

use overlaysnap::core::{Info, Kind, Labels};
use overlaysnap::fs::Mount;
use overlaysnap::{Backend, Error, ErrorKind, LogBackend, MemoryBackend, Options, Snapshotter};
use overlaysnap_model::{ErrKind, Kind as MKind, Model};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::sync::Barrier;
use std::time::{Duration, Instant};

/// One operation and its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Op {
    Prepare {
        key: String,
        parent: Option<String>,
    },
    View {
        key: String,
        parent: Option<String>,
    },
    Commit {
        name: String,
        key: String,
    },
    Remove {
        key: String,
    },
    Stat {
        key: String,
    },
    /// Sets label `l` to `value` (or deletes it with `None`); `all` replaces every label.
    Update {
        key: String,
        value: Option<String>,
        all: bool,
    },
    Usage {
        key: String,
    },
    Walk,
}

/// What an operation returned, in terms both sides can give.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    /// The ids the mounts name, in order.
    Mounted(Vec<u64>),
    Done,
    Info {
        kind: MKind,
        name: String,
        parent: Option<String>,
        labels: Labels,
    },
    Usage(i64, i64),
    Listing(Vec<(String, MKind, Option<String>, Labels)>),
    Failed(ErrKind),
    /// Refused because a key or parent was replaced during the call: no effect.
    Retry,
}

/// One operation of a history.
#[derive(Debug, Clone)]
struct Event {
    thread: usize,
    op: Op,
    outcome: Outcome,
    /// Counter ticks just before the call and just after it returned.
    invoked: u64,
    returned: u64,
}

/// The model's answers that depend on the file system: the usage of an empty layer.
#[derive(Debug, Clone, Copy)]
struct Env {
    empty_layer: (i64, i64),
}

const T0: (i64, u32) = (0, 0);

fn update_args(value: &Option<String>, all: bool) -> (Labels, Vec<String>) {
    let labels: Labels = value.iter().map(|v| ("l".to_owned(), v.clone())).collect();
    let fields = if all {
        Vec::new()
    } else {
        vec!["labels.l".to_owned()]
    };
    (labels, fields)
}

fn mkind(k: Kind) -> MKind {
    match k {
        Kind::View => MKind::View,
        Kind::Active => MKind::Active,
        Kind::Committed => MKind::Committed,
    }
}

fn info_outcome(i: Info) -> Outcome {
    Outcome::Info {
        kind: mkind(i.kind),
        name: i.name,
        parent: i.parent,
        labels: i.labels,
    }
}

fn snap_outcome(s: overlaysnap_model::Snap) -> Outcome {
    Outcome::Info {
        kind: s.kind,
        name: s.name,
        parent: s.parent,
        labels: s.labels,
    }
}

/// The snapshotter's result in the model's terms; an error the model cannot give panics.
fn real_outcome<T>(r: Result<T, Error>, ok: impl FnOnce(T) -> Outcome) -> Outcome {
    match r {
        Ok(v) => ok(v),
        Err(e) if e.to_string().contains("created again during the call") => Outcome::Retry,
        Err(e) => Outcome::Failed(match e.kind() {
            ErrorKind::NotFound => ErrKind::NotFound,
            ErrorKind::AlreadyExists => ErrKind::AlreadyExists,
            ErrorKind::FailedPrecondition => ErrKind::FailedPrecondition,
            ErrorKind::InvalidArgument => ErrKind::InvalidArgument,
            _ => panic!("an error no model gives: {e}"),
        }),
    }
}

/// The ids named by `mounts` (bind source; overlay upperdir, then lowerdirs), in order.
fn mount_ids(mounts: &[Mount], root: &Path) -> Vec<u64> {
    let snapshots = root.join("snapshots");
    let id = |path: &str| -> u64 {
        Path::new(path)
            .strip_prefix(&snapshots)
            .ok()
            .and_then(layer_id)
            .unwrap_or_else(|| panic!("{path} is not a layer under {}", snapshots.display()))
    };
    let mut ids = Vec::new();
    for m in mounts {
        if m.kind == "bind" {
            ids.push(id(&m.source));
            continue;
        }
        for o in &m.options {
            if let Some(upper) = o.strip_prefix("upperdir=") {
                ids.push(id(upper));
            } else if let Some(lowers) = o.strip_prefix("lowerdir=") {
                ids.extend(lowers.split(':').map(id));
            }
        }
    }
    ids
}

/// `<id>/fs` → id.
fn layer_id(rest: &Path) -> Option<u64> {
    let mut parts = rest.components();
    let id = parts.next()?.as_os_str().to_str()?.parse().ok()?;
    (parts.next()?.as_os_str() == "fs" && parts.next().is_none()).then_some(id)
}

/// Runs `op` on the snapshotter.
fn run_real(sn: &Snapshotter, op: &Op) -> Outcome {
    let root = sn.root();
    let mounted = |m: Vec<Mount>| Outcome::Mounted(mount_ids(&m, root));
    match op {
        Op::Prepare { key, parent } => {
            real_outcome(sn.prepare(key, parent.as_deref(), Labels::new()), mounted)
        }
        Op::View { key, parent } => {
            real_outcome(sn.view(key, parent.as_deref(), Labels::new()), mounted)
        }
        Op::Commit { name, key } => {
            real_outcome(sn.commit(name, key, Labels::new()), |()| Outcome::Done)
        }
        Op::Remove { key } => real_outcome(sn.remove(key), |()| Outcome::Done),
        Op::Stat { key } => real_outcome(sn.stat(key), info_outcome),
        Op::Update { key, value, all } => {
            let (labels, fields) = update_args(value, *all);
            real_outcome(sn.update(key, labels, &fields), info_outcome)
        }
        Op::Usage { key } => real_outcome(sn.usage(key), |u| Outcome::Usage(u.size, u.inodes)),
        Op::Walk => {
            let mut all = Vec::new();
            let r = sn.walk(&[], |i| {
                all.push((i.name, mkind(i.kind), i.parent, i.labels));
                Ok(())
            });
            real_outcome(r, |()| Outcome::Listing(all))
        }
    }
}

/// Runs `op` on the model: what the snapshotter should have answered.
fn run_model(m: &mut Model, op: &Op, env: Env) -> Outcome {
    let failed = Outcome::Failed;
    match op {
        Op::Prepare { key, parent } => {
            match m.prepare(key, parent.as_deref(), &Labels::new(), T0) {
                Ok(s) => {
                    let mut ids = vec![s.id];
                    ids.extend(m.parent_ids(key).expect("just prepared"));
                    Outcome::Mounted(ids)
                }
                Err(e) => failed(e),
            }
        }
        Op::View { key, parent } => match m.view(key, parent.as_deref(), &Labels::new(), T0) {
            Ok(s) => {
                let parents = m.parent_ids(key).expect("just created");
                Outcome::Mounted(if parents.is_empty() {
                    vec![s.id]
                } else {
                    parents
                })
            }
            Err(e) => failed(e),
        },
        Op::Commit { name, key } => m
            .commit(name, key, None, &Labels::new(), env.empty_layer, T0)
            .map_or_else(failed, |_| Outcome::Done),
        Op::Remove { key } => m.remove(key).map_or_else(failed, |()| Outcome::Done),
        Op::Stat { key } => m.stat(key).map_or_else(failed, snap_outcome),
        Op::Update { key, value, all } => {
            let (labels, fields) = update_args(value, *all);
            m.update(key, &labels, &fields, T0)
                .map_or_else(failed, snap_outcome)
        }
        Op::Usage { key } => match m.stat(key) {
            Ok(s) => {
                let (size, inodes) = match s.kind {
                    MKind::Active => env.empty_layer,
                    MKind::Committed => s.usage.expect("committed has usage"),
                    MKind::View => (0, 0),
                };
                Outcome::Usage(size, inodes)
            }
            Err(e) => failed(e),
        },
        Op::Walk => Outcome::Listing(
            m.walk(&[])
                .expect("no filter")
                .into_iter()
                .map(|s| (s.name, s.kind, s.parent, s.labels))
                .collect(),
        ),
    }
}

/// The specification a history is checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Spec {
    /// Linearizability: each operation takes effect at one instant between its invocation
    /// and its return.
    Strict,
    /// As Strict, except that a refused write (an error from Prepare, View, Commit, Remove
    /// or Update) may take effect as late as the last return of a successful write invoked
    /// before the refusal returned: the refusal may have been decided on records of writes
    /// still in flight. This is what the snapshotter once did (the bug that
    /// `histories_on_the_log_journal_are_linearizable` guards); it still catches a refusal
    /// that reflects a write invoked after it, and everything else Strict catches.
    EarlyRefusals,
}

fn is_write(op: &Op) -> bool {
    !matches!(op, Op::Stat { .. } | Op::Usage { .. } | Op::Walk)
}

/// The latest instant each operation of `history` may take effect under `spec`.
fn deadlines(history: &[Event], spec: Spec) -> Vec<u64> {
    history
        .iter()
        .map(|e| match (spec, &e.outcome) {
            (Spec::EarlyRefusals, Outcome::Failed(_)) if is_write(&e.op) => history
                .iter()
                .filter(|w| is_write(&w.op) && w.invoked < e.returned)
                .filter(|w| !matches!(w.outcome, Outcome::Failed(_) | Outcome::Retry))
                .map(|w| w.returned)
                .fold(e.returned, u64::max),
            _ => e.returned,
        })
        .collect()
}

/// A sequential order of `history`, consistent with real time (as `spec` reads it), in
/// which the model started at `initial` gives every operation its recorded outcome; `None`
/// if there is none.
fn linearize(history: &[Event], initial: &Model, env: Env, spec: Spec) -> Option<Vec<usize>> {
    assert!(history.len() <= 64, "the done-set is a u64");
    let search = Search {
        history,
        deadlines: deadlines(history, spec),
        env,
    };
    let mut seen = HashSet::new();
    let mut order = Vec::new();
    search
        .from(0, initial, &mut seen, &mut order)
        .then_some(order)
}

struct Search<'a> {
    history: &'a [Event],
    deadlines: Vec<u64>,
    env: Env,
}

impl Search<'_> {
    /// Extends `order` (the operations in `done`, which brought the model to `model`) to
    /// all operations; false if no extension exists.
    fn from(
        &self,
        done: u64,
        model: &Model,
        seen: &mut HashSet<(u64, String)>,
        order: &mut Vec<usize>,
    ) -> bool {
        if order.len() == self.history.len() {
            return true;
        }
        // Lowe's cache: this done-set from this model state already failed.
        if !seen.insert((done, format!("{:?}/{:?}", model.next_id, model.snaps))) {
            return false;
        }
        let pending = || (0..self.history.len()).filter(|&i| done & (1 << i) == 0);
        let first_deadline = pending().map(|i| self.deadlines[i]).min().unwrap();
        // Minimal operations: invoked before every pending one's deadline.
        for i in pending().filter(|&i| self.history[i].invoked < first_deadline) {
            let event = &self.history[i];
            let mut next = model.clone();
            // A retried call had no effect: it fits anywhere, as a no-op.
            if event.outcome != Outcome::Retry
                && run_model(&mut next, &event.op, self.env) != event.outcome
            {
                continue;
            }
            order.push(i);
            if self.from(done | (1 << i), &next, seen, order) {
                return true;
            }
            order.pop();
        }
        false
    }
}

use rng::SplitMix as Rng;

const KEYS: &[&str] = &["a", "b", "c"];
const NAMES: &[&str] = &["A", "B", "C"];
const ALL: &[&str] = &["a", "b", "c", "A", "B", "C", "v"];

fn random_op(rng: &mut Rng) -> Op {
    let parent = |rng: &mut Rng| match rng.below(3) {
        0 => None,
        _ => Some((*rng.pick(NAMES)).to_owned()),
    };
    match rng.below(100) {
        0..=24 => Op::Prepare {
            key: (*rng.pick(KEYS)).to_owned(),
            parent: parent(rng),
        },
        25..=29 => Op::View {
            key: (*rng.pick(&["v", "a"])).to_owned(),
            parent: parent(rng),
        },
        30..=49 => Op::Commit {
            name: (*rng.pick(NAMES)).to_owned(),
            key: (*rng.pick(KEYS)).to_owned(),
        },
        50..=64 => Op::Remove {
            key: (*rng.pick(ALL)).to_owned(),
        },
        65..=79 => Op::Stat {
            key: (*rng.pick(ALL)).to_owned(),
        },
        80..=87 => Op::Update {
            key: (*rng.pick(ALL)).to_owned(),
            value: (rng.below(3) > 0).then(|| (*rng.pick(&["x", "y"])).to_owned()),
            all: rng.below(2) == 0,
        },
        88..=94 => Op::Usage {
            key: (*rng.pick(ALL)).to_owned(),
        },
        _ => Op::Walk,
    }
}

/// A scratch root on tmpfs when there is one (Commit syncs the root's file system).
fn scratch() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    let parent: PathBuf = if shm.is_dir() {
        shm.into()
    } else {
        env!("CARGO_TARGET_TMPDIR").into()
    };
    tempfile::Builder::new()
        .prefix("overlaysnap-lin-")
        .tempdir_in(parent)
        .unwrap()
}

fn open(root: &Path, journal: &Arc<dyn Backend>, sync_remove: bool) -> Snapshotter {
    let options = Options {
        journal: Arc::clone(journal),
        sync_remove,
        ..Options::default()
    };
    Snapshotter::open(root, options).unwrap()
}

/// The usage of an empty layer on the scratch file system, Active and Committed alike.
fn measure_env(journal: &Arc<dyn Backend>) -> Env {
    let dir = scratch();
    let sn = open(dir.path(), journal, false);
    sn.prepare("p", None, Labels::new()).unwrap();
    let active = sn.usage("p").unwrap();
    sn.commit("P", "p", Labels::new()).unwrap();
    let committed = sn.usage("P").unwrap();
    assert_eq!(active, committed, "an empty layer measures the same twice");
    Env {
        empty_layer: (committed.size, committed.inodes),
    }
}

/// Runs one random history (seeded by `seed`) on a fresh snapshotter; returns it, sorted by
/// invocation, and the model state it starts from.
fn record(seed: u64, journal: &Arc<dyn Backend>, env: Env) -> (Vec<Event>, Model) {
    let mut rng = Rng(seed);
    let threads = 3 + rng.below(2);
    let plans: Vec<Vec<Op>> = (0..threads)
        .map(|_| {
            let n = 6 + rng.below(3);
            (0..n).map(|_| random_op(&mut rng)).collect()
        })
        .collect();
    let dir = scratch();
    let sn = open(dir.path(), journal, rng.below(2) == 0);
    // Start from a committed A, so that parented calls can succeed from the first op.
    let mut model = Model::new();
    for op in [
        Op::Prepare {
            key: "a".into(),
            parent: None,
        },
        Op::Commit {
            name: "A".into(),
            key: "a".into(),
        },
    ] {
        assert_eq!(run_real(&sn, &op), run_model(&mut model, &op, env));
    }
    let clock = AtomicU64::new(0);
    let start = Barrier::new(threads);
    let mut history: Vec<Event> = std::thread::scope(|s| {
        let handles: Vec<_> = plans
            .iter()
            .enumerate()
            .map(|(thread, plan)| {
                let (sn, clock, start) = (&sn, &clock, &start);
                s.spawn(move || {
                    start.wait();
                    plan.iter()
                        .map(|op| {
                            let invoked = clock.fetch_add(1, Ordering::SeqCst);
                            let outcome = run_real(sn, op);
                            let returned = clock.fetch_add(1, Ordering::SeqCst);
                            Event {
                                thread,
                                op: op.clone(),
                                outcome,
                                invoked,
                                returned,
                            }
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    history.sort_by_key(|e| e.invoked);
    (history, model)
}

fn describe(history: &[Event]) -> String {
    history
        .iter()
        .map(|e| {
            format!(
                "  t{} [{:>3}, {:>3}] {:?} -> {:?}\n",
                e.thread, e.invoked, e.returned, e.op, e.outcome
            )
        })
        .collect()
}

/// What a run of [`check_histories`] saw.
#[derive(Debug, Default)]
struct Tally {
    histories: u64,
    operations: usize,
    retried: usize,
    /// Histories that only [`Spec::EarlyRefusals`] accepts.
    early_refusals: u64,
}

/// Records and checks histories until the count or the time budget runs out. Every history
/// must satisfy `spec`; those that are not strictly linearizable are counted, and the
/// first is printed.
fn check_histories(journal: Arc<dyn Backend>, count: u64, budget: Duration, spec: Spec) -> Tally {
    let env = measure_env(&journal);
    let started = Instant::now();
    let mut tally = Tally::default();
    for seed in 0..count {
        if started.elapsed() > budget {
            break;
        }
        let (history, initial) = record(seed, &journal, env);
        let context = || {
            format!(
                "history {seed} ({} journal):\n{}",
                journal.name(),
                describe(&history)
            )
        };
        if linearize(&history, &initial, env, Spec::Strict).is_none() {
            assert!(spec != Spec::Strict, "not linearizable: {}", context());
            assert!(
                linearize(&history, &initial, env, spec).is_some(),
                "not linearizable, even with early refusals: {}",
                context()
            );
            if tally.early_refusals == 0 {
                println!(
                    "linearizable only with early refusals (the known bug): {}",
                    context()
                );
            }
            tally.early_refusals += 1;
        }
        tally.histories += 1;
        tally.operations += history.len();
        tally.retried += history
            .iter()
            .filter(|e| e.outcome == Outcome::Retry)
            .count();
    }
    println!("{} journal: {tally:?}", journal.name());
    tally
}

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn histories() -> u64 {
    env_or("LINEARIZABILITY_HISTORIES", 1000)
}

/// The time budget: `LINEARIZABILITY_SECONDS`, else `default`.
fn budget(default: u64) -> Duration {
    Duration::from_secs(env_or("LINEARIZABILITY_SECONDS", default))
}

/// Every history is linearizable, but for refusals decided on writes still in flight (the
/// known bug, which the test below checks strictly): those histories are counted and the
/// first is printed.
#[test]
fn histories_on_the_memory_journal_are_linearizable() {
    let tally = check_histories(
        Arc::new(MemoryBackend),
        histories(),
        budget(8),
        Spec::Strict,
    );
    assert!(
        tally.histories >= 20,
        "only {} histories in the time budget",
        tally.histories
    );
}

/// Strict linearizability, over the log journal. A refused call can be decided on records
/// that are submitted but neither durable nor published; the snapshotter then waits for
/// them before answering (the bug this guards: it once returned at once, so a call invoked
/// after the refusal returned could still miss the record; the journal's write and sync
/// widened that window so that real threads hit it within a few hundred histories).
#[test]
fn histories_on_the_log_journal_are_linearizable() {
    check_histories(Arc::new(LogBackend), histories(), budget(30), Spec::Strict);
}

// ---- the checker itself ----

fn event(thread: usize, op: Op, outcome: Outcome, invoked: u64, returned: u64) -> Event {
    Event {
        thread,
        op,
        outcome,
        invoked,
        returned,
    }
}

const ENV: Env = Env {
    empty_layer: (8, 1),
};

fn prepare(key: &str) -> Op {
    Op::Prepare {
        key: key.into(),
        parent: None,
    }
}

fn stat(key: &str) -> Op {
    Op::Stat { key: key.into() }
}

#[test]
fn checker_accepts_a_read_that_overlaps_the_write() {
    // The Stat overlaps the Prepare: it may come first and not find the key.
    let h = [
        event(0, prepare("k"), Outcome::Mounted(vec![1]), 0, 3),
        event(1, stat("k"), Outcome::Failed(ErrKind::NotFound), 1, 2),
    ];
    assert_eq!(
        linearize(&h, &Model::new(), ENV, Spec::Strict),
        Some(vec![1, 0])
    );
}

#[test]
fn checker_rejects_a_read_that_misses_a_completed_write() {
    let h = [
        event(0, prepare("k"), Outcome::Mounted(vec![1]), 0, 1),
        event(1, stat("k"), Outcome::Failed(ErrKind::NotFound), 2, 3),
    ];
    assert_eq!(linearize(&h, &Model::new(), ENV, Spec::Strict), None);
}

#[test]
fn checker_rejects_two_winners_and_wrong_ids() {
    let twice = [
        event(0, prepare("k"), Outcome::Mounted(vec![1]), 0, 2),
        event(1, prepare("k"), Outcome::Mounted(vec![2]), 1, 3),
    ];
    assert_eq!(linearize(&twice, &Model::new(), ENV, Spec::Strict), None);
    // Concurrent Prepares of two keys: either may get id 1, but not both.
    let ids = |a, b| {
        [
            event(0, prepare("x"), Outcome::Mounted(vec![a]), 0, 2),
            event(1, prepare("y"), Outcome::Mounted(vec![b]), 1, 3),
        ]
    };
    assert!(linearize(&ids(2, 1), &Model::new(), ENV, Spec::Strict).is_some());
    assert_eq!(
        linearize(&ids(1, 1), &Model::new(), ENV, Spec::Strict),
        None
    );
}

/// The shape of the known bug: B's refusal shows A's record, and C, invoked after B
/// returned, does not see it. Only early refusals accept it.
#[test]
fn checker_rejects_a_refusal_that_reveals_an_invisible_record() {
    let exists = Outcome::Failed(ErrKind::AlreadyExists);
    let h = [
        event(0, prepare("k"), Outcome::Mounted(vec![1]), 0, 10),
        event(1, prepare("k"), exists, 1, 4),
        event(2, stat("k"), Outcome::Failed(ErrKind::NotFound), 5, 6),
    ];
    assert_eq!(linearize(&h, &Model::new(), ENV, Spec::Strict), None);
    let early = linearize(&h, &Model::new(), ENV, Spec::EarlyRefusals);
    assert_eq!(early, Some(vec![2, 0, 1]));
}

/// Early refusals still reject a refusal that reflects a write invoked after it returned.
#[test]
fn early_refusals_reject_a_refusal_that_reflects_a_later_write() {
    let exists = Outcome::Failed(ErrKind::AlreadyExists);
    let h = [
        event(1, prepare("k"), exists, 0, 1),
        event(0, prepare("k"), Outcome::Mounted(vec![1]), 2, 3),
    ];
    assert_eq!(linearize(&h, &Model::new(), ENV, Spec::EarlyRefusals), None);
}

#[test]
fn checker_compares_usage_and_labels() {
    let mut m = Model::new();
    m.prepare("a", None, &Labels::new(), T0).unwrap();
    let commit = Op::Commit {
        name: "A".into(),
        key: "a".into(),
    };
    let usage = Op::Usage { key: "A".into() };
    let good = [
        event(0, commit.clone(), Outcome::Done, 0, 1),
        event(0, usage.clone(), Outcome::Usage(8, 1), 2, 3),
    ];
    assert!(linearize(&good, &m, ENV, Spec::Strict).is_some());
    let bad = [
        event(0, commit, Outcome::Done, 0, 1),
        event(0, usage, Outcome::Usage(0, 0), 2, 3),
    ];
    assert_eq!(linearize(&bad, &m, ENV, Spec::Strict), None);
    let update = Op::Update {
        key: "a".into(),
        value: Some("x".into()),
        all: false,
    };
    let labelled = |v: &str| Outcome::Info {
        kind: MKind::Active,
        name: "a".into(),
        parent: None,
        labels: [("l".to_owned(), v.to_owned())].into(),
    };
    assert!(linearize(
        &[event(0, update.clone(), labelled("x"), 0, 1)],
        &m,
        ENV,
        Spec::Strict
    )
    .is_some());
    assert_eq!(
        linearize(
            &[event(0, update, labelled("y"), 0, 1)],
            &m,
            ENV,
            Spec::Strict
        ),
        None
    );
}

#[test]
fn mount_ids_reads_bind_and_overlay_mounts() {
    let root = Path::new("/r");
    let bind = Mount {
        kind: "bind".into(),
        source: "/r/snapshots/7/fs".into(),
        target: String::new(),
        options: vec!["rw".into(), "rbind".into()],
    };
    assert_eq!(mount_ids(&[bind], root), [7]);
    let overlay = Mount {
        kind: "overlay".into(),
        source: "overlay".into(),
        target: String::new(),
        options: vec![
            "index=off".into(),
            "workdir=/r/snapshots/9/work".into(),
            "upperdir=/r/snapshots/9/fs".into(),
            "lowerdir=/r/snapshots/4/fs:/r/snapshots/2/fs".into(),
        ],
    };
    assert_eq!(mount_ids(&[overlay], root), [9, 4, 2]);
}
