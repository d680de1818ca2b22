//! containerd's snapshotter conformance suite (`snapshots/testsuite`: `testsuite.go`,
//! `issues.go`, `helpers.go`) ported to Rust and run against real overlay and bind mounts
//! on a real disk: every snapshot's mounts are mounted with the library's own `mount_all`,
//! written and read, and compared with the same changes applied to one flat directory.
//! Beyond containerd's cases it guards what docs/semantics.md#operations promises on top: 500
//! layers, Usage (measured now for Active, stored at Commit, zero for View, hard links once),
//! committed layers surviving a reopen byte for byte, errors of every operation leaving the disk
//! untouched, the upperdir label, sync and async remove, the memory journal, and the owner of a
//! child's `fs`. Behaviours that remove run with both remove modes.

mod snapshotter_support;

use overlaysnap::core::{Info, Kind, Labels, Timestamp, Usage};
use overlaysnap::snapshotter::UPPERDIR_LABEL;
use overlaysnap::{ErrorKind, MemoryBackend, Options, Snapshotter};
use rstest::rstest;
use snapshotter_support::*;
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

fn now() -> Timestamp {
    let d = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    Timestamp::new(d.as_secs() as i64, d.subsec_nanos())
}

fn kind_of<T: std::fmt::Debug>(r: overlaysnap::Result<T>) -> ErrorKind {
    match r {
        Ok(v) => panic!("expected an error, got Ok({v:?})"),
        Err(e) => e.kind(),
    }
}

/// A key that is a path, as containerd's suite uses.
fn key_in(scratch: &Scratch, name: &str) -> String {
    scratch.work(name).to_string_lossy().into_owned()
}

// ---------------------------------------------------------------------------------------
// containerd: testsuite.go

/// checkSnapshotterBasic: prepare, write through the mount, commit, a child sees the
/// parent's files and changes them, a view of the child sees both layers, removal order.
#[rstest]
fn basic(#[values(false, true)] sync_remove: bool) {
    if !root_or_skip("basic") {
        return;
    }
    let scratch = Scratch::new("basic");
    let sn = open(&scratch.root(), options(sync_remove));
    let initial = vec![
        file("/foo", "foo\n", 0o777),
        dir("/a", 0o755),
        dir("/a/b", 0o755),
        dir("/a/b/c", 0o755),
    ];
    let diff = vec![
        file("/bar", "bar\n", 0o777),
        file("/foo", "bar\n", 0o777),
        remove_all("/a/b"),
    ];

    let preparing = key_in(&scratch, "preparing");
    let mounts = sn.prepare(&preparing, None, gc_root()).unwrap();
    assert!(!mounts.is_empty(), "expected mounts to have entries");
    let m = Mounted::new(&mounts, Path::new(&preparing));
    apply(m.path(), &initial);
    m.unmount();

    let committed = key_in(&scratch, "committed");
    sn.commit(&committed, &preparing, gc_root()).unwrap();
    let si = sn.stat(&committed).unwrap();
    assert_eq!(si.parent, None);
    assert_eq!(si.kind, Kind::Committed);
    assert_eq!(kind_of(sn.stat(&preparing)), ErrorKind::NotFound);

    let next = key_in(&scratch, "nextlayer");
    let m = Mounted::new(
        &sn.prepare(&next, Some(&committed), gc_root()).unwrap(),
        Path::new(&next),
    );
    let flat = scratch.work("flat");
    apply(&flat, &initial);
    assert_same_tree(&flat, m.path(), "next before diff");
    apply(m.path(), &diff);
    m.unmount();

    let ni = sn.stat(&next).unwrap();
    assert_eq!(ni.parent.as_deref(), Some(committed.as_str()));
    assert_eq!(ni.kind, Kind::Active);

    let next_committed = key_in(&scratch, "committed-next");
    sn.commit(&next_committed, &next, gc_root()).unwrap();
    let si2 = sn.stat(&next_committed).unwrap();
    assert_eq!(si2.parent.as_deref(), Some(committed.as_str()));
    assert_eq!(si2.kind, Kind::Committed);
    assert_eq!(kind_of(sn.stat(&next)), ErrorKind::NotFound);

    let walked: BTreeMap<String, Info> = infos(&sn)
        .into_iter()
        .map(|i| (i.name.clone(), i))
        .collect();
    assert_eq!(walked.get(&si.name), Some(&si));
    assert_eq!(walked.get(&si2.name), Some(&si2));

    let nextnext = key_in(&scratch, "nextnextlayer");
    let m = Mounted::new(
        &sn.view(&nextnext, Some(&next_committed), gc_root())
            .unwrap(),
        Path::new(&nextnext),
    );
    apply(&flat, &diff);
    assert_same_tree(&flat, m.path(), "view of both layers");
    m.unmount();
    sn.remove(&nextnext).unwrap();

    let err = sn.remove(&committed).unwrap_err();
    assert!(err.to_string().contains("remove"), "{err}");
    sn.remove(&next_committed).unwrap();
    sn.remove(&committed).unwrap();
}

/// checkSnapshotterStatActive.
#[rstest]
fn stat_active() {
    if !root_or_skip("stat_active") {
        return;
    }
    let scratch = Scratch::new("stat-active");
    let sn = open(&scratch.root(), options(false));
    let preparing = key_in(&scratch, "preparing");
    let m = Mounted::new(
        &sn.prepare(&preparing, None, gc_root()).unwrap(),
        Path::new(&preparing),
    );
    fs::write(m.join("foo"), "foo\n").unwrap();
    let si = sn.stat(&preparing).unwrap();
    assert_eq!(si.name, preparing);
    assert_eq!(si.kind, Kind::Active);
    assert_eq!(si.parent, None);
}

/// checkSnapshotterStatCommitted, plus the Info a Commit gives: its own labels only, and
/// created = updated = the commit time.
#[rstest]
fn stat_committed() {
    if !root_or_skip("stat_committed") {
        return;
    }
    let scratch = Scratch::new("stat-committed");
    let sn = open(&scratch.root(), options(false));
    let preparing = key_in(&scratch, "preparing");
    let m = Mounted::new(
        &sn.prepare(&preparing, None, gc_root()).unwrap(),
        Path::new(&preparing),
    );
    fs::write(m.join("foo"), "foo\n").unwrap();
    let active = sn.stat(&preparing).unwrap();
    // containerd commits with the mount still in place here.
    let committed = key_in(&scratch, "committed");
    let (t1, commit_labels) = (now(), labels(&[("committed", "yes")]));
    sn.commit(&committed, &preparing, commit_labels.clone())
        .unwrap();
    let t2 = now();
    m.unmount();
    let si = sn.stat(&committed).unwrap();
    assert_eq!(si.name, committed);
    assert_eq!(si.kind, Kind::Committed);
    assert_eq!(si.parent, None);
    // Beyond containerd's check: labels are replaced, not inherited, and created =
    // updated = the commit time.
    assert_eq!(si.labels, commit_labels);
    assert_eq!(si.created, si.updated);
    assert!(t1 <= si.created && si.created <= t2 && active.created <= si.created);
}

/// Prepares `name` above `parent`, mounts it at `work/name`, writes `foo`, unmounts.
fn prepare_write_unmount(
    sn: &Snapshotter,
    scratch: &Scratch,
    name: &str,
    parent: Option<&str>,
    content: &str,
) -> String {
    let key = key_in(scratch, name);
    let m = Mounted::new(
        &sn.prepare(&key, parent, gc_root()).unwrap(),
        Path::new(&key),
    );
    fs::write(m.join("foo"), content).unwrap();
    m.unmount();
    key
}

