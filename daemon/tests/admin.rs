//! The admin service (`overlaysnap.admin.v1.Admin`) and `grpc.health.v1` of the real
//! overlaysnapd over its real socket: Status, a live Check of planted damage that changes
//! nothing, Compact, Events (and a subscriber that never reads, dropped without slowing
//! the writers), the peer-uid rule, a stop with an Events stream open, and a journal on a
//! full disk (a tmpfs), which stops the changes until a restart while Status says why.

mod support;

use overlaysnap::fs::{mount_all, unmount_all, Mount, Unmount};
use overlaysnap_daemon::api::overlaysnap::admin::v1::{
    envelope, CheckRequest, CompactRequest, EventsRequest, StatusRequest,
};
use overlaysnap_daemon::api::RemoveSnapshotRequest;
use overlaysnap_daemon::client;
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::{commit, prepare, stat, temp_dir, Daemon, NAME};
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

fn entries(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

fn memory_journal(dir: &Path) -> String {
    let config = dir.join("config.toml");
    std::fs::write(&config, "journal = \"memory\"\n").unwrap();
    config.display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_compact_and_a_live_check_of_planted_damage_that_changes_nothing() {
    let dir = temp_dir();
    let daemon = Daemon::start(dir.path(), &[]);
    let mut snapshots = daemon.client().await;
    let mut admin = client::connect_admin(&daemon.socket).await.unwrap();
    snapshots.prepare(prepare("a", "")).await.unwrap();
    snapshots.commit(commit("base", "a")).await.unwrap();
    snapshots.prepare(prepare("b", "base")).await.unwrap();

    let status = admin.status(StatusRequest {}).await.unwrap().into_inner();
    assert_eq!(status.version, env!("CARGO_PKG_VERSION"));
    assert_eq!(status.name, NAME);
    assert_eq!(Path::new(&status.root), daemon.root.canonicalize().unwrap());
    assert_eq!((status.active, status.views, status.committed), (1, 0, 1));
    assert_eq!(status.records_since_checkpoint, 3);
    assert!(status.journal_bytes > 0, "{status:?}");
    assert_eq!(status.last_recovery.unwrap().snapshots, 0);
    assert_eq!(status.writes_refused, "", "changes are accepted");

    let compact = admin.compact(CompactRequest {}).await.unwrap().into_inner();
    assert_eq!(compact.snapshots, 2);
    let status = admin.status(StatusRequest {}).await.unwrap().into_inner();
    assert_eq!(status.records_since_checkpoint, 0);

    let clean = admin.check(CheckRequest {}).await.unwrap().into_inner();
    let clean = clean.report.unwrap();
    assert_eq!((clean.snapshots, clean.orphans), (2, 0));
    assert!(clean.damaged.is_empty(), "{clean:?}");

    // Damage: the committed layer's directory is deleted, and an orphan is planted.
    let dirs = daemon.root.join("snapshots");
    let ids = entries(&dirs);
    let base = ids
        .iter()
        .min_by_key(|id| id.parse::<u64>().unwrap())
        .unwrap();
    std::fs::remove_dir_all(dirs.join(base)).unwrap();
    std::fs::create_dir(dirs.join("planted")).unwrap();
    let before = entries(&dirs);
    let found = admin.check(CheckRequest {}).await.unwrap().into_inner();
    let report = found.report.unwrap();
    assert_eq!(report.damaged.len(), 1, "{report:?}");
    assert_eq!(report.damaged[0].name, "base");
    assert_eq!(report.damaged[0].id.to_string(), *base);
    assert_eq!(report.orphans, 1, "{report:?}");
    assert_eq!(entries(&dirs), before, "check changed the directories");
    assert_eq!(stat(&mut snapshots, "b").await.name, "b");
    // The daemon still writes.
    snapshots.prepare(prepare("c", "")).await.unwrap();
    assert!(daemon.stop().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_follow_prepare_commit_and_remove_with_containerds_fields() {
    let dir = temp_dir();
    let daemon = Daemon::start(dir.path(), &[]);
    let mut snapshots = daemon.client().await;
    let mut admin = client::connect_admin(&daemon.socket).await.unwrap();
    let mut events = admin.events(EventsRequest {}).await.unwrap().into_inner();
    snapshots.prepare(prepare("a", "")).await.unwrap();
    snapshots.commit(commit("base", "a")).await.unwrap();
    snapshots.prepare(prepare("b", "base")).await.unwrap();
    snapshots
        .remove(RemoveSnapshotRequest {
            snapshotter: NAME.into(),
            key: "b".into(),
        })
        .await
        .unwrap();
    let mut got = Vec::new();
    for _ in 0..4 {
        // A watchdog: a call that published nothing fails the test instead of hanging it.
        let e = tokio::time::timeout(Duration::from_secs(10), events.message())
            .await
            .expect("an event within 10 s")
            .unwrap()
            .expect("an event");
        assert!(e.timestamp.is_some());
        got.push((e.topic, e.event.unwrap()));
    }
    use envelope::Event as E;
    let prepare_of = |key: &str, parent: &str| {
        E::Prepare(
            overlaysnap_daemon::api::overlaysnap::admin::v1::SnapshotPrepare {
                key: key.into(),
                parent: parent.into(),
                snapshotter: NAME.into(),
            },
        )
    };
    assert_eq!(
        got[0],
        ("/snapshot/prepare".to_owned(), prepare_of("a", ""))
    );
    assert_eq!(
        got[1],
        (
            "/snapshot/commit".to_owned(),
            E::Commit(
                overlaysnap_daemon::api::overlaysnap::admin::v1::SnapshotCommit {
                    key: "a".into(),
                    name: "base".into(),
                    snapshotter: NAME.into(),
                }
            )
        )
    );
    assert_eq!(
        got[2],
        ("/snapshot/prepare".to_owned(), prepare_of("b", "base"))
    );
    assert_eq!(
        got[3],
        (
            "/snapshot/remove".to_owned(),
            E::Remove(
                overlaysnap_daemon::api::overlaysnap::admin::v1::SnapshotRemove {
                    key: "b".into(),
                    snapshotter: NAME.into(),
                }
            )
        )
    );
    // A failed call publishes nothing; the stream stays open, and ends at the stop.
    assert_eq!(
        snapshots
            .prepare(prepare("x", "missing"))
            .await
            .unwrap_err()
            .code(),
        Code::NotFound
    );
    let started = Instant::now();
    daemon.terminate();
    assert!(
        events.message().await.unwrap().is_none(),
        "no event after a failed call"
    );
    assert!(daemon.wait().success());
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "an open Events stream held the stop for {:?}",
        started.elapsed()
    );
}

/// Writes that a subscriber which never reads must not slow: beyond what its buffer
/// (`admin::EVENTS_BUFFER`) and the transport between it and the client hold: the socket's
/// buffers and the server's HTTP/2 send buffer (h2's default, about 400 KiB); an event
/// takes about 60 bytes.
const WRITES: usize = 15000;

/// Run by `a_subscriber_that_never_reads_is_dropped_and_never_slows_the_writers` in a
/// child process: subscribes to Events, prints `subscribed`, then never reads again. Its
/// runtime is current-thread and no longer runs once the call has returned, so nothing
/// reads the socket (an HTTP/2 client left running would read and buffer the frames
/// itself, and close the connection when their number looks like abuse).
#[test]
#[ignore = "a helper: run in a child process by the slow-subscriber test"]
fn subscribe_and_never_read() {
    let socket = std::env::var(CHILD_SOCKET).expect("run by the parent test only");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _stream = runtime.block_on(async {
        let mut admin = client::connect_admin(Path::new(&socket)).await.unwrap();
        admin.events(EventsRequest {}).await.unwrap()
    });
    println!("subscribed");
    std::io::stdout().flush().unwrap();
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_that_never_reads_is_dropped_and_never_slows_the_writers() {
    let dir = temp_dir();
    let config = memory_journal(dir.path());
    let daemon = Daemon::start(dir.path(), &["--config", &config]);
    let mut slow = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "subscribe_and_never_read",
            "--ignored",
            "--nocapture",
        ])
        .env(CHILD_SOCKET, &daemon.socket)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // Kept open until the end: the child's harness still writes to it.
    let mut output = BufReader::new(slow.stdout.take().unwrap());
    let mut line = String::new();
    while line.trim() != "subscribed" {
        line.clear();
        assert_ne!(output.read_line(&mut line).unwrap(), 0, "the child ended");
    }
    let mut admin = client::connect_admin(&daemon.socket).await.unwrap();
    let mut reading = admin.events(EventsRequest {}).await.unwrap().into_inner();
    let subscribers = admin.status(StatusRequest {}).await.unwrap().into_inner();
    assert_eq!(subscribers.event_subscribers, 2);
    let reader = tokio::spawn(async move {
        let mut n = 0;
        while n < WRITES {
            reading.message().await.unwrap().expect("an event");
            n += 1;
        }
        n
    });

    let started = Instant::now();
    let mut writers = Vec::new();
    for w in 0..4 {
        let mut snapshots = daemon.client().await;
        writers.push(tokio::spawn(async move {
            for i in (w..WRITES).step_by(4) {
                snapshots
                    .prepare(prepare(&format!("k{i}"), ""))
                    .await
                    .unwrap();
            }
        }));
    }
    for w in writers {
        tokio::time::timeout(Duration::from_secs(120), w)
            .await
            .expect("the writers finished")
            .unwrap();
    }
    let writing = started.elapsed();
    assert_eq!(
        tokio::time::timeout(Duration::from_secs(30), reader)
            .await
            .expect("the reading subscriber got every event")
            .unwrap(),
        WRITES
    );
    let status = admin.status(StatusRequest {}).await.unwrap().into_inner();
    assert_eq!(status.active as usize, WRITES);
    assert_eq!(
        status.event_subscribers, 1,
        "the slow subscriber is still held"
    );
    assert!(
        daemon
            .log_text()
            .contains("dropping an events subscriber that stopped reading"),
        "no log line:\n{}",
        daemon.log_text()
    );
    assert_eq!(
        slow.try_wait().unwrap(),
        None,
        "the slow subscriber is still connected"
    );
    eprintln!("{WRITES} prepares in {writing:?} with a subscriber that never reads");
    slow.kill().unwrap();
    slow.wait().unwrap();
    drop(output);
    assert!(daemon.stop().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_is_serving() {
    let dir = temp_dir();
    let daemon = Daemon::start(dir.path(), &[]);
    let channel = client::channel(&daemon.socket, client::endpoint())
        .await
        .unwrap();
    let mut health = HealthClient::new(channel);
    for service in ["", "containerd.services.snapshots.v1.Snapshots"] {
        let answer = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(answer.status(), ServingStatus::Serving, "{service:?}");
    }
    let unknown = health
        .check(HealthCheckRequest {
            service: "no.such.Service".into(),
        })
        .await;
    assert_eq!(unknown.unwrap_err().code(), Code::NotFound);
    assert!(daemon.stop().success());
}

/// The environment variable that hands the socket to [`admin_status_as_a_child`].
const CHILD_SOCKET: &str = "OVERLAYSNAP_ADMIN_TEST_SOCKET";

/// Run by `admin_calls_need_root_or_the_daemons_uid` in a child process, possibly as
/// another user: calls Status and prints `code=<gRPC code>`.
#[test]
#[ignore = "a helper: run by admin_calls_need_root_or_the_daemons_uid in a child process"]
fn admin_status_as_a_child() {
    let socket = std::env::var(CHILD_SOCKET).expect("run by the parent test only");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let code = runtime.block_on(async {
        let mut admin = client::connect_admin(Path::new(&socket)).await.unwrap();
        match admin.status(StatusRequest {}).await {
            Ok(_) => Code::Ok,
            Err(status) => status.code(),
        }
    });
    println!("code={code:?}");
}

/// Runs [`admin_status_as_a_child`] from a copy of this test binary, as `uid` (gid 0, so
/// the socket's group permission lets it connect) or as this process's user.
fn child_status(exe: &Path, socket: &Path, uid: Option<u32>) -> String {
    let mut command = Command::new(exe);
    command
        .args([
            "--exact",
            "admin_status_as_a_child",
            "--ignored",
            "--nocapture",
        ])
        .env(CHILD_SOCKET, socket);
    if let Some(uid) = uid {
        command.uid(uid).gid(0);
    }
    let output = command.output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "the child failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

#[test]
fn admin_calls_need_root_or_the_daemons_uid() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test switches users: run it as root"
    );
    let dir = temp_dir();
    // Others may reach the socket's directory; the socket itself keeps its 0660.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let daemon = Daemon::start(dir.path(), &[]);
    let mode = std::fs::metadata(&daemon.socket)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o660);
    let exe = dir.path().join("admin-test");
    std::fs::copy(std::env::current_exe().unwrap(), &exe).unwrap();
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();

    let nobody = 65534;
    let refused = child_status(&exe, &daemon.socket, Some(nobody));
    assert!(refused.contains("code=PermissionDenied"), "{refused}");
    let served = child_status(&exe, &daemon.socket, None);
    assert!(served.contains("code=Ok"), "{served}");
    assert!(
        daemon.log_text().contains("refused an admin call"),
        "{}",
        daemon.log_text()
    );
    assert!(daemon.stop().success());
}

/// A tmpfs mounted (with the crate's own mounting) on a directory for as long as it lives;
/// detached on drop, so that files a stopped daemon left open cannot keep it.
struct Tmpfs<'a>(&'a Path);

impl<'a> Tmpfs<'a> {
    fn mount(dir: &'a Path, size: &str) -> Tmpfs<'a> {
        std::fs::create_dir_all(dir).unwrap();
        let tmpfs = Mount {
            kind: "tmpfs".into(),
            source: "tmpfs".into(),
            target: String::new(),
            options: vec![format!("size={size}")],
        };
        mount_all(&[tmpfs], dir).unwrap();
        Tmpfs(dir)
    }
}

impl Drop for Tmpfs<'_> {
    fn drop(&mut self) {
        let _ = unmount_all(self.0, Unmount::Detach);
    }
}

/// A real journal write failing for want of space (the journal directory on a full tmpfs):
/// the call in flight fails, every later change is refused even once space is back (the
/// write is never retried), Status says why, reads keep working, the stop exits 1 (it
/// cannot make the journal durable), and a restart accepts changes again with every
/// acknowledged snapshot there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_journal_on_a_full_disk_refuses_changes_until_a_restart_and_status_says_why() {
    let dir = temp_dir();
    let journal = dir.path().join("root").join("journal");
    let _tmpfs = Tmpfs::mount(&journal, "64k");
    let daemon = Daemon::start(dir.path(), &[]);
    let mut snapshots = daemon.client().await;
    let mut admin = client::connect_admin(&daemon.socket).await.unwrap();
    snapshots.prepare(prepare("a", "")).await.unwrap();
    snapshots.commit(commit("base", "a")).await.unwrap();
    // Fill the tmpfs: the journal's next page has no room.
    let filler = journal.join("filler");
    let mut file = std::fs::File::create(&filler).unwrap();
    let full = loop {
        if let Err(e) = file.write_all(&[0; 4096]) {
            break e;
        }
    };
    assert_eq!(full.raw_os_error(), Some(libc::ENOSPC), "{full}");
    // Appends fill the journal's last page, then one needs a page and fails.
    let mut acknowledged = vec!["base".to_owned()];
    let failed = 'prepares: {
        for i in 0..5000 {
            let key = format!("k{i}");
            match snapshots.prepare(prepare(&key, "base")).await {
                Ok(_) => acknowledged.push(key),
                Err(e) => break 'prepares e,
            }
        }
        panic!("5000 prepares fitted in a full journal page");
    };
    assert_eq!(failed.code(), Code::Unknown, "{failed:?}");
    assert!(
        failed.message().contains("No space left on device"),
        "{failed:?}"
    );
    let status = admin.status(StatusRequest {}).await.unwrap().into_inner();
    assert!(
        status.writes_refused.contains("No space left on device"),
        "{status:?}"
    );
    // Space is back, but the journal is not written again until a restart.
    drop(file);
    std::fs::remove_file(&filler).unwrap();
    let refused = snapshots
        .prepare(prepare("after", "base"))
        .await
        .expect_err("refused after the journal failed");
    assert_eq!(refused.code(), Code::Unknown, "{refused:?}");
    assert!(refused.message().contains("reopen"), "{refused:?}");
    // Reads keep working.
    for key in &acknowledged {
        assert_eq!(stat(&mut snapshots, key).await.name, *key);
    }
    let status = admin.status(StatusRequest {}).await.unwrap().into_inner();
    assert_eq!(status.active as usize, acknowledged.len() - 1, "{status:?}");
    assert!(!status.writes_refused.is_empty(), "{status:?}");

    // The stop cannot make the journal durable, and says so in its exit status.
    let log = daemon.log.clone();
    let stopped = daemon.stop();
    assert_eq!(stopped.code(), Some(1), "{stopped:?}");
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(
        log.contains("ERROR overlaysnapd: flushing the snapshotter"),
        "{log}"
    );
    let daemon = Daemon::start(dir.path(), &[]);
    let mut snapshots = daemon.client().await;
    let mut admin = client::connect_admin(&daemon.socket).await.unwrap();
    let status = admin.status(StatusRequest {}).await.unwrap().into_inner();
    assert_eq!(status.writes_refused, "", "{status:?}");
    for key in &acknowledged {
        assert_eq!(stat(&mut snapshots, key).await.name, *key);
    }
    snapshots.prepare(prepare("after", "base")).await.unwrap();
}
