//! The mounts built from a plan, option by option, as containerd 2.x's overlay snapshotter
//! builds them; and the switch to short links when a lowerdir list would not fit in a page.

mod layout_support;

use layout_support::{layout_with, plan};
use overlaysnap::core::Kind;
use overlaysnap::fs::{Mount, OverlayFeatures};
use overlaysnap::layout::{overlay_options, Layout};
use overlaysnap::ErrorKind;
use rstest::rstest;
use std::fs;
use std::path::Path;

const INDEX: OverlayFeatures = OverlayFeatures {
    index: true,
    userxattr: false,
};

fn fs_of(layout: &Layout, id: u64) -> String {
    layout.fs_path(id).to_string_lossy().into_owned()
}

fn strings(options: &[&str]) -> Vec<String> {
    options.iter().map(|o| o.to_string()).collect()
}

#[rstest]
#[case::active_is_writable(Kind::Active, "rw")]
#[case::view_is_read_only(Kind::View, "ro")]
fn without_parents_binds_own_fs(#[case] kind: Kind, #[case] mode: &str) {
    let dir = tempfile::tempdir().unwrap();
    let layout = layout_with(dir.path(), &["volatile"], INDEX);
    let mounts = layout.mounts(&plan(7, kind, &[])).unwrap();
    assert_eq!(
        mounts,
        vec![Mount {
            kind: "bind".into(),
            source: fs_of(&layout, 7),
            target: String::new(),
            options: strings(&[mode, "rbind"]),
        }]
    );
}

#[test]
fn view_of_one_parent_binds_the_parent_read_only() {
    let dir = tempfile::tempdir().unwrap();
    let layout = layout_with(dir.path(), &["volatile"], INDEX);
    let mounts = layout.mounts(&plan(9, Kind::View, &[4])).unwrap();
    assert_eq!(
        mounts,
        vec![Mount {
            kind: "bind".into(),
            source: fs_of(&layout, 4),
            target: String::new(),
            options: strings(&["ro", "rbind"]),
        }]
    );
}

#[test]
fn active_with_parents_is_an_overlay_nearest_parent_first() {
    let dir = tempfile::tempdir().unwrap();
    let layout = layout_with(dir.path(), &[], INDEX);
    let mounts = layout.mounts(&plan(5, Kind::Active, &[4, 2, 1])).unwrap();
    let work = layout.work_path(5).to_string_lossy().into_owned();
    let lower = [4, 2, 1].map(|id| fs_of(&layout, id)).join(":");
    assert_eq!(
        mounts,
        vec![Mount {
            kind: "overlay".into(),
            source: "overlay".into(),
            target: String::new(),
            options: vec![
                "index=off".into(),
                format!("workdir={work}"),
                format!("upperdir={}", fs_of(&layout, 5)),
                format!("lowerdir={lower}"),
            ],
        }]
    );
}

#[test]
fn view_with_several_parents_is_an_overlay_of_lowerdirs_only() {
    let dir = tempfile::tempdir().unwrap();
    let layout = layout_with(dir.path(), &[], INDEX);
    let mounts = layout.mounts(&plan(6, Kind::View, &[3, 2])).unwrap();
    let lower = format!("lowerdir={}:{}", fs_of(&layout, 3), fs_of(&layout, 2));
    assert_eq!(mounts[0].kind, "overlay");
    assert_eq!(mounts[0].source, "overlay");
    assert_eq!(mounts[0].options, vec!["index=off".to_string(), lower]);
}

#[test]
fn committed_plans_have_no_mounts() {
    let dir = tempfile::tempdir().unwrap();
    let layout = layout_with(dir.path(), &[], INDEX);
    let err = layout.mounts(&plan(6, Kind::Committed, &[3])).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::FailedPrecondition);
}

/// docs/semantics.md#mounts (containerd 1.6): `index=off`, then `userxattr`, then the configured
/// options, then workdir, upperdir, lowerdir; neither is added twice, and any configured
/// `index` option wins.
#[rstest]
#[case::nothing(&[], false, false, &[])]
#[case::index(&[], true, false, &["index=off"])]
#[case::userxattr(&[], false, true, &["userxattr"])]
#[case::both(&[], true, true, &["index=off", "userxattr"])]
#[case::extra_last(&["volatile"], true, true, &["index=off", "userxattr", "volatile"])]
#[case::configured_index(&["index=on"], true, false, &["index=on"])]
#[case::configured_userxattr(&["userxattr"], true, true, &["index=off", "userxattr"])]
fn overlay_option_order(
    #[case] configured: &[&str],
    #[case] index: bool,
    #[case] userxattr: bool,
    #[case] head: &[&str],
) {
    let features = OverlayFeatures { index, userxattr };
    assert_eq!(
        overlay_options(&strings(configured), features),
        strings(head)
    );

    let dir = tempfile::tempdir().unwrap();
    let layout = layout_with(dir.path(), configured, features);
    let options = &layout.mounts(&plan(3, Kind::Active, &[2])).unwrap()[0].options;
    let n = head.len();
    assert_eq!(&options[..n], strings(head));
    assert!(options[n].starts_with("workdir="));
    assert!(options[n + 1].starts_with("upperdir="));
    assert_eq!(options[n + 2], format!("lowerdir={}", fs_of(&layout, 2)));
    assert_eq!(options.len(), n + 3);
}

