//! Cleanup deletes every entry of `ROOT/snapshots` and `ROOT/l` that no live snapshot uses,
//! and never the temporary directory of an operation in flight, even while racing it.

mod layout_support;

use layout_support::{layer, layout, root_or_skip, Mounted};
use overlaysnap::core::Kind;
use overlaysnap::fs::Mount;
use overlaysnap::layout::{Entry, Layout};
use overlaysnap::ErrorKind;
use parking_lot::Mutex;
use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::symlink;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

/// A Cleanup of `layout` keeping the snapshots `live`: the garbage found, then removed.
fn cleanup(
    layout: &Layout,
    live: impl IntoIterator<Item = u64>,
) -> overlaysnap::Result<Vec<std::path::PathBuf>> {
    let garbage = layout.find_garbage(|| live)?;
    layout.remove_garbage(garbage)
}

#[test]
fn keeps_live_ids_and_temp_dirs_in_flight_and_removes_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let layout = layout(dir.path());
    layer(&layout, 1, &[("a", "1")]);
    layer(&layout, 2, &[]);
    layer(&layout, 3, &[("removed", "snapshot")]);
    let snapshots = layout.snapshots_dir().to_path_buf();
    for leftover in ["new-crashed", "rm-crashed", "007"] {
        fs::create_dir_all(snapshots.join(leftover).join("fs")).unwrap();
    }
    fs::write(snapshots.join("stray-file"), "x").unwrap();
    let in_flight = layout.prepare_dir(Kind::Active, None).unwrap();

    let mut removed = cleanup(&layout, [1, 2]).unwrap();
    removed.sort();
    let mut expected: Vec<PathBuf> = ["007", "3", "new-crashed", "rm-crashed", "stray-file"]
        .iter()
        .map(|name| snapshots.join(name))
        .collect();
    expected.sort();
    assert_eq!(removed, expected);

    assert!(
        in_flight.fs_path().unwrap().is_dir(),
        "the directory in flight stays"
    );
    assert!(layout.fs_path(1).join("a").exists());
    let mut entries = layout.list_entries().unwrap();
    entries.sort();
    assert_eq!(entries.len(), 3);
    assert_eq!(entries[..2], [Entry::Snapshot(1), Entry::Snapshot(2)]);

    // Once the operation is over, its directory is either installed or gone.
    in_flight.install(4).unwrap();
    assert!(cleanup(&layout, [1, 2, 4]).unwrap().is_empty());
}

#[test]
fn links_of_ids_that_are_not_live_are_removed() {
    let dir = tempfile::tempdir().unwrap();
    let layout = layout(dir.path());
    layer(&layout, 1, &[]);
    for id in [1, 2] {
        symlink(format!("../snapshots/{id}/fs"), layout.link_path(id)).unwrap();
    }
    let links = layout.link_path(1).parent().unwrap().to_path_buf();
    fs::write(links.join("zzz-junk"), "x").unwrap();

    let garbage = layout.find_garbage(|| [1]).unwrap();
    assert!(!garbage.is_empty());
    let mut removed = layout.remove_garbage(garbage).unwrap();
    removed.sort();
    assert_eq!(removed, vec![layout.link_path(2), links.join("zzz-junk")]);
    assert!(fs::symlink_metadata(layout.link_path(1)).is_ok());
    assert!(layout.find_garbage(|| [1]).unwrap().is_empty());
}

/// The garbage listed before a snapshot is installed cannot include it: ids are new and
/// temporary names unique, so removing the list later is safe.
#[test]
fn garbage_listed_earlier_never_includes_a_later_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let layout = layout(dir.path());
    layer(&layout, 1, &[]);
    let garbage = layout.find_garbage(|| []).unwrap();
    layer(&layout, 2, &[("new", "layer")]);
    let removed = layout.remove_garbage(garbage).unwrap();
    assert_eq!(removed, vec![layout.snapshot_dir(1)]);
    assert!(layout.fs_path(2).join("new").exists());
}

/// Sets its flag when dropped, on unwinding too.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Prepare (fill a temp dir, then install it and make its id live) races Cleanup, which
/// lists, then reads the live ids under the lock that orders installs, as the snapshotter
/// does, and deletes outside it. No directory of an operation in flight or of a live id is ever lost.
#[test]
fn cleanup_racing_prepare_never_takes_a_directory_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let layout = layout(dir.path());
    let live: Mutex<BTreeSet<u64>> = Mutex::default();
    let done = AtomicBool::new(false);
    std::thread::scope(|scope| {
        // Stops the cleaner however this thread leaves the scope: a failed assertion
        // below must fail the test, not leave it waiting for the cleaner forever.
        let _stop = StopOnDrop(&done);
        scope.spawn(|| {
            while !done.load(Ordering::Relaxed) {
                let garbage = layout
                    .find_garbage(|| live.lock().iter().copied().collect::<Vec<_>>())
                    .unwrap();
                layout.remove_garbage(garbage).unwrap();
            }
        });
        for id in 1..=100 {
            let temp = layout.prepare_dir(Kind::Active, None).unwrap();
            fs::write(temp.fs_path().unwrap().join("file"), id.to_string()).unwrap();
            assert!(
                temp.path().unwrap().join("work").is_dir(),
                "temp dir {id} intact"
            );
            let mut live = live.lock();
            temp.install(id).unwrap();
            live.insert(id);
        }
    });
    for id in 1..=100 {
        let content = fs::read_to_string(layout.fs_path(id).join("file")).unwrap();
        assert_eq!(content, id.to_string());
    }
}

/// A garbage directory with a mount inside is left alone (deleting would reach into the
/// mounted file system); the rest is removed and the error reported.
#[test]
fn garbage_with_a_mount_inside_is_kept_and_reported() {
    if !root_or_skip("garbage_with_a_mount_inside_is_kept_and_reported") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let layout = layout(dir.path());
    layer(&layout, 1, &[]);
    layer(&layout, 2, &[]);
    let tmpfs = Mount {
        kind: "tmpfs".into(),
        source: "tmpfs".into(),
        target: String::new(),
        options: vec!["size=1m".into()],
    };
    let mounted = Mounted::new(&[tmpfs], &layout.fs_path(1), "mnt");
    fs::write(mounted.join("precious"), "data").unwrap();

    let err = cleanup(&layout, []).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::FailedPrecondition);
    assert!(mounted.join("precious").exists());
    assert!(!layout.snapshot_dir(2).exists(), "the rest was removed");

    drop(mounted);
    assert_eq!(cleanup(&layout, []).unwrap(), vec![layout.snapshot_dir(1)]);
}
