//! The `ops` target: a [`Scenario`] of commands, restarts, crashes and injected I/O faults,
//! run on the core over the fault-injecting journal and on the reference model side by
//! side (redb's `fuzz_redb` pattern).
//!
//! The journal is the real [`LogJournal`] in directory `/j` of a [`SimFs`]. [`Step::Arm`]
//! sets a countdown: the file-system call that many calls later (reads included) fails (as
//! a failed, torn or garbled write; any other call just fails). The first journal call
//! that returns an error is the
//! process's death: the disk then crashes as the armed [`CrashKind`] says (a process
//! crash keeps what was written, a power loss keeps only what was synced) and the journal
//! is reopened. A fault that fires inside that reopening kills it too.
//!
//! Checked at every step:
//! - a command gets the same outcome (record or error kind) from the core and the model
//!   (a refusal cannot change the core: `State::decide` takes `&self`);
//! - after every accepted command the core holds exactly the model's snapshots and keeps
//!   every state invariant of docs/design.md#state-invariants;
//! - after a failed append the journal is poisoned: it refuses the next append without
//!   touching the disk;
//! - every recovery yields the state before or after the one command that was in flight,
//!   never anything else: every acknowledged command survives, and no half of one appears
//!   (compared field for field with the core's own states, and with the model's);
//! - a clean restart, or a crash with nothing in flight, recovers exactly the live state.

use arbitrary::{Arbitrary, Unstructured};
use overlaysnap::core::{Command, Labels, State, Timestamp, Usage};
use overlaysnap::fs::{Fault, SimFs};
use overlaysnap::journal::{Journal, LogJournal, Recovery, Store};
use overlaysnap::model_terms::{as_model, check_invariants, model_err, run_model, same};
use overlaysnap::ErrorKind;
use overlaysnap_model as model;
use std::sync::Arc;

/// The journal's directory on the simulated disk.
const DIR: &str = "/j";

/// The most steps of one scenario that are run; the rest are ignored.
pub const MAX_STEPS: usize = 200;

/// What the `ops` target decodes its input into (with `arbitrary_take_rest`).
#[derive(Arbitrary, Debug, Clone, PartialEq, Eq)]
pub struct Scenario {
    /// The steps, in order.
    pub steps: Vec<Step>,
}

/// One step of a scenario.
#[derive(Arbitrary, Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// containerd's Prepare.
    Prepare {
        /// The new key.
        key: Key,
        /// The parent, if any.
        parent: Option<Key>,
        /// The labels.
        labels: Vec<Label>,
    },
    /// containerd's View.
    View {
        /// The new key.
        key: Key,
        /// The parent, if any.
        parent: Option<Key>,
        /// The labels.
        labels: Vec<Label>,
    },
    /// containerd's Commit.
    Commit {
        /// The committed name.
        name: Key,
        /// The active key.
        key: Key,
        /// containerd 2.2's `WithParent` (a rebase of a parentless layer), if any.
        parent: Option<Key>,
        /// The committed labels.
        labels: Vec<Label>,
        /// The measured size (inodes are derived from it).
        size: u8,
    },
    /// containerd's Remove.
    Remove {
        /// The key or name.
        key: Key,
    },
    /// containerd's Update.
    Update {
        /// The key or name.
        key: Key,
        /// The labels the field paths read.
        labels: Vec<Label>,
        /// The field paths.
        fieldpaths: Vec<FieldPath>,
    },
    /// Checkpoint the live state.
    Checkpoint,
    /// Drop the journal and open it again (no crash).
    Restart,
    /// Crash now, with nothing in flight, and reopen.
    Crash(CrashKind),
    /// Make the file-system call `countdown` calls from now fail with `fault`; the process
    /// that sees the error dies in a crash of kind `crash`.
    Arm {
        /// How many file-system calls succeed before the failing one.
        countdown: u8,
        /// How the call fails.
        fault: FaultKind,
        /// What survives the death it causes.
        crash: CrashKind,
    },
}

