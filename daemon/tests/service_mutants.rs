//! What the mutation run on the daemon's services found untested (docs/mutants.md):
//! Compact answers the number of snapshots of every kind, Views included; the snapshot
//! service answers calls that touch the disk on a current-thread runtime too (where
//! `block_in_place` is not allowed).

mod support;

use overlaysnap::service::Router;
use overlaysnap::{MemoryBackend, Options, Snapshotter};
use overlaysnap_daemon::api::overlaysnap::admin::v1::CompactRequest;
use overlaysnap_daemon::api::snapshots_server::Snapshots as _;
use overlaysnap_daemon::api::ViewSnapshotRequest;
use overlaysnap_daemon::client;
use overlaysnap_daemon::service::SnapshotService;
use std::collections::BTreeMap;
use std::sync::Arc;
use support::{commit, prepare, temp_dir, Daemon, NAME};
use tonic::Request;

/// The default (current-thread) runtime of `#[tokio::test]`.
#[tokio::test]
async fn the_service_serves_disk_calls_on_a_current_thread_runtime() {
    let dir = temp_dir();
    let options = Options {
        journal: Arc::new(MemoryBackend),
        ..Options::default()
    };
    let snapshotter = Arc::new(Snapshotter::open(dir.path().join("root"), options).unwrap());
    let mut router = Router::new();
    router.register(NAME, snapshotter.clone()).unwrap();
    let service = SnapshotService::new(Arc::new(router));
    let mounts = service
        .prepare(Request::new(prepare("a", "")))
        .await
        .unwrap()
        .into_inner()
        .mounts;
    assert_eq!(mounts.len(), 1);
    service
        .commit(Request::new(commit("base", "a")))
        .await
        .unwrap();
    assert_eq!(snapshotter.stat("base").unwrap().name, "base");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compact_counts_active_view_and_committed_snapshots() {
    let dir = temp_dir();
    let daemon = Daemon::start(dir.path(), &[]);
    let mut snapshots = daemon.client().await;
    let mut admin = client::connect_admin(&daemon.socket).await.unwrap();
    snapshots.prepare(prepare("a", "")).await.unwrap();
    snapshots.commit(commit("base", "a")).await.unwrap();
    snapshots.prepare(prepare("b", "base")).await.unwrap();
    for key in ["v1", "v2"] {
        snapshots
            .view(ViewSnapshotRequest {
                snapshotter: NAME.into(),
                key: key.into(),
                parent: "base".into(),
                labels: BTreeMap::new(),
            })
            .await
            .unwrap();
    }
    // 1 Active, 2 Views, 1 Committed.
    let compact = admin.compact(CompactRequest {}).await.unwrap().into_inner();
    assert_eq!(compact.snapshots, 4);
}
