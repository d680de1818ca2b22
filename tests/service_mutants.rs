//! What the mutation run on `src/service/` found untested (docs/mutants.md): `Published`
//! forwards every call that publishes nothing (Usage, Mounts, View, Walk, Close) to the
//! snapshotter it wraps and returns its answer; the hub counts its subscribers; the Debug
//! forms of the hub, the router and `Published` say what they hold.

use overlaysnap::core::{Kind, Labels};
use overlaysnap::service::{Hub, Published, Router};
use overlaysnap::{ErrorKind, MemoryBackend, Options, Snapshots, Snapshotter};
use std::sync::Arc;

fn memory_snapshotter(root: &std::path::Path) -> Arc<Snapshotter> {
    let options = Options {
        journal: Arc::new(MemoryBackend),
        ..Options::default()
    };
    Arc::new(Snapshotter::open(root, options).unwrap())
}

/// A snapshotter on the memory journal holding one Active snapshot, `base-key`; and the
/// same snapshotter behind `Published`.
fn published_over_an_active(root: &std::path::Path) -> (Arc<Snapshotter>, Published) {
    let snapshotter = memory_snapshotter(root);
    snapshotter
        .prepare("base-key", None, Labels::new())
        .unwrap();
    let stat = snapshotter.stat("base-key").unwrap();
    assert_eq!(stat.kind, Kind::Active);
    let published = Published::new(snapshotter.clone(), Arc::new(Hub::new()));
    (snapshotter, published)
}

#[test]
fn published_answers_usage_mounts_view_and_walk_with_the_snapshotters_answers() {
    let root = tempfile::tempdir().unwrap();
    let (snapshotter, published) = published_over_an_active(root.path());
    // A file in the Active layer, so that its usage is not the default.
    let ids: Vec<_> = std::fs::read_dir(root.path().join("snapshots"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(ids.len(), 1, "{ids:?}");
    let upper = ids[0].join("fs");
    std::fs::write(upper.join("file"), vec![7u8; 64 * 1024]).unwrap();
    let usage = published.usage("base-key").unwrap();
    assert_eq!(usage, snapshotter.usage("base-key").unwrap());
    assert!(usage.size >= 64 * 1024 && usage.inodes == 2, "{usage:?}");

    let mounts = published.mounts("base-key").unwrap();
    assert!(!mounts.is_empty());
    assert_eq!(mounts, snapshotter.mounts("base-key").unwrap());

    published
        .commit("base", "base-key", None, Labels::new())
        .unwrap();
    let view = published.view("v", Some("base"), Labels::new()).unwrap();
    assert!(!view.is_empty());
    assert_eq!(view, snapshotter.mounts("v").unwrap());

    let mut walked = Vec::new();
    published
        .walk(&[], &mut |info| {
            walked.push((info.name, info.kind));
            Ok(())
        })
        .unwrap();
    walked.sort();
    assert_eq!(
        walked,
        [
            ("base".to_owned(), Kind::Committed),
            ("v".to_owned(), Kind::View)
        ]
    );
    // Errors come back as the snapshotter words them.
    assert_eq!(
        published.usage("missing").unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert_eq!(
        published.mounts("missing").unwrap_err().kind(),
        ErrorKind::NotFound
    );
}

#[test]
fn closing_published_closes_the_snapshotter() {
    let root = tempfile::tempdir().unwrap();
    let (snapshotter, published) = published_over_an_active(root.path());
    published.close().unwrap();
    let err = snapshotter
        .prepare("after", None, Labels::new())
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::FailedPrecondition, "{err}");
    assert_eq!(
        published.remove("base-key").unwrap_err().kind(),
        ErrorKind::FailedPrecondition
    );
}

#[test]
fn the_hub_counts_its_subscribers() {
    let hub = Hub::with_buffer(4);
    assert_eq!(hub.subscribers(), 0);
    let first = hub.subscribe();
    let second = hub.subscribe();
    let third = hub.subscribe();
    assert_eq!(hub.subscribers(), 3);
    drop((first, second, third));
}

#[test]
fn debug_forms_say_what_they_hold() {
    let hub = Hub::with_buffer(0);
    let (_a, _b) = (hub.subscribe(), hub.subscribe());
    // A buffer of 0 is raised to 1.
    assert_eq!(format!("{hub:?}"), "Hub { subscribers: 2, buffer: 1 }");

    let root = tempfile::tempdir().unwrap();
    let (snapshotter, published) = published_over_an_active(root.path());
    assert_eq!(format!("{published:?}"), "Published { .. }");

    let mut router = Router::new();
    router.register("overlaysnap", snapshotter.clone()).unwrap();
    router.register("another", snapshotter).unwrap();
    assert_eq!(
        format!("{router:?}"),
        r#"Router { names: ["another", "overlaysnap"] }"#
    );
}