/// The key pool: few keys, so that commands collide often; two of them are refused input.
#[derive(Arbitrary, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    /// `a`
    A,
    /// `b`
    B,
    /// `c`
    C,
    /// `d`
    D,
    /// `sha256:f`
    Sha,
    /// `g/h`
    Slash,
    /// the empty key (InvalidArgument)
    Empty,
    /// a key with a NUL (InvalidArgument)
    Control,
}

impl Key {
    /// The key's text.
    pub fn as_str(self) -> &'static str {
        match self {
            Key::A => "a",
            Key::B => "b",
            Key::C => "c",
            Key::D => "d",
            Key::Sha => "sha256:f",
            Key::Slash => "g/h",
            Key::Empty => "",
            Key::Control => "bad\0key",
        }
    }
}

/// A label from a small pool of keys and values.
#[derive(Arbitrary, Debug, Clone, Copy, PartialEq, Eq)]
pub struct Label {
    /// The label's key.
    pub key: LabelKey,
    /// The label's value.
    pub value: LabelValue,
}

/// Label keys; one is empty (InvalidArgument).
#[derive(Arbitrary, Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabelKey {
    /// `l`
    L,
    /// `m`
    M,
    /// `containerd.io/gc.root`
    GcRoot,
    /// the empty key (InvalidArgument)
    Empty,
}

/// Label values; an empty one is never stored, a huge one is InvalidArgument.
#[derive(Arbitrary, Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabelValue {
    /// `x`
    X,
    /// `y`
    Y,
    /// the empty value (deletes or is dropped)
    Empty,
    /// 4096 bytes: key + value exceed the limit
    Huge,
}

/// Update field paths, valid and not.
#[derive(Arbitrary, Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldPath {
    /// `labels`
    Labels,
    /// `labels.l`
    LabelsL,
    /// `labels.m`
    LabelsM,
    /// `labels.containerd.io/gc.root`
    LabelsGcRoot,
    /// `labels.` (InvalidArgument)
    LabelsDot,
    /// `parent` (InvalidArgument)
    Parent,
}

/// How an armed file-system call fails.
#[derive(Arbitrary, Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// The call has no effect.
    Fail,
    /// A write lands only its first bytes.
    Tear(u8),
    /// A write lands its first bytes and garbage after them.
    Garble(u8),
}

/// What survives a crash.
#[derive(Arbitrary, Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashKind {
    /// Everything written.
    Process,
    /// Only what was synced.
    PowerLoss,
}

impl CrashKind {
    /// The disk the next process finds after a crash of this kind.
    fn after(self, disk: &SimFs) -> SimFs {
        match self {
            CrashKind::Process => disk.restart(),
            CrashKind::PowerLoss => disk.crash(),
        }
    }
}

impl FaultKind {
    fn fault(self) -> Fault {
        match self {
            FaultKind::Fail => Fault::Fail,
            FaultKind::Tear(keep) => Fault::Tear {
                keep: usize::from(keep),
            },
            FaultKind::Garble(keep) => Fault::Garble {
                keep: usize::from(keep),
            },
        }
    }
}

fn labels(pairs: &[Label]) -> Labels {
    pairs
        .iter()
        .map(|l| {
            let key = match l.key {
                LabelKey::L => "l",
                LabelKey::M => "m",
                LabelKey::GcRoot => "containerd.io/gc.root",
                LabelKey::Empty => "",
            };
            let value = match l.value {
                LabelValue::X => "x".to_owned(),
                LabelValue::Y => "y".to_owned(),
                LabelValue::Empty => String::new(),
                LabelValue::Huge => "v".repeat(4096),
            };
            (key.to_owned(), value)
        })
        .collect()
}

impl FieldPath {
    fn as_str(self) -> &'static str {
        match self {
            FieldPath::Labels => "labels",
            FieldPath::LabelsL => "labels.l",
            FieldPath::LabelsM => "labels.m",
            FieldPath::LabelsGcRoot => "labels.containerd.io/gc.root",
            FieldPath::LabelsDot => "labels.",
            FieldPath::Parent => "parent",
        }
    }
}