/// checkSnapshotterTransitivity: A <- B, B's parent is A and A has none.
#[rstest]
fn transitivity() {
    if !root_or_skip("transitivity") {
        return;
    }
    let scratch = Scratch::new("transitivity");
    let sn = open(&scratch.root(), options(false));
    let preparing = prepare_write_unmount(&sn, &scratch, "preparing", None, "foo\n");
    let snap_a = key_in(&scratch, "snapA");
    sn.commit(&snap_a, &preparing, gc_root()).unwrap();
    let next = prepare_write_unmount(&sn, &scratch, "next", Some(&snap_a), "foo bar\n");
    let snap_b = key_in(&scratch, "snapB");
    sn.commit(&snap_b, &next, gc_root()).unwrap();

    let si_a = sn.stat(&snap_a).unwrap();
    let si_b = sn.stat(&snap_b).unwrap();
    let si_parent_b = sn.stat(si_b.parent.as_deref().unwrap()).unwrap();
    assert_eq!(si_a.parent, None);
    assert_eq!(si_b.parent.as_deref(), Some(snap_a.as_str()));
    assert_eq!(si_parent_b.parent, None);
}

/// checkSnapshotterPrepareView: Prepare or View of an existing key fails (AlreadyExists).
#[rstest]
fn prepare_view_same_key_fails(#[values(false, true)] sync_remove: bool) {
    if !root_or_skip("prepare_view_same_key_fails") {
        return;
    }
    let scratch = Scratch::new("prepare-view");
    let sn = open(&scratch.root(), options(sync_remove));
    let preparing = key_in(&scratch, "preparing");
    Mounted::new(
        &sn.prepare(&preparing, None, gc_root()).unwrap(),
        Path::new(&preparing),
    )
    .unmount();
    let snap_a = key_in(&scratch, "snapA");
    sn.commit(&snap_a, &preparing, gc_root()).unwrap();

    let new_layer = key_in(&scratch, "newlayer");
    sn.prepare(&new_layer, Some(&snap_a), gc_root()).unwrap();
    assert_eq!(
        kind_of(sn.view(&new_layer, Some(&snap_a), gc_root())),
        ErrorKind::AlreadyExists
    );

    let prep_layer = key_in(&scratch, "prepLayer");
    sn.prepare(&prep_layer, Some(&snap_a), gc_root()).unwrap();
    assert_eq!(
        kind_of(sn.prepare(&prep_layer, Some(&snap_a), gc_root())),
        ErrorKind::AlreadyExists
    );

    let view_layer = key_in(&scratch, "viewLayer");
    sn.view(&view_layer, Some(&snap_a), gc_root()).unwrap();
    assert_eq!(
        kind_of(sn.view(&view_layer, Some(&snap_a), gc_root())),
        ErrorKind::AlreadyExists
    );
    // The refused calls left no directory behind.
    sn.cleanup().unwrap();
    assert_eq!(snapshot_entries(&scratch.root()).len(), 4);
}

/// containerd's baseTestSnapshots: c1 <- c2 <- a1, a2, v1 (of c2), v2.
fn base_test_snapshots(sn: &Snapshotter) {
    sn.prepare("c1-a", None, gc_root()).unwrap();
    sn.commit("c1", "c1-a", gc_root()).unwrap();
    sn.prepare("c2-a", Some("c1"), gc_root()).unwrap();
    sn.commit("c2", "c2-a", gc_root()).unwrap();
    sn.prepare("a1", Some("c2"), gc_root()).unwrap();
    sn.prepare("a2", None, gc_root()).unwrap();
    sn.view("v1", Some("c2"), gc_root()).unwrap();
    sn.view("v2", None, gc_root()).unwrap();
}

/// checkUpdate: labels replaced, set and deleted by field path; kind, parent, name and
/// created untouched; updated moves; `parent` is not updatable (InvalidArgument).
#[rstest]
fn update() {
    if !root_or_skip("update") {
        return;
    }
    let scratch = Scratch::new("update");
    let sn = open(&scratch.root(), options(false));
    let t1 = now();
    base_test_snapshots(&sn);
    let t2 = now();
    let cases: [(&str, Kind, Option<&str>); 6] = [
        ("c1", Kind::Committed, None),
        ("c2", Kind::Committed, Some("c1")),
        ("a1", Kind::Active, Some("c2")),
        ("a2", Kind::Active, None),
        ("v1", Kind::View, Some("c2")),
        ("v2", Kind::View, None),
    ];
    for (name, kind, parent) in cases {
        let st = sn.stat(name).unwrap();
        assert!(
            t1 <= st.created && st.created <= t2,
            "{name}: created {:?} not in [{t1:?}, {t2:?}]",
            st.created
        );
        assert_eq!(st.created, st.updated, "{name}");
        assert_eq!(st.kind, kind, "{name}");
        assert_eq!(st.parent.as_deref(), parent, "{name}");
        assert_eq!(st.name, name);
        let created = st.created;

        let root_time = format!("{:?}", now());
        let expected = labels(&[
            ("l1", "v1"),
            ("l2", "v2"),
            ("l3", "v3"),
            ("containerd.io/gc.root", &root_time),
        ]);
        let u1 = now();
        let st = sn.update(name, expected.clone(), &[]).unwrap();
        let u2 = now();
        assert_eq!(st.created, created, "{name}");
        assert!(u1 <= st.updated && st.updated <= u2, "{name}: updated");
        assert_eq!(st.kind, kind, "{name}");
        assert_eq!(st.parent.as_deref(), parent, "{name}");
        assert_eq!(st.name, name);
        assert_eq!(st.labels, expected, "{name}");

        let st = sn
            .update(
                name,
                labels(&[("l1", "updated"), ("l4", "v4")]),
                &["labels.l1".into(), "labels.l2".into()],
            )
            .unwrap();
        assert_eq!(
            st.labels,
            labels(&[
                ("l1", "updated"),
                ("l3", "v3"),
                ("containerd.io/gc.root", &root_time)
            ]),
            "{name}"
        );

        let expected = labels(&[("l4", "v4"), ("containerd.io/gc.root", &root_time)]);
        let st = sn
            .update(name, expected.clone(), &["labels".into()])
            .unwrap();
        assert_eq!(st.labels, expected, "{name}");
        assert_eq!(sn.stat(name).unwrap(), st, "{name}: stat after update");

        // An empty value deletes through a field path.
        let st = sn
            .update(name, labels(&[("l4", "")]), &["labels.l4".into()])
            .unwrap();
        assert_eq!(
            st.labels,
            labels(&[("containerd.io/gc.root", &root_time)]),
            "{name}"
        );

        assert_eq!(
            kind_of(sn.update(name, Labels::new(), &["parent".into()])),
            ErrorKind::InvalidArgument,
            "{name}"
        );
    }
}

/// checkRemove: keys are reused after Remove, across kinds, and a name freed by Remove
/// can be committed to again.
#[rstest]
fn remove(#[values(false, true)] sync_remove: bool) {
    if !root_or_skip("remove") {
        return;
    }
    let scratch = Scratch::new("remove");
    let sn = open(&scratch.root(), options(sync_remove));
    sn.prepare("committed-a", None, gc_root()).unwrap();
    sn.commit("committed-1", "committed-a", gc_root()).unwrap();
    sn.prepare("reuse-1", Some("committed-1"), gc_root())
        .unwrap();
    sn.remove("reuse-1").unwrap();
    sn.view("reuse-1", Some("committed-1"), gc_root()).unwrap();
    sn.remove("reuse-1").unwrap();
    let m = Mounted::new(
        &sn.prepare("reuse-1", None, gc_root()).unwrap(),
        &scratch.work("reuse"),
    );
    fs::write(m.join("mine"), "reuse-1").unwrap();
    m.unmount();
    sn.remove("committed-1").unwrap();
    sn.commit("committed-1", "reuse-1", gc_root()).unwrap();
    let m = Mounted::new(
        &sn.view("check", Some("committed-1"), gc_root()).unwrap(),
        &scratch.work("check"),
    );
    assert_eq!(fs::read_to_string(m.join("mine")).unwrap(), "reuse-1");
    m.unmount();
    sn.remove("check").unwrap();
    sn.cleanup().unwrap();
    assert_eq!(snapshot_entries(&scratch.root()).len(), 1);
}

