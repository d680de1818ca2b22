//! The hand-made seeds of the checked-in corpora, built from readable values.
//!
//! `cargo test --test fuzz_corpus -- --ignored write_seeds` (re)writes them as
//! `fuzz/corpus/<target>/seed-<name>`; the fuzzer's own finds sit beside them under hash
//! names. Seeds are made with the library's own encoders, so they stay valid when the
//! format changes and are rewritten, and each has a name that says what it holds.
//!
//! - `records`: payloads of each record kind and of a checkpoint; log segments with
//!   several records; a checkpoint file; directories made of several files (checkpoint
//!   then log, two segments); and the damage the frame rules name: torn and garbled
//!   tails, a bad frame before a good one, zero and oversized lengths, bad headers, and a
//!   well-framed record that does not fit the state.
//! - `filters`: the examples of docs/semantics.md#filters, containerd's `filters` test cases, and
//!   the scanner's corners (escapes, alternative quotes, whitespace, NUL, U+FFFD, ORed lines).
//! - `ops`: [`Scenario`]s (command sequences with restarts, crashes and faults), encoded
//!   into the bytes that `arbitrary` decodes back into them ([`encode_scenario`], checked
//!   by a round trip).

use super::ops::{
    CrashKind, FaultKind, FieldPath, Key, Label, LabelKey, LabelValue, Scenario, Step,
};
use overlaysnap::core::{Command, Labels, Record, State, Timestamp, Usage};
use overlaysnap::journal::codec;
use overlaysnap::journal::frame::{
    self, CHECKPOINT_MAGIC, HEADER_LEN, LOG_MAGIC, MAX_CHECKPOINT_FRAME, MAX_RECORD_FRAME,
};

/// One seed: its target, a name that says what it holds, and its bytes.
#[derive(Debug, Clone)]
pub struct Seed {
    /// `records`, `filters` or `ops`.
    pub target: &'static str,
    /// A file-name-safe description.
    pub name: String,
    /// The input.
    pub bytes: Vec<u8>,
}

/// Every hand-made seed of every target.
pub fn all() -> Vec<Seed> {
    let mut seeds = records();
    seeds.extend(filters());
    seeds.extend(ops());
    seeds
}

fn seed(target: &'static str, name: &str, bytes: Vec<u8>) -> Seed {
    Seed {
        target,
        name: name.to_owned(),
        bytes,
    }
}

// ---- records -------------------------------------------------------------------------

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// The records of a short history that holds every kind of record.
fn history() -> Vec<Record> {
    let t = |s: i64| Timestamp::new(1_700_000_000 + s, 7);
    let commands = [
        Command::Prepare {
            key: "extract-1".into(),
            parent: None,
            labels: labels(&[("containerd.io/snapshot.ref", "sha256:aa")]),
            now: t(1),
        },
        Command::Commit {
            name: "sha256:aa".into(),
            key: "extract-1".into(),
            parent: None,
            labels: labels(&[("containerd.io/gc.root", "2024-01-01")]),
            usage: Usage {
                size: 4096 * 300,
                inodes: 42,
            },
            now: t(2),
        },
        Command::Prepare {
            key: "rootfs".into(),
            parent: Some("sha256:aa".into()),
            labels: labels(&[("l", "x"), ("é", "☃")]),
            now: t(3),
        },
        Command::View {
            key: "view-1".into(),
            parent: Some("sha256:aa".into()),
            labels: Labels::new(),
            now: t(4),
        },
        Command::Update {
            key: "rootfs".into(),
            labels: labels(&[("l", "y")]),
            fieldpaths: vec!["labels.l".into()],
            now: t(5),
        },
        Command::Remove {
            key: "view-1".into(),
        },
        // containerd 2.2's parallel unpack: prepared without a parent, rebased at Commit.
        Command::Prepare {
            key: "extract-2".into(),
            parent: None,
            labels: Labels::new(),
            now: t(6),
        },
        Command::Commit {
            name: "sha256:bb".into(),
            key: "extract-2".into(),
            parent: Some("sha256:aa".into()),
            labels: Labels::new(),
            usage: Usage { size: 0, inodes: 1 },
            now: t(7),
        },
    ];
    let mut state = State::new();
    commands
        .iter()
        .map(|c| {
            let r = state.decide(c).expect("the seed history is valid");
            state.apply(&r);
            r
        })
        .collect()
}

fn state_after(records: &[Record]) -> State {
    let mut state = State::new();
    for r in records {
        state.apply(r);
    }
    state
}

