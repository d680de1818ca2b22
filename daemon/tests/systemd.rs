//! The real `overlaysnapd` under systemd's protocols, driven by the test and by Debian
//! systemd's own `systemd-socket-activate`:
//! - `Type=notify`: a datagram `NOTIFY_SOCKET` bound by the test receives `READY=1` with
//!   `STATUS=` (the snapshot count), then `STOPPING=1` at SIGTERM, in that order;
//! - socket activation: a call sent while the daemon is still replaying a long journal
//!   waits in the inherited socket's backlog and then succeeds; and across a restart on
//!   the same inherited socket (the socket unit's role played by the test), a call sent
//!   while no daemon runs is not refused but answered by the next one.

mod support;

use overlaysnap::core::{Kind, Labels, Record, Timestamp};
use overlaysnap::journal::{Journal, LogJournal};
use overlaysnap_daemon::api::{Info, StatSnapshotRequest};
use overlaysnap_daemon::client;
use std::io::ErrorKind;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::{commit, prepare, temp_dir, Daemon, NAME};

/// How long the test waits for a notification before failing.
const PATIENCE: Duration = Duration::from_secs(120);

/// A datagram socket at `path` that notifications are read from.
fn notify_socket(path: &Path) -> UnixDatagram {
    let socket = UnixDatagram::bind(path).unwrap();
    socket.set_read_timeout(Some(PATIENCE)).unwrap();
    socket
}

/// The next notification: its lines.
fn next(socket: &UnixDatagram) -> Vec<String> {
    let mut buf = [0u8; 4096];
    let n = socket
        .recv(&mut buf)
        .unwrap_or_else(|e| panic!("no notification within {PATIENCE:?}: {e}"));
    String::from_utf8_lossy(&buf[..n])
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Panics if a notification is waiting.
#[track_caller]
fn assert_nothing_sent(socket: &UnixDatagram, when: &str) {
    socket.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 4096];
    match socket.recv(&mut buf) {
        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
        Ok(n) => panic!("{when}: notified {:?}", String::from_utf8_lossy(&buf[..n])),
        Err(e) => panic!("{when}: {e}"),
    }
    socket.set_nonblocking(false).unwrap();
}

fn sigterm(child: &Child) {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
}

/// Kills `child` if the test ends without waiting for it.
struct Reaped(Option<Child>, std::path::PathBuf);

