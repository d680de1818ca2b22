//! containerd 2.2's parallel unpack over gRPC (snapshots API v1.10,
//! `CommitSnapshotRequest.parent`), replayed step by step against the real `overlaysnapd`
//! with real mounts, since Debian ships no containerd 2.2. With `rebase = true` in the
//! daemon's config (as the `rebase` capability asks), a layer prepared without a parent is
//! an overlay mount with an `upperdir`, so the applier takes its overlay path
//! (`getOverlayPath` in `core/diff/apply/apply_linux.go`) and writes the tar straight into
//! the `upperdir` with overlay whiteouts (`archive.OverlayConvertWhiteout`: a 0/0 character
//! device for a deleted file, `trusted.overlay.opaque=y` on an opaque directory); the layer
//! is then committed above its parent, and a view above it must show the lower files
//! hidden. Without the option the mount is a bind mount, on which the applier would lose
//! the whiteouts (row 13 of docs/semantics.md#differences). Then each refusal of a rebase,
//! with its gRPC code.

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
    let config = dir.path().join("overlaysnapd.toml");
    std::fs::write(&config, "rebase = true\n").unwrap();
    let daemon = Daemon::start(dir.path(), &["--config", config.to_str().unwrap()]);
    let mut c = daemon.client().await;
    let mnt = dir.path().join("mnt");

    // The lower layer, written through its (overlay) mount.
    let mounts = prepared(&mut c, "extract-1", "").await;
    assert_eq!(mounts[0].r#type, "overlay", "{mounts:?}");
    with_mounted(mounts, &mnt, |root| {
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::write(root.join("etc/keep"), "k").unwrap();
        std::fs::write(root.join("etc/gone"), "g").unwrap();
        std::fs::create_dir_all(root.join("dir")).unwrap();
        std::fs::write(root.join("dir/old"), "o").unwrap();
    });
    c.commit(commit("sha256:base", "extract-1")).await.unwrap();

    // 1. Prepare without a parent (parallel unpack does not wait for the layer below): an
    //    overlay mount with an upperdir, which the applier's overlay path needs.
    let mounts = prepared(&mut c, "extract-2", "").await;
    assert_eq!(mounts.len(), 1, "{mounts:?}");
    assert_eq!(mounts[0].r#type, "overlay", "{mounts:?}");
    let upper = mounts[0]
        .options
        .iter()
        .find_map(|o| o.strip_prefix("upperdir="))
        .unwrap_or_else(|| panic!("no upperdir in {mounts:?}"));
    // 2. Apply as the applier does: into the upperdir, not through a mount; etc/gone
    //    deleted, dir/ opaque with a new file.
    let upper = Path::new(upper);
    std::fs::create_dir_all(upper.join("etc")).unwrap();
    whiteout(&upper.join("etc/gone"));
    std::fs::create_dir_all(upper.join("dir")).unwrap();
    opaque(&upper.join("dir"));
    std::fs::write(upper.join("dir/new"), "n").unwrap();
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

/// Without `rebase` in the config (the default), a parentless layer is a bind mount of its
/// `fs`, as containerd's overlay snapshotter returns it (the applier would then apply the
/// tar through the mount, and a whiteout of a file that is not there does nothing).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_rebase_option_a_parentless_layer_is_a_bind_mount() {
    let dir = temp_dir();
    let daemon = Daemon::start(dir.path(), &[]);
    let mut c = daemon.client().await;
    let mounts = prepared(&mut c, "extract", "").await;
    assert_eq!(mounts.len(), 1, "{mounts:?}");
    assert_eq!(mounts[0].r#type, "bind", "{mounts:?}");
    assert_eq!(mounts[0].options, ["rw", "rbind"]);
    assert!(mounts[0].source.ends_with("/fs"), "{mounts:?}");
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