fn record_payload(record: &Record) -> Vec<u8> {
    let mut out = Vec::new();
    codec::encode_record(record, &mut out);
    out
}

/// A log segment: the header, then one frame per record.
fn segment(records: &[Record]) -> Vec<u8> {
    let mut out = frame::header(LOG_MAGIC).to_vec();
    for r in records {
        let start = frame::begin_frame(&mut out);
        codec::encode_record(r, &mut out);
        frame::finish_frame(&mut out, start, MAX_RECORD_FRAME).expect("a small record");
    }
    out
}

/// A checkpoint file holding `state`.
fn checkpoint(state: &State) -> Vec<u8> {
    let mut out = frame::header(CHECKPOINT_MAGIC).to_vec();
    let start = frame::begin_frame(&mut out);
    codec::encode_checkpoint(&state.checkpoint(), &mut out);
    frame::finish_frame(&mut out, start, MAX_CHECKPOINT_FRAME).expect("a small state");
    out
}

fn records() -> Vec<Seed> {
    let h = history();
    let s = |name: &str, bytes: Vec<u8>| seed("records", name, bytes);
    let mut seeds = vec![
        s("payload-created", record_payload(&h[0])),
        s("payload-committed", record_payload(&h[1])),
        s("payload-updated", record_payload(&h[4])),
        s("payload-removed", record_payload(&h[5])),
        s("log-empty", segment(&[])),
        s("log-one-record", segment(&h[..1])),
        s("log-history", segment(&h)),
        s("checkpoint-history", checkpoint(&state_after(&h))),
        s("checkpoint-empty", checkpoint(&State::new())),
    ];
    let mut cp_payload = Vec::new();
    codec::encode_checkpoint(&state_after(&h).checkpoint(), &mut cp_payload);
    seeds.push(s("payload-checkpoint", cp_payload));
    seeds.push(s(
        "dir-checkpoint-then-log",
        [checkpoint(&state_after(&h[..3])), segment(&h[3..])].concat(),
    ));
    seeds.push(s(
        "dir-two-segments",
        [segment(&h[..4]), segment(&h[4..])].concat(),
    ));
    seeds.push(s(
        "dir-log-checkpoint-log",
        [
            segment(&h[..2]),
            checkpoint(&state_after(&h[..2])),
            segment(&h[2..]),
        ]
        .concat(),
    ));

    let full = segment(&h);
    let last = segment(&h[..h.len() - 1]).len();
    seeds.push(s("damage-torn-frame-header", full[..last + 5].to_vec()));
    seeds.push(s("damage-torn-payload", full[..full.len() - 3].to_vec()));
    let mut garbled = full.clone();
    for b in &mut garbled[last + 8..] {
        *b ^= 0x5a;
    }
    seeds.push(s("damage-garbled-tail", garbled));
    let mut zeroed = full.clone();
    zeroed.extend_from_slice(&[0; 24]);
    seeds.push(s("damage-zero-tail", zeroed));
    let mut flipped = full.clone();
    flipped[HEADER_LEN + 10] ^= 1;
    seeds.push(s("damage-bad-frame-before-good", flipped));
    seeds.push(s(
        "damage-torn-older-segment",
        [full[..full.len() - 3].to_vec(), segment(&[])].concat(),
    ));
    let mut huge = segment(&[]);
    huge.extend_from_slice(&u32::MAX.to_le_bytes());
    huge.extend_from_slice(&[0; 12]);
    seeds.push(s("damage-huge-length", huge));
    let mut bad_magic = full.clone();
    bad_magic[0] = b'X';
    seeds.push(s("damage-bad-magic", bad_magic));
    let mut bad_version = full.clone();
    bad_version[8] = 2;
    seeds.push(s("damage-bad-version", bad_version));
    seeds.push(s("damage-short-header", full[..7].to_vec()));
    let mut cp_trailing = checkpoint(&state_after(&h));
    cp_trailing.extend_from_slice(b"trailing");
    seeds.push(s("damage-checkpoint-trailing-bytes", cp_trailing));
    // Well framed, but the parent of the first record does not exist.
    seeds.push(s("damage-record-does-not-fit", segment(&h[2..])));
    seeds
}

// ---- filters -------------------------------------------------------------------------

