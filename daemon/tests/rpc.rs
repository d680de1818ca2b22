//! Every RPC of containerd's snapshot service against the real `overlaysnapd`, over its
//! unix socket: results, every error code, Update with field masks, List in blocks of at
//! most 100 and concurrent clients.

mod support;

use overlaysnap_daemon::api::{
    CleanupRequest, Info, Kind, ListSnapshotsRequest, MountsRequest, RemoveSnapshotRequest,
    StatSnapshotRequest, UpdateSnapshotRequest, UsageRequest, ViewSnapshotRequest,
};
use support::{assert_code, commit, labels, prepare, stat, temp_dir, Client, Daemon, NAME};
use tonic::{Code, Request, Status};

fn stat_req(key: &str) -> StatSnapshotRequest {
    StatSnapshotRequest {
        snapshotter: NAME.into(),
        key: key.into(),
    }
}

fn list_req(filters: &[&str]) -> ListSnapshotsRequest {
    ListSnapshotsRequest {
        snapshotter: NAME.into(),
        filters: filters.iter().map(|f| (*f).to_owned()).collect(),
    }
}

fn update_req(key: &str, pairs: &[(&str, &str)], paths: Option<&[&str]>) -> UpdateSnapshotRequest {
    UpdateSnapshotRequest {
        snapshotter: NAME.into(),
        info: Some(Info {
            name: key.into(),
            labels: labels(pairs),
            ..Info::default()
        }),
        update_mask: paths.map(|p| prost_types::FieldMask {
            paths: p.iter().map(|s| (*s).to_owned()).collect(),
        }),
    }
}

