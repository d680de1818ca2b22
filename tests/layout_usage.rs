//! Disk usage as containerd's `fs.DiskUsage` counts it: allocated blocks × 512, inodes
//! with hard links counted once, the directory included, symbolic links not followed; and,
//! unlike containerd, nothing mounted inside.

mod layout_support;

use layout_support::{layer, layout, root_or_skip, Mounted};
use overlaysnap::core::Usage;
use overlaysnap::fs::Mount;
use overlaysnap::layout::disk_usage;
use std::fs;
use std::os::unix::fs::{symlink, MetadataExt};
use std::path::Path;

/// Allocated bytes of `path` as stat reports them.
fn allocated(path: &Path) -> i64 {
    fs::symlink_metadata(path).unwrap().blocks() as i64 * 512
}

#[test]
fn an_empty_directory_counts_itself() {
    let dir = tempfile::tempdir().unwrap();
    let usage = disk_usage(dir.path()).unwrap();
    assert_eq!(
        usage,
        Usage {
            size: allocated(dir.path()),
            inodes: 1
        }
    );
}

#[test]
fn files_count_their_allocated_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let top = dir.path();
    fs::write(top.join("small"), b"hello").unwrap();
    fs::write(top.join("big"), vec![7u8; 100_000]).unwrap();
    fs::File::create(top.join("sparse"))
        .unwrap()
        .set_len(1 << 30)
        .unwrap();
    fs::create_dir(top.join("sub")).unwrap();
    fs::write(top.join("sub/file"), vec![1u8; 5000]).unwrap();
    fs::File::open(top.join("big")).unwrap().sync_all().unwrap();

    let usage = disk_usage(top).unwrap();
    let expected: i64 = ["", "small", "big", "sparse", "sub", "sub/file"]
        .iter()
        .map(|p| allocated(&top.join(p)))
        .sum();
    assert_eq!(
        usage,
        Usage {
            size: expected,
            inodes: 6
        }
    );
    assert!(allocated(&top.join("big")) >= 100_000);
    assert!(
        allocated(&top.join("sparse")) < 1 << 20,
        "a hole allocates nothing"
    );
}

#[test]
fn hard_links_count_once() {
    let dir = tempfile::tempdir().unwrap();
    let top = dir.path();
    fs::write(top.join("file"), vec![3u8; 50_000]).unwrap();
    fs::create_dir(top.join("sub")).unwrap();
    fs::hard_link(top.join("file"), top.join("link")).unwrap();
    fs::hard_link(top.join("file"), top.join("sub/link")).unwrap();

    let usage = disk_usage(top).unwrap();
    let expected = allocated(top) + allocated(&top.join("sub")) + allocated(&top.join("file"));
    assert_eq!(
        usage,
        Usage {
            size: expected,
            inodes: 3
        }
    );
}

#[test]
fn symbolic_links_are_not_followed() {
    let dir = tempfile::tempdir().unwrap();
    let outside = dir.path().join("outside");
    fs::write(&outside, vec![9u8; 200_000]).unwrap();
    let top = dir.path().join("top");
    fs::create_dir(&top).unwrap();
    symlink(&outside, top.join("link")).unwrap();
    symlink(dir.path(), top.join("dirlink")).unwrap();

    let usage = disk_usage(&top).unwrap();
    let expected = allocated(&top) + allocated(&top.join("link")) + allocated(&top.join("dirlink"));
    assert_eq!(
        usage,
        Usage {
            size: expected,
            inodes: 3
        }
    );
}

#[test]
fn layout_usage_measures_the_fs_of_a_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let layout = layout(dir.path());
    layer(&layout, 1, &[("a", "12345")]);
    assert_eq!(
        layout.usage(1).unwrap(),
        disk_usage(&layout.fs_path(1)).unwrap()
    );
    assert_eq!(layout.usage(1).unwrap().inodes, 2);
}

#[test]
fn mounts_inside_are_not_counted() {
    if !root_or_skip("mounts_inside_are_not_counted") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let top = dir.path().join("top");
    fs::create_dir(&top).unwrap();
    let before = disk_usage(&top).unwrap();
    let tmpfs = Mount {
        kind: "tmpfs".into(),
        source: "tmpfs".into(),
        target: String::new(),
        options: vec!["size=4m".into()],
    };
    let mounted = Mounted::new(&[tmpfs], &top, "mnt");
    fs::write(mounted.join("big"), vec![1u8; 1 << 20]).unwrap();

    let usage = disk_usage(&top).unwrap();
    assert_eq!(
        usage.inodes, before.inodes,
        "the mount point is not counted"
    );
    assert_eq!(usage.size, before.size);
}
