//! The quotas of the simulated disk ([`SimFs::with_quotas`]): units, limits, usage and
//! what each kind of crash keeps of them (the rules in the module documentation of
//! `src/fs/sim/quota.rs`).

use overlaysnap::fs::{FileSystem, QuotaMode, QuotaUnit, SimFs};
use std::collections::BTreeMap;
use std::io;
use std::path::Path;

const PROJECT: u32 = 0x4000_0007;

fn p(path: &str) -> &Path {
    Path::new(path)
}

/// A disk of `mode` with the durable directory `/d`.
fn disk(mode: QuotaMode) -> SimFs {
    let fs = SimFs::with_quotas(mode);
    fs.create_dir(p("/d")).unwrap();
    fs.sync_dir(p("/")).unwrap();
    fs
}

fn subvolume_limit(fs: &SimFs, dir: &str) -> Option<Option<u64>> {
    fs.quota_usage(p(dir), QuotaUnit::Subvolume)
        .unwrap()
        .map(|u| u.limit)
}

#[test]
fn a_disk_without_quotas_reports_the_walk_and_refuses_quota_calls() {
    let fs = SimFs::new();
    assert_eq!(fs.quota_mode(p("/")).unwrap(), QuotaMode::Walk);
    let e = fs
        .set_quota_limit(p("/"), QuotaUnit::Project(PROJECT), Some(1))
        .unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::Unsupported);
    let e = fs.limited_projects(p("/"), 0).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::Unsupported);
}

#[test]
fn a_subvolume_is_durable_as_a_new_directory_and_its_limit_goes_with_it() {
    let fs = disk(QuotaMode::Btrfs);
    fs.create_quota_dir(p("/d/s"), QuotaMode::Btrfs, None)
        .unwrap();
    fs.set_quota_limit(p("/d/s"), QuotaUnit::Subvolume, Some(8192))
        .unwrap();
    // No transaction commit at creation: a power loss before the parent is synced takes
    // the subvolume, and its limit with it.
    let lost = fs.crash();
    assert!(lost.symlink_metadata(p("/d/s")).is_err());
    assert!(lost.quota_limits().is_empty(), "{:?}", lost.quota_limits());
    // A power loss right after a commit of the file system's own keeps both.
    assert_eq!(
        subvolume_limit(&fs.crash_keeping_names(), "/d/s"),
        Some(Some(8192))
    );
    // An fsync of the parent makes the name durable, and commits the limit.
    fs.sync_dir(p("/d")).unwrap();
    assert_eq!(subvolume_limit(&fs.crash(), "/d/s"), Some(Some(8192)));
    // A plain directory is not a subvolume, and cannot be limited as one.
    fs.create_dir(p("/d/plain")).unwrap();
    assert_eq!(subvolume_limit(&fs, "/d/plain"), None);
    let e = fs
        .set_quota_limit(p("/d/plain"), QuotaUnit::Subvolume, Some(1))
        .unwrap_err();
    assert_eq!(e.raw_os_error(), Some(nix::libc::EINVAL));
}

#[test]
fn a_subvolume_counts_its_files_refuses_a_write_past_its_limit_and_keeps_its_files() {
    let fs = disk(QuotaMode::Btrfs);
    fs.create_quota_dir(p("/d/s"), QuotaMode::Btrfs, None)
        .unwrap();
    fs.create_dir(p("/d/s/fs")).unwrap();
    let file = fs.create_file(p("/d/s/fs/f")).unwrap();
    file.write_at(0, &[1; 5000]).unwrap();
    let usage = fs
        .quota_usage(p("/d/s"), QuotaUnit::Subvolume)
        .unwrap()
        .unwrap();
    // Two directories of one block and a file of two, btrfs counting no inodes.
    assert_eq!((usage.bytes, usage.inodes), (4 * 4096, None));
    fs.set_quota_limit(p("/d/s"), QuotaUnit::Subvolume, Some(5 * 4096))
        .unwrap();
    let e = file.write_at(5000, &[2; 8192]).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(nix::libc::EDQUOT));
    assert_eq!(fs.read_file(p("/d/s/fs/f")).unwrap().len(), 5000);
    let e = file.set_len(4 * 4096).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(nix::libc::EDQUOT));
    file.write_at(5000, &[2; 100]).unwrap();
    // Files do not leave their subvolume; the subvolume itself moves.
    let e = fs.rename(p("/d/s/fs/f"), p("/d/f")).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(nix::libc::EXDEV));
    fs.rename(p("/d/s"), p("/d/t")).unwrap();
    assert!(subvolume_limit(&fs, "/d/t").is_some());
}

