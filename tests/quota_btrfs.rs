//! Quotas on btrfs, natively, as root: each test makes its own loop btrfs (`truncate`,
//! `mkfs.btrfs`, `mount -o loop`, `btrfs quota enable`) under a temporary directory and
//! runs the shared bodies of tests/quota_support on it, then the btrfs-specific checks:
//! subvolumes and qgroups released at Remove, a root that lost its quotas refused, and
//! recovery of a subvolume that exists on disk but was never recorded, and the reverse.
//!
//! Needs root and btrfs-progs (`mkfs.btrfs`, `btrfs`): without root the tests are skipped
//! with a message; without btrfs-progs they fail, unless `OVERLAYSNAP_QUOTA_BTRFS=skip`.

mod quota_support;

use overlaysnap::fs::{FileSystem, QuotaMode, QuotaUnit, RealFs};
use overlaysnap::{ErrorKind, Labels, Options, QuotaChoice, Snapshotter};
use quota_support::*;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A loop-mounted btrfs of its own, quotas on; unmounted and deleted when dropped.
struct LoopBtrfs {
    dir: tempfile::TempDir,
    mnt: PathBuf,
}

fn run(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl LoopBtrfs {
    /// `None` (with a message) when not root, or without btrfs-progs and
    /// `OVERLAYSNAP_QUOTA_BTRFS=skip`.
    fn new(test: &str, quotas: bool) -> Option<LoopBtrfs> {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("SKIPPING {test}: needs root for loop devices and mounts");
            return None;
        }
        if Command::new("mkfs.btrfs")
            .arg("--version")
            .output()
            .is_err()
        {
            if std::env::var("OVERLAYSNAP_QUOTA_BTRFS").as_deref() == Ok("skip") {
                eprintln!("SKIPPING {test}: mkfs.btrfs missing (install btrfs-progs)");
                return None;
            }
            panic!("{test}: mkfs.btrfs missing: install btrfs-progs");
        }
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join("btrfs.img");
        let mnt = dir.path().join("mnt");
        fs::create_dir(&mnt).unwrap();
        let (image_s, mnt_s) = (image.to_str().unwrap(), mnt.to_str().unwrap().to_owned());
        run("truncate", &["-s", "1G", image_s]);
        run("mkfs.btrfs", &["-q", image_s]);
        run("mount", &["-o", "loop", image_s, &mnt_s]);
        let fs = LoopBtrfs { dir, mnt };
        if quotas {
            run("btrfs", &["quota", "enable", &mnt_s]);
        }
        Some(fs)
    }

    fn path(&self) -> &Path {
        &self.mnt
    }
}

impl Drop for LoopBtrfs {
    fn drop(&mut self) {
        let unmounted = Command::new("umount").arg(&self.mnt).status();
        if !unmounted.is_ok_and(|s| s.success()) {
            let _ = Command::new("umount").arg("-l").arg(&self.mnt).status();
        }
        let _ = self.dir.path();
    }
}

/// The qgroup ids (`0/N`) that `btrfs qgroup show` lists.
fn qgroups(mnt: &Path) -> Vec<String> {
    run("btrfs", &["subvolume", "sync", mnt.to_str().unwrap()]);
    run("btrfs", &["qgroup", "show", "--raw", mnt.to_str().unwrap()])
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|w| w.starts_with("0/"))
        .map(str::to_owned)
        .collect()
}

/// The subvolume id of the directory `dir`.
fn subvolume_id(dir: &Path) -> String {
    let out = run(
        "btrfs",
        &["inspect-internal", "rootid", dir.to_str().unwrap()],
    );
    format!("0/{}", out.trim())
}

#[test]
fn quota_usage_equals_the_walk_on_random_trees() {
    let Some(btrfs) = LoopBtrfs::new("quota_usage_equals_the_walk_on_random_trees", true) else {
        return;
    };
    usage_matches_walk(btrfs.path(), QuotaMode::Btrfs, "btrfs usage");
}

#[test]
fn a_limit_stops_writes_with_edquot_inside_the_mounts() {
    let Some(btrfs) = LoopBtrfs::new("a_limit_stops_writes_with_edquot", true) else {
        return;
    };
    limit_is_enforced_in_mounts(btrfs.path());
}

