//! Host probes: `d_type` on the actual file systems (and a root refused without it), the
//! overlay `index` option, user namespaces and kernel releases for `userxattr`.

mod layout_support;

use layout_support::root_or_skip;
use overlaysnap::fs::{
    needs_userxattr, release_at_least, running_in_user_ns, supports_d_type, supports_index,
    uid_map_in_user_ns, unmount_all, OverlayFeatures, Unmount,
};
use overlaysnap::layout::Layout;
use overlaysnap::ErrorKind;
use rstest::rstest;
use std::fs;
use std::path::Path;
use std::process::Command;

#[test]
fn the_test_file_system_has_d_type() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("f"), "").unwrap();
    assert!(supports_d_type(dir.path()).unwrap());
    let empty = tempfile::tempdir().unwrap();
    let err = supports_d_type(empty.path()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
}

/// ext2 without the `filetype` feature reports no d_type: the layout refuses it with
/// containerd's message. Needs root, `mkfs.ext2` and loop devices.
#[test]
fn a_file_system_without_d_type_is_refused() {
    if !root_or_skip("a_file_system_without_d_type_is_refused") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("image");
    fs::File::create(&image).unwrap().set_len(16 << 20).unwrap();
    let mnt = dir.path().join("mnt");
    fs::create_dir(&mnt).unwrap();
    let run = |program: &str, args: &[&Path]| {
        Command::new(program)
            .args(args)
            .output()
            .is_ok_and(|out| out.status.success())
    };
    let mkfs = run(
        "mkfs.ext2",
        &[
            Path::new("-q"),
            Path::new("-O"),
            Path::new("^filetype"),
            &image,
        ],
    );
    if !mkfs || !run("mount", &[Path::new("-o"), Path::new("loop"), &image, &mnt]) {
        println!("skipping a_file_system_without_d_type_is_refused: no mkfs.ext2 or loop mount");
        return;
    }
    let root = mnt.join("root");
    let refused = Layout::open(&root, &[]);
    let listed = supports_d_type(&mnt);
    unmount_all(&mnt, Unmount::Detach).unwrap();

    assert!(!listed.unwrap());
    let err = refused.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::FailedPrecondition);
    assert!(
        err.to_string().contains(
            "does not support d_type. If the backing filesystem is xfs, please reformat with \
             ftype=1 to enable d_type support"
        ),
        "{err}"
    );
}

#[test]
fn index_support_is_read_from_sysfs() {
    assert_eq!(
        supports_index(),
        Path::new("/sys/module/overlay/parameters/index").exists()
    );
}

#[rstest]
#[case::initial("         0          0 4294967295", false)]
#[case::rootless("         0       1000          1", true)]
#[case::subrange("0 100000 65536", true)]
#[case::empty("", false)]
#[case::garbage("not a map", false)]
fn uid_maps(#[case] line: &str, #[case] in_user_ns: bool) {
    assert_eq!(uid_map_in_user_ns(line), in_user_ns);
}

#[rstest]
#[case("6.18.44-fc-v782", true)]
#[case("5.11.0", true)]
#[case("5.10.0-8-amd64", false)]
#[case("4.19.0", false)]
#[case("10.0", true)]
#[case("", false)]
#[case("linux", false)]
fn releases_from_5_11(#[case] release: &str, #[case] at_least: bool) {
    assert_eq!(release_at_least(release, (5, 11)), at_least);
}

/// In the initial user namespace `userxattr` is never needed (containerd's fast path).
#[test]
fn userxattr_follows_the_user_namespace() {
    let dir = tempfile::tempdir().unwrap();
    if running_in_user_ns() {
        println!("skipping userxattr_follows_the_user_namespace: runs in a user namespace");
        return;
    }
    assert!(!needs_userxattr(dir.path()).unwrap());
    assert_eq!(
        OverlayFeatures::probe(dir.path()),
        OverlayFeatures {
            index: supports_index(),
            userxattr: false
        }
    );
}
