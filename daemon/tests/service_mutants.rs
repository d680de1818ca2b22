//! What the mutation run on the daemon's services found untested (docs/mutants.md):
//! Compact answers the number of snapshots of every kind, Views included; the snapshot
//! service answers calls that touch the disk on a current-thread runtime too (where
//! `block_in_place` is not allowed); each call's log line has its level, verdict, key and
//! namespace; and a List its client left logs how much it had sent.

mod support;

use overlaysnap::service::Router;
use overlaysnap::{MemoryBackend, Options, Snapshotter};
use overlaysnap_daemon::api::overlaysnap::admin::v1::CompactRequest;
use overlaysnap_daemon::api::snapshots_server::Snapshots as _;
use overlaysnap_daemon::api::{
    CleanupRequest, Info, ListSnapshotsRequest, StatSnapshotRequest, UpdateSnapshotRequest,
    UsageRequest, ViewSnapshotRequest,
};
use overlaysnap_daemon::client;
use overlaysnap_daemon::service::SnapshotService;
use std::collections::BTreeMap;
use std::sync::Arc;
use support::{commit, labels, prepare, temp_dir, Daemon, NAME};
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

/// `req` with containerd's namespace header `ns1`.
fn in_ns1<T>(req: T) -> Request<T> {
    let mut req = Request::new(req);
    req.metadata_mut()
        .insert("containerd-namespace", "ns1".parse().unwrap());
    req
}

/// Each call's log line (`log_call`): at debug level, "ok" for a success and "refused" with
/// the code for an error of the request's making; at error level, "failed", for an I/O
/// error. Each names the call, its key (Update's snapshot, none for Cleanup) and the
/// namespace.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_call_is_logged_with_its_key_namespace_and_level() {
    let dir = temp_dir();
    let daemon = Daemon::start(dir.path(), &["--log-level", "debug"]);
    let mut c = daemon.client().await;
    c.prepare(in_ns1(prepare("a", ""))).await.unwrap();
    c.commit(in_ns1(commit("base", "a"))).await.unwrap();
    let missing = StatSnapshotRequest {
        snapshotter: NAME.into(),
        key: "missing".into(),
    };
    c.stat(in_ns1(missing)).await.unwrap_err();
    let update = UpdateSnapshotRequest {
        snapshotter: NAME.into(),
        info: Some(Info {
            name: "base".into(),
            labels: labels(&[("x", "1")]),
            ..Info::default()
        }),
        update_mask: None,
    };
    c.update(in_ns1(update)).await.unwrap();
    let cleanup = CleanupRequest {
        snapshotter: NAME.into(),
    };
    c.cleanup(in_ns1(cleanup)).await.unwrap();
    // Usage of an Active snapshot whose directory is gone fails with an I/O error.
    let mounts = c.prepare(in_ns1(prepare("b", "base"))).await.unwrap();
    let upper = mounts.into_inner().mounts[0]
        .options
        .iter()
        .find_map(|o| o.strip_prefix("upperdir="))
        .expect("an overlay's upperdir")
        .to_owned();
    std::fs::remove_dir_all(std::path::Path::new(&upper).parent().unwrap()).unwrap();
    let usage = UsageRequest {
        snapshotter: NAME.into(),
        key: "b".into(),
    };
    c.usage(in_ns1(usage)).await.unwrap_err();

    let log = daemon.log_text();
    for (level, verdict, op, key) in [
        ("DEBUG", "ok", "prepare", "a"),
        ("DEBUG", "ok", "commit", "a"),
        ("DEBUG", "refused", "stat", "missing"),
        ("DEBUG", "ok", "update", "base"),
        ("DEBUG", "ok", "cleanup", ""),
        ("ERROR", "failed", "usage", "b"),
    ] {
        let line = format!(
            "{level} overlaysnap_daemon::service: {verdict} op=\"{op}\" key=\"{key}\" \
             namespace=\"ns1\" latency_us="
        );
        assert!(log.contains(&line), "no line {line:?} in the log:\n{log}");
    }
    let refusal = log.lines().find(|l| l.contains("refused op=\"stat\""));
    assert!(
        refusal.is_some_and(|l| l.contains("code=NotFound")),
        "the refusal names its code:\n{log}"
    );
}

/// A List whose client goes away after the first block: the daemon logs that, with how many
/// Infos it had sent by then (at least that first block of 100). Each Info carries four
/// labels of 4000 bytes, so that the 1000 of them (16 MB) outgrow what the transport and
/// the stream's buffer take while the client does not read (600 of them here): the daemon
/// is still sending when the client leaves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_list_left_by_its_client_logs_how_many_infos_it_sent() {
    let dir = temp_dir();
    let daemon = Daemon::start(dir.path(), &["--log-level", "debug"]);
    let mut c = daemon.client().await;
    let big = "x".repeat(4000);
    for i in 0..1000 {
        let mut req = prepare(&format!("k{i:04}"), "");
        req.labels = labels(&[("a", &big), ("b", &big), ("c", &big), ("d", &big)]);
        c.prepare(req).await.unwrap();
    }
    let list = ListSnapshotsRequest {
        snapshotter: NAME.into(),
        filters: Vec::new(),
    };
    let mut stream = c.list(list).await.unwrap().into_inner();
    let first = stream.message().await.unwrap().expect("a first block");
    assert_eq!(first.info.len(), 100);
    drop(stream);
    let end = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let line = loop {
        let log = daemon.log_text();
        if let Some(line) = log.lines().find(|l| l.contains("client went away")) {
            break line.to_owned();
        }
        assert!(
            std::time::Instant::now() < end,
            "after 10 s, no \"client went away\" in the log:\n{log}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    };
    let sent: usize = line
        .split_once("infos=")
        .and_then(|(_, n)| n.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count of Infos in {line:?}"));
    eprintln!("{line}");
    assert!((100..1000).contains(&sent), "{line}");
}
