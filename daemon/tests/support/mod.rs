//! The real `overlaysnapd` as a child process on a temporary root and socket, and clients
//! of it over the unix socket.
#![allow(dead_code)] // each test binary uses a different part of it

use overlaysnap_daemon::api::snapshots_client::SnapshotsClient;
use overlaysnap_daemon::api::{
    CommitSnapshotRequest, Info, PrepareSnapshotRequest, StatSnapshotRequest,
};
use overlaysnap_daemon::client;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};
use tempfile::TempDir;
use tonic::transport::Channel;
use tonic::{Code, Status};

/// The name the daemon serves by default.
pub const NAME: &str = "overlaysnap";

/// How long a daemon may take to start before a test gives up on it (a build machine under
/// load can be slow; a healthy start takes milliseconds).
const START_LIMIT: Duration = Duration::from_secs(60);

/// A client of the daemon.
pub type Client = SnapshotsClient<Channel>;

/// A running `overlaysnapd`, killed when dropped.
pub struct Daemon {
    child: Option<Child>,
    /// The temporary directory that holds the root, the socket and the log.
    pub dir: PathBuf,
    /// The snapshotter's root.
    pub root: PathBuf,
    /// The socket.
    pub socket: PathBuf,
    /// The daemon's stderr, which holds its log.
    pub log: PathBuf,
}

/// A fresh temporary directory for a daemon's files.
pub fn temp_dir() -> TempDir {
    tempfile::Builder::new()
        .prefix("osd-")
        .tempdir()
        .expect("creating a temporary directory")
}

impl Daemon {
    /// Starts a daemon in `dir` (root `dir/root`, socket `dir/run/overlaysnap.sock`) with
    /// `extra` arguments and waits until it accepts connections.
    pub fn start(dir: &Path, extra: &[&str]) -> Daemon {
        let mut daemon = Daemon::spawn(dir, extra);
        daemon.wait_ready();
        daemon
    }

    /// Starts a daemon in `dir` without waiting for it.
    pub fn spawn(dir: &Path, extra: &[&str]) -> Daemon {
        let root = dir.join("root");
        let socket = dir.join("run").join("overlaysnap.sock");
        let log = dir.join(format!("daemon-{}.log", unique()));
        let stderr = std::fs::File::create(&log).expect("creating the log file");
        let mut command = Command::new(env!("CARGO_BIN_EXE_overlaysnapd"));
        // The daemon's log level for debugging a failing test (it shows in the panic).
        if let Ok(level) = std::env::var("OVERLAYSNAPD_TEST_LOG") {
            command.args(["--log-level", &level]);
        }
        let child = command
            .arg("--root")
            .arg(&root)
            .arg("--address")
            .arg(&socket)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("starting overlaysnapd");
        Daemon {
            child: Some(child),
            dir: dir.to_owned(),
            root,
            socket,
            log,
        }
    }

    /// The daemon's log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn wait_ready(&mut self) {
        let started = Instant::now();
        loop {
            if std::os::unix::net::UnixStream::connect(&self.socket).is_ok() {
                return;
            }
            let child = self.child.as_mut().expect("running");
            if let Some(status) = child.try_wait().expect("polling overlaysnapd") {
                panic!(
                    "overlaysnapd exited ({status}) while starting:\n{}",
                    self.log_text()
                );
            }
            if started.elapsed() > START_LIMIT {
                panic!(
                    "overlaysnapd did not listen on {}:\n{}",
                    self.socket.display(),
                    self.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A new client over its own connection.
    pub async fn client(&self) -> Client {
        client::connect(&self.socket)
            .await
            .expect("connecting to overlaysnapd")
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        let pid = self.child.as_ref().expect("running").id();
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGTERM,
        )
        .expect("sending SIGTERM");
    }

    /// Waits for the daemon to exit.
    pub fn wait(mut self) -> ExitStatus {
        self.child
            .take()
            .expect("running")
            .wait()
            .expect("waiting for overlaysnapd")
    }

    /// Sends SIGTERM and waits for the daemon to exit.
    pub fn stop(self) -> ExitStatus {
        self.terminate();
        self.wait()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "--- overlaysnapd log ({}) ---\n{}",
                self.log.display(),
                self.log_text()
            );
        }
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Labels from pairs.
pub fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// A Prepare request for the default name.
pub fn prepare(key: &str, parent: &str) -> PrepareSnapshotRequest {
    PrepareSnapshotRequest {
        snapshotter: NAME.into(),
        key: key.into(),
        parent: parent.into(),
        labels: BTreeMap::new(),
    }
}

/// A Commit request for the default name.
pub fn commit(name: &str, key: &str) -> CommitSnapshotRequest {
    CommitSnapshotRequest {
        snapshotter: NAME.into(),
        name: name.into(),
        key: key.into(),
        labels: BTreeMap::new(),
        parent: String::new(),
    }
}

/// The Info of `key` on the default snapshotter; panics when Stat fails.
pub async fn stat(client: &mut Client, key: &str) -> Info {
    client
        .stat(StatSnapshotRequest {
            snapshotter: NAME.into(),
            key: key.into(),
        })
        .await
        .unwrap_or_else(|s| panic!("stat {key}: {s}"))
        .into_inner()
        .info
        .expect("stat answers an info")
}

/// Panics unless `result` is the status `code`; returns the status.
#[track_caller]
pub fn assert_code<T: std::fmt::Debug>(
    result: Result<T, Status>,
    code: Code,
    what: &str,
) -> Status {
    match result {
        Ok(v) => panic!("{what}: expected {code:?}, got Ok({v:?})"),
        Err(s) => {
            assert_eq!(s.code(), code, "{what}: {}", s.message());
            s
        }
    }
}