#[test]
fn a_destroyed_subvolume_comes_back_with_its_limit_until_the_removal_is_durable() {
    let fs = disk(QuotaMode::Btrfs);
    fs.create_quota_dir(p("/d/s"), QuotaMode::Btrfs, None)
        .unwrap();
    fs.set_quota_limit(p("/d/s"), QuotaUnit::Subvolume, Some(4096))
        .unwrap();
    fs.syncfs(p("/")).unwrap();
    fs.remove_dir_all(p("/d/s")).unwrap();
    assert!(fs.quota_limits().is_empty(), "the qgroup went with it");
    assert_eq!(subvolume_limit(&fs.crash(), "/d/s"), Some(Some(4096)));
    fs.sync_dir(p("/d")).unwrap();
    let after = fs.crash();
    assert!(after.metadata(p("/d/s")).is_err());
    assert!(after.quota_limits().is_empty());
}

#[test]
fn a_project_id_is_inode_metadata_and_is_inherited() {
    let fs = disk(QuotaMode::XfsProject);
    fs.create_dir(p("/d/n")).unwrap();
    fs.sync_dir(p("/d")).unwrap();
    fs.sync_dir(p("/d/n")).unwrap();
    fs.assign_project(p("/d/n"), PROJECT).unwrap();
    fs.create_dir(p("/d/n/fs")).unwrap();
    let unit = QuotaUnit::Project(PROJECT);
    let usage = fs.quota_usage(p("/d/n"), unit).unwrap().unwrap();
    assert_eq!((usage.bytes, usage.inodes), (2 * 4096, Some(2)));
    assert_eq!(fs.quota_usage(p("/d"), unit).unwrap(), None);
    // Not fsynced: a power loss forgets the project, a commit of its own keeps it.
    assert_eq!(fs.crash().quota_usage(p("/d/n"), unit).unwrap(), None);
    assert!(fs
        .crash_keeping_names()
        .quota_usage(p("/d/n"), unit)
        .unwrap()
        .is_some());
    fs.sync_dir(p("/d/n")).unwrap();
    assert!(fs.crash().quota_usage(p("/d/n"), unit).unwrap().is_some());
    // Nothing moves into a directory that passes on another project.
    fs.create_file(p("/d/g")).unwrap();
    let e = fs.rename(p("/d/g"), p("/d/n/g")).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(nix::libc::EXDEV));
}

#[test]
fn a_project_over_its_limit_fails_as_xfs_and_ext4_fail_it() {
    for (mode, errno) in [
        (QuotaMode::XfsProject, nix::libc::ENOSPC),
        (QuotaMode::Ext4Project, nix::libc::EDQUOT),
    ] {
        let fs = disk(mode);
        fs.create_dir(p("/d/n")).unwrap();
        fs.assign_project(p("/d/n"), PROJECT).unwrap();
        fs.set_quota_limit(p("/d/n"), QuotaUnit::Project(PROJECT), Some(3 * 4096))
            .unwrap();
        let file = fs.create_file(p("/d/n/f")).unwrap();
        file.write_at(0, &[1; 8192]).unwrap();
        let e = file.write_at(8192, &[1; 1]).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(errno), "{mode}");
        assert_eq!(fs.read_file(p("/d/n/f")).unwrap().len(), 8192, "{mode}");
    }
}

#[test]
fn a_project_limit_is_durable_at_a_directory_fsync_or_syncfs_and_listed_in_order() {
    let fs = disk(QuotaMode::Ext4Project);
    let set = |id: u32, limit: Option<u64>| {
        fs.set_quota_limit(p("/d"), QuotaUnit::Project(id), limit)
            .unwrap()
    };
    set(PROJECT, Some(4096));
    set(PROJECT + 2, Some(4096));
    set(7, Some(4096));
    assert_eq!(
        fs.limited_projects(p("/d"), PROJECT).unwrap(),
        vec![PROJECT, PROJECT + 2]
    );
    assert!(fs.crash().limited_projects(p("/d"), 0).unwrap().is_empty());
    let file = fs.create_file(p("/d/f")).unwrap();
    file.sync_data().unwrap();
    assert!(
        fs.crash().limited_projects(p("/d"), 0).unwrap().is_empty(),
        "fdatasync commits no limit"
    );
    fs.sync_dir(p("/d")).unwrap();
    assert_eq!(fs.crash().limited_projects(p("/d"), 0).unwrap().len(), 3);
    set(PROJECT, None);
    assert_eq!(fs.crash().limited_projects(p("/d"), 0).unwrap().len(), 3);
    fs.syncfs(p("/")).unwrap();
    assert_eq!(
        fs.crash().limited_projects(p("/d"), 0).unwrap(),
        vec![7, PROJECT + 2]
    );
}