/// The messages of a List call: the names in each block.
async fn list_blocks(client: &mut Client, filters: &[&str]) -> Result<Vec<Vec<String>>, Status> {
    let mut stream = client.list(list_req(filters)).await?.into_inner();
    let mut blocks = Vec::new();
    while let Some(block) = stream.message().await? {
        blocks.push(block.info.into_iter().map(|i| i.name).collect());
    }
    Ok(blocks)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rpc_answers_as_containerds_service() {
    let dir = temp_dir();
    let daemon = Daemon::start(dir.path(), &[]);
    let mut c = daemon.client().await;

    // Prepare without a parent: a bind mount of the snapshot's own fs, read-write. The
    // request carries containerd's namespace header, as containerd's proxy sends it.
    let mut req = Request::new(prepare("default/1/base", ""));
    req.metadata_mut()
        .insert("containerd-namespace", "default".parse().unwrap());
    let mounts = c.prepare(req).await.unwrap().into_inner().mounts;
    assert_eq!(mounts.len(), 1);
    assert_eq!(mounts[0].r#type, "bind");
    assert_eq!(mounts[0].options, ["rw", "rbind"]);
    let fs = std::path::PathBuf::from(&mounts[0].source);
    assert!(fs.starts_with(&daemon.root), "{fs:?} is under the root");
    std::fs::write(fs.join("hello"), vec![7u8; 10_000]).unwrap();

    // Usage of an Active snapshot is measured now.
    let usage = c
        .usage(UsageRequest {
            snapshotter: NAME.into(),
            key: "default/1/base".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(usage.size >= 10_000, "{usage:?}");
    assert_eq!(usage.inodes, 2, "the fs directory and one file");

    // Commit, with labels.
    let mut req = commit("sha256:base", "default/1/base");
    req.labels = labels(&[("containerd.io/gc.root", "x")]);
    c.commit(req).await.unwrap();
    let base = stat(&mut c, "sha256:base").await;
    assert_eq!(base.kind, Kind::Committed as i32);
    assert_eq!(base.parent, "");
    assert_eq!(base.labels, labels(&[("containerd.io/gc.root", "x")]));
    let created = base.created_at.expect("created_at");
    assert!(created.seconds > 1_600_000_000, "{created:?}");
    assert_eq!(base.updated_at, Some(created));

    // Prepare above it: an overlay mount with the parent as lowerdir.
    let mounts = c
        .prepare(prepare("rootfs", "sha256:base"))
        .await
        .unwrap()
        .into_inner()
        .mounts;
    assert_eq!(mounts[0].r#type, "overlay");
    assert_eq!(mounts[0].source, "overlay");
    let lower = format!("lowerdir={}", fs.display());
    assert!(
        mounts[0].options.contains(&lower),
        "{:?}",
        mounts[0].options
    );
    let again = c
        .mounts(MountsRequest {
            snapshotter: NAME.into(),
            key: "rootfs".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .mounts;
    assert_eq!(again, mounts);
    let rootfs = stat(&mut c, "rootfs").await;
    assert_eq!(
        (rootfs.kind, rootfs.parent.as_str()),
        (Kind::Active as i32, "sha256:base")
    );

    // View of one parent: a read-only bind of the parent's fs.
    let view = c
        .view(ViewSnapshotRequest {
            snapshotter: NAME.into(),
            key: "view".into(),
            parent: "sha256:base".into(),
            labels: labels(&[("l", "v")]),
        })
        .await
        .unwrap()
        .into_inner()
        .mounts;
    assert_eq!(view[0].r#type, "bind");
    assert_eq!(view[0].source, fs.display().to_string());
    assert_eq!(view[0].options, ["ro", "rbind"]);
    let v = stat(&mut c, "view").await;
    assert_eq!(
        (v.kind, v.labels.clone()),
        (Kind::View as i32, labels(&[("l", "v")]))
    );

    // Usage: Committed answers what was measured at Commit; a View uses nothing.
    let usage_of = |key: &str| UsageRequest {
        snapshotter: NAME.into(),
        key: key.into(),
    };
    let committed = c.usage(usage_of("sha256:base")).await.unwrap().into_inner();
    assert_eq!(committed, usage);
    let viewed = c.usage(usage_of("view")).await.unwrap().into_inner();
    assert_eq!((viewed.size, viewed.inodes), (0, 0));

    // Update returns the new info.
    let updated = c
        .update(update_req("rootfs", &[("a", "1")], None))
        .await
        .unwrap()
        .into_inner()
        .info
        .unwrap();
    assert_eq!(updated.labels, labels(&[("a", "1")]));

    // List: everything in name order, or what the filters select.
    let all = list_blocks(&mut c, &[]).await.unwrap();
    assert_eq!(all, [vec!["rootfs", "sha256:base", "view"]]);
    let filtered = list_blocks(&mut c, &["kind==view", "labels.a==1"])
        .await
        .unwrap();
    assert_eq!(filtered, [vec!["rootfs", "view"]]);
    let none = list_blocks(&mut c, &["name==nothing"]).await.unwrap();
    assert!(none.is_empty(), "no block at all for no match: {none:?}");

    // Remove, then Cleanup deletes the directory (async remove is the default).
    for key in ["view", "rootfs", "sha256:base"] {
        c.remove(RemoveSnapshotRequest {
            snapshotter: NAME.into(),
            key: key.into(),
        })
        .await
        .unwrap_or_else(|s| panic!("remove {key}: {s}"));
    }
    assert!(list_blocks(&mut c, &[]).await.unwrap().is_empty());
    assert!(fs.exists(), "async remove leaves the directory to Cleanup");
    c.cleanup(CleanupRequest {
        snapshotter: NAME.into(),
    })
    .await
    .unwrap();
    assert!(!fs.exists(), "Cleanup deleted {fs:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_refusal_has_containerds_code() {
    let dir = temp_dir();
    let daemon = Daemon::start(dir.path(), &[]);
    let mut c = daemon.client().await;
    c.prepare(prepare("a", "")).await.unwrap();
    c.commit(commit("base", "a")).await.unwrap();
    c.prepare(prepare("active", "base")).await.unwrap();
    c.view(ViewSnapshotRequest {
        snapshotter: NAME.into(),
        key: "view".into(),
        parent: "base".into(),
        labels: Default::default(),
    })
    .await
    .unwrap();

    use Code::*;
    assert_code(
        c.prepare(prepare("active", "")).await,
        AlreadyExists,
        "prepare of a taken key",
    );
    assert_code(
        c.prepare(prepare("base", "")).await,
        AlreadyExists,
        "prepare of a taken name",
    );
    assert_code(
        c.prepare(prepare("b", "missing")).await,
        NotFound,
        "prepare above a missing parent",
    );
    assert_code(
        c.prepare(prepare("b", "active")).await,
        InvalidArgument,
        "prepare above an active",
    );
    assert_code(
        c.prepare(prepare("", "")).await,
        InvalidArgument,
        "prepare of an empty key",
    );
    let mut big = prepare("b", "");
    big.labels = labels(&[("k", &"v".repeat(4096))]);
    assert_code(
        c.prepare(big).await,
        InvalidArgument,
        "a label over 4096 bytes",
    );

    let mounts = |key: &str| MountsRequest {
        snapshotter: NAME.into(),
        key: key.into(),
    };
    assert_code(
        c.mounts(mounts("missing")).await,
        NotFound,
        "mounts of a missing key",
    );
    assert_code(
        c.mounts(mounts("base")).await,
        FailedPrecondition,
        "mounts of a committed",
    );

    assert_code(
        c.commit(commit("base", "active")).await,
        AlreadyExists,
        "commit to a taken name",
    );
    assert_code(
        c.commit(commit("active", "active")).await,
        AlreadyExists,
        "commit to its own key",
    );
    assert_code(
        c.commit(commit("n", "missing")).await,
        NotFound,
        "commit of a missing key",
    );
    assert_code(
        c.commit(commit("n", "view")).await,
        FailedPrecondition,
        "commit of a view",
    );
    assert_code(
        c.commit(commit("n", "base")).await,
        FailedPrecondition,
        "commit of a committed",
    );

    let remove = |key: &str| RemoveSnapshotRequest {
        snapshotter: NAME.into(),
        key: key.into(),
    };
    assert_code(
        c.remove(remove("missing")).await,
        NotFound,
        "remove of a missing key",
    );
    let s = assert_code(
        c.remove(remove("base")).await,
        FailedPrecondition,
        "remove of a parent",
    );
    assert!(
        s.message().ends_with(": failed precondition"),
        "{}",
        s.message()
    );

    let s = assert_code(
        c.stat(stat_req("missing")).await,
        NotFound,
        "stat of a missing key",
    );
    assert!(
        s.message().contains("missing") && s.message().ends_with(": not found"),
        "{}",
        s.message()
    );
    let usage = UsageRequest {
        snapshotter: NAME.into(),
        key: "missing".into(),
    };
    assert_code(c.usage(usage).await, NotFound, "usage of a missing key");

    assert_code(
        c.update(update_req("missing", &[], None)).await,
        NotFound,
        "update of a missing key",
    );
    let parent_path = update_req("active", &[], Some(&["parent"]));
    assert_code(
        c.update(parent_path).await,
        InvalidArgument,
        "update of the parent",
    );
    let mut no_info = update_req("active", &[], None);
    no_info.info = None;
    assert_code(
        c.update(no_info).await,
        InvalidArgument,
        "update without an info",
    );

    // A malformed filter refuses the List call itself, before any message.
    let s = assert_code(
        c.list(list_req(&["name=="])).await,
        InvalidArgument,
        "list with a bad filter",
    );
    assert!(
        s.message().ends_with(": invalid argument"),
        "{}",
        s.message()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rpc_refuses_a_missing_or_unknown_snapshotter() {
    let dir = temp_dir();
    let daemon = Daemon::start(dir.path(), &[]);
    let mut c = daemon.client().await;
    for (name, message) in [
        ("", "snapshotter argument missing"),
        ("overlayfs", "snapshotter not loaded: overlayfs"),
    ] {
        let n = || name.to_owned();
        let mut p = prepare("k", "");
        p.snapshotter = n();
        let mut cm = commit("n", "k");
        cm.snapshotter = n();
        let mut up = update_req("k", &[], None);
        up.snapshotter = n();
        let view = ViewSnapshotRequest {
            snapshotter: n(),
            key: "k".into(),
            ..Default::default()
        };
        let results = [
            ("prepare", c.prepare(p).await.map(drop)),
            ("view", c.view(view).await.map(drop)),
            (
                "mounts",
                c.mounts(MountsRequest {
                    snapshotter: n(),
                    key: "k".into(),
                })
                .await
                .map(drop),
            ),
            ("commit", c.commit(cm).await.map(drop)),
            (
                "remove",
                c.remove(RemoveSnapshotRequest {
                    snapshotter: n(),
                    key: "k".into(),
                })
                .await
                .map(drop),
            ),
            (
                "stat",
                c.stat(StatSnapshotRequest {
                    snapshotter: n(),
                    key: "k".into(),
                })
                .await
                .map(drop),
            ),
            ("update", c.update(up).await.map(drop)),
            (
                "list",
                c.list(ListSnapshotsRequest {
                    snapshotter: n(),
                    filters: vec![],
                })
                .await
                .map(drop),
            ),
            (
                "usage",
                c.usage(UsageRequest {
                    snapshotter: n(),
                    key: "k".into(),
                })
                .await
                .map(drop),
            ),
            (
                "cleanup",
                c.cleanup(CleanupRequest { snapshotter: n() })
                    .await
                    .map(drop),
            ),
        ];
        for (op, result) in results {
            let s = assert_code(
                result,
                Code::InvalidArgument,
                &format!("{op} naming {name:?}"),
            );
            assert!(s.message().contains(message), "{op}: {}", s.message());
        }
    }
    // Nothing was created on the way.
    assert!(list_blocks(&mut c, &[]).await.unwrap().is_empty());
}

/// Updates the labels of `k` and answers the labels Update returned.
async fn update(
    c: &mut Client,
    pairs: &[(&str, &str)],
    paths: Option<&[&str]>,
) -> std::collections::BTreeMap<String, String> {
    c.update(update_req("k", pairs, paths))
        .await
        .unwrap_or_else(|s| panic!("update {paths:?}: {s}"))
        .into_inner()
        .info
        .expect("update answers an info")
        .labels
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_follows_the_field_mask() {
    let dir = temp_dir();
    let daemon = Daemon::start(dir.path(), &[]);
    let mut c = daemon.client().await;
    let mut req = prepare("k", "");
    req.labels = labels(&[("a", "1"), ("b", "2")]);
    c.prepare(req).await.unwrap();
    let before = stat(&mut c, "k").await;

    // One label by path; the others stay.
    assert_eq!(
        update(&mut c, &[("a", "9")], Some(&["labels.a"])).await,
        labels(&[("a", "9"), ("b", "2")])
    );
    // A path whose value is absent deletes the label.
    assert_eq!(
        update(&mut c, &[], Some(&["labels.b"])).await,
        labels(&[("a", "9")])
    );
    // A label outside the mask is not applied.
    assert_eq!(
        update(&mut c, &[("c", "3"), ("z", "0")], Some(&["labels.c"])).await,
        labels(&[("a", "9"), ("c", "3")])
    );
    // `labels` replaces them all, as does an empty mask or none.
    assert_eq!(
        update(&mut c, &[("d", "4")], Some(&["labels"])).await,
        labels(&[("d", "4")])
    );
    assert_eq!(
        update(&mut c, &[("e", "5")], Some(&[])).await,
        labels(&[("e", "5")])
    );
    assert_eq!(
        update(&mut c, &[("f", "6")], None).await,
        labels(&[("f", "6")])
    );

    let after = stat(&mut c, "k").await;
    assert_eq!(
        (after.kind, &after.name, &after.parent),
        (before.kind, &before.name, &before.parent)
    );
    assert_eq!(after.created_at, before.created_at);
    let time = |t: Option<prost_types::Timestamp>| t.map(|t| (t.seconds, t.nanos));
    assert!(
        time(after.updated_at) > time(before.updated_at),
        "updated_at moves on"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_list_of_250_snapshots_arrives_in_3_messages() {
    let dir = temp_dir();
    let daemon = Daemon::start(dir.path(), &[]);
    let c = daemon.client().await;
    // Eight clients prepare 250 snapshots between them.
    let tasks: Vec<_> = (0..8)
        .map(|t| {
            let mut c = c.clone();
            tokio::spawn(async move {
                for i in (t..250).step_by(8) {
                    c.prepare(prepare(&format!("k{i:03}"), "")).await.unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let mut c = c.clone();
    let blocks = list_blocks(&mut c, &[]).await.unwrap();
    assert_eq!(
        blocks.iter().map(Vec::len).collect::<Vec<_>>(),
        [100, 100, 50]
    );
    let names: Vec<String> = blocks.concat();
    let expected: Vec<String> = (0..250).map(|i| format!("k{i:03}")).collect();
    assert_eq!(names, expected);
    // Filters apply before the blocks are cut.
    let some = list_blocks(&mut c, &["name~=^k1", "name==k249"])
        .await
        .unwrap();
    assert_eq!(some.iter().map(Vec::len).collect::<Vec<_>>(), [100, 1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_clients_each_see_their_own_work_and_one_wins_a_shared_key() {
    let dir = temp_dir();
    let daemon = Daemon::start(dir.path(), &[]);
    let mut clients = Vec::new();
    for _ in 0..8 {
        clients.push(daemon.client().await);
    }
    // Each client over its own connection: prepare, commit, stat 20 snapshots.
    let tasks: Vec<_> = clients
        .iter()
        .cloned()
        .enumerate()
        .map(|(t, mut c)| {
            tokio::spawn(async move {
                for i in 0..20 {
                    let (key, name) = (format!("c{t}/k{i}"), format!("c{t}/n{i}"));
                    c.prepare(prepare(&key, "")).await.unwrap();
                    c.commit(commit(&name, &key)).await.unwrap();
                    let info = stat(&mut c, &name).await;
                    assert_eq!(info.kind, Kind::Committed as i32);
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    // All eight race for one key: exactly one wins, the others are told it exists.
    let racers: Vec<_> = clients
        .iter()
        .cloned()
        .map(|mut c| tokio::spawn(async move { c.prepare(prepare("shared", "c0/n0")).await }))
        .collect();
    let mut codes = Vec::new();
    for r in racers {
        codes.push(r.await.unwrap().map_err(|s| s.code()).map(drop));
    }
    assert_eq!(codes.iter().filter(|r| r.is_ok()).count(), 1, "{codes:?}");
    assert!(
        codes
            .iter()
            .all(|r| matches!(r, Ok(()) | Err(Code::AlreadyExists))),
        "{codes:?}"
    );

    let mut c = clients.pop().unwrap();
    let committed: Vec<String> = list_blocks(&mut c, &["kind==committed"])
        .await
        .unwrap()
        .concat();
    assert_eq!(committed.len(), 160);
    let active: Vec<String> = list_blocks(&mut c, &["kind==active"])
        .await
        .unwrap()
        .concat();
    assert_eq!(active, ["shared"]);
}
