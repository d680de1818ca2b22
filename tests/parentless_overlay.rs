//! [`Options::rebase`]: an Active snapshot without a parent mounts as `overlay` above the
//! empty `ROOT/empty`, so that containerd 2.2's applier, in a parallel unpack, writes a
//! layer's whiteouts as overlay whiteouts into the `upperdir` (as `OverlayConvertWhiteout`
//! does: a 0/0 character device for a deleted file, `trusted.overlay.opaque=y` on an opaque
//! directory) and they hide the lower files once the layer is committed above its parent.
//!
//! The mount shapes (with the option and without, docs/semantics.md#mounts and row 13 of
//! #differences), the rules of `ROOT/empty` (created 0755, refused when not an empty
//! directory, never garbage), and the whole parallel-unpack sequence with real mounts.

mod snapshotter_support;

use overlaysnap::fs::Mount;
use overlaysnap::{ErrorKind, Options, Snapshotter};
use snapshotter_support::{ids, infos, labels, listing, open, root_or_skip, Mounted, Scratch};
use std::ffi::CString;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

fn rebase(on: bool) -> Options {
    Options {
        rebase: on,
        upperdir_label: true,
        ..Options::default()
    }
}

/// The value of the option `name=` of `mount`.
fn option<'m>(mount: &'m Mount, name: &str) -> Option<&'m str> {
    let prefix = format!("{name}=");
    mount.options.iter().find_map(|o| o.strip_prefix(&prefix))
}

/// Row 13 of docs/semantics.md#differences: with `rebase`, a parentless Active snapshot is
/// an overlay mount (the overlay options, `workdir`, `upperdir`, then `lowerdir` =
/// `ROOT/empty`), from Prepare and from Mounts; a parentless View and every snapshot with a
/// parent mount as without the option, which bind-mounts a parentless Active snapshot as
/// containerd's overlay snapshotter does.
#[test]
fn with_rebase_a_parentless_active_snapshot_mounts_as_overlay_above_root_empty() {
    let dir = tempfile::tempdir().unwrap();
    let on = open(&dir.path().join("on"), rebase(true));
    let off = open(&dir.path().join("off"), rebase(false));
    let mut shapes = Vec::new();
    for sn in [&on, &off] {
        let active = sn.prepare("a", None, labels(&[])).unwrap();
        assert_eq!(sn.mounts("a").unwrap(), active);
        let view = sn.view("v", None, labels(&[])).unwrap();
        sn.commit("base", "a", labels(&[])).unwrap();
        let above = sn.prepare("b", Some("base"), labels(&[])).unwrap();
        shapes.push((active, view, above));
    }
    let root = on.root().to_str().unwrap().to_owned();
    let [(active_on, view_on, above_on), (active_off, view_off, above_off)] = &shapes[..] else {
        unreachable!()
    };

    let id = ids(&on)["base"];
    let mut expected = above_on[0].options.clone();
    expected.truncate(expected.len() - 3); // the overlay options, without work, upper, lower
    expected.extend([
        format!("workdir={root}/snapshots/{id}/work"),
        format!("upperdir={root}/snapshots/{id}/fs"),
        format!("lowerdir={root}/empty"),
    ]);
    assert_eq!(active_on.len(), 1);
    assert_eq!(
        (active_on[0].kind.as_str(), active_on[0].source.as_str()),
        ("overlay", "overlay")
    );
    assert_eq!(active_on[0].options, expected);

    let off_id = ids(&off)["base"];
    let off_root = off.root().to_str().unwrap();
    assert_eq!(
        active_off,
        &vec![Mount {
            kind: "bind".into(),
            source: format!("{off_root}/snapshots/{off_id}/fs"),
            target: String::new(),
            options: vec!["rw".into(), "rbind".into()],
        }]
    );
    assert!(
        !off.root().join("empty").exists(),
        "without rebase: no ROOT/empty"
    );

    // Everything else is the same with and without the option, up to the root's path.
    let relative = |mounts: &Vec<Mount>, root: &Path| {
        format!("{mounts:?}").replace(root.to_str().unwrap(), "ROOT")
    };
    assert_eq!(relative(view_on, on.root()), relative(view_off, off.root()));
    assert_eq!(view_on[0].kind, "bind");
    assert_eq!(
        relative(above_on, on.root()),
        relative(above_off, off.root())
    );
    assert_eq!(
        option(&above_on[0], "lowerdir"),
        Some(&*format!("{root}/snapshots/{id}/fs"))
    );
}