#[test]
fn malformed_or_negative_sizes_are_refused_and_change_nothing() {
    let Some(btrfs) = LoopBtrfs::new("malformed_or_negative_sizes", true) else {
        return;
    };
    let before = qgroups(btrfs.path());
    bad_labels_change_nothing(btrfs.path());
    // The one good Prepare made one subvolume; the refused ones none.
    assert_eq!(qgroups(btrfs.path()).len(), before.len() + 1);
}

#[test]
fn a_restart_keeps_limits_and_usage() {
    let Some(btrfs) = LoopBtrfs::new("a_restart_keeps_limits_and_usage", true) else {
        return;
    };
    restart_keeps_limit_and_usage(btrfs.path());
}

#[test]
fn default_size_limits_snapshots_without_the_label() {
    let Some(btrfs) = LoopBtrfs::new("default_size_limits", true) else {
        return;
    };
    let options = Options {
        default_size: Some(6 << 20),
        ..options()
    };
    let s = Snapshotter::open(btrfs.path().join("root"), options).unwrap();
    s.prepare("d", None, Labels::new()).unwrap();
    s.prepare("l", None, sized("12MiB")).unwrap();
    // Enforced at once: the subvolume is created with its limit in one call.
    let (_, err) = fill(&upper(&s, "d").join("big"));
    assert_over_limit(&err, QuotaMode::Btrfs, "default_size");
    // Read back, as usage, from the last committed transaction.
    nix::unistd::syncfs(fs::File::open(btrfs.path()).unwrap()).unwrap();
    let dir = |key: &str| upper(&s, key).parent().unwrap().to_path_buf();
    let limit = |key: &str| {
        RealFs
            .quota_usage(&dir(key), QuotaUnit::Subvolume)
            .unwrap()
            .unwrap()
            .limit
    };
    assert_eq!(limit("d"), Some(6 << 20));
    assert_eq!(
        limit("l"),
        Some(12 << 20),
        "the label wins over default_size"
    );
}

#[test]
fn remove_releases_the_subvolume_and_its_qgroup() {
    let Some(btrfs) = LoopBtrfs::new("remove_releases", true) else {
        return;
    };
    let s = Snapshotter::open(btrfs.path().join("root"), options()).unwrap();
    s.prepare("a", None, sized("8MiB")).unwrap();
    let dir = upper(&s, "a").parent().unwrap().to_path_buf();
    assert_eq!(fs::metadata(&dir).unwrap().ino(), 256, "a subvolume");
    let qgroup = subvolume_id(&dir);
    assert!(qgroups(btrfs.path()).contains(&qgroup));
    s.remove("a").unwrap();
    assert!(!dir.exists());
    assert!(
        !qgroups(btrfs.path()).contains(&qgroup),
        "{qgroup} still listed"
    );
    // Cleanup deletes a leftover subvolume (async remove) the same way.
    let s = Snapshotter::open(
        btrfs.path().join("root2"),
        Options {
            sync_remove: false,
            ..options()
        },
    )
    .unwrap();
    s.prepare("b", None, sized("8MiB")).unwrap();
    let dir = upper(&s, "b").parent().unwrap().to_path_buf();
    let qgroup = subvolume_id(&dir);
    s.remove("b").unwrap();
    assert!(dir.exists(), "async remove leaves the directory to Cleanup");
    assert_eq!(s.cleanup().unwrap(), 1);
    assert!(!dir.exists());
    assert!(!qgroups(btrfs.path()).contains(&qgroup));
}

