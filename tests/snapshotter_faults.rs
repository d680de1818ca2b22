//! I/O errors the process survives, under the whole snapshotter on [`SimFs`]: `ENOSPC` and
//! `EIO` injected into one call, found by its place in the call trace of an identical run.
//!
//! - A failed write or sync of the journal's log fails the operation in flight, and then
//!   every later write is refused (until the snapshotter is reopened) without the log being
//!   written or synced again (a failed fsync is never retried: "fsyncgate"); `status`
//!   says why; reads keep working; and reopening after the process dies or the power goes finds every
//!   acknowledged operation.
//! - `ENOSPC` while creating a snapshot's directory, or writing or syncing a checkpoint,
//!   fails that operation with the error and leaves the state and the disk as before;
//!   later writes (and checkpoints) succeed.

use overlaysnap::core::{Kind, Labels};
use overlaysnap::fs::{Fault, FileSystem, SimFs};
use overlaysnap::{Error, ErrorKind, Options, Snapshotter};
use rstest::rstest;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

/// The snapshotter root inside the simulated file system.
const ROOT: &str = "/var/lib/overlaysnap";
/// Linux's `EIO` and `ENOSPC`.
const EIO: i32 = 5;
const ENOSPC: i32 = 28;

fn options() -> Options {
    Options {
        checkpoint_every: 0,
        ..Options::default()
    }
}

fn open(fs: &SimFs) -> Snapshotter {
    Snapshotter::open_with_fs(Arc::new(fs.clone()), ROOT, options()).expect("open")
}

/// The acknowledged state every test starts from: Committed `base`, Active `b` on it.
fn setup() -> (SimFs, Snapshotter) {
    let fs = SimFs::new();
    let sn = open(&fs);
    sn.prepare("a", None, Labels::new()).unwrap();
    sn.commit("base", "a", Labels::new()).unwrap();
    sn.prepare("b", Some("base"), Labels::new()).unwrap();
    (fs, sn)
}

/// What `sn` shows: kind by name.
fn snapshots(sn: &Snapshotter) -> BTreeMap<String, Kind> {
    let mut out = BTreeMap::new();
    sn.walk(&[], |info| {
        out.insert(info.name, info.kind);
        Ok(())
    })
    .expect("walk");
    out
}

/// The acknowledged state of [`setup`].
fn acknowledged() -> BTreeMap<String, Kind> {
    BTreeMap::from([
        ("base".to_string(), Kind::Committed),
        ("b".to_string(), Kind::Active),
    ])
}

/// The number of the first call, during `op` on a fresh [`setup`], whose trace line (`n
/// call path`) has `call` as its call and a path containing `path`.
fn call_of(op: impl FnOnce(&Snapshotter), call: &str, path: &str) -> u64 {
    let (fs, sn) = setup();
    fs.record_trace();
    op(&sn);
    let trace = fs.trace();
    trace
        .iter()
        .find_map(|line| {
            let mut fields = line.splitn(3, ' ');
            let (n, what, at) = (fields.next()?, fields.next()?, fields.next()?);
            (what == call && at.contains(path)).then(|| n.parse().expect("a call number"))
        })
        .unwrap_or_else(|| panic!("no {call} of *{path}* in {trace:#?}"))
}

/// The raw OS error under an [`Error::Io`].
fn errno_of(e: &Error) -> Option<i32> {
    match e {
        Error::Io { source, .. } => source.raw_os_error(),
        _ => None,
    }
}

fn prepare_c(sn: &Snapshotter) -> overlaysnap::Result<()> {
    sn.prepare("c", Some("base"), Labels::new()).map(drop)
}