/// `ROOT/empty` is created 0755 at open; a reopen keeps it; Cleanup, the live check and
/// inspect do not count it as garbage.
#[test]
fn root_empty_is_created_at_open_and_is_not_garbage() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let sn = open(&root, rebase(true));
    let empty = root.join("empty");
    let md = fs::symlink_metadata(&empty).unwrap();
    assert!(md.is_dir());
    assert_eq!(md.mode() & 0o7777, 0o755);
    assert_eq!(md.uid(), nix::unistd::geteuid().as_raw());
    sn.prepare("a", None, labels(&[])).unwrap();
    assert_eq!(sn.cleanup().unwrap(), 0, "nothing to clean");
    assert_eq!(sn.check().unwrap().orphans, 0);
    drop(sn);
    assert_eq!(Snapshotter::inspect(&root).unwrap().orphans, 0);
    let sn = open(&root, rebase(true));
    assert_eq!(sn.open_report().orphans, 0);
    assert!(empty.is_dir() && fs::read_dir(&empty).unwrap().next().is_none());
}

/// A `ROOT/empty` that is not an empty directory would show through every parentless
/// Active mount: opening with `rebase` refuses the root (FailedPrecondition, naming it)
/// and changes nothing, on disk or in the snapshots; without `rebase` it opens. Once the
/// entry is removed, the root opens again.
#[test]
fn a_root_empty_that_is_not_an_empty_directory_refuses_the_open() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let empty = root.join("empty");
    let sn = open(&root, rebase(true));
    sn.prepare("a", None, labels(&[])).unwrap();
    let state = infos(&sn);
    drop(sn);
    type Spoil = fn(&Path);
    let spoils: [(&str, Spoil, Spoil); 3] = [
        (
            "a file inside",
            |e| fs::write(e.join("planted"), "x").unwrap(),
            |e| fs::remove_file(e.join("planted")).unwrap(),
        ),
        (
            "a directory inside",
            |e| fs::create_dir(e.join("sub")).unwrap(),
            |e| fs::remove_dir(e.join("sub")).unwrap(),
        ),
        (
            "a symbolic link instead",
            |e| {
                fs::remove_dir(e).unwrap();
                std::os::unix::fs::symlink("/", e).unwrap();
            },
            |e| fs::remove_file(e).unwrap(),
        ),
    ];
    for (what, spoil, repair) in spoils {
        spoil(&empty);
        let disk = listing(&root);
        let err = Snapshotter::open(&root, rebase(true)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::FailedPrecondition, "{what}: {err}");
        assert!(
            err.to_string().contains(empty.to_str().unwrap()),
            "{what}: {err}"
        );
        assert_eq!(listing(&root), disk, "{what}: the refusal changed the disk");
        let sn = open(&root, rebase(false));
        assert_eq!(infos(&sn), state, "{what}");
        drop(sn);
        repair(&empty);
        let sn = open(&root, rebase(true));
        assert_eq!(infos(&sn), state, "{what}");
        assert!(empty.is_dir(), "{what}");
    }
}

fn c_path(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).unwrap()
}

/// What `OverlayConvertWhiteout` does for `.wh.NAME`: a character device 0/0.
fn whiteout(p: &Path) {
    let rc = unsafe { nix::libc::mknod(c_path(p).as_ptr(), nix::libc::S_IFCHR, 0) };
    assert_eq!(rc, 0, "mknod {p:?}: {}", std::io::Error::last_os_error());
}

