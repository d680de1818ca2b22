//! Project quotas on XFS and ext4, in the VM rig (tests/vm/): this machine's kernel has no
//! project quotas, so the rig boots a kernel that has them, makes a loop XFS mounted
//! `prjquota` and a loop ext4 (`-O project,quota`, mounted `prjquota`), and runs this
//! suite with `OVERLAYSNAP_QUOTA_XFS_ROOT` and `OVERLAYSNAP_QUOTA_EXT4_ROOT` naming a
//! directory on each. The bodies are those the btrfs suite runs (tests/quota_support).
//!
//! Without the variable a test is skipped with a message, unless
//! `OVERLAYSNAP_QUOTA_VM=required`, when it fails.

mod quota_support;

use overlaysnap::fs::{FileSystem, QuotaMode, QuotaUnit, RealFs};
use overlaysnap::layout::project_id;
use overlaysnap::{ErrorKind, Labels, Snapshotter};
use quota_support::*;
use std::path::PathBuf;

/// The directory the rig named in `var`, made empty for `test`; `None` to skip.
fn base(var: &str, test: &str) -> Option<PathBuf> {
    match std::env::var_os(var) {
        Some(dir) => {
            let dir = PathBuf::from(dir).join(test);
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            Some(dir)
        }
        None if std::env::var("OVERLAYSNAP_QUOTA_VM").as_deref() == Ok("required") => {
            panic!("{test}: {var} is not set, and OVERLAYSNAP_QUOTA_VM=required")
        }
        None => {
            eprintln!("SKIPPING {test}: {var} is not set (the VM rig of tests/vm/ sets it)");
            None
        }
    }
}

/// Every body, on the file system `var` names, expected in `mode`.
fn suite(var: &str, mode: QuotaMode) {
    let Some(dir) = base(var, &format!("suite-{mode}")) else {
        return;
    };
    let s = Snapshotter::open(dir.join("probe"), options()).unwrap();
    assert_eq!(s.quota_mode(), mode, "{var}");
    drop(s);
    usage_matches_walk(&dir, mode, &format!("{mode} usage"));
    limit_is_enforced_in_mounts(&dir);
    bad_labels_change_nothing(&dir);
    restart_keeps_limit_and_usage(&dir);
    remove_clears_the_project_limit(&dir);
}

/// Remove deletes the directory and clears its project's limit; the project id of the
/// next snapshot is new.
fn remove_clears_the_project_limit(dir: &std::path::Path) {
    let s = Snapshotter::open(dir.join("remove"), options()).unwrap();
    s.prepare("a", None, sized("8MiB")).unwrap();
    let snapshot = upper(&s, "a").parent().unwrap().to_path_buf();
    let id: u64 = snapshot
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let unit = QuotaUnit::Project(project_id(id).unwrap());
    let before = RealFs.quota_usage(&snapshot, unit).unwrap().unwrap();
    assert_eq!(before.limit, Some(8 << 20));
    s.remove("a").unwrap();
    assert!(!snapshot.exists());
    // Look at the project through a scratch directory given it.
    let scratch = dir.join("scratch");
    std::fs::create_dir(&scratch).unwrap();
    RealFs
        .assign_project(&scratch, project_id(id).unwrap())
        .unwrap();
    let after = RealFs.quota_usage(&scratch, unit).unwrap().unwrap();
    assert_eq!(after.limit, None, "the limit is cleared");
    std::fs::remove_dir(&scratch).unwrap();
    s.prepare("b", None, Labels::new()).unwrap();
    let err = s.prepare("c", None, sized("-1")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
}

#[test]
fn xfs_project_quotas() {
    suite("OVERLAYSNAP_QUOTA_XFS_ROOT", QuotaMode::XfsProject);
}

#[test]
fn ext4_project_quotas() {
    suite("OVERLAYSNAP_QUOTA_EXT4_ROOT", QuotaMode::Ext4Project);
}