#[rstest]
#[case::sync_eio("sync_data", EIO)]
#[case::sync_enospc("sync_data", ENOSPC)]
#[case::write_enospc("write_at", ENOSPC)]
#[case::write_eio("write_at", EIO)]
fn a_failed_log_write_or_sync_refuses_later_writes_and_loses_nothing_acknowledged(
    #[case] call: &str,
    #[case] code: i32,
) {
    let n = call_of(|sn| prepare_c(sn).expect("prepare c"), call, "/journal/");
    let (fs, sn) = setup();
    fs.record_trace();
    fs.inject(n, Fault::Errno(code));
    let e = prepare_c(&sn).expect_err("the log failed");
    assert_eq!(e.kind(), ErrorKind::Io, "{e}");
    assert_eq!(errno_of(&e), Some(code), "{e}");
    // The status says that changes are refused, and why.
    let refused = sn.status().expect("status").writes_refused;
    let why = refused.expect("the status reports the refusal");
    assert!(
        why.contains(&std::io::Error::from_raw_os_error(code).to_string()),
        "{why}"
    );

    // Every later write is refused, saying why.
    let refusals = [
        prepare_c(&sn),
        sn.prepare("d", None, Labels::new()).map(drop),
        sn.commit("e", "b", Labels::new()),
        sn.remove("b"),
        sn.update("base", Labels::new(), &[]).map(drop),
        sn.checkpoint(),
    ];
    for refusal in refusals {
        let e = refusal.expect_err("refused after the journal failed");
        assert_eq!(e.kind(), ErrorKind::Io, "{e}");
        assert!(e.to_string().contains("reopen"), "{e}");
    }
    // The log was neither written nor synced again after the failure.
    let after: Vec<String> = fs
        .trace()
        .into_iter()
        .filter(|line| line.split(' ').next().and_then(|k| k.parse::<u64>().ok()) > Some(n))
        .filter(|line| line.contains("/journal/"))
        .filter(|line| line.contains(" sync_data ") || line.contains(" write_at "))
        .collect();
    assert_eq!(
        after,
        Vec::<String>::new(),
        "the log was touched after the failure"
    );

    // Reads keep working, and show only the acknowledged state.
    assert_eq!(snapshots(&sn), acknowledged());
    assert_eq!(sn.stat("b").expect("stat").kind, Kind::Active);
    assert!(!sn.mounts("b").expect("mounts").is_empty());
    sn.usage("base").expect("usage");

    // Every acknowledged operation survives a killed process and a power loss; the one in
    // flight may or may not.
    for (what, image) in [("restart", fs.restart()), ("crash", fs.crash())] {
        let reopened = open(&image);
        let mut found = snapshots(&reopened);
        if let Some(kind) = found.remove("c") {
            assert_eq!(kind, Kind::Active, "after {what}");
        }
        assert_eq!(found, acknowledged(), "after {what}");
        reopened
            .prepare("d", None, Labels::new())
            .unwrap_or_else(|e| panic!("a write after reopening ({what}): {e}"));
    }
}

/// The entries of `ROOT/snapshots` and `ROOT/journal`, sorted (read on a copy of `fs`, so
/// that the calls of `fs` keep their numbers).
fn dirs(fs: &SimFs) -> (Vec<String>, Vec<String>) {
    let fs = fs.restart();
    let list = |dir: &str| -> Vec<String> {
        let mut names: Vec<String> = fs
            .read_dir(&Path::new(ROOT).join(dir))
            .expect("list")
            .into_iter()
            .map(|n| n.to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    (list("snapshots"), list("journal"))
}

#[rstest]
#[case::the_temporary_directory("/snapshots/new-")]
#[case::its_fs_directory("/fs")]
#[case::its_work_directory("/work")]
fn enospc_creating_a_snapshot_directory_fails_the_prepare_and_changes_nothing(#[case] path: &str) {
    let n = call_of(|sn| prepare_c(sn).expect("prepare c"), "create_dir", path);
    let (fs, sn) = setup();
    let before = dirs(&fs);
    fs.inject(n, Fault::Errno(ENOSPC));
    let e = prepare_c(&sn).expect_err("no space");
    assert_eq!(e.kind(), ErrorKind::Io, "{e}");
    assert_eq!(errno_of(&e), Some(ENOSPC), "{e}");
    assert_eq!(snapshots(&sn), acknowledged());
    assert_eq!(dirs(&fs), before);
    // Not poisoned: the same Prepare succeeds once there is space.
    assert_eq!(sn.status().expect("status").writes_refused, None);
    prepare_c(&sn).expect("prepare c with space");
    assert_eq!(sn.stat("c").expect("stat c").kind, Kind::Active);
}

#[rstest]
#[case::write("write_at")]
#[case::sync("sync_data")]
fn enospc_writing_a_checkpoint_fails_it_and_changes_nothing(#[case] call: &str) {
    let n = call_of(|sn| sn.checkpoint().expect("checkpoint"), call, "/journal/");
    let (fs, sn) = setup();
    let before = dirs(&fs);
    fs.inject(n, Fault::Errno(ENOSPC));
    let e = sn.checkpoint().expect_err("no space");
    assert_eq!(e.kind(), ErrorKind::Io, "{e}");
    assert_eq!(errno_of(&e), Some(ENOSPC), "{e}");
    assert_eq!(snapshots(&sn), acknowledged());
    assert_eq!(dirs(&fs), before);
    for image in [fs.restart(), fs.crash()] {
        assert_eq!(snapshots(&open(&image)), acknowledged());
    }
    // A failed checkpoint does not poison the journal: writes and checkpoints go on.
    prepare_c(&sn).expect("prepare c after the failed checkpoint");
    sn.checkpoint().expect("a checkpoint with space");
    let mut expected = acknowledged();
    expected.insert("c".into(), Kind::Active);
    assert_eq!(snapshots(&open(&fs.crash())), expected);
}