impl Step {
    /// The command this step runs at time `now`, if it is a command.
    pub fn command(&self, now: Timestamp) -> Option<Command> {
        let key = |k: &Key| k.as_str().to_owned();
        Some(match self {
            Step::Prepare {
                key: k,
                parent,
                labels: l,
            } => Command::Prepare {
                key: key(k),
                parent: parent.as_ref().map(key),
                labels: labels(l),
                now,
            },
            Step::View {
                key: k,
                parent,
                labels: l,
            } => Command::View {
                key: key(k),
                parent: parent.as_ref().map(key),
                labels: labels(l),
                now,
            },
            Step::Commit {
                name,
                key: k,
                parent,
                labels: l,
                size,
            } => Command::Commit {
                name: key(name),
                key: key(k),
                parent: parent.as_ref().map(key),
                labels: labels(l),
                usage: Usage {
                    size: i64::from(*size) * 4096,
                    inodes: i64::from(*size % 7),
                },
                now,
            },
            Step::Remove { key: k } => Command::Remove { key: key(k) },
            Step::Update {
                key: k,
                labels: l,
                fieldpaths,
            } => Command::Update {
                key: key(k),
                labels: labels(l),
                fieldpaths: fieldpaths.iter().map(|p| p.as_str().to_owned()).collect(),
                now,
            },
            Step::Checkpoint | Step::Restart | Step::Crash(_) | Step::Arm { .. } => return None,
        })
    }
}

/// The body of the `ops` target.
pub fn ops(data: &[u8]) {
    if let Ok(scenario) = Scenario::arbitrary_take_rest(Unstructured::new(data)) {
        run(&scenario);
    }
}

/// Runs `scenario` (its first [`MAX_STEPS`] steps), then crashes by power loss and
/// restarts, checking everything the module documentation lists.
pub fn run(scenario: &Scenario) {
    let mut world = World::new();
    for (i, step) in scenario.steps.iter().take(MAX_STEPS).enumerate() {
        world.step(i, step);
    }
    world.crash_and_reopen("the end", CrashKind::PowerLoss);
    world.restart("the end");
}

/// The process under test: the journal, the live state, and the model beside it.
struct World {
    disk: SimFs,
    /// `None` only between a death and the reopening.
    journal: Option<LogJournal>,
    state: State,
    model: model::Model,
    /// Seconds since the scenario started, one per command.
    clock: i64,
    /// What the next death keeps.
    crash: CrashKind,
}

/// The state and model an interrupted operation may have left.
#[derive(Clone)]
struct Candidate {
    state: State,
    model: model::Model,
}

impl World {
    fn new() -> World {
        let mut world = World {
            disk: SimFs::new(),
            journal: None,
            state: State::new(),
            model: model::Model::new(),
            clock: 0,
            crash: CrashKind::PowerLoss,
        };
        let live = world.candidate();
        world.reopen("the start", &[live]);
        world
    }

    fn candidate(&self) -> Candidate {
        Candidate {
            state: self.state.clone(),
            model: self.model.clone(),
        }
    }

    fn journal(&self) -> &LogJournal {
        self.journal.as_ref().expect("the journal is open")
    }

    fn step(&mut self, i: usize, step: &Step) {
        let at = format!("step {i} ({step:?})");
        match step {
            Step::Checkpoint => {
                if let Err(e) = self.journal().checkpoint(&self.state.checkpoint()) {
                    assert_eq!(e.kind(), ErrorKind::Io, "{at}: checkpoint failed: {e}");
                    let live = self.candidate();
                    self.die(&at, &[live]);
                }
            }
            Step::Restart => self.restart(&at),
            Step::Crash(how) => self.crash_and_reopen(&at, *how),
            Step::Arm {
                countdown,
                fault,
                crash,
            } => {
                self.disk
                    .inject(self.disk.calls() + 1 + u64::from(*countdown), fault.fault());
                self.crash = *crash;
            }
            command => {
                self.clock += 1;
                let now = Timestamp::new(1_700_000_000 + self.clock, 0);
                let cmd = command.command(now).expect("a command step");
                self.command(&at, &cmd);
            }
        }
    }

