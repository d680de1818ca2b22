//! Making a layer durable before Commit: it succeeds on a filled layer and changes
//! nothing in it; `fs` keeps 0755 and its owner (containerd's DirectoryPermissionOnCommit).

mod layout_support;

use layout_support::{layer, layout};
use overlaysnap::layout::make_durable;
use overlaysnap::ErrorKind;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};

#[test]
fn a_durable_layer_keeps_its_modes_and_content() {
    let dir = tempfile::tempdir().unwrap();
    let layout = layout(dir.path());
    let files: Vec<(String, String)> = (0..100)
        .map(|i| (format!("d{}/f{i}", i % 10), format!("content {i}")))
        .collect();
    let borrowed: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_str()))
        .collect();
    layer(&layout, 1, &borrowed);
    let private = layout.fs_path(1).join("d3");
    fs::set_permissions(&private, fs::Permissions::from_mode(0o700)).unwrap();
    let before = fs::metadata(layout.fs_path(1)).unwrap();

    layout.make_durable(1).unwrap();

    let after = fs::metadata(layout.fs_path(1)).unwrap();
    assert_eq!(after.mode() & 0o7777, 0o755);
    assert_eq!((after.uid(), after.gid()), (before.uid(), before.gid()));
    assert_eq!(fs::metadata(&private).unwrap().mode() & 0o7777, 0o700);
    assert_eq!(
        fs::read_to_string(layout.fs_path(1).join("d7/f97")).unwrap(),
        "content 97"
    );
}

#[test]
fn a_missing_directory_is_an_io_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = make_durable(&dir.path().join("missing")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Io);
    assert!(err.to_string().contains("missing"), "{err}");
}

/// The private directories a new root gets (`snapshots`, `l`) keep their 0700 through a
/// power loss: their mode is synced with the directories themselves, not only their names
/// (which the journal's opening makes durable).
#[test]
fn the_private_directories_keep_their_mode_through_a_power_loss() {
    use overlaysnap::fs::{FileSystem, SimFs};
    use overlaysnap::{Options, Snapshotter};
    use std::path::Path;
    use std::sync::Arc;

    let disk = SimFs::new();
    drop(Snapshotter::open_with_fs(Arc::new(disk.clone()), "/root", Options::default()).unwrap());
    let after = disk.crash();
    for dir in ["/root/snapshots", "/root/l"] {
        assert_eq!(after.metadata(Path::new(dir)).unwrap().mode, 0o700, "{dir}");
    }
}
