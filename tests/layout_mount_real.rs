//! Real mounts (as root) of the mounts the layout builds: bind, read-only view, a 3-layer
//! overlay with copy-up and whiteouts, and 128 and 500 layers, the latter with both plain
//! paths and short links.

mod layout_support;

use layout_support::{layer, layout, plan, root_or_skip, Mounted};
use overlaysnap::core::Kind;
use overlaysnap::fs::{mount_all, Mount};
use overlaysnap::ErrorKind;
use std::fs;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};

fn is_read_only(err: &io::Error) -> bool {
    err.raw_os_error() == Some(nix::libc::EROFS)
}

#[test]
fn active_without_parents_is_a_writable_bind_of_fs() {
    if !root_or_skip("active_without_parents_is_a_writable_bind_of_fs") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let layout = layout(dir.path());
    layer(&layout, 1, &[]);
    let mounted = Mounted::new(
        &layout.mounts(&plan(1, Kind::Active, &[])).unwrap(),
        dir.path(),
        "mnt",
    );
    fs::write(mounted.join("new"), "written").unwrap();
    assert_eq!(
        fs::read_to_string(layout.fs_path(1).join("new")).unwrap(),
        "written"
    );
    let mode = fs::metadata(&mounted.0).unwrap().mode() & 0o7777;
    assert_eq!(mode, 0o755, "the root of the mount is fs, 0755");
}

#[test]
fn views_are_read_only() {
    if !root_or_skip("views_are_read_only") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let layout = layout(dir.path());
    layer(&layout, 1, &[("a", "1")]);
    layer(&layout, 2, &[("b", "2")]);
    for (name, parents) in [("one", &[1][..]), ("two", &[2, 1][..])] {
        let mounted = Mounted::new(
            &layout.mounts(&plan(3, Kind::View, parents)).unwrap(),
            dir.path(),
            name,
        );
        assert_eq!(mounted.read("a"), "1");
        let err = fs::write(mounted.join("x"), "no").unwrap_err();
        assert!(is_read_only(&err), "{name}: {err}");
    }
}

#[test]
fn three_layers_merge_copy_up_and_whiteout() {
    if !root_or_skip("three_layers_merge_copy_up_and_whiteout") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let layout = layout(dir.path());
    layer(
        &layout,
        1,
        &[("bottom", "1"), ("shared", "from 1"), ("d/gone", "1")],
    );
    layer(&layout, 2, &[("middle", "2"), ("shared", "from 2")]);
    layer(&layout, 3, &[("top", "3")]);
    let active = layout.prepare_dir(Kind::Active, None).unwrap();
    active.install(4).unwrap();
    let mounted = Mounted::new(
        &layout.mounts(&plan(4, Kind::Active, &[3, 2, 1])).unwrap(),
        dir.path(),
        "mnt",
    );

    assert_eq!(mounted.read("bottom"), "1");
    assert_eq!(mounted.read("middle"), "2");
    assert_eq!(mounted.read("top"), "3");
    assert_eq!(mounted.read("shared"), "from 2", "the nearest parent wins");

    fs::write(mounted.join("new"), "upper").unwrap();
    fs::write(mounted.join("bottom"), "changed").unwrap();
    fs::remove_file(mounted.join("d/gone")).unwrap();

    let upper = layout.fs_path(4);
    assert_eq!(fs::read_to_string(upper.join("new")).unwrap(), "upper");
    assert_eq!(fs::read_to_string(upper.join("bottom")).unwrap(), "changed");
    assert_eq!(
        fs::read_to_string(layout.fs_path(1).join("bottom")).unwrap(),
        "1",
        "lower layers never change"
    );
    let whiteout = fs::symlink_metadata(upper.join("d/gone")).unwrap();
    assert!(whiteout.file_type().is_char_device());
    assert_eq!(whiteout.rdev(), 0, "a whiteout is a 0/0 character device");
    assert!(!mounted.join("d/gone").exists());
}

