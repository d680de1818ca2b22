//! Real crashes: a child process (this test binary, re-executed with
//! `OVERLAYSNAP_CRASH_CHILD` set) opens a Snapshotter on a root and runs random
//! operations (Prepare and View with parents, Commit, Remove, Update, Checkpoint and
//! Cleanup, with data written into each new layer), printing a line before each call and
//! another once it returned. The parent kills it with SIGKILL at a random point (during
//! recovery too), reopens the root and checks what the crash rules (docs/design.md#crash-rules)
//! promise: the recovered state is the acknowledged one, plus at most the one operation in flight;
//! `open_report()` names no damage; every committed layer still holds its data; after one Cleanup,
//! `ROOT/snapshots` holds exactly the live ids; every Active and View mounts.
//!
//! `OVERLAYSNAP_CRASH_SEED` replays a run, `OVERLAYSNAP_CRASH_KILLS` sets the number of
//! kills (default 40).

mod snapshotter_support;

use overlaysnap::core::{Kind, Labels};
use overlaysnap::snapshotter::UPPERDIR_LABEL;
use overlaysnap::{Options, Snapshotter};
use snapshotter_support::*;
use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const CHILD_ENV: &str = "OVERLAYSNAP_CRASH_CHILD";
/// Lines of the protocol start with this, so that the test harness' own output is ignored.
const TAG: &str = "@@";
/// The file each new layer gets, holding the key it was prepared under.
const MARKER: &str = "marker";

/// One operation, as the child prints it: `prepare KEY PARENT`, `view KEY PARENT`,
/// `commit NAME KEY`, `remove KEY`, `update KEY VALUE`, `checkpoint`, `cleanup` (`-` for
/// no parent).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Op {
    Prepare(String, Option<String>),
    View(String, Option<String>),
    Commit(String, String),
    Remove(String),
    Update(String, String),
    Checkpoint,
    Cleanup,
}

impl Op {
    fn line(&self) -> String {
        let p = |p: &Option<String>| p.clone().unwrap_or_else(|| "-".into());
        match self {
            Op::Prepare(k, parent) => format!("prepare {k} {}", p(parent)),
            Op::View(k, parent) => format!("view {k} {}", p(parent)),
            Op::Commit(n, k) => format!("commit {n} {k}"),
            Op::Remove(k) => format!("remove {k}"),
            Op::Update(k, v) => format!("update {k} {v}"),
            Op::Checkpoint => "checkpoint".into(),
            Op::Cleanup => "cleanup".into(),
        }
    }

    fn parse(line: &str) -> Op {
        let w: Vec<&str> = line.split(' ').collect();
        let parent = |s: &str| (s != "-").then(|| s.to_string());
        match w.as_slice() {
            ["prepare", k, p] => Op::Prepare(k.to_string(), parent(p)),
            ["view", k, p] => Op::View(k.to_string(), parent(p)),
            ["commit", n, k] => Op::Commit(n.to_string(), k.to_string()),
            ["remove", k] => Op::Remove(k.to_string()),
            ["update", k, v] => Op::Update(k.to_string(), v.to_string()),
            ["checkpoint"] => Op::Checkpoint,
            ["cleanup"] => Op::Cleanup,
            _ => panic!("bad protocol line {line:?}"),
        }
    }
}

/// A snapshot as the parent expects it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Snap {
    kind: Kind,
    parent: Option<String>,
    labels: Labels,
    /// The content of the layer's marker file, when the Prepare that wrote it was
    /// acknowledged (an in-flight Prepare may have died before writing it).
    marker: Option<String>,
}

type Model = BTreeMap<String, Snap>;

/// The model after `op`. Labels follow the child's rules: Prepare and View label
/// `p=KEY`, Commit labels `c=NAME` (replacing), Update sets `u`.
fn applied(model: &Model, op: &Op, acknowledged: bool) -> Model {
    let mut m = model.clone();
    match op {
        Op::Prepare(k, parent) | Op::View(k, parent) => {
            let kind = if matches!(op, Op::View(..)) {
                Kind::View
            } else {
                Kind::Active
            };
            let marker = (kind == Kind::Active && acknowledged).then(|| k.clone());
            m.insert(
                k.clone(),
                Snap {
                    kind,
                    parent: parent.clone(),
                    labels: labels(&[("p", k)]),
                    marker,
                },
            );
        }
        Op::Commit(n, k) => {
            let mut s = m.remove(k).expect("commit of a known key");
            s.kind = Kind::Committed;
            s.labels = labels(&[("c", n)]);
            m.insert(n.clone(), s);
        }
        Op::Remove(k) => {
            m.remove(k);
        }
        Op::Update(k, v) => {
            m.get_mut(k)
                .expect("update of a known key")
                .labels
                .insert("u".into(), v.clone());
        }
        Op::Checkpoint | Op::Cleanup => {}
    }
    m
}