#[test]
fn the_limits_list_names_each_subvolume_by_inode_and_a_power_loss_drops_the_lost_ones() {
    let fs = disk(QuotaMode::Btrfs);
    fs.create_dir(p("/e")).unwrap();
    fs.create_quota_dir(p("/d/s"), QuotaMode::Btrfs, Some(8192))
        .unwrap();
    let ino = fs.symlink_metadata(p("/d/s")).unwrap().ino;
    assert_eq!(fs.quota_limits(), BTreeMap::from([(ino, 8192)]));
    // An fsync of another directory commits the limit, not the subvolume's name: the
    // power loss takes the subvolume, and the limit with it.
    fs.sync_dir(p("/e")).unwrap();
    let lost = fs.crash();
    assert!(lost.symlink_metadata(p("/d/s")).is_err());
    assert!(lost.quota_limits().is_empty(), "{:?}", lost.quota_limits());
    fs.sync_dir(p("/d")).unwrap();
    assert_eq!(fs.crash().quota_limits(), BTreeMap::from([(ino, 8192)]));
}

#[test]
fn a_disk_of_subvolumes_has_no_projects() {
    let fs = disk(QuotaMode::Btrfs);
    let e = fs
        .set_quota_limit(p("/d"), QuotaUnit::Project(PROJECT), Some(4096))
        .unwrap_err();
    assert_eq!(e.raw_os_error(), Some(nix::libc::ENOTTY));
    let e = fs
        .quota_usage(p("/d"), QuotaUnit::Project(PROJECT))
        .unwrap_err();
    assert_eq!(e.raw_os_error(), Some(nix::libc::ENOTTY));
}

#[test]
fn a_project_grows_to_its_limit_exactly_and_rewrites_in_place_when_over_it() {
    let fs = disk(QuotaMode::XfsProject);
    fs.create_dir(p("/d/n")).unwrap();
    fs.assign_project(p("/d/n"), PROJECT).unwrap();
    let unit = QuotaUnit::Project(PROJECT);
    // The directory's block, and a file of one block grown to two: three blocks.
    fs.set_quota_limit(p("/d/n"), unit, Some(3 * 4096)).unwrap();
    let file = fs.create_file(p("/d/n/f")).unwrap();
    file.write_at(0, &[1; 4096]).unwrap();
    file.write_at(4096, &[2; 4096]).unwrap();
    let e = file.write_at(8192, &[3; 1]).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(nix::libc::ENOSPC));
    // A limit lowered below the usage refuses growth, not a rewrite of allocated blocks.
    fs.set_quota_limit(p("/d/n"), unit, Some(4096)).unwrap();
    file.write_at(0, &[4; 100]).unwrap();
    assert_eq!(fs.read_file(p("/d/n/f")).unwrap()[..2], [4, 4]);
    // Files move within their project.
    fs.rename(p("/d/n/f"), p("/d/n/g")).unwrap();
}

#[test]
fn removing_a_directory_keeps_the_limit_of_a_project_numbered_as_its_inode() {
    // A project's limit is not tied to any inode, whatever its number.
    let fs = disk(QuotaMode::Ext4Project);
    fs.create_dir(p("/d/n")).unwrap();
    let ino = fs.symlink_metadata(p("/d/n")).unwrap().ino;
    let id = u32::try_from(ino).unwrap();
    fs.assign_project(p("/d/n"), id).unwrap();
    fs.set_quota_limit(p("/d/n"), QuotaUnit::Project(id), Some(4096))
        .unwrap();
    fs.remove_dir_all(p("/d/n")).unwrap();
    assert_eq!(fs.quota_limits(), BTreeMap::from([(ino, 4096)]));
}
