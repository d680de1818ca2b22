//! The directories of a root: creation through `new-*` and rename, modes whatever the
//! umask, the owner of `fs` following the parent's, listing, and removal through `rm-*`.

mod layout_support;

use layout_support::{layer, layout, root_or_skip, Mounted};
use nix::sys::stat::{umask, Mode};
use overlaysnap::core::Kind;
use overlaysnap::fs::Mount;
use overlaysnap::layout::{Entry, Layout, Owner, TEMP_PREFIX};
use overlaysnap::ErrorKind;
use std::ffi::OsString;
use std::fs;
use std::os::unix::fs::{chown, MetadataExt};
use std::path::Path;

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().mode() & 0o7777
}

#[test]
fn open_creates_private_dirs() {
    let dir = tempfile::tempdir().unwrap();
    let layout = layout(dir.path());
    assert_eq!(
        layout.root(),
        dir.path().join("root").canonicalize().unwrap()
    );
    assert_eq!(mode(layout.root()), 0o700);
    assert_eq!(mode(layout.snapshots_dir()), 0o700);
    assert_eq!(mode(layout.link_path(1).parent().unwrap()), 0o700);
    assert_eq!(layout.snapshots_dir(), layout.root().join("snapshots"));
    assert_eq!(layout.fs_path(12), layout.root().join("snapshots/12/fs"));
    assert_eq!(
        layout.work_path(12),
        layout.root().join("snapshots/12/work")
    );
    // Opening again finds everything in place.
    Layout::open(layout.root(), &[]).unwrap();
}

#[test]
fn a_root_that_overlay_options_cannot_carry_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    for bad in ["with:colon", "with,comma"] {
        let err = Layout::open(dir.path().join(bad), &[]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{bad}");
    }
}

/// Modes are exact even under a umask that would strip them; this test alone changes the
/// umask of the test process, and puts it back.
#[test]
fn prepare_creates_fs_and_work_with_exact_modes() {
    let dir = tempfile::tempdir().unwrap();
    let layout = layout(dir.path());
    let old = umask(Mode::from_bits_truncate(0o077));
    let active = layout.prepare_dir(Kind::Active, None);
    let view = layout.prepare_dir(Kind::View, None);
    umask(old);
    let (active, view) = (active.unwrap(), view.unwrap());

    let name = active
        .path()
        .unwrap()
        .file_name()
        .unwrap()
        .to_string_lossy();
    assert!(name.starts_with(TEMP_PREFIX), "{name}");
    assert_eq!(
        active.path().unwrap().parent().unwrap(),
        layout.snapshots_dir()
    );
    assert_eq!(mode(&active.fs_path().unwrap()), 0o755);
    assert_eq!(mode(&active.path().unwrap().join("work")), 0o711);
    assert_eq!(mode(&view.fs_path().unwrap()), 0o755);
    assert!(
        !view.path().unwrap().join("work").exists(),
        "views have no work dir"
    );

    active.install(1).unwrap();
    view.install(2).unwrap();
    assert_eq!(mode(&layout.fs_path(1)), 0o755);
    assert_eq!(mode(&layout.work_path(1)), 0o711);
    assert!(layout.fs_path(2).is_dir());
    assert!(!layout.work_path(2).exists());
}

#[test]
fn a_dropped_temp_dir_is_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let layout = layout(dir.path());
    let temp = layout.prepare_dir(Kind::Active, None).unwrap();
    let path = temp.path().unwrap().to_path_buf();
    assert!(path.join("fs").is_dir());
    drop(temp);
    assert!(!path.exists());
    assert!(layout.list_entries().unwrap().is_empty());
}

#[test]
fn install_over_an_existing_snapshot_fails_and_deletes_the_temp_dir() {
    let dir = tempfile::tempdir().unwrap();
    let layout = layout(dir.path());
    layer(&layout, 1, &[("kept", "yes")]);
    let temp = layout.prepare_dir(Kind::Active, None).unwrap();
    let path = temp.path().unwrap().to_path_buf();
    assert_eq!(temp.install(1).unwrap_err().kind(), ErrorKind::Io);
    assert!(!path.exists());
    assert!(layout.fs_path(1).join("kept").exists());
}

