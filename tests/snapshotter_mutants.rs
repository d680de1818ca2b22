//! What the mutation run on `src/snapshotter/` found untested (docs/mutants.md): the
//! accessors and Debug form, the automatic checkpoint's threshold, and `status`'s count of
//! the journal's bytes when files vanish or cannot be read. Faults hit one chosen call of
//! the simulated disk, found by running the same operation on a copy and reading its trace.

#[path = "support/trace.rs"]
mod trace;

use overlaysnap::core::Labels;
use overlaysnap::fs::{Fault, FileSystem, SimFs};
use overlaysnap::{Error, ErrorKind, Options, Snapshotter};
use std::path::Path;
use std::sync::Arc;

/// A snapshotter at `/root` of `sim` with `options`.
fn open(sim: &SimFs, options: Options) -> Snapshotter {
    Snapshotter::open_with_fs(Arc::new(sim.clone()), "/root", options).expect("open")
}

/// The raw OS error of an I/O error, or a panic naming what it got.
fn errno(err: &Error) -> i32 {
    match err {
        Error::Io { source, .. } => source.raw_os_error().expect("an OS error"),
        other => panic!("not an I/O error: {other:?}"),
    }
}

const EIO: i32 = nix::errno::Errno::EIO as i32;
const ENOENT: i32 = nix::errno::Errno::ENOENT as i32;