/// checkWalk: containerd's filter table, results in name order; a bad filter is refused.
#[rstest]
fn walk_with_filters() {
    if !root_or_skip("walk_with_filters") {
        return;
    }
    let scratch = Scratch::new("walk");
    let sn = open(&scratch.root(), options(false));
    let gc = labels(&[("containerd.io/gc.root", "check-walk")]);
    let with_l = |l: &str| labels(&[("l", l), ("containerd.io/gc.root", "check-walk")]);
    sn.prepare("a-np", None, gc.clone()).unwrap();
    sn.prepare("p-tmp", None, gc.clone()).unwrap();
    sn.commit("p", "p-tmp", gc.clone()).unwrap();
    sn.prepare("a", Some("p"), gc.clone()).unwrap();
    sn.view("v", Some("p"), gc.clone()).unwrap();
    sn.prepare("p-wl-tmp", None, gc.clone()).unwrap();
    sn.commit("p-wl", "p-wl-tmp", with_l("1")).unwrap();
    sn.prepare("a-wl", Some("p-wl"), with_l("2")).unwrap();
    sn.view("v-wl", Some("p-wl"), with_l("3")).unwrap();
    sn.prepare("a-np-wl", None, with_l("2")).unwrap();

    let table: &[(&[&str], &[&str])] = &[
        (
            &["a-np", "p", "a", "v", "p-wl", "a-wl", "v-wl", "a-np-wl"],
            &[r#"labels."containerd.io/gc.root"==check-walk"#],
        ),
        (
            &["a-np", "a", "a-wl", "a-np-wl"],
            &[r#"kind==active,labels."containerd.io/gc.root"==check-walk"#],
        ),
        (
            &["v", "v-wl"],
            &[r#"kind==view,labels."containerd.io/gc.root"==check-walk"#],
        ),
        (
            &["p", "p-wl"],
            &[r#"kind==committed,labels."containerd.io/gc.root"==check-walk"#],
        ),
        (&["p", "a-np-wl"], &["name==p", "name==a-np-wl"]),
        (&["a-wl"], &["name==a-wl,labels.l"]),
        (&["a", "v"], &["parent==p"]),
        (
            &["a", "v", "a-wl", "v-wl"],
            &[r#"parent!="",labels."containerd.io/gc.root"==check-walk"#],
        ),
        (&["p-wl", "a-wl", "v-wl", "a-np-wl"], &["labels.l"]),
        (&["a-wl", "a-np-wl"], &["labels.l==2"]),
        // Beyond containerd's table: regular expressions, quoted with `/`.
        (&["a-np", "a-np-wl"], &["name~=/^a-np/"]),
        (&["a-wl", "v-wl"], &["labels.l~=^[23]$,parent==p-wl"]),
    ];
    for (i, (matches, filters)) in table.iter().enumerate() {
        let filters: Vec<String> = filters.iter().map(|f| f.to_string()).collect();
        let mut actual = Vec::new();
        sn.walk(&filters, |info| {
            actual.push(info.name);
            Ok(())
        })
        .unwrap_or_else(|e| panic!("[{i}] walk {filters:?}: {e}"));
        let mut expected: Vec<String> = matches.iter().map(|m| m.to_string()).collect();
        expected.sort();
        assert_eq!(actual, expected, "[{i}] {filters:?} (in name order)");
    }
    for bad in [r#"labels."unterminated"#, "name~=(", "name==a,,", "=="] {
        assert_eq!(
            kind_of(sn.walk(&[bad.to_string()], |_| Ok(()))),
            ErrorKind::InvalidArgument,
            "filter {bad:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// containerd: issues.go

/// checkLayerFileUpdate (docker#21555), five times over.
#[rstest]
fn layer_file_update(#[values(false, true)] sync_remove: bool) {
    if !root_or_skip("layer_file_update") {
        return;
    }
    let scratch = Scratch::new("layer-file-update");
    let sn = open(&scratch.root(), options(sync_remove));
    let l1 = vec![
        dir("/etc", 0o700),
        file("/etc/hosts", "mydomain 10.0.0.1", 0o644),
        file("/etc/profile", "PATH=/usr/bin", 0o644),
    ];
    let l2 = vec![
        file("/etc/hosts", "mydomain 10.0.0.2", 0o644),
        file("/etc/profile", "PATH=/usr/bin", 0o666),
        dir("/root", 0o700),
        file("/root/.bashrc", "PATH=/usr/sbin:/usr/bin", 0o644),
    ];
    for _ in 0..5 {
        check_snapshots(&sn, &scratch, &[l1.clone(), l2.clone()]);
    }
}

/// checkRemoveDirectoryInLowerLayer (docker#25244): a directory removed and re-created
/// in an upper layer hides the lower one's content (opaque directory).
#[rstest]
fn remove_directory_in_lower_layer(#[values(false, true)] sync_remove: bool) {
    if !root_or_skip("remove_directory_in_lower_layer") {
        return;
    }
    let scratch = Scratch::new("remove-dir-lower");
    let sn = open(&scratch.root(), options(sync_remove));
    check_snapshots(
        &sn,
        &scratch,
        &[
            vec![dir("/lib", 0o700), file("/lib/hidden", "", 0o644)],
            vec![
                remove_all("/lib"),
                dir("/lib", 0o700),
                file("/lib/not-hidden", "", 0o644),
            ],
            vec![file("/lib/newfile", "", 0o644)],
        ],
    );
}

/// checkChown (docker#20240, #24913, #28391): owners changed in an upper layer.
#[rstest]
fn chown(#[values(false, true)] sync_remove: bool) {
    if !root_or_skip("chown") {
        return;
    }
    let scratch = Scratch::new("chown");
    let sn = open(&scratch.root(), options(sync_remove));
    check_snapshots(
        &sn,
        &scratch,
        &[
            vec![
                dir("/opt", 0o700),
                dir("/opt/a", 0o700),
                dir("/opt/a/b", 0o700),
                file("/opt/a/b/file.txt", "hello", 0o644),
            ],
            vec![
                snapshotter_support::chown("/opt", 1, 1),
                snapshotter_support::chown("/opt/a", 1, 1),
                snapshotter_support::chown("/opt/a/b", 1, 1),
                snapshotter_support::chown("/opt/a/b/file.txt", 1, 1),
            ],
        ],
    );
}

/// checkDirectoryPermissionOnCommit (docker#27298).
#[rstest]
fn directory_permission_on_commit(#[values(false, true)] sync_remove: bool) {
    if !root_or_skip("directory_permission_on_commit") {
        return;
    }
    let scratch = Scratch::new("dir-perm-commit");
    let sn = open(&scratch.root(), options(sync_remove));
    use snapshotter_support::chown as own;
    check_snapshots(
        &sn,
        &scratch,
        &[
            vec![
                dir("/dir1", 0o700),
                dir("/dir2", 0o700),
                dir("/dir3", 0o700),
                dir("/dir4", 0o700),
                file("/dir4/f1", "...", 0o644),
                dir("/dir5", 0o700),
                file("/dir5/f1", "...", 0o644),
                own("/dir1", 1, 1),
                own("/dir2", 1, 1),
                own("/dir3", 1, 1),
                own("/dir5", 1, 1),
                own("/dir5/f1", 1, 1),
            ],
            vec![
                own("/dir2", 0, 0),
                remove_all("/dir3"),
                own("/dir4", 1, 1),
                own("/dir4/f1", 1, 1),
            ],
            vec![
                dir("/dir3", 0o700),
                own("/dir3", 1, 1),
                remove_all("/dir5"),
                dir("/dir5", 0o700),
                own("/dir5", 1, 1),
            ],
        ],
    );
}

/// checkRemoveIntermediateSnapshot: a committed layer with a child cannot be removed;
/// top-down removal works.
#[rstest]
fn remove_intermediate_snapshot(#[values(false, true)] sync_remove: bool) {
    if !root_or_skip("remove_intermediate_snapshot") {
        return;
    }
    let scratch = Scratch::new("remove-intermediate");
    let sn = open(&scratch.root(), options(sync_remove));
    let base = key_in(&scratch, "base");
    Mounted::new(
        &sn.prepare(&base, None, gc_root()).unwrap(),
        Path::new(&base),
    )
    .unmount();
    let committed_base = key_in(&scratch, "committed-base");
    sn.commit(&committed_base, &base, gc_root()).unwrap();
    let intermediate = key_in(&scratch, "intermediate");
    sn.prepare(&intermediate, Some(&committed_base), gc_root())
        .unwrap();
    let committed_inter = key_in(&scratch, "committed-inter");
    sn.commit(&committed_inter, &intermediate, gc_root())
        .unwrap();
    let top = key_in(&scratch, "toplayer");
    sn.prepare(&top, Some(&committed_inter), gc_root()).unwrap();

    assert_eq!(
        kind_of(sn.remove(&committed_inter)),
        ErrorKind::FailedPrecondition
    );
    assert_eq!(
        kind_of(sn.remove(&committed_base)),
        ErrorKind::FailedPrecondition
    );
    sn.remove(&top).unwrap();
    sn.remove(&committed_inter).unwrap();
    sn.remove(&committed_base).unwrap();
    sn.cleanup().unwrap();
    assert!(snapshot_entries(&scratch.root()).is_empty());
}

/// checkDeletedFilesInChildSnapshot: a file deleted in a child stays deleted in its child.
#[rstest]
fn deleted_files_in_child_snapshot(#[values(false, true)] sync_remove: bool) {
    if !root_or_skip("deleted_files_in_child_snapshot") {
        return;
    }
    let scratch = Scratch::new("deleted-files");
    let sn = open(&scratch.root(), options(sync_remove));
    check_snapshots(
        &sn,
        &scratch,
        &[
            vec![
                file("/foo", "foo\n", 0o777),
                file("/foobar", "foobar\n", 0o777),
            ],
            vec![remove_all("/foobar")],
            vec![],
        ],
    );
}

/// checkFileFromLowerLayer: files moved (hard-linked, then removed) out of a lower layer.
#[rstest]
fn move_file_from_lower_layer(#[values(false, true)] sync_remove: bool) {
    if !root_or_skip("move_file_from_lower_layer") {
        return;
    }
    let scratch = Scratch::new("move-file");
    let sn = open(&scratch.root(), options(sync_remove));
    check_snapshots(
        &sn,
        &scratch,
        &[
            vec![
                dir("/dir1", 0o700),
                file("/dir1/f1", "Hello", 0o644),
                dir("dir2", 0o700),
                file("dir2/f2", "...", 0o644),
            ],
            vec![
                dir("/dir3", 0o700),
                file("/dir3/f1", "Hello", 0o644),
                remove_all("/dir1"),
                link("dir2/f2", "dir3/f2"),
                remove_all("dir2/f2"),
            ],
        ],
    );
}

/// checkRename for overlayfs (docker#25409): files renamed over and away in an upper
/// layer (directories are not renamed: overlayfs without redirect_dir refuses it).
#[rstest]
fn rename_files() {
    if !root_or_skip("rename_files") {
        return;
    }
    let scratch = Scratch::new("rename");
    let sn = open(&scratch.root(), options(false));
    check_snapshots(
        &sn,
        &scratch,
        &[
            vec![
                dir("/dir1", 0o700),
                dir("/somefiles", 0o700),
                file("/somefiles/f1", "was here first!", 0o644),
                file("/somefiles/f2", "nothing interesting", 0o644),
            ],
            vec![
                file("/somefiles/f1-overwrite", "new content 1", 0o644),
                rename("/somefiles/f1-overwrite", "/somefiles/f1"),
                rename("/somefiles/f2", "/somefiles/f3"),
            ],
        ],
    );
}

/// checkSnapshotterViewReadonly, for views of no parent, one parent (bind) and several
/// parents (overlay with lowerdirs only): writes fail with EROFS.
#[rstest]
fn view_readonly(#[values(false, true)] sync_remove: bool) {
    if !root_or_skip("view_readonly") {
        return;
    }
    let scratch = Scratch::new("view-readonly");
    let sn = open(&scratch.root(), options(sync_remove));
    let preparing = key_in(&scratch, "preparing");
    sn.prepare(&preparing, None, gc_root()).unwrap();
    let committed = key_in(&scratch, "committed");
    sn.commit(&committed, &preparing, gc_root()).unwrap();
    sn.prepare("second-a", Some(&committed), gc_root()).unwrap();
    sn.commit("second", "second-a", gc_root()).unwrap();

    for (view, parent, want_kind) in [
        (key_in(&scratch, "view"), Some(committed.as_str()), "bind"),
        ("view-none".to_string(), None, "bind"),
        ("view-two".to_string(), Some("second"), "overlay"),
    ] {
        let mounts = sn.view(&view, parent, gc_root()).unwrap();
        assert_eq!(mounts[0].kind, want_kind, "{view}: {mounts:?}");
        if want_kind == "overlay" {
            assert!(
                !mounts[0]
                    .options
                    .iter()
                    .any(|o| o.starts_with("upperdir=") || o.starts_with("workdir=")),
                "{mounts:?}"
            );
        }
        let m = Mounted::new(&mounts, &scratch.temp_work("view-mount"));
        let err = fs::write(m.join("testfile"), "testcontent").unwrap_err();
        assert_eq!(err.raw_os_error(), Some(nix::libc::EROFS), "{view}: {err}");
        m.unmount();
        sn.remove(&view).unwrap();
    }
    sn.remove("second").unwrap();
    sn.remove(&committed).unwrap();
}

/// checkStatInWalk: Stat from inside the Walk callback returns the same Info.
#[rstest]
fn stat_in_walk() {
    if !root_or_skip("stat_in_walk") {
        return;
    }
    let scratch = Scratch::new("stat-in-walk");
    let sn = open(&scratch.root(), options(false));
    let p = "stats-in-walk-";
    sn.prepare(&format!("{p}c1-a"), None, gc_root()).unwrap();
    sn.commit(&format!("{p}c1"), &format!("{p}c1-a"), gc_root())
        .unwrap();
    sn.prepare(&format!("{p}c2-a"), Some(&format!("{p}c1")), gc_root())
        .unwrap();
    sn.commit(&format!("{p}c2"), &format!("{p}c2-a"), gc_root())
        .unwrap();
    sn.prepare(&format!("{p}a1"), Some(&format!("{p}c2")), gc_root())
        .unwrap();
    sn.view(&format!("{p}v1"), Some(&format!("{p}c2")), gc_root())
        .unwrap();
    let mut seen = 0;
    sn.walk(&[], |info| {
        let again = sn.stat(&info.name)?;
        assert_eq!(again, info);
        seen += 1;
        Ok(())
    })
    .unwrap();
    assert_eq!(seen, 4);
}

/// closeTwice: the second Close is Ok; afterwards every operation is refused.
#[rstest]
fn close_twice(#[values(false, true)] sync_remove: bool) {
    if !root_or_skip("close_twice") {
        return;
    }
    let scratch = Scratch::new("close-twice");
    let sn = open(&scratch.root(), options(sync_remove));
    let n = unique("closeTwice");
    let prepare = format!("{n}-prepare");
    sn.prepare(&prepare, None, gc_root()).unwrap();
    sn.commit(&n, &prepare, gc_root()).unwrap();
    sn.remove(&n).unwrap();
    sn.prepare("left", None, gc_root()).unwrap();
    sn.close().unwrap();
    sn.close().unwrap();
    let before = listing(&scratch.root());
    let closed = |r: Result<(), overlaysnap::Error>, what: &str| {
        assert_eq!(
            r.unwrap_err().kind(),
            ErrorKind::FailedPrecondition,
            "{what} after Close"
        )
    };
    closed(sn.prepare("x", None, gc_root()).map(drop), "prepare");
    closed(sn.view("y", None, gc_root()).map(drop), "view");
    closed(sn.stat("left").map(drop), "stat");
    closed(sn.mounts("left").map(drop), "mounts");
    closed(sn.usage("left").map(drop), "usage");
    closed(sn.commit("c", "left", gc_root()), "commit");
    closed(sn.update("left", gc_root(), &[]).map(drop), "update");
    closed(sn.walk(&[], |_| Ok(())), "walk");
    closed(sn.remove("left"), "remove");
    closed(sn.cleanup().map(drop), "cleanup");
    assert_same_listing(&before, &listing(&scratch.root()), "ops after close");
}

/// checkRootPermission: the root of a mounted snapshot is 0755, with and without parents.
#[rstest]
fn root_permission() {
    if !root_or_skip("root_permission") {
        return;
    }
    let scratch = Scratch::new("root-permission");
    let sn = open(&scratch.root(), options(false));
    let preparing = key_in(&scratch, "preparing");
    let m = Mounted::new(
        &sn.prepare(&preparing, None, gc_root()).unwrap(),
        Path::new(&preparing),
    );
    assert_eq!(fs::metadata(m.path()).unwrap().mode() & 0o777, 0o755);
    m.unmount();
    sn.commit("base", &preparing, gc_root()).unwrap();
    let m = Mounted::new(
        &sn.prepare("child", Some("base"), gc_root()).unwrap(),
        &scratch.work("child"),
    );
    assert_eq!(fs::metadata(m.path()).unwrap().mode() & 0o777, 0o755);
}

/// The appliers of containerd's 128LayersMount test: layer 0 creates, every later layer
/// overwrites one file, adds one and replaces a directory (an opaque directory).
fn layer_ops(i: usize) -> Vec<Op> {
    if i == 0 {
        return vec![
            file("/bottom", "way at the bottom\n", 0o777),
            file("/overwriteme", "FIRST!\n", 0o777),
            dir("/addhere", 0o755),
            dir("/onlyme", 0o755),
            file("/onlyme/bottom", "bye!\n", 0o777),
        ];
    }
    vec![
        file("/overwriteme", format!("{i} WAS HERE!\n"), 0o777),
        file(&format!("/addhere/file-{i}"), "same\n", 0o755),
        remove_all("/onlyme"),
        dir("/onlyme", 0o755),
        file(&format!("/onlyme/file-{i}"), "only me!\n", 0o777),
    ]
}

/// Builds a chain of `layers` layers through real mounts, comparing each prepared
/// snapshot with a flat directory before and after applying (every `check_every` layers),
/// then a View of the top against the flat directory.
fn many_layers(sn: &Snapshotter, scratch: &Scratch, layers: usize, check_every: usize) {
    let flat = scratch.work("flat");
    let mut parent: Option<String> = None;
    for i in 0..layers {
        let key = key_in(scratch, &format!("prepare-layer-{i}"));
        let mounts = sn
            .prepare(&key, parent.as_deref(), gc_root())
            .unwrap_or_else(|e| panic!("[layer {i}] prepare: {e}"));
        let m = Mounted::try_new(&mounts, Path::new(&key))
            .unwrap_or_else(|e| panic!("[layer {i}] mount {mounts:?}: {e}"));
        let check = i % check_every == 0 || i + 1 == layers;
        if check {
            assert_same_tree(&flat, m.path(), &format!("[layer {i}] before apply"));
        }
        apply(&flat, &layer_ops(i));
        apply(m.path(), &layer_ops(i));
        if check {
            assert_same_tree(&flat, m.path(), &format!("[layer {i}] after apply"));
        }
        m.unmount();
        let name = key_in(scratch, &format!("committed-{i}"));
        sn.commit(&name, &key, gc_root())
            .unwrap_or_else(|e| panic!("[layer {i}] commit: {e}"));
        parent = Some(name);
    }
    let view = key_in(scratch, "fullview");
    let mounts = sn.view(&view, parent.as_deref(), gc_root()).unwrap();
    let m = Mounted::try_new(&mounts, Path::new(&view))
        .unwrap_or_else(|e| panic!("mount the full view {mounts:?}: {e}"));
    assert_same_tree(&flat, m.path(), "fullview should equal flat");
    m.unmount();
}

/// check128LayersMount: 1 + 127 layers, each compared with the flat directory.
#[rstest]
fn layers_128_mount() {
    if !root_or_skip("layers_128_mount") {
        return;
    }
    let scratch = Scratch::new("128-layers");
    let sn = open(&scratch.root(), options(false));
    many_layers(&sn, &scratch, 128, 1);
}

// ---------------------------------------------------------------------------------------
// Beyond containerd's suite

/// 500 layers (overlayfs' limit of lower layers) mount, with 3-digit ids (compacted plain
/// paths fit) and with 4-digit ids (the short links of `ROOT/l` are needed).
#[rstest]
fn layers_500_mount(#[values(false, true)] long_ids: bool) {
    if !root_or_skip("layers_500_mount") {
        return;
    }
    let scratch = Scratch::new("500-layers");
    let sn = if long_ids {
        // Ids are only burnt here: the memory journal keeps it quick.
        let sn = open(
            &scratch.root(),
            Options {
                journal: Arc::new(MemoryBackend),
                ..Options::default()
            },
        );
        for i in 0..1000 {
            let key = format!("burn-{i}");
            sn.view(&key, None, Labels::new()).unwrap();
            sn.remove(&key).unwrap();
        }
        sn.cleanup().unwrap();
        sn
    } else {
        open(&scratch.root(), options(false))
    };
    many_layers(&sn, &scratch, 500, 50);
    if long_ids {
        let links = fs::read_dir(scratch.root().join("l")).unwrap().count();
        assert!(links > 0, "4-digit ids need the short links");
    }
}

/// Usage counts a hard-linked inode once, and Commit stores what was measured.
#[rstest]
fn hard_links_counted_once_in_usage() {
    if !root_or_skip("hard_links_counted_once_in_usage") {
        return;
    }
    let scratch = Scratch::new("hard-links");
    let sn = open(&scratch.root(), options(false));
    let m = Mounted::new(
        &sn.prepare("a", None, gc_root()).unwrap(),
        &scratch.work("a"),
    );
    let empty = sn.usage("a").unwrap();
    assert_eq!(empty.inodes, 1, "the fs directory itself");
    fs::write(m.join("big"), vec![7u8; 256 * 1024]).unwrap();
    nix::unistd::sync();
    let one = sn.usage("a").unwrap();
    assert_eq!(one.inodes, 2);
    assert!(one.size >= empty.size + 256 * 1024, "{one:?} vs {empty:?}");
    for l in ["l1", "l2", "l3"] {
        fs::hard_link(m.join("big"), m.join(l)).unwrap();
    }
    let linked = sn.usage("a").unwrap();
    assert_eq!(
        linked, one,
        "three more links to the same inode add nothing"
    );
    fs::write(m.join("copy"), vec![7u8; 256 * 1024]).unwrap();
    let copied = sn.usage("a").unwrap();
    assert_eq!(copied.inodes, 3);
    assert_eq!(copied.size - one.size, one.size - empty.size);
    m.unmount();
    sn.commit("c", "a", gc_root()).unwrap();
    assert_eq!(sn.usage("c").unwrap(), copied);
}

/// Usage of an Active is measured now (it follows writes), of a Committed is the value
/// stored at Commit (later changes to the directory do not show, and it survives a
/// reopen), of a View is zero.
#[rstest]
fn usage_by_kind() {
    if !root_or_skip("usage_by_kind") {
        return;
    }
    let scratch = Scratch::new("usage");
    let root = scratch.root();
    let sn = open(&root, options(false));
    let mounts = sn.prepare("a", None, gc_root()).unwrap();
    let upper = upper_of(&mounts);
    let m = Mounted::new(&mounts, &scratch.work("a"));
    let u0 = sn.usage("a").unwrap();
    fs::write(m.join("f"), vec![1u8; 100_000]).unwrap();
    let u1 = sn.usage("a").unwrap();
    assert!(
        u1.size > u0.size && u1.inodes == u0.inodes + 1,
        "{u0:?} {u1:?}"
    );
    fs::create_dir(m.join("d")).unwrap();
    fs::write(m.join("d/g"), vec![2u8; 50_000]).unwrap();
    let u2 = sn.usage("a").unwrap();
    assert!(
        u2.size > u1.size && u2.inodes == u1.inodes + 2,
        "{u1:?} {u2:?}"
    );
    m.unmount();

    sn.commit("c", "a", gc_root()).unwrap();
    let stored = sn.usage("c").unwrap();
    assert_eq!(stored, u2);
    // The committed layer's directory changes behind the snapshotter's back: the stored
    // value does not move.
    fs::write(upper.join("late"), vec![3u8; 100_000]).unwrap();
    assert_eq!(sn.usage("c").unwrap(), stored);

    sn.view("v", Some("c"), gc_root()).unwrap();
    let mounts = sn.view("v0", None, gc_root()).unwrap();
    fs::write(upper_of(&mounts).join("x"), "x").unwrap();
    assert_eq!(sn.usage("v").unwrap(), Usage::default());
    assert_eq!(sn.usage("v0").unwrap(), Usage::default());

    sn.prepare("b", Some("c"), gc_root()).unwrap();
    assert_eq!(
        sn.usage("b").unwrap().inodes,
        1,
        "an active counts its own layer only"
    );

    drop(sn);
    let sn = open(&root, options(false));
    assert_eq!(sn.usage("c").unwrap(), stored, "after reopen");
    assert_eq!(sn.usage("v").unwrap(), Usage::default());
}

/// Random bytes from a seeded generator.
fn bytes(rng: &mut XorShift, n: usize) -> Vec<u8> {
    (0..n).map(|_| rng.next_u64() as u8).collect()
}

/// A committed layer's files survive dropping the snapshotter and opening it again, byte
/// for byte, with modes, owners, links and symlinks; so do the Infos and the usage.
#[rstest]
fn committed_layers_survive_reopen(#[values(false, true)] checkpoint: bool) {
    if !root_or_skip("committed_layers_survive_reopen") {
        return;
    }
    let scratch = Scratch::new("reopen");
    let root = scratch.root();
    let mut rng = XorShift::new(seed("OVERLAYSNAP_REOPEN_SEED"));
    let l1 = vec![
        file("/empty", "", 0o600),
        file("/one", bytes(&mut rng, 1), 0o644),
        file("/page", bytes(&mut rng, 4096), 0o640),
        file("/odd", bytes(&mut rng, 4095), 0o755),
        file("/big", bytes(&mut rng, (1 << 20) + 3), 0o644),
        dir("/d1/d2/d3", 0o750),
        file("/d1/d2/d3/deep", bytes(&mut rng, 777), 0o4755),
        snapshotter_support::chown("/d1/d2", 42, 43),
        symlink_op("../one", "/d1/up"),
        link("/one", "/d1/hard"),
    ];
    let l2 = vec![
        file("/big", bytes(&mut rng, 5000), 0o600),
        remove_all("/d1/d2/d3"),
        file("/new", bytes(&mut rng, 70_000), 0o644),
        chmod("/odd", 0o700),
    ];
    let sn = open(&root, options(false));
    let flat = scratch.work("flat");
    let c1 = create_snapshot(&sn, &scratch, None, &l1);
    let c2 = create_snapshot(&sn, &scratch, Some(&c1), &l2);
    apply(&flat, &l1);
    apply(&flat, &l2);
    sn.prepare("open-active", Some(&c2), gc_root()).unwrap();
    let before = infos(&sn);
    let usage = (sn.usage(&c1).unwrap(), sn.usage(&c2).unwrap());
    if checkpoint {
        sn.checkpoint().unwrap();
    }
    drop(sn);

    let sn = open(&root, options(false));
    let report = sn.open_report().clone();
    assert!(
        report.damaged.is_empty() && report.recreated.is_empty(),
        "{report:?}"
    );
    assert_eq!(report.snapshots, 3);
    if checkpoint {
        assert_eq!(report.records_replayed, 0);
    }
    assert_eq!(infos(&sn), before);
    assert_eq!((sn.usage(&c1).unwrap(), sn.usage(&c2).unwrap()), usage);
    let m = Mounted::new(
        &sn.view("after", Some(&c2), gc_root()).unwrap(),
        &scratch.work("after"),
    );
    assert_same_tree(&flat, m.path(), "after reopen");
    m.unmount();
    let m = Mounted::new(&sn.mounts("open-active").unwrap(), &scratch.work("active"));
    assert_same_tree(&flat, m.path(), "the active above it, after reopen");
}

/// A missing Active or View directory (its record durable, its rename lost) is re-created
/// empty on open, owned like its parent's `fs` as Prepare made it, with `work` for an Active.
#[test]
fn a_recreated_directory_is_owned_like_its_parents() {
    if !root_or_skip("a_recreated_directory_is_owned_like_its_parents") {
        return;
    }
    let scratch = Scratch::new("recreated");
    let root = scratch.root();
    let labelled = Options {
        upperdir_label: true,
        ..options(false)
    };
    let sn = open(&root, labelled.clone());
    let base = upper_of(&sn.prepare("base-key", None, gc_root()).unwrap());
    std::os::unix::fs::chown(&base, Some(1000), Some(1001)).unwrap();
    sn.commit("base", "base-key", gc_root()).unwrap();
    sn.prepare("active", Some("base"), gc_root()).unwrap();
    sn.view("view", Some("base"), gc_root()).unwrap();
    sn.prepare("lone", None, gc_root()).unwrap();
    let ids = ids(&sn);
    drop(sn);
    for key in ["active", "view", "lone"] {
        std::fs::remove_dir_all(root.join("snapshots").join(ids[key].to_string())).unwrap();
    }

    let sn = open(&root, labelled);
    let mut recreated = sn.open_report().recreated.clone();
    recreated.sort_unstable();
    let mut expected = vec![ids["active"], ids["view"], ids["lone"]];
    expected.sort_unstable();
    assert_eq!(recreated, expected);
    let owner = |key: &str| {
        let md = std::fs::metadata(root.join(format!("snapshots/{}/fs", ids[key]))).unwrap();
        (md.uid(), md.gid(), md.mode() & 0o7777)
    };
    assert_eq!(owner("active"), (1000, 1001, 0o755));
    assert_eq!(owner("view"), (1000, 1001, 0o755));
    assert_eq!(owner("lone"), (0, 0, 0o755));
    let work = root.join(format!("snapshots/{}/work", ids["active"]));
    assert_eq!(std::fs::metadata(work).unwrap().mode() & 0o7777, 0o711);
    assert!(!root
        .join(format!("snapshots/{}/work", ids["view"]))
        .exists());
}

/// A refused call: what it is, the error kind it must get, the call.
type Refusal<'a> = (
    &'a str,
    ErrorKind,
    Box<dyn Fn() -> overlaysnap::Result<()> + 'a>,
);

/// Every refusal of the table in docs/semantics.md#operations, with its error kind, leaves the disk
/// exactly as it was (no file, directory, journal byte or time changed) and the state unchanged.
#[rstest]
fn errors_leave_the_disk_untouched(#[values(false, true)] sync_remove: bool) {
    if !root_or_skip("errors_leave_the_disk_untouched") {
        return;
    }
    let scratch = Scratch::new("errors");
    let root = scratch.root();
    let sn = open(&root, options(sync_remove));
    base_test_snapshots(&sn);
    let m = Mounted::new(&sn.mounts("a1").unwrap(), &scratch.work("a1"));
    fs::write(m.join("file"), "content").unwrap();
    m.unmount();
    let state = infos(&sn);
    let before = listing(&root);
    let big = labels(&[("k", &"v".repeat(4096))]);
    let none = Labels::new;
    use ErrorKind::*;
    let cases: Vec<Refusal> = vec![
        (
            "prepare existing active",
            AlreadyExists,
            Box::new(|| sn.prepare("a1", None, none()).map(drop)),
        ),
        (
            "prepare existing committed",
            AlreadyExists,
            Box::new(|| sn.prepare("c1", None, none()).map(drop)),
        ),
        (
            "prepare existing view",
            AlreadyExists,
            Box::new(|| sn.prepare("v1", Some("c1"), none()).map(drop)),
        ),
        (
            "view existing",
            AlreadyExists,
            Box::new(|| sn.view("a2", None, none()).map(drop)),
        ),
        (
            "prepare missing parent",
            NotFound,
            Box::new(|| sn.prepare("x", Some("nope"), none()).map(drop)),
        ),
        (
            "view missing parent",
            NotFound,
            Box::new(|| sn.view("x", Some("nope"), none()).map(drop)),
        ),
        (
            "prepare active parent",
            InvalidArgument,
            Box::new(|| sn.prepare("x", Some("a1"), none()).map(drop)),
        ),
        (
            "prepare view parent",
            InvalidArgument,
            Box::new(|| sn.prepare("x", Some("v1"), none()).map(drop)),
        ),
        (
            "view active parent",
            InvalidArgument,
            Box::new(|| sn.view("x", Some("a2"), none()).map(drop)),
        ),
        (
            "prepare empty key",
            InvalidArgument,
            Box::new(|| sn.prepare("", None, none()).map(drop)),
        ),
        (
            "view empty key",
            InvalidArgument,
            Box::new(|| sn.view("", Some("c1"), none()).map(drop)),
        ),
        (
            "prepare label too big",
            InvalidArgument,
            Box::new(|| sn.prepare("x", None, big.clone()).map(drop)),
        ),
        (
            "mounts missing",
            NotFound,
            Box::new(|| sn.mounts("nope").map(drop)),
        ),
        (
            "mounts committed",
            FailedPrecondition,
            Box::new(|| sn.mounts("c2").map(drop)),
        ),
        (
            "commit missing key",
            NotFound,
            Box::new(|| sn.commit("x", "nope", none())),
        ),
        (
            "commit existing name",
            AlreadyExists,
            Box::new(|| sn.commit("c1", "a1", none())),
        ),
        (
            "commit name == key",
            AlreadyExists,
            Box::new(|| sn.commit("a1", "a1", none())),
        ),
        (
            "commit onto an active's key",
            AlreadyExists,
            Box::new(|| sn.commit("a2", "a1", none())),
        ),
        (
            "commit a view",
            FailedPrecondition,
            Box::new(|| sn.commit("x", "v1", none())),
        ),
        (
            "commit a committed",
            FailedPrecondition,
            Box::new(|| sn.commit("x", "c2", none())),
        ),
        (
            "commit label too big",
            InvalidArgument,
            Box::new(|| sn.commit("x", "a1", big.clone())),
        ),
        ("remove missing", NotFound, Box::new(|| sn.remove("nope"))),
        (
            "remove with children",
            FailedPrecondition,
            Box::new(|| sn.remove("c2")),
        ),
        (
            "remove with grandchildren",
            FailedPrecondition,
            Box::new(|| sn.remove("c1")),
        ),
        (
            "stat missing",
            NotFound,
            Box::new(|| sn.stat("nope").map(drop)),
        ),
        (
            "usage missing",
            NotFound,
            Box::new(|| sn.usage("nope").map(drop)),
        ),
        (
            "update missing",
            NotFound,
            Box::new(|| sn.update("nope", none(), &[]).map(drop)),
        ),
        (
            "update parent",
            InvalidArgument,
            Box::new(|| sn.update("a1", none(), &["parent".into()]).map(drop)),
        ),
        (
            "update kind",
            InvalidArgument,
            Box::new(|| sn.update("c1", none(), &["kind".into()]).map(drop)),
        ),
        (
            "update label too big",
            InvalidArgument,
            Box::new(|| sn.update("a1", big.clone(), &[]).map(drop)),
        ),
        (
            "walk bad filter",
            InvalidArgument,
            Box::new(|| sn.walk(&["name~=(".into()], |_| Ok(()))),
        ),
    ];
    for (what, want, op) in &cases {
        let got = op();
        match got {
            Ok(()) => panic!("{what}: succeeded"),
            Err(e) => {
                assert_eq!(e.kind(), *want, "{what}: {e}");
                if *what == "remove with children" {
                    assert!(e.to_string().contains("remove"), "{what}: {e}");
                }
            }
        }
        assert_same_listing(&before, &listing(&root), what);
        assert_eq!(infos(&sn), state, "{what}: the state changed");
    }
    drop(cases);
    // And nothing of it comes back after a reopen.
    drop(sn);
    let sn = open(&root, options(sync_remove));
    assert_eq!(infos(&sn), state);
    assert_eq!(sn.open_report().orphans, 0);
}

/// `upperdir_label` adds containerd's upperdir label (the snapshot's `fs`, the mount's
/// upper directory) to Stat, Walk and Update, without storing it.
#[rstest]
fn upperdir_label() {
    if !root_or_skip("upperdir_label") {
        return;
    }
    let scratch = Scratch::new("upperdir-label");
    let root = scratch.root();
    let labelled = Options {
        upperdir_label: true,
        ..Options::default()
    };
    let sn = open(&root, labelled.clone());
    let a_mounts = sn.prepare("a", None, gc_root()).unwrap();
    let a_upper = sn.stat("a").unwrap().labels[UPPERDIR_LABEL].clone();
    assert_eq!(Path::new(&a_upper), upper_of(&a_mounts));
    sn.commit("c", "a", gc_root()).unwrap();
    assert_eq!(
        sn.stat("c").unwrap().labels[UPPERDIR_LABEL],
        a_upper,
        "commit keeps the directory"
    );
    let b_mounts = sn.prepare("b", Some("c"), gc_root()).unwrap();
    let b_info = sn.stat("b").unwrap();
    assert_eq!(
        Path::new(&b_info.labels[UPPERDIR_LABEL]),
        upper_of(&b_mounts)
    );
    assert!(Path::new(&b_info.labels[UPPERDIR_LABEL]).is_dir());
    assert!(
        b_info.labels[UPPERDIR_LABEL].starts_with(&*root.canonicalize().unwrap().to_string_lossy())
    );
    let updated = sn.update("b", labels(&[("x", "y")]), &[]).unwrap();
    assert_eq!(updated.labels.get("x").map(String::as_str), Some("y"));
    assert_eq!(
        updated.labels[UPPERDIR_LABEL],
        b_info.labels[UPPERDIR_LABEL]
    );
    for info in infos(&sn) {
        assert!(info.labels.contains_key(UPPERDIR_LABEL), "walk: {info:?}");
    }
    drop(sn);
    let sn = open(&root, Options::default());
    for info in infos(&sn) {
        assert!(
            !info.labels.contains_key(UPPERDIR_LABEL),
            "stored: {info:?}"
        );
    }
}

/// Sync remove deletes the directory at once; async remove leaves it to Cleanup.
#[rstest]
fn sync_and_async_remove(#[values(false, true)] sync_remove: bool) {
    if !root_or_skip("sync_and_async_remove") {
        return;
    }
    let scratch = Scratch::new("remove-modes");
    let root = scratch.root();
    let sn = open(
        &root,
        Options {
            sync_remove,
            upperdir_label: true,
            ..Options::default()
        },
    );
    sn.prepare("a", None, gc_root()).unwrap();
    sn.commit("c", "a", gc_root()).unwrap();
    sn.view("v", Some("c"), gc_root()).unwrap();
    sn.prepare("b", Some("c"), gc_root()).unwrap();
    let all = ids(&sn);
    assert_entries_are(&root, all.values().copied(), "before");
    for key in ["v", "b", "c"] {
        sn.remove(key).unwrap();
        let dir = root.join("snapshots").join(all[key].to_string());
        assert_eq!(dir.exists(), !sync_remove, "{key}: directory after Remove");
    }
    let removed = sn.cleanup().unwrap();
    assert_eq!(removed, if sync_remove { 0 } else { 3 });
    assert_entries_are(&root, [], "after cleanup");
}

/// The memory journal: everything works, nothing is written under `ROOT/journal`, and a
/// reopen starts empty (the old directories are deleted as never issued).
#[rstest]
fn memory_journal() {
    if !root_or_skip("memory_journal") {
        return;
    }
    let scratch = Scratch::new("memory-journal");
    let root = scratch.root();
    let memory = Options {
        journal: Arc::new(MemoryBackend),
        ..Options::default()
    };
    let sn = open(&root, memory.clone());
    check_snapshots(
        &sn,
        &scratch,
        &[
            vec![file("/a", "1", 0o644), dir("/d", 0o755)],
            vec![file("/b", "2", 0o644), remove_all("/a")],
        ],
    );
    sn.prepare("left", None, gc_root()).unwrap();
    sn.checkpoint().unwrap();
    assert!(
        !root.join("journal").exists(),
        "a memory journal left ROOT/journal"
    );
    let top: Vec<String> = fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!top.iter().any(|n| n.contains("journal")), "{top:?}");
    drop(sn);
    let sn = open(&root, memory);
    assert_eq!(sn.open_report().snapshots, 0);
    assert!(infos(&sn).is_empty());
    sn.cleanup().unwrap();
    assert_entries_are(&root, [], "after reopen and cleanup");
    assert!(!root.join("journal").exists());
}

/// A new snapshot's `fs` is owned like its parent's `fs` (containerd chowns it), so a
/// remapped image's root stays owned by the remapped root.
#[rstest]
fn child_fs_owned_like_parent() {
    if !root_or_skip("child_fs_owned_like_parent") {
        return;
    }
    let scratch = Scratch::new("owner");
    let sn = open(&scratch.root(), options(false));
    let m = Mounted::new(
        &sn.prepare("base-a", None, gc_root()).unwrap(),
        &scratch.work("base"),
    );
    nix::unistd::chown(
        m.path(),
        Some(nix::unistd::Uid::from_raw(1234)),
        Some(nix::unistd::Gid::from_raw(5678)),
    )
    .unwrap();
    m.unmount();
    sn.commit("base", "base-a", gc_root()).unwrap();
    for (key, view) in [("child", false), ("child-view", true)] {
        let mounts = if view {
            sn.view(key, Some("base"), gc_root()).unwrap()
        } else {
            sn.prepare(key, Some("base"), gc_root()).unwrap()
        };
        let m = Mounted::new(&mounts, &scratch.work(key));
        let md = fs::metadata(m.path()).unwrap();
        assert_eq!((md.uid(), md.gid()), (1234, 5678), "{key}");
        if !view {
            let upper = fs::metadata(upper_of(&mounts)).unwrap();
            assert_eq!((upper.uid(), upper.gid()), (1234, 5678), "{key}: fs");
            assert_eq!(upper.permissions().mode() & 0o777, 0o755);
        }
        m.unmount();
    }
}

/// One snapshotter per root: a second open of a root in use is refused, and the root
/// opens again once the first is dropped.
#[rstest]
fn second_open_of_a_root_is_refused() {
    if !root_or_skip("second_open_of_a_root_is_refused") {
        return;
    }
    let scratch = Scratch::new("second-open");
    let root = scratch.root();
    let sn = open(&root, options(false));
    sn.prepare("a", None, gc_root()).unwrap();
    let err = Snapshotter::open(&root, options(false)).unwrap_err();
    assert!(err.to_string().contains("locked"), "{err}");
    drop(sn);
    let sn = open(&root, options(false));
    assert_eq!(sn.stat("a").unwrap().kind, Kind::Active);
}

/// Opening a root that holds a durable log with the memory journal (a configuration
/// mistake) must not destroy the layers the log knows: either the open is refused, or the
/// directories stay, and the log still finds its committed layers afterwards.
#[rstest]
fn memory_journal_on_a_logged_root_keeps_the_layers() {
    if !root_or_skip("memory_journal_on_a_logged_root_keeps_the_layers") {
        return;
    }
    let scratch = Scratch::new("memory-on-log");
    let root = scratch.root();
    let sn = open(&root, Options::default());
    let c = create_snapshot(&sn, &scratch, None, &[file("/data", "precious", 0o644)]);
    drop(sn);
    let memory = Options {
        journal: Arc::new(MemoryBackend),
        ..Options::default()
    };
    if let Ok(sn) = Snapshotter::open(&root, memory) {
        assert!(
            sn.open_report().unissued.is_empty(),
            "{:?}",
            sn.open_report()
        );
    }
    let sn = open(&root, Options::default());
    assert!(
        sn.open_report().damaged.is_empty(),
        "{:?}",
        sn.open_report()
    );
    let m = Mounted::new(
        &sn.view("check", Some(&c), gc_root()).unwrap(),
        &scratch.work("check"),
    );
    assert_eq!(fs::read_to_string(m.join("data")).unwrap(), "precious");
}