/// What `OverlayConvertWhiteout` does for `.wh..wh..opq`: `trusted.overlay.opaque=y`.
fn opaque(p: &Path) {
    let name = CString::new("trusted.overlay.opaque").unwrap();
    let rc = unsafe {
        nix::libc::setxattr(
            c_path(p).as_ptr(),
            name.as_ptr(),
            b"y".as_ptr().cast(),
            1,
            0,
        )
    };
    assert_eq!(rc, 0, "setxattr {p:?}: {}", std::io::Error::last_os_error());
}

/// containerd 2.2's parallel unpack with `rebase` on, real mounts: the lower layer is
/// written through its (overlay) mount; the upper layer is prepared without a parent and
/// its whiteouts are written into the `upperdir` named by its mount, as the applier's
/// overlay path does (`getOverlayPath`, then `archive.Apply` with
/// `OverlayConvertWhiteout`); its own mount already hides them; it is committed above the
/// lower layer; a view above it shows the deleted file gone and the opaque directory
/// without its lower entries.
#[test]
fn whiteouts_written_into_the_upperdir_survive_the_rebase() {
    if !root_or_skip("whiteouts_written_into_the_upperdir_survive_the_rebase") {
        return;
    }
    let scratch = Scratch::new("parentless-overlay");
    let sn = open(&scratch.root(), rebase(true));

    let lower = sn.prepare("extract-1", None, labels(&[])).unwrap();
    assert_eq!(lower[0].kind, "overlay");
    let m = Mounted::new(&lower, &scratch.work("lower"));
    fs::create_dir_all(m.join("etc")).unwrap();
    fs::write(m.join("etc/keep"), "k").unwrap();
    fs::write(m.join("etc/gone"), "g").unwrap();
    fs::create_dir_all(m.join("dir")).unwrap();
    fs::write(m.join("dir/old"), "o").unwrap();
    m.unmount();
    sn.commit("sha256:base", "extract-1", labels(&[])).unwrap();

    let upper_mounts = sn.prepare("extract-2", None, labels(&[])).unwrap();
    let upper = PathBuf::from(option(&upper_mounts[0], "upperdir").expect("an upperdir"));
    fs::create_dir_all(upper.join("etc")).unwrap();
    whiteout(&upper.join("etc/gone"));
    fs::create_dir_all(upper.join("dir")).unwrap();
    opaque(&upper.join("dir"));
    fs::write(upper.join("dir/new"), "n").unwrap();
    let own = Mounted::new(&upper_mounts, &scratch.work("upper"));
    assert!(
        !own.join("etc/gone").exists(),
        "its own mount hides the whiteout"
    );
    assert_eq!(fs::read_to_string(own.join("dir/new")).unwrap(), "n");
    own.unmount();
    sn.commit_with_parent("sha256:top", "extract-2", Some("sha256:base"), labels(&[]))
        .unwrap();
    assert_eq!(
        sn.stat("sha256:top").unwrap().parent.as_deref(),
        Some("sha256:base")
    );
    let top = sn
        .root()
        .join(format!("snapshots/{}/fs", ids(&sn)["sha256:top"]));
    assert!(fs::symlink_metadata(top.join("etc/gone"))
        .unwrap()
        .file_type()
        .is_char_device());

    let view = sn.view("view", Some("sha256:top"), labels(&[])).unwrap();
    assert_eq!(view[0].kind, "overlay");
    let m = Mounted::new(&view, &scratch.work("view"));
    assert_eq!(fs::read_to_string(m.join("etc/keep")).unwrap(), "k");
    assert!(!m.join("etc/gone").exists(), "the whiteout hides etc/gone");
    let dir: Vec<_> = fs::read_dir(m.join("dir"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(dir, ["new"], "the opaque dir hides dir/old");
    m.unmount();
}