    fn command(&mut self, at: &str, cmd: &Command) {
        let before = self.candidate();
        let decided = self.state.decide(cmd);
        let expected = run_model(&mut self.model, cmd);
        match (decided, expected) {
            (Ok(record), Ok(snap)) => {
                if let Err(e) = self.journal().append(std::slice::from_ref(&record)) {
                    assert_eq!(e.kind(), ErrorKind::Io, "{at}: append failed: {e}");
                    let calls = self.disk.calls();
                    assert!(
                        self.journal()
                            .append(std::slice::from_ref(&record))
                            .is_err(),
                        "{at}: the journal is not poisoned after a failed append ({e})"
                    );
                    assert_eq!(self.disk.calls(), calls, "{at}: a poisoned journal did I/O");
                    let mut after = before.clone();
                    after.state.apply(&record);
                    after.model = self.model.clone();
                    self.die(at, &[before, after]);
                    return;
                }
                self.state.apply(&record);
                if let Some(snap) = snap {
                    let got = self.state.get(&snap.name).map(|s| as_model(&snap.name, s));
                    assert_eq!(got, Some(snap), "{at}: the snapshot it made");
                }
                assert!(
                    same(&self.state, &self.model),
                    "{at}: core and model differ after {cmd:?}"
                );
                check_invariants(&self.state);
            }
            (Err(e), Err(kind)) => {
                assert_eq!(
                    model_err(e.kind()),
                    kind,
                    "{at}: error kind of {cmd:?}: {e}"
                );
            }
            (core, model) => panic!("{at}: core {core:?} but model {model:?} for {cmd:?}"),
        }
    }

    /// Drops the journal and opens it again, no crash: everything is there.
    fn restart(&mut self, at: &str) {
        self.journal = None;
        let live = self.candidate();
        self.reopen(&format!("{at}: restart"), &[live]);
    }

    /// Crashes now as `how`, with nothing in flight: everything acknowledged is there.
    fn crash_and_reopen(&mut self, at: &str, how: CrashKind) {
        self.journal = None;
        self.disk = how.after(&self.disk);
        let live = self.candidate();
        self.reopen(&format!("{at}: {how:?} crash"), &[live]);
    }

    /// The process dies (its journal call failed): crash as armed, then recover one of
    /// `candidates`.
    fn die(&mut self, at: &str, candidates: &[Candidate]) {
        self.journal = None;
        self.disk = self.crash.after(&self.disk);
        let at = format!("{at}: died, {:?} crash", self.crash);
        self.reopen(&at, candidates);
    }

    /// Opens the journal (dying again if an armed fault fires inside) and checks that it
    /// recovers one of `candidates`, which becomes the live state and model.
    fn reopen(&mut self, at: &str, candidates: &[Candidate]) {
        let mut tries = 0;
        let recovery = loop {
            match open(&self.disk) {
                Ok((journal, recovery)) => {
                    self.journal = Some(journal);
                    break recovery;
                }
                Err(e) => {
                    assert_eq!(e.kind(), ErrorKind::Io, "{at}: open failed: {e}");
                    // An armed fault fired inside open: die again. A crash clears faults,
                    // so the next open meets none.
                    tries += 1;
                    assert!(tries < 2, "{at}: open failed on a disk without faults: {e}");
                    self.disk = self.crash.after(&self.disk);
                }
            }
        };
        let state = recovery.state;
        let Some(found) = candidates.iter().find(|c| c.state == state) else {
            panic!(
                "{at}: recovered a state that is none of the {} allowed ones\n\
                 recovered: {state:?}\nallowed: {:?}",
                candidates.len(),
                candidates.iter().map(|c| &c.state).collect::<Vec<_>>()
            );
        };
        assert!(
            same(&state, &found.model),
            "{at}: the recovered state is not the model's"
        );
        check_invariants(&state);
        self.state = state;
        self.model = found.model.clone();
    }
}

/// Opens the journal in [`DIR`] of `disk` (sharing it).
fn open(disk: &SimFs) -> overlaysnap::Result<(LogJournal, Recovery)> {
    LogJournal::open(Store::open(Arc::new(disk.clone()), DIR)?)
}
