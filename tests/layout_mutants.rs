//! What the mutation run on `src/layout/` found untested (docs/mutants.md). Each test
//! names the behaviour it pins; the layouts run on the simulated disk (`SimFs`) where a
//! fault must hit one chosen call, and on the real disk otherwise.

use overlaysnap::fs::{Fault, FileSystem, OverlayFeatures, SimFs};
use overlaysnap::layout::{overlay_options, Layout};
use overlaysnap::{Error, ErrorKind};
use std::path::Path;
use std::sync::Arc;

/// A layout at `/root` of a fresh simulated disk.
fn sim_layout() -> (SimFs, Layout) {
    let sim = SimFs::new();
    let layout = Layout::open_on(Arc::new(sim.clone()), "/root", &[]).expect("open layout");
    (sim, layout)
}

/// The raw OS error of an I/O error, or a panic naming what it got.
fn errno(err: &Error) -> i32 {
    match err {
        Error::Io { source, .. } => source.raw_os_error().expect("an OS error"),
        other => panic!("not an I/O error: {other:?}"),
    }
}

#[test]
fn a_link_that_cannot_be_removed_fails_cleanup_after_the_others_were_tried() {
    let (sim, layout) = sim_layout();
    for id in [1, 2] {
        sim.symlink(
            Path::new(&format!("../snapshots/{id}/fs")),
            &layout.link_path(id),
        )
        .unwrap();
    }
    let garbage = layout.find_garbage(Vec::new).unwrap();
    // Only links are garbage, so the next calls are their removals, in listing order.
    sim.inject(sim.calls() + 1, Fault::Errno(libc_eio()));
    let err = layout.remove_garbage(garbage).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Io);
    assert_eq!(errno(&err), libc_eio());
    let left: Vec<_> = [1, 2]
        .into_iter()
        .filter(|&id| sim.read_link(&layout.link_path(id)).is_ok())
        .collect();
    assert_eq!(left.len(), 1, "the other link was still removed: {left:?}");
    // The next Cleanup removes what was left.
    let garbage = layout.find_garbage(Vec::new).unwrap();
    assert_eq!(layout.remove_garbage(garbage).unwrap().len(), 1);
}

#[test]
fn a_link_gone_since_it_was_listed_is_skipped() {
    let (sim, layout) = sim_layout();
    for id in [1, 2] {
        sim.symlink(
            Path::new(&format!("../snapshots/{id}/fs")),
            &layout.link_path(id),
        )
        .unwrap();
    }
    let garbage = layout.find_garbage(Vec::new).unwrap();
    sim.remove_file(&layout.link_path(1)).unwrap();
    let removed = layout.remove_garbage(garbage).unwrap();
    assert_eq!(removed, [layout.link_path(2)]);
}

#[test]
fn the_layout_reports_the_overlay_options_it_appends() {
    let dir = tempfile::tempdir().unwrap();
    let features = OverlayFeatures {
        index: true,
        userxattr: true,
    };
    let configured = ["volatile".to_owned()];
    let layout = Layout::open_with_features(dir.path().join("root"), &configured, features)
        .expect("open layout");
    assert_eq!(
        layout.overlay_options(),
        overlay_options(&configured, features)
    );
    assert_eq!(
        layout.overlay_options(),
        ["index=off", "userxattr", "volatile"]
    );
}

/// `EIO`, as Linux numbers it.
fn libc_eio() -> i32 {
    nix::errno::Errno::EIO as i32
}