/// containerd's 128LayersMount shape: a bottom layer, then 127 layers that each overwrite
/// one file and add another; the Active snapshot on top sees all of them.
fn many_layers(layers: u64, first_id: u64) {
    let dir = tempfile::tempdir().unwrap();
    let layout = layout(dir.path());
    let ids: Vec<u64> = (first_id..first_id + layers).collect();
    for (i, &id) in ids.iter().enumerate() {
        let name = format!("added/file-{i}");
        let content = format!("{i} WAS HERE");
        layer(&layout, id, &[(&name, "same"), ("overwriteme", &content)]);
    }
    let top = first_id + layers;
    layout
        .prepare_dir(Kind::Active, None)
        .unwrap()
        .install(top)
        .unwrap();
    let parents: Vec<u64> = ids.iter().rev().copied().collect();
    let mounts = layout.mounts(&plan(top, Kind::Active, &parents)).unwrap();
    let uses_links = mounts[0].options.last().unwrap().contains("/l/");
    println!(
        "{layers} layers from id {first_id}: {} paths",
        if uses_links { "short link" } else { "plain" }
    );
    let cwd = std::env::current_dir().unwrap();
    let mounted = Mounted::new(&mounts, dir.path(), "mnt");
    assert_eq!(
        std::env::current_dir().unwrap(),
        cwd,
        "the relative mount changed no directory but its own thread's"
    );
    let last = layers - 1;
    assert_eq!(mounted.read("overwriteme"), format!("{last} WAS HERE"));
    for i in [0, 1, layers / 2, last] {
        assert_eq!(mounted.read(&format!("added/file-{i}")), "same");
    }
    assert_eq!(
        fs::read_dir(mounted.join("added")).unwrap().count() as u64,
        layers
    );
    fs::write(mounted.join("added/mine"), "top").unwrap();
    assert!(layout.fs_path(top).join("added/mine").exists());
}

#[test]
fn layers_128_mount() {
    if root_or_skip("layers_128_mount") {
        many_layers(128, 1);
    }
}

#[test]
fn layers_500_mount_with_plain_paths() {
    if root_or_skip("layers_500_mount_with_plain_paths") {
        many_layers(500, 1);
    }
}

#[test]
fn layers_500_mount_with_short_links() {
    if root_or_skip("layers_500_mount_with_short_links") {
        many_layers(500, 10_000_000);
    }
}

#[test]
fn data_longer_than_a_page_is_refused_before_mounting() {
    if !root_or_skip("data_longer_than_a_page_is_refused_before_mounting") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let too_long = Mount {
        kind: "overlay".into(),
        source: "overlay".into(),
        target: String::new(),
        options: vec![format!("lowerdir=/{}", "x".repeat(5000))],
    };
    let err = mount_all(&[too_long], dir.path()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert!(
        err.to_string().contains("mount options is too long"),
        "{err}"
    );
}

#[test]
fn a_failed_mount_undoes_the_earlier_ones() {
    if !root_or_skip("a_failed_mount_undoes_the_earlier_ones") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let layout = layout(dir.path());
    layer(&layout, 1, &[("a", "1")]);
    let target = dir.path().join("mnt");
    fs::create_dir(&target).unwrap();
    let mut mounts = layout.mounts(&plan(1, Kind::View, &[])).unwrap();
    mounts.push(Mount {
        kind: "bind".into(),
        source: dir.path().join("missing").to_string_lossy().into_owned(),
        target: String::new(),
        options: vec!["rbind".into()],
    });
    mount_all(&mounts, &target).unwrap_err();
    assert!(!target.join("a").exists(), "the first mount was undone");
}

#[test]
fn targets_are_joined_to_the_root_and_stay_inside() {
    if !root_or_skip("targets_are_joined_to_the_root_and_stay_inside") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let layout = layout(dir.path());
    layer(&layout, 1, &[("a", "1")]);
    let root = dir.path().join("mnt");
    fs::create_dir_all(root.join("sub")).unwrap();
    let mut mount = layout.mounts(&plan(1, Kind::View, &[])).unwrap().remove(0);
    mount.target = "/sub".into();
    mount_all(std::slice::from_ref(&mount), &root).unwrap();
    let mounted = Mounted(root.join("sub"));
    assert_eq!(mounted.read("a"), "1");
    drop(mounted);

    mount.target = "../escape".into();
    let err = mount_all(&[mount], &root).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
}