/// Filter strings: docs/semantics.md#filters, containerd's test cases, and the scanner's corners. A
/// seed with `\n` is several strings, ORed.
const FILTERS: &[&str] = &[
    // docs/semantics.md#filters
    r#"labels."containerd.io/gc.root"==x"#,
    r#"parent!="""#,
    "name==a,labels.l",
    "name~=^sha256:",
    // containerd's filters tests, on the snapshot adaptor
    "",
    "name",
    "labels.foo",
    "labels.foo,name",
    "labels.foo==true",
    "labels.foo==omg_asdf.asdf-qwer",
    "name==bar",
    "name!=bar",
    "name==bar,labels.bar",
    r#"labels.other=="too complex, yo""#,
    "labels.other~=[abc]+,name!=foo",
    "labels.other~=/[abc]+/,name!=foo",
    "labels.other~=/[abc]{1,2}/,name!=foo",
    r#"labels.other~=/[abc]+\//,name!=foo"#,
    r#"name==foo,labels."more complex label""#,
    r#"labels."more complex label with \\ and \""==present"#,
    r#"labels."more complex label with \\ and \"".post==present"#,
    "name~=牛,labels.moo",
    "name~=|牛|",
    r#"name~="asdf\n\tfooo""#,
    r#""leading quote".postquote==value"#,
    r"name~=/foo\/bar/,name!=ff",
    "name~=|^ba/?r$|",
    "kind==committed",
    "kind!=committed",
    "kind~=^(view|active)$",
    "kind.whatever==view",
    "parent==sha256:0123",
    "parent~=^$",
    r#"labels.l=="""#,
    "labels.a.b==c",
    r#"labels."a.b"==d"#,
    r#"labels."a".b"#,
    r#"labels."é"==☃"#,
    "labels",
    "labels.foo~=^$",
    "other!=x",
    "1st_field",
    r#"name==a"b"#,
    "labels.foo==a=b",
    "  name==bar",
    "name ==bar",
    "name==\t bar",
    "name==bar, labels.bar",
    "labels. foo",
    r#"name=="\x62ar""#,
    r#"name=="\142ar""#,
    r#"name=="\u0062ar""#,
    r#"name=="\U00000062ar""#,
    r#"labels."\xc3\xa9"=="\u2603""#,
    r#"name!="\xff""#,
    r"name~=/^a\/?$/",
    r"name~=|^(bar\|baz)$|",
    r"name~=/^sha\\d+/",
    r"name~=^sha\w+:\d",
    // refused inputs
    "labels.|foo|==omg_asdf.asdf-qwer",
    "name==foo,",
    "labels.",
    "image~=,id?=?fbaq",
    "labels.ns/key==value",
    "foo\0bar",
    "foo = bar    ",
    "doublevalue==value value",
    r#"labels."\g""#,
    r#"labels."\xaz""#,
    r#"labels."\400""#,
    r#"name=="\U00110000""#,
    "name===a",
    "name==!a",
    "labels.foo-bar==x",
    "==a",
    r#"name "a""#,
    "name==/a/",
    r#"name=="a"b"#,
    "name==a\u{200b}",
    "name==a\u{fffd}",
    "name~=[",
    "name~=(?x) a # comment",
    "name~=\"\\ud800\"",
    "labels.\"x\ny\"==1",
    // several strings, ORed
    "kind==view\nkind==active",
    "name==a\n\nname==b",
    "name==a,kind==active\nlabels.l~=x\nparent",
    "name==\nkind",
];

fn filters() -> Vec<Seed> {
    FILTERS
        .iter()
        .enumerate()
        .map(|(i, f)| seed("filters", &format!("{i:03}"), f.as_bytes().to_vec()))
        .collect()
}

// ---- ops -----------------------------------------------------------------------------

/// Appends the bytes that `arbitrary`'s derived decoding turns into `self`.
trait Encode {
    fn put(&self, out: &mut Vec<u8>);
}

/// Variant `index` of an enum of `count` variants: derive reads a `u32` `x` and takes
/// `(x * count) >> 32`.
fn variant(out: &mut Vec<u8>, index: u64, count: u64) {
    let x = (index << 32).div_ceil(count);
    out.extend_from_slice(&u32::try_from(x).expect("index < count").to_le_bytes());
}

impl Encode for u8 {
    fn put(&self, out: &mut Vec<u8>) {
        out.push(*self);
    }
}

impl<T: Encode> Encode for Option<T> {
    fn put(&self, out: &mut Vec<u8>) {
        match self {
            None => out.push(0),
            Some(t) => {
                out.push(1);
                t.put(out);
            }
        }
    }
}

/// A `Vec` field: a "go on" byte before each element, then a "stop" byte.
impl<T: Encode> Encode for Vec<T> {
    fn put(&self, out: &mut Vec<u8>) {
        for t in self {
            out.push(1);
            t.put(out);
        }
        out.push(0);
    }
}