/// The state as the snapshotter reports it, in the model's terms (markers not included).
fn observed(sn: &Snapshotter) -> BTreeMap<String, (Kind, Option<String>, Labels)> {
    infos(sn)
        .into_iter()
        .map(|mut i| {
            i.labels.remove(UPPERDIR_LABEL);
            (i.name, (i.kind, i.parent, i.labels))
        })
        .collect()
}

fn comparable(model: &Model) -> BTreeMap<String, (Kind, Option<String>, Labels)> {
    model
        .iter()
        .map(|(k, s)| (k.clone(), (s.kind, s.parent.clone(), s.labels.clone())))
        .collect()
}

// ---------------------------------------------------------------------------------------
// The child

/// The child's role: does nothing unless `OVERLAYSNAP_CRASH_CHILD` is set (as it is only
/// for processes started by `sigkill_at_random_points`).
#[test]
fn crash_child() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    // ROOT SEED ROUND SYNC_REMOVE
    let parts: Vec<&str> = spec.split(' ').collect();
    let [root, seed, round, sync_remove] = parts.as_slice() else {
        panic!("bad {CHILD_ENV}: {spec:?}");
    };
    let mut rng = XorShift::new(seed.parse().unwrap());
    let round: u64 = round.parse().unwrap();
    let sn = Snapshotter::open(
        root,
        Options {
            sync_remove: *sync_remove == "true",
            checkpoint_every: 1 + rng.below(12),
            ..Options::default()
        },
    )
    .expect("child: open");
    let mut out = std::io::stdout().lock();
    let mut say = |line: String| {
        writeln!(out, "{TAG} {line}").unwrap();
        out.flush().unwrap();
    };
    say(format!("opened {}", sn.open_report().snapshots));
    // The child's own view of the state, to pick operations that should succeed.
    let mut state: BTreeMap<String, (Kind, Option<String>)> = infos(&sn)
        .into_iter()
        .map(|i| (i.name, (i.kind, i.parent)))
        .collect();
    for n in 0..10_000u64 {
        let of_kind = |kind: Kind| -> Vec<String> {
            state
                .iter()
                .filter(|(_, (k, _))| *k == kind)
                .map(|(n, _)| n.clone())
                .collect()
        };
        let committed = of_kind(Kind::Committed);
        let active = of_kind(Kind::Active);
        let leaves: Vec<String> = state
            .keys()
            .filter(|k| !state.values().any(|(_, p)| p.as_ref() == Some(*k)))
            .cloned()
            .collect();
        let all: Vec<String> = state.keys().cloned().collect();
        let parent = if rng.chance(25) {
            None
        } else {
            rng.pick(&committed).cloned()
        };
        // Removes win more often as the state grows, so long runs stay bounded.
        let roll = if state.len() > 40 && rng.chance(40) {
            70
        } else {
            rng.below(100)
        };
        let op = match roll {
            0..=29 => Op::Prepare(format!("r{round}a{n}"), parent),
            30..=39 => Op::View(format!("r{round}v{n}"), parent),
            40..=64 if !active.is_empty() => {
                Op::Commit(format!("r{round}c{n}"), rng.pick(&active).unwrap().clone())
            }
            65..=84 if !leaves.is_empty() && state.len() > 6 => {
                Op::Remove(rng.pick(&leaves).unwrap().clone())
            }
            85..=95 if !all.is_empty() => {
                Op::Update(rng.pick(&all).unwrap().clone(), format!("v{n}"))
            }
            96..=97 => Op::Checkpoint,
            98..=99 => Op::Cleanup,
            _ => Op::Prepare(format!("r{round}a{n}"), None),
        };
        say(format!("start {}", op.line()));
        let result = match &op {
            Op::Prepare(k, p) => sn
                .prepare(k, p.as_deref(), labels(&[("p", k)]))
                .map(|mounts| fs::write(upper_of(&mounts).join(MARKER), k).unwrap()),
            Op::View(k, p) => sn.view(k, p.as_deref(), labels(&[("p", k)])).map(drop),
            Op::Commit(name, k) => sn.commit(name, k, labels(&[("c", name)])),
            Op::Remove(k) => sn.remove(k),
            Op::Update(k, v) => sn
                .update(k, labels(&[("u", v)]), &["labels.u".into()])
                .map(drop),
            Op::Checkpoint => sn.checkpoint(),
            Op::Cleanup => sn.cleanup().map(drop),
        };
        if let Err(e) = result {
            say(format!("err {} : {e}", op.line()));
            std::process::exit(3);
        }
        say(format!("ok {}", op.line()));
        match op {
            Op::Prepare(k, p) => {
                state.insert(k, (Kind::Active, p));
            }
            Op::View(k, p) => {
                state.insert(k, (Kind::View, p));
            }
            Op::Commit(name, k) => {
                let (_, p) = state.remove(&k).unwrap();
                state.insert(name, (Kind::Committed, p));
            }
            Op::Remove(k) => {
                state.remove(&k);
            }
            Op::Update(..) | Op::Checkpoint | Op::Cleanup => {}
        }
    }
    say("done".into());
}

