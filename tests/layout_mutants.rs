//! What the mutation run on `src/layout/` found untested (docs/mutants.md). Each test
//! names the behaviour it pins; the layouts run on the simulated disk (`SimFs`) where a
//! fault must hit one chosen call, and on the real disk otherwise.

#[path = "support/trace.rs"]
mod trace;

use overlaysnap::core::{Kind, MountPlan};
use overlaysnap::fs::{Fault, FileSystem, OverlayFeatures, QuotaMode, SimFs};
use overlaysnap::layout::{overlay_options, Layout, QuotaChoice};
use overlaysnap::{Error, ErrorKind};
use std::path::Path;
use std::sync::Arc;

/// A layout at `/root` of a fresh simulated disk.
fn sim_layout() -> (SimFs, Layout) {
    let sim = SimFs::new();
    let layout = Layout::open_on(Arc::new(sim.clone()), "/root", &[]).expect("open layout");
    (sim, layout)
}

/// The numbers, counted from the last call before `op` starts, of the calls named `name`
/// (as the trace names them) that `op` makes: found by running `op` on a copy of the disk,
/// where the same calls come in the same order.
fn calls_named(
    sim: &SimFs,
    name: &str,
    op: impl FnOnce(&Layout) -> overlaysnap::Result<()>,
) -> Vec<u64> {
    let copy = sim.restart();
    let layout = Layout::open_on(Arc::new(copy.clone()), "/root", &[]).expect("open copy");
    copy.record_trace();
    let start = copy.calls();
    op(&layout).expect("the operation on the copy");
    trace::calls_named(&copy, name, start)
}

/// The first of [`calls_named`].
fn nth_call(sim: &SimFs, name: &str, op: impl FnOnce(&Layout) -> overlaysnap::Result<()>) -> u64 {
    calls_named(sim, name, op)[0]
}

/// The number of the first call named `name` (and on `path`, when given) that opening a
/// layout at `/root` of a fresh simulated disk makes.
fn call_of_open(name: &str, path: Option<&str>) -> u64 {
    let probe = SimFs::new();
    probe.record_trace();
    Layout::open_on(Arc::new(probe.clone()), "/root", &[]).expect("open layout");
    probe
        .trace()
        .iter()
        .find_map(|line| {
            let mut words = line.split(' ');
            let n: u64 = words.next()?.parse().ok()?;
            let on = (words.next()? == name).then_some(n)?;
            path.is_none_or(|p| words.next() == Some(p)).then_some(on)
        })
        .unwrap_or_else(|| panic!("no {name} in {:?}", probe.trace()))
}

/// Opening a layout at `/root` of a fresh simulated disk whose call `n` fails with `errno`.
fn open_failing(n: u64, errno: nix::errno::Errno) -> (SimFs, overlaysnap::Result<Layout>) {
    let sim = SimFs::new();
    sim.inject(n, Fault::Errno(errno as i32));
    let layout = Layout::open_on(Arc::new(sim.clone()), "/root", &[]);
    (sim, layout)
}

