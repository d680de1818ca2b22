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

/// The first project id of the block the root `root` took, from `ROOT/quota`.
fn project_base(root: &std::path::Path) -> u32 {
    let text = std::fs::read_to_string(root.join("quota")).unwrap();
    let line = text
        .lines()
        .nth(1)
        .unwrap_or_else(|| panic!("no block in {text:?}"));
    line.strip_prefix("project-base ").unwrap().parse().unwrap()
}

/// Two roots on one file system take different blocks of project ids, and the second
/// root's snapshot 1 is not measured with the first's.
fn roots_take_blocks_of_their_own(dir: &std::path::Path) {
    let one = Snapshotter::open(dir.join("one"), options()).unwrap();
    let two = Snapshotter::open(dir.join("two"), options()).unwrap();
    let (b1, b2) = (
        project_base(&dir.join("one")),
        project_base(&dir.join("two")),
    );
    assert_ne!(b1, b2, "two roots share a block of project ids");
    for s in [&one, &two] {
        s.prepare("a", None, Labels::new()).unwrap();
    }
    std::fs::write(upper(&one, "a").join("f"), vec![7u8; 1 << 20]).unwrap();
    nix::unistd::sync();
    let (u1, u2) = (one.usage("a").unwrap(), two.usage("a").unwrap());
    assert!(u1.size >= 1 << 20, "{u1:?}");
    assert!(
        u2.size < 1 << 16,
        "the second root's snapshot counts the first's file: {u2:?}"
    );
    drop(one);
    // Reopened, a root keeps its block.
    let one = Snapshotter::open(dir.join("one"), options()).unwrap();
    assert_eq!(project_base(&dir.join("one")), b1);
    assert_eq!(one.usage("a").unwrap(), u1);
}

/// Every body, on the file system `var` names, expected in `mode`.
fn suite(var: &str, mode: QuotaMode) {
    let Some(dir) = base(var, &format!("suite-{mode}")) else {
        return;
    };
    let s = Snapshotter::open(dir.join("probe"), options()).unwrap();
    assert_eq!(s.quota_mode(), mode, "{var}");
    drop(s);
    roots_take_blocks_of_their_own(&dir);
    usage_matches_walk(&dir, mode, &format!("{mode} usage"));
    limit_is_enforced_in_mounts(&dir);
    bad_labels_change_nothing(&dir);
    restart_keeps_limit_and_usage(&dir);
    remove_clears_the_project_limit(&dir);
    reopening_clears_a_limit_no_snapshot_holds(&dir);
    if mode == QuotaMode::Ext4Project {
        ext4_exempts_privileged_writers_outside_overlay_only(&dir);
    }
}

/// Pins what ext4 does (docs/semantics.md, Quotas): the kernel lets a writer holding
/// `CAP_SYS_RESOURCE` past a hard limit, but overlayfs writes to its upper directory with
/// the mounter's credentials less that capability. So through an overlay mount every
/// writer is held to the limit, privileged or not, and only a privileged process writing
/// into the directory itself (or through a bind mount) gets past. XFS and btrfs hold all.
fn ext4_exempts_privileged_writers_outside_overlay_only(dir: &std::path::Path) {
    use overlaysnap::fs::{mount_all, unmount_all, Unmount};
    let s = Snapshotter::open(dir.join("privileged"), options()).unwrap();
    s.prepare("base-a", None, Labels::new()).unwrap();
    s.commit("base", "base-a", Labels::new()).unwrap();
    let mounts = s.prepare("a", Some("base"), sized("8MiB")).unwrap();
    assert_eq!(mounts[0].kind, "overlay");
    let target = dir.join("privileged-mnt");
    std::fs::create_dir_all(&target).unwrap();
    mount_all(&mounts, &target).unwrap();
    let (held, err) = without_sys_resource(|| fill_limited(&target.join("big"), 16 << 20));
    let (_, privileged) = fill_limited(&target.join("privileged"), 16 << 20);
    unmount_all(&target, Unmount::Detach).unwrap();
    let err = err.expect("a writer without CAP_SYS_RESOURCE wrote 16 MiB under 8 MiB");
    assert_over_limit(&err, QuotaMode::Ext4Project, "without CAP_SYS_RESOURCE");
    assert!(held <= 8 << 20, "{held} bytes under an 8 MiB limit");
    let privileged = privileged.expect("a privileged writer got past the limit through overlay");
    assert_over_limit(
        &privileged,
        QuotaMode::Ext4Project,
        "through overlay, privileged",
    );
    let (passed, past) = fill_limited(&upper(&s, "a").join("direct"), 16 << 20);
    assert!(
        past.is_none() && passed == 16 << 20,
        "ext4 held a privileged writer in the directory itself to the limit ({passed} bytes, \
         {past:?}): update docs/semantics.md"
    );
}

/// A limit on a project of the root's block whose snapshot is not recorded (a crash
/// after Remove deleted the directory, before clearing the limit was durable) is cleared
/// when the root opens; a live snapshot's limit and another root's stay.
fn reopening_clears_a_limit_no_snapshot_holds(dir: &std::path::Path) {
    let root = dir.join("sweep");
    let other = dir.join("sweep-other");
    let s = Snapshotter::open(&root, options()).unwrap();
    s.prepare("live", None, sized("8MiB")).unwrap();
    drop(s);
    let o = Snapshotter::open(&other, options()).unwrap();
    o.prepare("theirs", None, sized("8MiB")).unwrap();
    drop(o);
    let (base, other_base) = (project_base(&root), project_base(&other));
    let limit_of = |project: u32| {
        let scratch = dir.join(format!("look-{project}"));
        std::fs::create_dir(&scratch).unwrap();
        RealFs.assign_project(&scratch, project).unwrap();
        let usage = RealFs
            .quota_usage(&scratch, QuotaUnit::Project(project))
            .unwrap()
            .unwrap();
        std::fs::remove_dir(&scratch).unwrap();
        usage.limit
    };
    let stale = base + 99;
    RealFs
        .set_quota_limit(&root, QuotaUnit::Project(stale), Some(4 << 20))
        .unwrap();
    assert_eq!(limit_of(stale), Some(4 << 20));
    let s = Snapshotter::open(&root, options()).unwrap();
    assert_eq!(limit_of(stale), None, "the stale limit is cleared");
    assert_eq!(
        limit_of(base + 1),
        Some(8 << 20),
        "the live snapshot keeps its limit"
    );
    assert_eq!(
        limit_of(other_base + 1),
        Some(8 << 20),
        "another root's limit stays"
    );
    drop(s);
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
    let project = project_base(&dir.join("remove")) + u32::try_from(id).unwrap();
    let unit = QuotaUnit::Project(project);
    let before = RealFs.quota_usage(&snapshot, unit).unwrap().unwrap();
    assert_eq!(before.limit, Some(8 << 20));
    s.remove("a").unwrap();
    assert!(!snapshot.exists());
    // Look at the project through a scratch directory given it.
    let scratch = dir.join("scratch");
    std::fs::create_dir(&scratch).unwrap();
    RealFs.assign_project(&scratch, project).unwrap();
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