impl Drop for Reaped {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
            if std::thread::panicking() {
                let log = std::fs::read_to_string(&self.1).unwrap_or_default();
                eprintln!("--- log ---\n{log}");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifies_ready_with_the_snapshot_count_then_stopping() {
    let dir = temp_dir();
    let daemon = Daemon::start(dir.path(), &[]);
    let mut c = daemon.client().await;
    c.prepare(prepare("a", "")).await.unwrap();
    c.commit(commit("base", "a")).await.unwrap();
    c.prepare(prepare("b", "base")).await.unwrap();
    drop(c);
    assert!(daemon.stop().success());

    let notify_path = dir.path().join("notify.sock");
    let notify = notify_socket(&notify_path);
    let socket = dir.path().join("run").join("overlaysnap.sock");
    let log = dir.path().join("notified.log");
    let child = Command::new(env!("CARGO_BIN_EXE_overlaysnapd"))
        .arg("--root")
        .arg(dir.path().join("root"))
        .arg("--address")
        .arg(&socket)
        .env("NOTIFY_SOCKET", &notify_path)
        .stdin(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut child = Reaped(Some(child), log);

    assert_eq!(
        next(&notify),
        [
            "READY=1",
            "STATUS=serving 2 snapshots (1 active, 1 committed, 0 views)"
        ]
    );
    // Ready means the socket accepts, and serves.
    let mut c = client::connect(&socket).await.unwrap();
    let info = support::stat(&mut c, "base").await;
    assert_eq!(info.name, "base");
    assert_nothing_sent(&notify, "while serving");

    sigterm(child.0.as_ref().unwrap());
    assert_eq!(next(&notify), ["STOPPING=1"]);
    drop(c);
    let status = child.0.take().unwrap().wait().unwrap();
    assert!(status.success(), "{status}");
    assert_nothing_sent(&notify, "after the exit");
}

/// Records replayed at start in the socket activation test: enough that the debug
/// daemon's recovery takes a visible time (the test prints how long its call waited).
const REPLAYED: u64 = 200_000;

/// A root whose journal holds one Active snapshot "a" and `REPLAYED - 1` label updates of
/// it, the last setting `n` to `REPLAYED - 1`; no checkpoint, so opening replays them all.
fn long_journal(root: &Path) {
    let (journal, _) = LogJournal::open_dir(root.join("journal")).unwrap();
    let at = Timestamp::new(1_700_000_000, 0);
    journal
        .append(&[Record::Created {
            id: 1,
            kind: Kind::Active,
            key: "a".into(),
            parent: None,
            labels: Labels::new(),
            at,
        }])
        .unwrap();
    let updates: Vec<Record> = (1..REPLAYED)
        .map(|n| Record::Updated {
            id: 1,
            key: "a".into(),
            labels: [("n".to_owned(), n.to_string())].into(),
            at,
        })
        .collect();
    for chunk in updates.chunks(20_000) {
        journal.append(chunk).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_sent_during_recovery_on_an_activated_socket_waits_and_succeeds() {
    let dir = temp_dir();
    let root = dir.path().join("root");
    long_journal(&root);
    let socket = dir.path().join("activated.sock");
    let notify_path = dir.path().join("notify.sock");
    let notify = notify_socket(&notify_path);
    let log = dir.path().join("activated.log");
    // systemd-socket-activate binds the socket, waits for a connection, then execs the
    // daemon (same pid) with LISTEN_FDS=1 and LISTEN_PID set.
    let activator = Command::new("systemd-socket-activate")
        .arg("--listen")
        .arg(&socket)
        .arg(format!("--setenv=NOTIFY_SOCKET={}", notify_path.display()))
        .arg(env!("CARGO_BIN_EXE_overlaysnapd"))
        .arg("--root")
        .arg(&root)
        // Not bound: the inherited socket is served instead.
        .arg("--address")
        .arg(dir.path().join("unused.sock"))
        .stdin(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("running systemd-socket-activate (Debian package systemd)");
    let mut activator = Reaped(Some(activator), log.clone());
    let started = Instant::now();
    while !std::fs::read_to_string(&log)
        .unwrap()
        .contains("Listening on")
    {
        assert!(
            started.elapsed() < PATIENCE,
            "systemd-socket-activate did not listen"
        );
        std::thread::sleep(Duration::from_millis(10));
    }

    let sent = Instant::now();
    let call = tokio::spawn({
        let socket = socket.clone();
        async move { stat_a(&socket).await.map(|info| (info, sent.elapsed())) }
    });
    // The connection made the activator exec the daemon; it is now recovering.
    while !std::fs::read_to_string(&log).unwrap().contains("Execing") {
        assert!(started.elapsed() < PATIENCE, "the daemon was not started");
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_nothing_sent(&notify, "with the call sent");

    let (info, waited) = tokio::time::timeout(PATIENCE, call)
        .await
        .expect("the call was answered")
        .unwrap()
        .expect("the call succeeds");
    let info = info.expect("stat answers an info");
    assert_eq!(info.name, "a");
    let last = (REPLAYED - 1).to_string();
    assert_eq!(info.labels.get("n"), Some(&last));
    assert_eq!(next(&notify)[0], "READY=1");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains(&format!("replayed={REPLAYED}")), "{text}");
    assert!(text.contains("activated=true"), "{text}");
    eprintln!("the call sent during recovery of {REPLAYED} records waited {waited:?}");

    sigterm(activator.0.as_ref().unwrap());
    let status = activator.0.take().unwrap().wait().unwrap();
    assert!(status.success(), "{status}");
    // The socket is the activator's: the daemon neither bound the address nor removed it.
    assert!(socket.exists());
    assert!(!dir.path().join("unused.sock").exists());
}

/// Starts the daemon on root `root` with `listener` passed as systemd passes it (fd 3,
/// `LISTEN_FDS=1`, `LISTEN_PID` its pid: `sh` moves the socket from stdin to fd 3 and
/// execs the daemon in its own pid).
/// Stat of "a" over a fresh connection to `socket`.
async fn stat_a(socket: &Path) -> Result<Option<Info>, Box<dyn std::error::Error + Send + Sync>> {
    let mut c = client::connect(socket).await?;
    Ok(c.stat(StatSnapshotRequest {
        snapshotter: NAME.into(),
        key: "a".into(),
    })
    .await?
    .into_inner()
    .info)
}

fn activated(listener: &std::os::unix::net::UnixListener, root: &Path, log: &Path) -> Child {
    let fd = std::os::fd::OwnedFd::from(listener.try_clone().unwrap());
    Command::new("sh")
        .arg("-c")
        .arg(r#"exec 3<&0 0</dev/null; LISTEN_FDS=1 LISTEN_PID=$$ exec "$@""#)
        .arg("sh")
        .arg(env!("CARGO_BIN_EXE_overlaysnapd"))
        .arg("--root")
        .arg(root)
        .arg("--address")
        .arg(root.with_file_name("unused.sock"))
        .stdin(Stdio::from(fd))
        .stderr(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(log)
                .unwrap(),
        )
        .spawn()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn across_a_restart_on_the_inherited_socket_a_call_is_queued_not_refused() {
    let dir = temp_dir();
    let root = dir.path().join("root");
    let log = dir.path().join("restarts.log");
    let socket = dir.path().join("unit.sock");
    // The socket unit's listening socket: it outlives both daemons.
    let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();

    let mut first = Reaped(Some(activated(&listener, &root, &log)), log.clone());
    let mut c = client::connect(&socket).await.unwrap();
    c.prepare(prepare("a", "")).await.unwrap();
    drop(c);
    sigterm(first.0.as_ref().unwrap());
    let status = first.0.take().unwrap().wait().unwrap();
    assert!(status.success(), "{status}");

    // No daemon runs now: the call is queued on the socket.
    let call = tokio::spawn({
        let socket = socket.clone();
        async move { stat_a(&socket).await }
    });
    let _second = Reaped(Some(activated(&listener, &root, &log)), log.clone());
    let info = tokio::time::timeout(PATIENCE, call)
        .await
        .expect("the call was answered")
        .unwrap()
        .expect("the call succeeds")
        .expect("stat answers an info");
    assert_eq!(info.name, "a");
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(text.matches("activated=true").count(), 2, "{text}");
    assert!(socket.exists() && !root.with_file_name("unused.sock").exists());
}