#[test]
fn the_accessors_and_debug_form_report_the_root_and_options() {
    let sim = SimFs::new();
    let options = Options {
        checkpoint_every: 7,
        sync_remove: true,
        ..Options::default()
    };
    let snapshotter = open(&sim, options);
    assert_eq!(snapshotter.root(), Path::new("/root"));
    assert_eq!(snapshotter.options().checkpoint_every, 7);
    assert!(snapshotter.options().sync_remove);
    let debug = format!("{snapshotter:?}");
    assert!(
        debug.starts_with(r#"Snapshotter { root: "/root", options: Options { sync_remove: true"#)
            && debug.contains("checkpoint_every: 7")
            && debug.ends_with(".. }"),
        "{debug}"
    );
}

/// With `checkpoint_every: 3`, the third record since the last checkpoint writes one.
#[test]
fn a_checkpoint_is_written_every_checkpoint_every_records() {
    let sim = SimFs::new();
    let options = Options {
        checkpoint_every: 3,
        ..Options::default()
    };
    let snapshotter = open(&sim, options);
    let since = || snapshotter.status().unwrap().records_since_checkpoint;
    snapshotter.prepare("a", None, Labels::new()).unwrap();
    snapshotter.prepare("b", None, Labels::new()).unwrap();
    assert_eq!(since(), 2);
    snapshotter.prepare("c", None, Labels::new()).unwrap();
    assert_eq!(since(), 0, "the third record wrote a checkpoint");
    snapshotter.prepare("d", None, Labels::new()).unwrap();
    assert_eq!(since(), 1);

    // 0: never.
    let sim = SimFs::new();
    let options = Options {
        checkpoint_every: 0,
        ..Options::default()
    };
    let snapshotter = open(&sim, options);
    for key in ["a", "b", "c", "d"] {
        snapshotter.prepare(key, None, Labels::new()).unwrap();
    }
    assert_eq!(snapshotter.status().unwrap().records_since_checkpoint, 4);
}

/// `status` counts the bytes of the journal's files only; a listing or a file that
/// vanished meanwhile counts nothing, any other error fails the call.
#[test]
fn the_journals_bytes_skip_what_vanished_and_fail_on_other_errors() {
    let sim = SimFs::new();
    let snapshotter = open(&sim, Options::default());
    snapshotter.prepare("a", None, Labels::new()).unwrap();
    let bytes = snapshotter.status().unwrap().journal_bytes;
    assert!(bytes > 0);
    // A directory in the journal's directory is no file of the journal.
    sim.create_dir(Path::new("/root/journal/not-a-file"))
        .unwrap();
    assert_eq!(snapshotter.status().unwrap().journal_bytes, bytes);

    let status = |s: &Snapshotter| {
        s.status().unwrap();
    };
    let listing = calls_named(&sim, "read_dir", status)[0];
    sim.inject(sim.calls() + listing, Fault::Errno(ENOENT));
    assert_eq!(snapshotter.status().unwrap().journal_bytes, 0);
    sim.inject(sim.calls() + listing, Fault::Errno(EIO));
    let err = snapshotter.status().unwrap_err();
    assert_eq!((err.kind(), errno(&err)), (ErrorKind::Io, EIO));

    for at in calls_named(&sim, "symlink_metadata", status) {
        sim.inject(sim.calls() + at, Fault::Errno(ENOENT));
        let fewer = snapshotter.status().unwrap().journal_bytes;
        assert!(fewer <= bytes, "{fewer} of {bytes}");
        sim.inject(sim.calls() + at, Fault::Errno(EIO));
        assert_eq!(errno(&snapshotter.status().unwrap_err()), EIO);
    }
}

/// A snapshotter at `/root` of a fresh simulated disk holding a committed `base` and an
/// Active `a` on it.
fn with_base() -> (SimFs, Snapshotter) {
    let sim = SimFs::new();
    let snapshotter = open(&sim, Options::default());
    snapshotter.prepare("b", None, Labels::new()).unwrap();
    snapshotter.commit("base", "b", Labels::new()).unwrap();
    snapshotter
        .prepare("a", Some("base"), Labels::new())
        .unwrap();
    (sim, snapshotter)
}

/// Slow work that fails while nothing changed under it fails with its own error, not as a
/// snapshot "removed and created again" (`recheck` finds what it relied on in place).
#[test]
fn slow_work_that_fails_with_nothing_changed_reports_its_own_error() {
    // Prepare reads the owner of its parent's layer.
    let (sim, snapshotter) = with_base();
    let prepare = |s: &Snapshotter| {
        s.prepare("c", Some("base"), Labels::new()).unwrap();
    };
    let stat = calls_named(&sim, "metadata", prepare)[0];
    sim.inject(sim.calls() + stat, Fault::Errno(EIO));
    let err = snapshotter
        .prepare("c", Some("base"), Labels::new())
        .unwrap_err();
    assert_eq!(errno(&err), EIO, "{err}");

    // Commit measures the layer and syncs the file system.
    let (sim, snapshotter) = with_base();
    let commit = |s: &Snapshotter| s.commit("top", "a", Labels::new()).unwrap();
    let sync = calls_named(&sim, "syncfs", commit)[0];
    sim.inject(sim.calls() + sync, Fault::Errno(EIO));
    let err = snapshotter.commit("top", "a", Labels::new()).unwrap_err();
    assert_eq!(errno(&err), EIO, "{err}");

    // Usage measures an Active layer.
    let (sim, snapshotter) = with_base();
    let usage = |s: &Snapshotter| {
        s.usage("a").unwrap();
    };
    let listing = calls_named(&sim, "read_dir", usage)[0];
    sim.inject(sim.calls() + listing, Fault::Errno(EIO));
    let err = snapshotter.usage("a").unwrap_err();
    assert_eq!(errno(&err), EIO, "{err}");
}

/// The numbers, counted from the last call before `op` starts, of the calls named `name`
/// that `op` makes on a snapshotter opened on a copy of the disk (after its own opening).
fn calls_named(sim: &SimFs, name: &str, op: impl FnOnce(&Snapshotter)) -> Vec<u64> {
    let copy = sim.restart();
    let snapshotter = open(&copy, Options::default());
    copy.record_trace();
    let start = copy.calls();
    op(&snapshotter);
    trace::calls_named(&copy, name, start)
}

#[test]
fn inspect_reports_a_closed_root_and_refuses_a_missing_one() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    {
        let snapshotter = Snapshotter::open(&root, Options::default()).unwrap();
        snapshotter.prepare("a", None, Labels::new()).unwrap();
        snapshotter.commit("base", "a", Labels::new()).unwrap();
    }
    let report = Snapshotter::inspect(&root).unwrap();
    assert_eq!(
        (report.snapshots, report.records_replayed),
        (1, 2),
        "{report:?}"
    );
    let err = Snapshotter::inspect(dir.path().join("missing")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
}

/// The directory of a removed snapshot, left for Cleanup (asynchronous remove), is an
/// orphan in the live check's report until Cleanup deletes it.
#[test]
fn the_directory_of_a_removed_snapshot_is_an_orphan_until_cleanup() {
    let dir = tempfile::tempdir().unwrap();
    let snapshotter = Snapshotter::open(dir.path(), Options::default()).unwrap();
    snapshotter.prepare("a", None, Labels::new()).unwrap();
    snapshotter.prepare("b", None, Labels::new()).unwrap();
    snapshotter.remove("a").unwrap();
    let report = snapshotter.check().unwrap();
    assert_eq!((report.snapshots, report.orphans), (1, 1), "{report:?}");
    assert_eq!(snapshotter.cleanup().unwrap(), 1);
    assert_eq!(snapshotter.check().unwrap().orphans, 0);
}
