//! containerd 2.2's parallel unpack over gRPC (snapshots API v1.10,
//! `CommitSnapshotRequest.parent`), replayed step by step against the real `overlaysnapd`
//! with real mounts, since Debian ships no containerd 2.2: a layer is prepared without a
//! parent, its tar is applied through the returned mount with overlay whiteouts (a 0/0
//! character device for a deleted file, `trusted.overlay.opaque=y` on an opaque directory,
//! as the applier's overlay path writes them: `archive.OverlayConvertWhiteout`), then it
//! is committed above its parent; a view above it must show the lower files hidden.
//! Then each refusal of a rebase, with its gRPC code.

mod support;

use overlaysnap::fs::{mount_all, unmount_all, Mount, Unmount};
use overlaysnap_daemon::api::{self, CommitSnapshotRequest, ViewSnapshotRequest};
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use support::{assert_code, commit, prepare, stat, temp_dir, Client, Daemon, NAME};
use tonic::Code;

fn commit_above(name: &str, key: &str, parent: &str) -> CommitSnapshotRequest {
    CommitSnapshotRequest {
        parent: parent.into(),
        ..commit(name, key)
    }
}

fn local(mounts: Vec<api::Mount>) -> Vec<Mount> {
    mounts
        .into_iter()
        .map(|m| Mount {
            kind: m.r#type,
            source: m.source,
            target: m.target,
            options: m.options,
        })
        .collect()
}

/// Mounts `mounts` at `at`, runs `f` on it, unmounts.
fn with_mounted(mounts: Vec<api::Mount>, at: &Path, f: impl FnOnce(&Path)) {
    std::fs::create_dir_all(at).unwrap();
    mount_all(&local(mounts), at).unwrap();
    f(at);
    unmount_all(at, Unmount::Detach).unwrap();
}

fn c_path(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).unwrap()
}

/// An overlay whiteout: a character device 0/0.
fn whiteout(p: &Path) {
    let rc = unsafe { libc::mknod(c_path(p).as_ptr(), libc::S_IFCHR, 0) };
    assert_eq!(rc, 0, "mknod {p:?}: {}", std::io::Error::last_os_error());
}

/// An opaque directory: `trusted.overlay.opaque=y`.
fn opaque(p: &Path) {
    let name = CString::new("trusted.overlay.opaque").unwrap();
    let rc = unsafe {
        libc::setxattr(
            c_path(p).as_ptr(),
            name.as_ptr(),
            b"y".as_ptr().cast(),
            1,
            0,
        )
    };
    assert_eq!(rc, 0, "setxattr {p:?}: {}", std::io::Error::last_os_error());
}

async fn prepared(c: &mut Client, key: &str, parent: &str) -> Vec<api::Mount> {
    c.prepare(prepare(key, parent))
        .await
        .unwrap()
        .into_inner()
        .mounts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parentless_layer_keeps_its_whiteouts_when_rebased_at_commit() {
    let dir = temp_dir();
    let daemon = Daemon::start(dir.path(), &[]);
    let mut c = daemon.client().await;
    let mnt = dir.path().join("mnt");

    // The lower layer, as a sequential unpack makes it.
    let mounts = prepared(&mut c, "extract-1", "").await;
    with_mounted(mounts, &mnt, |root| {
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::write(root.join("etc/keep"), "k").unwrap();
        std::fs::write(root.join("etc/gone"), "g").unwrap();
        std::fs::create_dir_all(root.join("dir")).unwrap();
        std::fs::write(root.join("dir/old"), "o").unwrap();
    });
    c.commit(commit("sha256:base", "extract-1")).await.unwrap();

    // 1. Prepare without a parent (parallel unpack does not wait for the layer below).
    let mounts = prepared(&mut c, "extract-2", "").await;
    // 2. Apply: etc/gone deleted, dir/ opaque with a new file.
    with_mounted(mounts, &mnt, |root| {
        std::fs::create_dir_all(root.join("etc")).unwrap();
        whiteout(&root.join("etc/gone"));
        std::fs::create_dir_all(root.join("dir")).unwrap();
        opaque(&root.join("dir"));
        std::fs::write(root.join("dir/new"), "n").unwrap();
    });
    // 3. Commit with the parent.
    c.commit(commit_above("sha256:top", "extract-2", "sha256:base"))
        .await
        .unwrap();
    let info = stat(&mut c, "sha256:top").await;
    assert_eq!(info.parent, "sha256:base");
    assert_eq!(info.kind, api::Kind::Committed as i32);

    // 4. A child view sees the lower files hidden.
    let view = c
        .view(ViewSnapshotRequest {
            snapshotter: NAME.into(),
            key: "view".into(),
            parent: "sha256:top".into(),
            labels: Default::default(),
        })
        .await
        .unwrap()
        .into_inner()
        .mounts;
    assert_eq!(view[0].r#type, "overlay", "{view:?}");
    with_mounted(view, &mnt, |root| {
        assert_eq!(std::fs::read_to_string(root.join("etc/keep")).unwrap(), "k");
        assert!(!root.join("etc/gone").exists());
        assert!(!root.join("dir/old").exists());
        assert_eq!(std::fs::read_to_string(root.join("dir/new")).unwrap(), "n");
    });
    // The base cannot go while the rebased layer stands on it.
    let removed = c.remove(support_remove("sha256:base")).await;
    assert_code(
        removed,
        Code::FailedPrecondition,
        "remove the rebased layer's parent",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebase_refusal_has_containerds_code() {
    let dir = temp_dir();
    let daemon = Daemon::start(dir.path(), &[]);
    let mut c = daemon.client().await;
    for (key, parent) in [("b", ""), ("o", "")] {
        prepared(&mut c, key, parent).await;
    }
    c.commit(commit("base", "b")).await.unwrap();
    c.commit(commit("other", "o")).await.unwrap();
    prepared(&mut c, "child", "base").await;
    prepared(&mut c, "free", "").await;
    prepared(&mut c, "busy", "").await;
    for (key, parent, code) in [
        ("child", "other", Code::InvalidArgument),
        ("free", "missing", Code::NotFound),
        ("free", "busy", Code::FailedPrecondition),
        ("free", "a\nb", Code::InvalidArgument),
    ] {
        let answer = c.commit(commit_above("n", key, parent)).await;
        assert_code(answer, code, &format!("commit {key:?} above {parent:?}"));
    }
    // Nothing changed; the own parent, or none, commits as before.
    assert_eq!(stat(&mut c, "free").await.kind, api::Kind::Active as i32);
    c.commit(commit_above("n", "child", "base")).await.unwrap();
    assert_eq!(stat(&mut c, "n").await.parent, "base");
}

fn support_remove(key: &str) -> api::RemoveSnapshotRequest {
    api::RemoveSnapshotRequest {
        snapshotter: NAME.into(),
        key: key.into(),
    }
}