macro_rules! unit_enum {
    ($ty:ty: $($v:ident),+) => {
        impl Encode for $ty {
            fn put(&self, out: &mut Vec<u8>) {
                let all = [$(<$ty>::$v),+];
                let i = all.iter().position(|v| v == self).expect("listed");
                variant(out, i as u64, all.len() as u64);
            }
        }
    };
}

unit_enum!(Key: A, B, C, D, Sha, Slash, Empty, Control);
unit_enum!(LabelKey: L, M, GcRoot, Empty);
unit_enum!(LabelValue: X, Y, Empty, Huge);
unit_enum!(FieldPath: Labels, LabelsL, LabelsM, LabelsGcRoot, LabelsDot, Parent);
unit_enum!(CrashKind: Process, PowerLoss);

impl Encode for Label {
    fn put(&self, out: &mut Vec<u8>) {
        self.key.put(out);
        self.value.put(out);
    }
}

impl Encode for FaultKind {
    fn put(&self, out: &mut Vec<u8>) {
        match self {
            FaultKind::Fail => variant(out, 0, 3),
            FaultKind::Tear(keep) => {
                variant(out, 1, 3);
                keep.put(out);
            }
            FaultKind::Garble(keep) => {
                variant(out, 2, 3);
                keep.put(out);
            }
        }
    }
}

impl Encode for Step {
    fn put(&self, out: &mut Vec<u8>) {
        const N: u64 = 9;
        match self {
            Step::Prepare {
                key,
                parent,
                labels,
            } => {
                variant(out, 0, N);
                key.put(out);
                parent.put(out);
                labels.put(out);
            }
            Step::View {
                key,
                parent,
                labels,
            } => {
                variant(out, 1, N);
                key.put(out);
                parent.put(out);
                labels.put(out);
            }
            Step::Commit {
                name,
                key,
                parent,
                labels,
                size,
            } => {
                variant(out, 2, N);
                name.put(out);
                key.put(out);
                parent.put(out);
                labels.put(out);
                size.put(out);
            }
            Step::Remove { key } => {
                variant(out, 3, N);
                key.put(out);
            }
            Step::Update {
                key,
                labels,
                fieldpaths,
            } => {
                variant(out, 4, N);
                key.put(out);
                labels.put(out);
                fieldpaths.put(out);
            }
            Step::Checkpoint => variant(out, 5, N),
            Step::Restart => variant(out, 6, N),
            Step::Crash(how) => {
                variant(out, 7, N);
                how.put(out);
            }
            Step::Arm {
                countdown,
                fault,
                crash,
            } => {
                variant(out, 8, N);
                countdown.put(out);
                fault.put(out);
                crash.put(out);
            }
        }
    }
}

/// The input that the `ops` target decodes into `scenario`.
pub fn encode_scenario(scenario: &Scenario) -> Vec<u8> {
    let mut out = Vec::new();
    // The last field takes the rest: a "go on" byte before each step, and the end of
    // the input stops.
    for step in &scenario.steps {
        out.push(1);
        step.put(&mut out);
    }
    out
}

fn prepare(key: Key, parent: Option<Key>) -> Step {
    Step::Prepare {
        key,
        parent,
        labels: vec![],
    }
}

fn commit(name: Key, key: Key) -> Step {
    commit_above(name, key, None)
}

/// Commit with containerd 2.2's `WithParent(parent)`.
fn commit_above(name: Key, key: Key, parent: Option<Key>) -> Step {
    Step::Commit {
        name,
        key,
        parent,
        labels: vec![Label {
            key: LabelKey::GcRoot,
            value: LabelValue::X,
        }],
        size: 3,
    }
}

fn arm(countdown: u8, fault: FaultKind, crash: CrashKind) -> Step {
    Step::Arm {
        countdown,
        fault,
        crash,
    }
}

/// A chain of layers, a container on top, a view, updates and removals.
fn image_pull() -> Vec<Step> {
    use Key::*;
    vec![
        prepare(A, None),
        commit(Sha, A),
        prepare(B, Some(Sha)),
        commit(C, B),
        prepare(D, Some(C)),
        Step::View {
            key: Slash,
            parent: Some(Sha),
            labels: vec![Label {
                key: LabelKey::L,
                value: LabelValue::Y,
            }],
        },
        Step::Update {
            key: D,
            labels: vec![
                Label {
                    key: LabelKey::L,
                    value: LabelValue::X,
                },
                Label {
                    key: LabelKey::M,
                    value: LabelValue::Empty,
                },
            ],
            fieldpaths: vec![FieldPath::LabelsL, FieldPath::LabelsM],
        },
        Step::Remove { key: Slash },
        Step::Remove { key: Sha },
    ]
}