/// Bytes of mount data containerd's mount code passes for `m` once it has made the
/// lowerdirs relative to `common`: every option but the flags, comma-separated.
fn data_len_relative_to(m: &Mount, common: &Path) -> usize {
    let common = format!("{}/", common.display());
    m.options
        .iter()
        .filter(|o| !["ro", "rw", "rbind"].contains(&o.as_str()))
        .map(|o| match o.strip_prefix("lowerdir=") {
            Some(dirs) => {
                let relative: Vec<&str> = dirs.split(':').map(|d| &d[common.len()..]).collect();
                "lowerdir=".len() + relative.join(":").len()
            }
            None => o.len(),
        })
        .sum::<usize>()
        + m.options.len()
        - 1
}

/// 128 layers (containerd's suite: 1 + 127) and 500 layers (the kernel's limit) with
/// small ids keep containerd's plain `snapshots/<id>/fs` paths.
#[rstest]
#[case::layers_128(128)]
#[case::layers_500(500)]
fn small_ids_keep_plain_paths(#[case] layers: u64) {
    let dir = tempfile::tempdir().unwrap();
    let layout = layout_with(dir.path(), &[], INDEX);
    let parents: Vec<u64> = (1..=layers).rev().collect();
    let m = &layout
        .mounts(&plan(layers + 1, Kind::Active, &parents))
        .unwrap()[0];
    let lower = m.options.last().unwrap().strip_prefix("lowerdir=").unwrap();
    assert_eq!(lower.split(':').count() as u64, layers);
    assert!(lower
        .split(':')
        .all(|d| d.starts_with(&*layout.snapshots_dir().to_string_lossy())));
    let len = data_len_relative_to(m, layout.snapshots_dir());
    println!("{layers} layers, ids 1..={layers}: {len} bytes of data once compacted");
    assert!(len < 4096);
}

/// 500 layers with 7-digit ids do not fit as `<id>/fs` (10 bytes a layer) and switch to
/// the short links, which are created and point at the layers.
#[test]
fn large_ids_switch_to_short_links() {
    let dir = tempfile::tempdir().unwrap();
    let layout = layout_with(dir.path(), &[], INDEX);
    let parents: Vec<u64> = (1_000_000..1_000_500).rev().collect();
    let m = &layout
        .mounts(&plan(2_000_000, Kind::Active, &parents))
        .unwrap()[0];
    let links = layout.link_path(0).parent().unwrap().to_path_buf();
    let lower = m.options.last().unwrap().strip_prefix("lowerdir=").unwrap();
    let dirs: Vec<&str> = lower.split(':').collect();
    assert_eq!(dirs.len(), 500);
    for (dir, &id) in dirs.iter().zip(&parents) {
        assert_eq!(Path::new(dir), layout.link_path(id));
        let target = fs::read_link(dir).unwrap();
        assert_eq!(
            target,
            Path::new("../snapshots").join(id.to_string()).join("fs")
        );
        assert_eq!(
            links.join(target),
            links
                .join("..")
                .join("snapshots")
                .join(id.to_string())
                .join("fs")
        );
    }
    // The upper and work dirs keep their plain paths.
    assert!(m
        .options
        .contains(&format!("upperdir={}", fs_of(&layout, 2_000_000))));
    let plain_len: usize = parents.iter().map(|id| format!("{id}/fs").len() + 1).sum();
    let len = data_len_relative_to(m, &links);
    println!("500 layers, 7-digit ids: {plain_len} bytes of lowerdirs as <id>/fs, {len} bytes of data with links");
    assert!(plain_len > 4096);
    assert!(len < 4096);
}

#[test]
fn a_chain_too_long_even_for_links_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let layout = layout_with(dir.path(), &[], INDEX);
    let parents: Vec<u64> = (u64::MAX - 2000..u64::MAX).collect();
    let err = layout.mounts(&plan(1, Kind::View, &parents)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::FailedPrecondition);
}
