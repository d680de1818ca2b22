//! The places where overlaysnapd answers containerd's gRPC calls differently from
//! containerd 1.6.20 on purpose, over the real socket (`docs/semantics.md#differences` lists
//! them with the reasons). Each test names its row of that table; rows 1–3 have their
//! library tests in `tests/semantics_differences.rs`, and are checked here only for the gRPC
//! code they reach containerd with.

mod support;

use overlaysnap_daemon::api::{Info, ListSnapshotsRequest, UpdateSnapshotRequest};
use support::{assert_code, commit, labels, prepare, stat, temp_dir, Client, Daemon, NAME};
use tonic::{Code, Status};

/// A List request to the snapshotter `name`.
fn list_req(name: &str, filters: &[&str]) -> ListSnapshotsRequest {
    ListSnapshotsRequest {
        snapshotter: name.into(),
        filters: filters.iter().map(|f| (*f).to_owned()).collect(),
    }
}

/// Every name a List over `name` with `filters` streams, or the status it fails with.
async fn list(client: &mut Client, name: &str, filters: &[&str]) -> Result<Vec<String>, Status> {
    let mut stream = client.list(list_req(name, filters)).await?.into_inner();
    let mut names = Vec::new();
    while let Some(block) = stream.message().await? {
        names.extend(block.info.into_iter().map(|i| i.name));
    }
    Ok(names)
}

/// Row 4: a List filter that does not parse is gRPC InvalidArgument, before any block is
/// sent (containerd 1.6.20's service returns the parse error unmapped there, which reaches
/// the client as Unknown). Row 2 over gRPC too: a `~=` regular expression that does not
/// compile is InvalidArgument, not an empty list.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_list_filter_is_invalid_argument() {
    let dir = temp_dir();
    let daemon = Daemon::start(dir.path(), &[]);
    let mut c = daemon.client().await;
    c.prepare(prepare("a", "")).await.unwrap();
    c.commit(commit("base", "a")).await.unwrap();
    for filter in [
        "name==",
        "name==base ",
        "labels.\"x",
        "name~=(",
        "name~=/[/",
    ] {
        let s = assert_code(
            list(&mut c, NAME, &[filter]).await,
            Code::InvalidArgument,
            &format!("list with {filter:?}"),
        );
        assert!(
            s.message().ends_with(": invalid argument"),
            "{filter:?}: {}",
            s.message()
        );
    }
    // The same snapshotter still lists normally.
    assert_eq!(list(&mut c, NAME, &["name==base"]).await.unwrap(), ["base"]);
}

/// Row 6: overlaysnapd checks the snapshotter name each request carries (containerd's proxy
/// plugin sends its own name from `[proxy_plugins.NAME]`): an empty name and a name other
/// than `--name` are InvalidArgument, with containerd's service's messages, and change
/// nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_snapshotter_name_of_a_request_is_checked() {
    let dir = temp_dir();
    let daemon = Daemon::start(dir.path(), &["--name", "osnap-test"]);
    let mut c = daemon.client().await;
    for (name, message) in [
        ("", "snapshotter argument missing"),
        (NAME, "snapshotter not loaded: overlaysnap"),
        ("overlayfs", "snapshotter not loaded: overlayfs"),
    ] {
        let mut p = prepare("k", "");
        p.snapshotter = name.into();
        let s = assert_code(
            c.prepare(p).await,
            Code::InvalidArgument,
            &format!("prepare naming {name:?}"),
        );
        assert!(s.message().contains(message), "{name:?}: {}", s.message());
        let s = assert_code(
            list(&mut c, name, &[]).await,
            Code::InvalidArgument,
            &format!("list naming {name:?}"),
        );
        assert!(s.message().contains(message), "{name:?}: {}", s.message());
    }
    // The configured name is served, and nothing was created by the refused calls.
    assert!(list(&mut c, "osnap-test", &[]).await.unwrap().is_empty());
    let mut p = prepare("k", "");
    p.snapshotter = "osnap-test".into();
    c.prepare(p).await.unwrap();
    assert_eq!(list(&mut c, "osnap-test", &[]).await.unwrap(), ["k"]);
}

/// Rows 1 and 3 as containerd sees them: Commit with an empty key and Update with the
/// field path `labels.` are gRPC InvalidArgument, and change nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_commit_key_and_the_path_labels_dot_are_invalid_argument() {
    let dir = temp_dir();
    let daemon = Daemon::start(dir.path(), &[]);
    let mut c = daemon.client().await;
    let mut p = prepare("a", "");
    p.labels = labels(&[("l", "1")]);
    c.prepare(p).await.unwrap();
    let before = stat(&mut c, "a").await;

    assert_code(
        c.commit(commit("n", "")).await,
        Code::InvalidArgument,
        "commit of an empty key",
    );
    let update = UpdateSnapshotRequest {
        snapshotter: NAME.into(),
        info: Some(Info {
            name: "a".into(),
            labels: labels(&[("l", "2")]),
            ..Info::default()
        }),
        update_mask: Some(prost_types::FieldMask {
            paths: vec!["labels.".into()],
        }),
    };
    assert_code(
        c.update(update).await,
        Code::InvalidArgument,
        "update with the path \"labels.\"",
    );
    assert_eq!(stat(&mut c, "a").await, before, "a refusal changed `a`");
    assert_eq!(list(&mut c, NAME, &[]).await.unwrap(), ["a"]);
}