#[test]
fn a_root_that_lost_its_quotas_is_refused_by_name() {
    let Some(btrfs) = LoopBtrfs::new("a_root_that_lost_its_quotas", true) else {
        return;
    };
    let root = btrfs.path().join("root");
    let s = Snapshotter::open(&root, options()).unwrap();
    s.prepare("a", None, sized("8MiB")).unwrap();
    let dir = upper(&s, "a").parent().unwrap().to_path_buf();
    drop(s);
    assert_eq!(fs::read_to_string(root.join("quota")).unwrap(), "btrfs\n");
    assert_eq!(Snapshotter::inspect(&root).unwrap().quota, QuotaMode::Btrfs);
    run(
        "btrfs",
        &["quota", "disable", btrfs.path().to_str().unwrap()],
    );
    let err = Snapshotter::inspect(&root).unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::FailedPrecondition,
        "check reports it: {err}"
    );
    let err = Snapshotter::open(&root, options()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::FailedPrecondition, "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("btrfs quota enable") && msg.contains("walk"),
        "{msg}"
    );
    // Quotas off by choice: measured by walking, never by a quota that is not there.
    let off = Options {
        quota: QuotaChoice::Off,
        ..options()
    };
    // Its subvolumes are still deleted, with no qgroup to remove: opening deletes the one of
    // an id never issued (a crash's), and failed (ENOTCONN from the qgroup's removal,
    // quotas being disabled) until that was taken as done.
    RealFs
        .create_quota_dir(&root.join("snapshots/2"), QuotaMode::Btrfs, None)
        .unwrap();
    let s = Snapshotter::open(&root, off).unwrap();
    assert_eq!(s.quota_mode(), QuotaMode::Walk);
    assert_eq!(s.open_report().unissued, vec![2]);
    s.remove("a").unwrap();
    assert!(!dir.exists());
    drop(s);
    run(
        "btrfs",
        &["quota", "enable", btrfs.path().to_str().unwrap()],
    );
    let s = Snapshotter::open(&root, options()).unwrap();
    assert_eq!(s.quota_mode(), QuotaMode::Btrfs);
}

#[test]
fn btrfs_without_quotas_and_other_file_systems_use_the_walk() {
    let Some(btrfs) = LoopBtrfs::new("btrfs_without_quotas", false) else {
        return;
    };
    let root = btrfs.path().join("root");
    let s = Snapshotter::open(&root, options()).unwrap();
    assert_eq!(s.quota_mode(), QuotaMode::Walk);
    // The label is accepted and ignored; the directory is a plain one.
    s.prepare("a", None, sized("1MiB")).unwrap();
    let (written, err) = fill_limited(&upper(&s, "a").join("big"), 4 << 20);
    assert!(err.is_none() && written == 4 << 20);
    assert_ne!(
        fs::metadata(upper(&s, "a").parent().unwrap())
            .unwrap()
            .ino(),
        256
    );
    assert!(!root.join("quota").exists(), "the walk is not recorded");
    // A malformed one is still refused.
    let err = s.prepare("b", None, sized("-1")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    let tmp = tempfile::tempdir().unwrap();
    assert_eq!(RealFs.quota_mode(tmp.path()).unwrap(), QuotaMode::Walk);
}

#[test]
fn recovery_deletes_unrecorded_subvolumes_and_recreates_missing_ones() {
    let Some(btrfs) = LoopBtrfs::new("recovery_of_subvolumes", true) else {
        return;
    };
    let root = btrfs.path().join("root");
    let (active_dir, qgroup) = {
        let s = Snapshotter::open(&root, options()).unwrap();
        s.prepare("a", None, sized("8MiB")).unwrap();
        let dir = upper(&s, "a").parent().unwrap().to_path_buf();
        (dir.clone(), subvolume_id(&dir))
    };
    let snapshots = root.join("snapshots");
    // On disk, never recorded: a subvolume under the next id (its record was lost in a
    // crash) and a temporary one (a crash while building).
    for name in ["2", "new-1-0-0"] {
        RealFs
            .create_quota_dir(&snapshots.join(name), QuotaMode::Btrfs, None)
            .unwrap();
    }
    // Recorded, missing on disk: the Active's subvolume is gone.
    run(
        "btrfs",
        &["subvolume", "delete", active_dir.to_str().unwrap()],
    );
    let s = Snapshotter::open(&root, options()).unwrap();
    let report = s.open_report();
    assert_eq!(report.unissued, vec![2]);
    assert_eq!(report.recreated, vec![1]);
    assert!(!snapshots.join("2").exists());
    assert_eq!(
        s.cleanup().unwrap(),
        1,
        "the temporary subvolume is garbage"
    );
    assert!(!snapshots.join("new-1-0-0").exists());
    // Re-created as a subvolume with the limit of its label.
    assert_eq!(fs::metadata(&active_dir).unwrap().ino(), 256);
    assert_ne!(subvolume_id(&active_dir), qgroup);
    let (_, err) = fill(&upper(&s, "a").join("big"));
    assert_over_limit(&err, QuotaMode::Btrfs, "re-created");
}