/// Installs the directory of snapshot `id` (Active), as Prepare does.
fn install(layout: &Layout, id: u64) {
    let temp = layout.prepare_dir(Kind::Active, None).expect("prepare dir");
    temp.install(id).expect("install");
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

#[test]
fn a_failed_rename_for_removal_fails_the_removal_and_keeps_the_directory() {
    let (sim, layout) = sim_layout();
    install(&layout, 1);
    let rename = nth_call(&sim, "rename", |l| l.remove_dir(1));
    sim.inject(sim.calls() + rename, Fault::Errno(libc_eio()));
    let err = layout.remove_dir(1).unwrap_err();
    assert_eq!(errno(&err), libc_eio(), "{err}");
    assert!(sim.symlink_metadata(&layout.fs_path(1)).is_ok());
    // Not retried: the next removal is a new call, and it succeeds.
    layout.remove_dir(1).unwrap();
    assert!(sim.symlink_metadata(&layout.snapshot_dir(1)).is_err());
}

#[test]
fn a_removal_name_taken_by_a_leftover_is_replaced_by_a_fresh_one() {
    for taken in [nix::errno::Errno::ENOTEMPTY, nix::errno::Errno::EEXIST] {
        let (sim, layout) = sim_layout();
        install(&layout, 1);
        let rename = nth_call(&sim, "rename", |l| l.remove_dir(1));
        sim.inject(sim.calls() + rename, Fault::Errno(taken as i32));
        layout.remove_dir(1).unwrap();
        assert_eq!(layout.list_entries().unwrap(), [], "{taken}");
    }
}

#[test]
fn a_failed_sync_of_the_roots_parent_fails_the_open_unless_permission_was_denied() {
    let sync = call_of_open("sync_dir", Some("/"));
    let (_, opened) = open_failing(sync, nix::errno::Errno::EIO);
    let err = opened.unwrap_err();
    assert_eq!(errno(&err), libc_eio(), "{err}");
    // A directory this process may not read is skipped with a warning.
    let (sim, opened) = open_failing(sync, nix::errno::Errno::EACCES);
    let layout = opened.unwrap();
    assert!(sim.symlink_metadata(layout.snapshots_dir()).is_ok());
}

#[test]
fn a_failed_creation_of_the_snapshots_directory_fails_the_open() {
    let create = call_of_open("create_dir", Some("/root/snapshots"));
    let (sim, opened) = open_failing(create, nix::errno::Errno::ENOSPC);
    let err = opened.unwrap_err();
    assert_eq!(errno(&err), nix::errno::Errno::ENOSPC as i32, "{err}");
    assert!(sim.symlink_metadata(Path::new("/root/snapshots")).is_err());
}

/// A temporary directory whose deletion failed when it was dropped is no longer in flight,
/// so the next Cleanup deletes it.
#[test]
fn a_dropped_temp_dir_left_behind_is_cleanup_garbage() {
    let (sim, layout) = sim_layout();
    let abandon = |l: &Layout| l.prepare_dir(Kind::Active, None).map(drop);
    let removal = nth_call(&sim, "remove_dir_all", abandon);
    sim.inject(sim.calls() + removal, Fault::Errno(libc_eio()));
    abandon(&layout).unwrap();
    let entries = layout.list_entries().unwrap();
    assert_eq!(entries.len(), 1, "the directory stayed: {entries:?}");
    let garbage = layout.find_garbage(Vec::new).unwrap();
    let removed = layout.remove_garbage(garbage).unwrap();
    assert_eq!(removed.len(), 1, "{removed:?}");
    assert_eq!(layout.list_entries().unwrap(), []);
}

/// A View on 800 parents: too long for a page with plain paths, even compacted, so its
/// mounts use the short links of `ROOT/l`.
fn long_chain() -> MountPlan {
    MountPlan {
        id: 1000,
        kind: Kind::View,
        parents: (1..=800).collect(),
        idmap: Default::default(),
    }
}

#[test]
fn short_links_already_there_are_kept_and_a_wrong_one_is_replaced() {
    let (sim, layout) = sim_layout();
    let first = layout.mounts(&long_chain()).unwrap();
    assert!(
        first[0].options.iter().any(|o| o.contains("/l/")),
        "{first:?}"
    );
    // A link left pointing elsewhere (by an older layout, say).
    sim.remove_file(&layout.link_path(7)).unwrap();
    sim.symlink(Path::new("../snapshots/999/fs"), &layout.link_path(7))
        .unwrap();
    let again = layout.mounts(&long_chain()).unwrap();
    assert_eq!(again, first);
    assert_eq!(
        sim.read_link(&layout.link_path(7)).unwrap(),
        Path::new("../snapshots/7/fs")
    );
}

#[test]
fn a_short_link_that_cannot_be_made_fails_the_mounts() {
    let (sim, layout) = sim_layout();
    let symlink = nth_call(&sim, "symlink", |l| l.mounts(&long_chain()).map(drop));
    sim.inject(sim.calls() + symlink, Fault::Errno(libc_eio()));
    let err = layout.mounts(&long_chain()).unwrap_err();
    assert_eq!(errno(&err), libc_eio(), "{err}");
}

#[test]
fn a_link_that_cannot_be_removed_fails_the_removal_of_its_snapshot() {
    let (sim, layout) = sim_layout();
    install(&layout, 1);
    let unlink = nth_call(&sim, "remove_file", |l| l.remove_dir(1));
    sim.inject(sim.calls() + unlink, Fault::Errno(libc_eio()));
    let err = layout.remove_dir(1).unwrap_err();
    assert_eq!(errno(&err), libc_eio(), "{err}");
    assert!(sim.symlink_metadata(&layout.fs_path(1)).is_ok());
}

/// The options of the overlay of an Active snapshot on snapshot 1 (one lowerdir: nothing
/// for the mount call to compact), at `/root` of a fresh simulated disk whose layout appends
/// the option `filler`, and the length of their mount data (options joined by commas).
fn active_with_option(filler: &str) -> (Vec<String>, usize) {
    let sim = SimFs::new();
    let layout = Layout::open_on(Arc::new(sim), "/root", &[filler.to_owned()]).unwrap();
    let plan = MountPlan {
        id: 2,
        kind: Kind::Active,
        parents: vec![1],
        idmap: Default::default(),
    };
    let mounts = layout.mounts(&plan).unwrap();
    assert_eq!(mounts.len(), 1);
    let options = mounts[0].options.clone();
    let data = options.join(",").len();
    (options, data)
}

/// Mount data must be shorter than a page (the kernel reads one page, and the last byte is
/// its terminating zero): at one byte less the plain paths are kept, at a page exactly the
/// short links are used.
#[test]
fn plain_paths_are_kept_while_the_mount_data_is_shorter_than_a_page() {
    let page = nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .unwrap()
        .unwrap() as usize;
    let (_, data) = active_with_option("a");
    let filler = "a".repeat(page - data);
    let (options, data) = active_with_option(&filler);
    assert_eq!(data, page - 1);
    assert!(
        options.iter().any(|o| o.contains("/snapshots/1/fs")),
        "{options:?}"
    );
    let (options, data) = active_with_option(&format!("{filler}a"));
    assert!(data < page, "{data}: short links fit");
    assert!(options.iter().any(|o| o.contains("/l/")), "{options:?}");
}

#[test]
fn a_temp_dir_name_taken_by_a_leftover_is_replaced_and_other_errors_fail() {
    let prepare = |l: &Layout| l.prepare_dir(Kind::Active, None).map(drop);
    let (sim, layout) = sim_layout();
    let create = nth_call(&sim, "create_dir", prepare);
    sim.inject(
        sim.calls() + create,
        Fault::Errno(nix::errno::Errno::EEXIST as i32),
    );
    let temp = layout.prepare_dir(Kind::Active, None).unwrap();
    assert!(sim.symlink_metadata(&temp.fs_path().unwrap()).is_ok());
    drop(temp);

    sim.inject(sim.calls() + create, Fault::Errno(libc_eio()));
    let err = layout.prepare_dir(Kind::Active, None).unwrap_err();
    assert_eq!(errno(&err), libc_eio(), "{err}");
    assert_eq!(layout.list_entries().unwrap(), []);
}

/// An entry gone between listing and looking is skipped; any other error fails the usage.
#[test]
fn usage_skips_what_vanished_while_it_walked_and_fails_on_other_errors() {
    // The first read_dir lists `fs`; the second symlink_metadata looks at its file.
    for (call, k) in [("read_dir", 0), ("symlink_metadata", 1)] {
        let (sim, layout) = sim_layout();
        install(&layout, 1);
        sim.plant(&layout.fs_path(1).join("file"), b"data");
        let whole = layout.usage(1).unwrap();
        assert_eq!(whole.inodes, 2);
        let at = calls_named(&sim, call, |l| l.usage(1).map(drop))[k];
        sim.inject(
            sim.calls() + at,
            Fault::Errno(nix::errno::Errno::ENOENT as i32),
        );
        assert_eq!(layout.usage(1).unwrap().inodes, 1, "{call}");
        sim.inject(sim.calls() + at, Fault::Errno(libc_eio()));
        let err = layout.usage(1).unwrap_err();
        assert_eq!(errno(&err), libc_eio(), "{call}: {err}");
    }
}

/// `make_durable` is a syncfs: after it, a power loss keeps the layer as it was.
#[test]
fn a_durable_layer_survives_a_power_loss() {
    let (sim, layout) = sim_layout();
    install(&layout, 1);
    let file = layout.fs_path(1).join("file");
    let handle = sim.create_file(&file).unwrap();
    handle.write_at(0, b"layer data").unwrap();
    drop(handle);
    assert!(
        sim.crash().symlink_metadata(&file).is_err(),
        "nothing was synced yet"
    );
    layout.make_durable(1).unwrap();
    let after = sim.crash();
    assert_eq!(after.read_file(&file).unwrap(), b"layer data");
    let syncfs = nth_call(&sim, "syncfs", |l| l.make_durable(1));
    sim.inject(sim.calls() + syncfs, Fault::Errno(libc_eio()));
    assert_eq!(errno(&layout.make_durable(1).unwrap_err()), libc_eio());
}

/// In the btrfs quota mode nothing is staged: install makes `<id>` in place (a subvolume
/// with its limit for Active, a plain directory for View), and a failure while filling it
/// deletes it, so that the id, issued again by the next Prepare, finds no `<id>`.
#[test]
fn btrfs_install_in_place_deletes_what_a_failure_left() {
    let btrfs_layout = |sim: &SimFs| {
        let mut layout = Layout::open_on(Arc::new(sim.clone()), "/root", &[]).expect("open");
        let mode = layout
            .enable_quotas(QuotaChoice::Auto, None)
            .expect("quotas");
        assert_eq!(mode, QuotaMode::Btrfs);
        layout
    };
    for kind in [Kind::Active, Kind::View] {
        let sim = SimFs::with_quotas(QuotaMode::Btrfs);
        let layout = btrfs_layout(&sim);
        let limit = Some(1 << 20);
        let staged = layout.prepare_dir_with_limit(kind, None, limit).unwrap();
        assert_eq!(staged.path(), None, "{kind}: nothing staged");
        assert_eq!(layout.list_entries().unwrap(), [], "{kind}");
        // The last create_dir of install is inside the filling (`work`, or a View's `fs`).
        let copy = sim.restart();
        let probe = btrfs_layout(&copy);
        let temp = probe.prepare_dir_with_limit(kind, None, limit).unwrap();
        copy.record_trace();
        let start = copy.calls();
        temp.install(5).unwrap();
        let fill = *trace::calls_named(&copy, "create_dir", start)
            .last()
            .unwrap();
        sim.inject(sim.calls() + fill, Fault::Errno(libc_eio()));
        let err = staged.install(5).unwrap_err();
        assert_eq!(errno(&err), libc_eio(), "{kind}: {err}");
        assert_eq!(
            layout.list_entries().unwrap(),
            [],
            "{kind}: the half-made <id> went"
        );
        layout
            .prepare_dir_with_limit(kind, None, limit)
            .unwrap()
            .install(5)
            .unwrap();
        let usage = layout.quota_usage(5).unwrap();
        match kind {
            Kind::Active => assert_eq!(usage.map(|u| u.limit), Some(limit), "a limited unit"),
            _ => assert_eq!(usage, None, "a View is no unit"),
        }
    }
}
