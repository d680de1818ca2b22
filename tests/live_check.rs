//! `Snapshotter::status` and `Snapshotter::check` on an open snapshotter: counts, the
//! journal's size, and the live check's report of planted damage, changing nothing.

use overlaysnap::core::Labels;
use overlaysnap::{Options, Snapshotter};
use std::collections::BTreeSet;
use std::path::Path;

fn entries(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn status_counts_by_kind_and_follows_checkpoints() {
    let root = tempfile::tempdir().unwrap();
    let s = Snapshotter::open(root.path(), Options::default()).unwrap();
    let empty = s.status().unwrap();
    assert_eq!((empty.active, empty.views, empty.committed), (0, 0, 0));
    assert_eq!(empty.records_since_checkpoint, 0);

    s.prepare("a", None, Labels::new()).unwrap();
    s.commit("base", "a", Labels::new()).unwrap();
    s.prepare("b", Some("base"), Labels::new()).unwrap();
    s.view("v", Some("base"), Labels::new()).unwrap();
    let status = s.status().unwrap();
    assert_eq!((status.active, status.views, status.committed), (1, 1, 1));
    assert_eq!(status.records_since_checkpoint, 4);
    assert!(status.journal_bytes > 0, "{status:?}");

    s.checkpoint().unwrap();
    let after = s.status().unwrap();
    assert_eq!(after.records_since_checkpoint, 0);
    assert_eq!((after.active, after.views, after.committed), (1, 1, 1));
}

#[test]
fn check_reports_orphans_and_damage_of_a_live_snapshotter_and_changes_nothing() {
    let root = tempfile::tempdir().unwrap();
    let s = Snapshotter::open(root.path(), Options::default()).unwrap();
    s.prepare("a", None, Labels::new()).unwrap();
    s.commit("base", "a", Labels::new()).unwrap();
    let clean = s.check().unwrap();
    assert_eq!(clean.snapshots, 1);
    assert_eq!(clean.records_replayed, 2);
    assert!(clean.damaged.is_empty() && clean.orphans == 0, "{clean:?}");

    let snapshots = root.path().join("snapshots");
    let committed = entries(&snapshots).into_iter().next().unwrap();
    std::fs::remove_dir_all(snapshots.join(&committed)).unwrap();
    std::fs::create_dir(snapshots.join("planted")).unwrap();
    std::fs::create_dir(snapshots.join("999")).unwrap();
    let before = entries(&snapshots);

    let report = s.check().unwrap();
    let id: u64 = committed.parse().unwrap();
    assert_eq!(report.damaged, [("base".to_owned(), id)]);
    assert_eq!(report.orphans, 1, "{report:?}");
    assert_eq!(report.unissued, [999]);
    assert_eq!(entries(&snapshots), before, "check changed the directories");
    assert_eq!(
        s.stat("base").unwrap().name,
        "base",
        "the state is untouched"
    );
    // Writes go on after a check.
    s.prepare("c", None, Labels::new()).unwrap();
    assert_eq!(s.check().unwrap().snapshots, 2);
}

#[test]
fn status_and_check_refuse_a_closed_snapshotter() {
    let root = tempfile::tempdir().unwrap();
    let s = Snapshotter::open(root.path(), Options::default()).unwrap();
    s.close().unwrap();
    assert!(s.status().is_err());
    assert!(s.check().is_err());
}
