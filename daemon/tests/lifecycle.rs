//! The daemon's life as a process: its socket (mode, directory, stale and live sockets),
//! its flags and config, a restart with the state intact, and SIGTERM while a call is in
//! flight (the call completes, the daemon exits 0 and removes its socket).

mod support;

use overlaysnap_daemon::api::{ListSnapshotsRequest, StatSnapshotRequest};
use overlaysnap_daemon::client;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;
use support::{commit, labels, prepare, temp_dir, Daemon, NAME};
use tonic::Code;

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

fn stat_req(name: &str, key: &str) -> StatSnapshotRequest {
    StatSnapshotRequest {
        snapshotter: name.into(),
        key: key.into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_socket_is_0660_in_a_0711_directory_and_is_removed_at_exit() {
    let dir = temp_dir();
    let daemon = Daemon::start(dir.path(), &[]);
    let socket = daemon.socket.clone();
    assert_eq!(mode(&socket), 0o660);
    assert_eq!(mode(socket.parent().unwrap()), 0o711);
    let status = daemon.stop();
    assert!(status.success(), "{status}");
    assert!(!socket.exists(), "the socket was removed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_socket_is_replaced() {
    let dir = temp_dir();
    let socket = dir.path().join("run").join("overlaysnap.sock");
    std::fs::create_dir_all(socket.parent().unwrap()).unwrap();
    // Bound, then closed: the file stays and nobody listens. A child that another test
    // spawns at that moment holds a copy of the listener until it execs; once a connect
    // is refused, no copy is left.
    drop(UnixListener::bind(&socket).unwrap());
    while std::os::unix::net::UnixStream::connect(&socket).is_ok() {
        std::thread::yield_now();
    }
    assert!(socket.exists());
    let daemon = Daemon::start(dir.path(), &[]);
    let mut c = daemon.client().await;
    c.prepare(prepare("k", "")).await.unwrap();
    assert!(
        daemon.log_text().contains("replacing a stale socket"),
        "{}",
        daemon.log_text()
    );
}

#[test]
fn a_live_socket_is_refused_and_left_alone() {
    let dir = temp_dir();
    let socket = dir.path().join("run").join("overlaysnap.sock");
    std::fs::create_dir_all(socket.parent().unwrap()).unwrap();
    let other = UnixListener::bind(&socket).unwrap();
    let daemon = Daemon::spawn(dir.path(), &[]);
    let log = daemon.log.clone();
    let status = daemon.wait();
    assert!(!status.success());
    let text = std::fs::read_to_string(log).unwrap();
    assert!(text.contains("is in use"), "{text}");
    // The other listener still owns its socket.
    assert!(socket.exists());
    std::os::unix::net::UnixStream::connect(&socket).unwrap();
    let _ = other.accept().unwrap();
}

#[test]
fn a_file_at_the_socket_path_is_refused_and_left_alone() {
    let dir = temp_dir();
    let socket = dir.path().join("run").join("overlaysnap.sock");
    std::fs::create_dir_all(socket.parent().unwrap()).unwrap();
    std::fs::write(&socket, "precious").unwrap();
    let daemon = Daemon::spawn(dir.path(), &[]);
    let log = daemon.log.clone();
    assert!(!daemon.wait().success());
    let text = std::fs::read_to_string(log).unwrap();
    assert!(text.contains("is not a socket"), "{text}");
    assert_eq!(std::fs::read_to_string(&socket).unwrap(), "precious");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_finds_every_snapshot_as_it_was() {
    let dir = temp_dir();
    let daemon = Daemon::start(dir.path(), &[]);
    let mut c = daemon.client().await;
    let mut p = prepare("a", "");
    p.labels = labels(&[("l", "1")]);
    c.prepare(p).await.unwrap();
    c.commit(commit("base", "a")).await.unwrap();
    c.prepare(prepare("rootfs", "base")).await.unwrap();
    c.prepare(prepare("gone", "")).await.unwrap();
    c.remove(overlaysnap_daemon::api::RemoveSnapshotRequest {
        snapshotter: NAME.into(),
        key: "gone".into(),
    })
    .await
    .unwrap();
    let before = list(&mut c).await;
    drop(c);
    assert!(daemon.stop().success());

    let daemon = Daemon::start(dir.path(), &[]);
    assert!(
        daemon.log_text().contains("snapshots=2"),
        "the start line names the recovered count:\n{}",
        daemon.log_text()
    );
    let mut c = daemon.client().await;
    assert_eq!(list(&mut c).await, before);
    assert_eq!(before.len(), 2);
    let gone = c.stat(stat_req(NAME, "gone")).await.unwrap_err();
    assert_eq!(gone.code(), Code::NotFound);
    // Ids go on growing across the restart: a new snapshot gets a new directory.
    let mounts = c
        .prepare(prepare("new", ""))
        .await
        .unwrap()
        .into_inner()
        .mounts;
    assert!(std::path::Path::new(&mounts[0].source).exists());
    assert!(daemon.stop().success());
}

async fn list(c: &mut support::Client) -> Vec<overlaysnap_daemon::api::Info> {
    let mut stream = c
        .list(ListSnapshotsRequest {
            snapshotter: NAME.into(),
            filters: vec![],
        })
        .await
        .unwrap()
        .into_inner();
    let mut infos = Vec::new();
    while let Some(block) = stream.message().await.unwrap() {
        infos.extend(block.info);
    }
    infos
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_a_call_in_flight_finish_then_exits_0_without_the_socket() {
    let dir = temp_dir();
    let daemon = Daemon::start(dir.path(), &[]);
    let mut c = daemon.client().await;
    // 250 snapshots of about 4 KiB each: a List of about 1 MiB, far more than the small
    // flow-control window below lets the daemon send before the client reads.
    let big = "v".repeat(4000);
    for i in 0..250 {
        let mut p = prepare(&format!("k{i:03}"), "");
        p.labels = labels(&[("l", &big)]);
        c.prepare(p).await.unwrap();
    }
    let endpoint = client::endpoint()
        .initial_stream_window_size(65_535)
        .initial_connection_window_size(65_535);
    let mut slow = client::connect_with(&daemon.socket, endpoint)
        .await
        .unwrap();
    let mut stream = slow
        .list(ListSnapshotsRequest {
            snapshotter: NAME.into(),
            filters: vec![],
        })
        .await
        .unwrap()
        .into_inner();
    let first = stream.message().await.unwrap().expect("a first block");
    assert_eq!(first.info.len(), 100);

    daemon.terminate();
    let mut rest = Vec::new();
    while let Some(block) = stream
        .message()
        .await
        .unwrap_or_else(|s| panic!("the in-flight List failed: {s}\n{}", daemon.log_text()))
    {
        rest.push(block.info.len());
    }
    assert_eq!(rest, [100, 50]);
    let socket = daemon.socket.clone();
    let status = daemon.wait();
    assert!(status.success(), "exit status {status}");
    assert!(!socket.exists(), "the socket was removed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_served_name_follows_the_name_flag() {
    let dir = temp_dir();
    let daemon = Daemon::start(dir.path(), &["--name", "fast"]);
    let mut c = daemon.client().await;
    let mut p = prepare("k", "");
    p.snapshotter = "fast".into();
    c.prepare(p).await.unwrap();
    assert_eq!(
        c.stat(stat_req("fast", "k"))
            .await
            .unwrap()
            .into_inner()
            .info
            .unwrap()
            .name,
        "k"
    );
    let s = c.stat(stat_req(NAME, "k")).await.unwrap_err();
    assert_eq!(s.code(), Code::InvalidArgument);
    assert!(
        s.message().contains("snapshotter not loaded: overlaysnap"),
        "{}",
        s.message()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_config_file_reaches_the_snapshotter() {
    let dir = temp_dir();
    let config = dir.path().join("config.toml");
    std::fs::write(&config, "journal = \"memory\"\nupperdir_label = true\n").unwrap();
    let config = config.to_str().unwrap();
    let daemon = Daemon::start(dir.path(), &["--config", config]);
    assert!(
        daemon.log_text().contains("journal=\"memory\""),
        "{}",
        daemon.log_text()
    );
    let mut c = daemon.client().await;
    c.prepare(prepare("k", "")).await.unwrap();
    let info = c
        .stat(stat_req(NAME, "k"))
        .await
        .unwrap()
        .into_inner()
        .info
        .unwrap();
    assert!(
        info.labels
            .contains_key("containerd.io/snapshot/overlay.upperdir"),
        "{:?}",
        info.labels
    );
    assert!(daemon.stop().success());
    // A memory journal forgets everything at exit.
    let daemon = Daemon::start(dir.path(), &["--config", config]);
    let mut c = daemon.client().await;
    assert_eq!(
        c.stat(stat_req(NAME, "k")).await.unwrap_err().code(),
        Code::NotFound
    );
}

#[test]
fn a_bad_config_stops_the_daemon_with_a_message_naming_the_key() {
    let dir = temp_dir();
    let config = dir.path().join("config.toml");
    std::fs::write(&config, "journal = \"memory\"\nsync_remov = true\n").unwrap();
    let daemon = Daemon::spawn(dir.path(), &["--config", config.to_str().unwrap()]);
    let log = daemon.log.clone();
    assert!(!daemon.wait().success());
    let text = std::fs::read_to_string(log).unwrap();
    assert!(text.contains("sync_remov"), "{text}");
}