// ---------------------------------------------------------------------------------------
// The parent

/// Kills the child if the parent panics.
struct Killing(Child);

impl Drop for Killing {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// What one child run printed: the acknowledged operations in order, and the operation
/// in flight when it died (started, not acknowledged).
struct Run {
    acknowledged: Vec<Op>,
    in_flight: Option<Op>,
    lines: usize,
}

/// Runs one child on `root` and kills it after it printed `kill_after` lines and a
/// further pause of `pause_us` microseconds (a pause only to vary where the kill lands).
fn run_child(
    root: &Path,
    seed: u64,
    round: u64,
    sync_remove: bool,
    kill_after: usize,
    pause_us: u64,
    stderr: &Path,
) -> Run {
    let exe = std::env::current_exe().unwrap();
    let child = Command::new(exe)
        .args(["crash_child", "--exact", "--nocapture", "--test-threads=1"])
        .env(
            CHILD_ENV,
            format!("{} {seed} {round} {sync_remove}", root.display()),
        )
        .stdout(Stdio::piped())
        .stderr(fs::File::create(stderr).unwrap())
        .spawn()
        .expect("spawn the child");
    let mut child = Killing(child);
    let stdout = child.0.stdout.take().unwrap();
    let mut run = Run {
        acknowledged: Vec::new(),
        in_flight: None,
        lines: 0,
    };
    let mut killed = false;
    let kill = |child: &mut Killing| {
        std::thread::sleep(Duration::from_micros(pause_us));
        child.0.kill().expect("SIGKILL the child");
    };
    if kill_after == 0 {
        kill(&mut child);
        killed = true;
    }
    let mut reader = BufReader::new(stdout);
    let mut line = String::new();
    loop {
        line.clear();
        if reader
            .read_line(&mut line)
            .expect("read the child's stdout")
            == 0
        {
            break;
        }
        // Each line is one write(2) of less than PIPE_BUF bytes, so it arrives whole;
        // a line without its newline would be a cut one: never trust it.
        let Some(rest) = line
            .strip_suffix('\n')
            .and_then(|l| l.strip_prefix(TAG))
            .map(str::trim_start)
        else {
            continue;
        };
        run.lines += 1;
        if let Some(op) = rest.strip_prefix("start ") {
            assert!(run.in_flight.is_none(), "two operations in flight");
            run.in_flight = Some(Op::parse(op));
        } else if let Some(op) = rest.strip_prefix("ok ") {
            let op = Op::parse(op);
            assert_eq!(run.in_flight.take(), Some(op.clone()), "ok without start");
            run.acknowledged.push(op);
        } else if rest.starts_with("err ") {
            panic!(
                "the child's operation failed: {rest}\nstderr:\n{}",
                fs::read_to_string(stderr).unwrap_or_default()
            );
        }
        if !killed && run.lines >= kill_after {
            kill(&mut child);
            killed = true;
        }
    }
    let status = child.0.wait().unwrap();
    assert!(
        killed || status.success(),
        "the child ended with {status}\nstderr:\n{}",
        fs::read_to_string(stderr).unwrap_or_default()
    );
    run
}

#[test]
fn sigkill_at_random_points() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    if !root_or_skip("sigkill_at_random_points") {
        return;
    }
    let mut rng = XorShift::new(seed("OVERLAYSNAP_CRASH_SEED"));
    let kills: u64 = std::env::var("OVERLAYSNAP_CRASH_KILLS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(40);
    let scratch = Scratch::new("crash");
    let root = scratch.root();
    let stderr: PathBuf = scratch.path().join("child.stderr");
    let mut model = Model::new();
    let (mut in_flight_applied, mut in_flight_lost, mut acknowledged) = (0, 0, 0);
    let (mut unissued, mut orphans) = (0, 0);
    for round in 0..kills {
        let sync_remove = rng.chance(50);
        let kill_after = if rng.chance(10) {
            0
        } else {
            1 + rng.below(60) as usize
        };
        let pause_us = rng.below(if kill_after == 0 { 20_000 } else { 2_000 });
        let run = run_child(
            &root,
            rng.next_u64(),
            round,
            sync_remove,
            kill_after,
            pause_us,
            &stderr,
        );
        acknowledged += run.acknowledged.len();
        for op in &run.acknowledged {
            model = applied(&model, op, true);
        }

        let sn = open(
            &root,
            Options {
                sync_remove: rng.chance(50),
                upperdir_label: true,
                ..Options::default()
            },
        );
        let report = sn.open_report().clone();
        let context = format!(
            "round {round}: killed after {} lines (+{pause_us} µs), in flight {:?}, \
             report {report:?}",
            run.lines, run.in_flight
        );
        assert!(report.damaged.is_empty(), "{context}");
        // SIGKILL loses no page cache: a directory installed before its record was
        // submitted is still there, so nothing needs re-creating.
        assert!(report.recreated.is_empty(), "{context}");
        unissued += report.unissued.len();
        orphans += report.orphans;
        let state = observed(&sn);
        if state != comparable(&model) {
            let op = run.in_flight.as_ref().unwrap_or_else(|| {
                panic!(
                    "{context}: the state is not the acknowledged one\n \
                     model {:#?}\n state {state:#?}",
                    comparable(&model)
                )
            });
            let after = applied(&model, op, false);
            assert_eq!(
                state,
                comparable(&after),
                "{context}: the state is neither before nor after the operation in flight"
            );
            model = after;
            in_flight_applied += 1;
        } else if run.in_flight.is_some() {
            in_flight_lost += 1;
        }

        // Every layer whose Prepare was acknowledged still holds its marker.
        let ids = ids(&sn);
        for (key, snap) in &model {
            if let Some(marker) = &snap.marker {
                let path = root
                    .join("snapshots")
                    .join(ids[key].to_string())
                    .join("fs")
                    .join(MARKER);
                assert_eq!(
                    fs::read_to_string(&path).ok().as_deref(),
                    Some(marker.as_str()),
                    "{context}: marker of {key} ({})",
                    path.display()
                );
            }
        }
        sn.cleanup().unwrap();
        assert_entries_are(&root, ids.values().copied(), &context);
        for (key, snap) in &model {
            if snap.kind == Kind::Committed {
                continue;
            }
            let mounts = sn.mounts(key).unwrap();
            let m = Mounted::try_new(&mounts, &scratch.temp_work("m"))
                .unwrap_or_else(|e| panic!("{context}: {key} does not mount ({mounts:?}): {e}"));
            // The top layer's marker shows through the mount.
            let top = match snap.kind {
                Kind::Active => snap.marker.clone(),
                _ => snap.parent.as_ref().and_then(|p| model[p].marker.clone()),
            };
            if let Some(marker) = top {
                assert_eq!(
                    fs::read_to_string(m.join(MARKER)).unwrap(),
                    marker,
                    "{context}: {key}"
                );
            }
            m.unmount();
        }
        drop(sn);
    }
    println!(
        "{kills} kills, {acknowledged} acknowledged operations, {} snapshots at the end; \
         the operation in flight was recovered {in_flight_applied} times and lost \
         {in_flight_lost} times; reopening deleted {unissued} directories of unissued ids \
         and found {orphans} orphans for Cleanup",
        model.len()
    );
}