/// Commands the core refuses, each for another reason.
fn refusals() -> Vec<Step> {
    use Key::*;
    vec![
        prepare(Empty, None),
        prepare(Control, None),
        prepare(A, Some(B)),
        prepare(A, None),
        prepare(A, None),
        prepare(B, Some(A)),
        commit(A, A),
        Step::View {
            key: C,
            parent: None,
            labels: vec![],
        },
        commit(D, C),
        Step::Prepare {
            key: D,
            parent: None,
            labels: vec![Label {
                key: LabelKey::L,
                value: LabelValue::Huge,
            }],
        },
        Step::Prepare {
            key: D,
            parent: None,
            labels: vec![Label {
                key: LabelKey::Empty,
                value: LabelValue::X,
            }],
        },
        Step::Update {
            key: C,
            labels: vec![],
            fieldpaths: vec![FieldPath::Parent],
        },
        Step::Update {
            key: C,
            labels: vec![],
            fieldpaths: vec![FieldPath::LabelsDot],
        },
        Step::Remove { key: D },
        commit(Sha, A),
        Step::Remove { key: Sha },
    ]
}

/// containerd 2.2's parallel unpack: layers prepared without a parent, committed in order
/// above the one before (a rebase), then each refusal of a rebase.
fn parallel_unpack() -> Vec<Step> {
    use Key::*;
    vec![
        prepare(A, None),
        prepare(B, None),
        prepare(C, None),
        commit(Sha, A),
        commit_above(Slash, B, Some(Sha)),
        prepare(D, Some(Slash)),
        // another parent than its own; a missing parent; a parent not committed
        commit_above(A, D, Some(Sha)),
        commit_above(A, C, Some(B)),
        commit_above(A, C, Some(D)),
        commit_above(A, C, Some(Slash)),
        Step::Remove { key: D },
        Step::Remove { key: Sha },
    ]
}

fn ops() -> Vec<Seed> {
    use CrashKind::*;
    use FaultKind::*;
    let with = |mut steps: Vec<Step>, at: usize, extra: Vec<Step>| {
        let tail = steps.split_off(at.min(steps.len()));
        steps.extend(extra);
        steps.extend(tail);
        steps
    };
    let pull = image_pull();
    let mut scenarios: Vec<(String, Vec<Step>)> = vec![
        ("image-pull".into(), pull.clone()),
        ("refusals".into(), refusals()),
        ("parallel-unpack-rebase".into(), parallel_unpack()),
        (
            "restart-and-checkpoint".into(),
            with(
                with(pull.clone(), 4, vec![Step::Checkpoint, Step::Restart]),
                7,
                vec![Step::Checkpoint],
            ),
        ),
        (
            "crashes-between-commands".into(),
            with(
                with(pull.clone(), 2, vec![Step::Crash(PowerLoss)]),
                5,
                vec![Step::Crash(Process)],
            ),
        ),
    ];
    // A fault at each of the first storage ops of the next append or checkpoint.
    for (name, fault) in [("fail", Fail), ("tear", Tear(5)), ("garble", Garble(9))] {
        for (crash_name, crash) in [("power-loss", PowerLoss), ("process", Process)] {
            for countdown in [0, 1] {
                scenarios.push((
                    format!("{name}-op{countdown}-{crash_name}"),
                    with(pull.clone(), 3, vec![arm(countdown, fault, crash)]),
                ));
            }
        }
    }
    scenarios.push((
        "fault-in-checkpoint".into(),
        with(
            pull.clone(),
            4,
            vec![arm(2, Fail, PowerLoss), Step::Checkpoint],
        ),
    ));
    scenarios.push((
        "fault-in-checkpoint-rename".into(),
        with(
            pull.clone(),
            4,
            vec![arm(3, Fail, Process), Step::Checkpoint],
        ),
    ));
    scenarios.push((
        "fault-in-reopen".into(),
        with(
            pull.clone(),
            4,
            vec![arm(1, Fail, PowerLoss), Step::Restart],
        ),
    ));
    scenarios
        .into_iter()
        .map(|(name, steps)| seed("ops", &name, encode_scenario(&Scenario { steps })))
        .collect()
}