#[test]
fn committed_directories_are_never_prepared() {
    let dir = tempfile::tempdir().unwrap();
    let layout = layout(dir.path());
    let err = layout.prepare_dir(Kind::Committed, None).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
}

/// containerd's Chown check: a child's `fs` is owned like its parent's `fs`.
#[test]
fn fs_follows_the_owner_of_the_parents_fs() {
    if !root_or_skip("fs_follows_the_owner_of_the_parents_fs") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let layout = layout(dir.path());
    layer(&layout, 1, &[]);
    chown(layout.fs_path(1), Some(1234), Some(5678)).unwrap();
    let owner = layout.fs_owner(1).unwrap();
    assert_eq!(
        owner,
        Owner {
            uid: 1234,
            gid: 5678
        }
    );
    let child = layout.prepare_dir(Kind::Active, Some(owner)).unwrap();
    child.install(2).unwrap();
    let md = fs::metadata(layout.fs_path(2)).unwrap();
    assert_eq!((md.uid(), md.gid()), (1234, 5678));
    assert_eq!(md.mode() & 0o7777, 0o755);
    let work = fs::metadata(layout.work_path(2)).unwrap();
    assert_eq!((work.uid(), work.gid()), (0, 0), "only fs is chowned");

    assert_eq!(layout.fs_owner(99).unwrap_err().kind(), ErrorKind::Io);
}

#[test]
fn entries_are_snapshots_only_when_named_by_a_decimal_id() {
    let dir = tempfile::tempdir().unwrap();
    let layout = layout(dir.path());
    layer(&layout, 3, &[]);
    layer(&layout, 12, &[]);
    for other in ["007", "new-x", "rm-y", "+4", "junk"] {
        fs::create_dir(layout.snapshots_dir().join(other)).unwrap();
    }
    let mut entries = layout.list_entries().unwrap();
    entries.sort();
    let mut expected = vec![Entry::Snapshot(3), Entry::Snapshot(12)];
    for other in ["+4", "007", "junk", "new-x", "rm-y"] {
        expected.push(Entry::Other(OsString::from(other)));
    }
    assert_eq!(entries, expected);
}

#[test]
fn remove_dir_deletes_the_snapshot_and_its_link() {
    let dir = tempfile::tempdir().unwrap();
    let layout = layout(dir.path());
    layer(&layout, 1, &[("deep/er/file", "x")]);
    layer(&layout, 2, &[]);
    // The link a long lowerdir list would use.
    std::os::unix::fs::symlink("../snapshots/1/fs", layout.link_path(1)).unwrap();
    assert!(layout.link_path(1).join("deep/er/file").exists());

    layout.remove_dir(1).unwrap();
    assert!(!layout.snapshot_dir(1).exists());
    assert_eq!(
        fs::symlink_metadata(layout.link_path(1))
            .unwrap_err()
            .kind(),
        std::io::ErrorKind::NotFound
    );
    assert_eq!(layout.list_entries().unwrap(), vec![Entry::Snapshot(2)]);
    // Removing again is not an error: removals can be replayed.
    layout.remove_dir(1).unwrap();
}

#[test]
fn remove_dir_refuses_while_something_is_mounted_inside() {
    if !root_or_skip("remove_dir_refuses_while_something_is_mounted_inside") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let layout = layout(dir.path());
    layer(&layout, 1, &[("keep", "me")]);
    let tmpfs = Mount {
        kind: "tmpfs".into(),
        source: "tmpfs".into(),
        target: String::new(),
        options: vec!["size=1m".into()],
    };
    let mounted = Mounted::new(&[tmpfs], &layout.fs_path(1), "mnt");
    fs::write(mounted.join("precious"), "data").unwrap();

    let err = layout.remove_dir(1).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::FailedPrecondition);
    assert!(mounted.join("precious").exists());
    assert!(
        layout.fs_path(1).join("keep").exists(),
        "nothing was deleted"
    );

    drop(mounted);
    layout.remove_dir(1).unwrap();
    assert!(!layout.snapshot_dir(1).exists());
}
