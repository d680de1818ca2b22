//! `overlaysnap --address SOCK` against the real overlaysnapd over its real socket: the
//! live `ls`, `tree`, `stat` and `usage` print exactly what the offline commands print
//! for the same root; `status`, `check` (a planted orphan and a lost committed layer,
//! nothing changed), `compact` and `events` (JSON lines, ending when the daemon stops);
//! and the refusals. Needs root, as the other CLI tests.
//!
//! The daemon binary is built with the cargo running the tests (`cargo build -p
//! overlaysnap-daemon --bin overlaysnapd`, a no-op when up to date) into the same target
//! directory as the CLI.

use overlaysnap_daemon::api::PrepareSnapshotRequest;
use overlaysnap_daemon::client;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// overlaysnapd, built once per test run.
fn daemon_binary() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let status = Command::new(env!("CARGO"))
            .args(["build", "-p", "overlaysnap-daemon", "--bin", "overlaysnapd"])
            .status()
            .expect("running cargo build");
        assert!(status.success(), "building overlaysnapd failed");
        let bin = Path::new(env!("CARGO_BIN_EXE_overlaysnap")).with_file_name("overlaysnapd");
        assert!(bin.exists(), "{} was not built", bin.display());
        bin
    })
}

/// A root under /var/tmp and, once started, an overlaysnapd serving it.
struct Live {
    dir: tempfile::TempDir,
    root: PathBuf,
    socket: PathBuf,
    daemon: Option<Child>,
}

impl Live {
    fn new() -> Live {
        let dir = tempfile::Builder::new()
            .prefix("overlaysnap-live-")
            .tempdir_in("/var/tmp")
            .unwrap();
        let root = dir.path().join("root");
        let socket = dir.path().join("overlaysnap.sock");
        Live {
            dir,
            root,
            socket,
            daemon: None,
        }
    }

    fn start(&mut self) {
        let log = std::fs::File::create(self.dir.path().join("daemon.log")).unwrap();
        let child = Command::new(daemon_binary())
            .arg("--root")
            .arg(&self.root)
            .arg("--address")
            .arg(&self.socket)
            .stderr(log)
            .spawn()
            .unwrap();
        self.daemon = Some(child);
        let started = Instant::now();
        while std::os::unix::net::UnixStream::connect(&self.socket).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "overlaysnapd did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn stop(&mut self) {
        let mut child = self.daemon.take().unwrap();
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
        assert!(child.wait().unwrap().success());
    }

    /// The CLI on the root (offline).
    fn offline(&self, args: &[&str]) -> Output {
        cli()
            .arg("--root")
            .arg(&self.root)
            .args(args)
            .output()
            .unwrap()
    }

    /// The CLI through the daemon.
    fn live(&self, args: &[&str]) -> Output {
        cli()
            .arg("--address")
            .arg(&self.socket)
            .args(args)
            .output()
            .unwrap()
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        if let Some(mut child) = self.daemon.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn cli() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_overlaysnap"));
    command
        .env_remove("OVERLAYSNAP_ROOT")
        .env_remove("OVERLAYSNAP_ADDRESS");
    command
}

#[track_caller]
fn stdout(out: Output) -> String {
    assert!(
        out.status.success(),
        "{:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn json(out: Output) -> Value {
    serde_json::from_str(&stdout(out)).unwrap()
}

#[track_caller]
fn fails(out: Output, code: i32) -> String {
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(code), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr:?}");
    stderr
}

const SAME: &[&[&str]] = &[
    &["ls"],
    &["--json", "ls"],
    &["ls", "--filter", "kind==committed"],
    &["tree"],
    &["--json", "tree"],
    &["stat", "b"],
    &["--json", "stat", "base"],
    &["usage"],
    &["--json", "usage"],
    &["--json", "usage", "base"],
];

#[test]
fn live_commands_print_what_the_offline_ones_print() {
    let mut live = Live::new();
    stdout(live.offline(&["prepare", "a"]));
    stdout(live.offline(&["commit", "base", "a", "--label", "x=1"]));
    stdout(live.offline(&["prepare", "b", "base"]));
    stdout(live.offline(&["view", "v", "base"]));
    let offline: Vec<String> = SAME.iter().map(|a| stdout(live.offline(a))).collect();
    live.start();
    for (args, expected) in SAME.iter().zip(&offline) {
        assert_eq!(&stdout(live.live(args)), expected, "{args:?}");
    }
    // Refusals come back with the offline exit codes.
    fails(live.live(&["stat", "missing"]), 4);
    fails(live.live(&["ls", "--filter", "kind=="]), 7);
    fails(live.live(&["--name", "other", "ls"]), 7);
    live.stop();
}

#[test]
fn status_check_compact_and_events_of_a_live_daemon() {
    let mut live = Live::new();
    stdout(live.offline(&["prepare", "a"]));
    stdout(live.offline(&["commit", "base", "a"]));
    live.start();

    let status = json(live.live(&["--json", "status"]));
    assert_eq!(status["snapshots"]["committed"], 1);
    assert_eq!(status["snapshots"]["active"], 0);
    assert_eq!(status["last_recovery"]["snapshots"], 1);
    assert_eq!(status["last_recovery"]["records_replayed"], 2);
    assert_eq!(status["name"], "overlaysnap");
    assert_eq!(
        status["writes_refused"],
        serde_json::Value::Null,
        "changes are accepted"
    );
    let human = stdout(live.live(&["status"]));
    assert!(
        human.contains("Snapshots:   0 active, 0 views, 1 committed"),
        "{human}"
    );

    let compact = json(live.live(&["--json", "compact"]));
    assert_eq!(
        compact,
        serde_json::json!({ "checkpoint": true, "snapshots": 1 })
    );
    assert_eq!(
        json(live.live(&["--json", "status"]))["records_since_checkpoint"],
        0
    );

    let healthy = json(live.live(&["--json", "check"]));
    assert_eq!(healthy["ok"], true);
    let snapshots = live.root.join("snapshots");
    let base = std::fs::read_dir(&snapshots)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::remove_dir_all(&base).unwrap();
    std::fs::create_dir(snapshots.join("planted")).unwrap();
    let out = live.live(&["--json", "check"]);
    assert_eq!(out.status.code(), Some(3), "damage exits 3");
    let found: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(found["damaged"][0]["name"], "base");
    assert_eq!(found["orphans"], 1);
    assert!(
        snapshots.join("planted").exists(),
        "check deleted the orphan"
    );

    let mut events = cli()
        .arg("--address")
        .arg(&live.socket)
        .args(["--json", "events"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(events.stdout.take().unwrap()).lines();
    // The subscription is in place once the daemon counts it.
    let started = Instant::now();
    while json(live.live(&["--json", "status"]))["event_subscribers"] != 1 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "events never subscribed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut snapshots = client::connect(&live.socket).await.unwrap();
        for key in ["e1", "e2"] {
            let request = PrepareSnapshotRequest {
                snapshotter: "overlaysnap".into(),
                key: key.into(),
                ..Default::default()
            };
            snapshots.prepare(request).await.unwrap();
        }
    });
    for key in ["e1", "e2"] {
        let line: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
        assert_eq!(line["topic"], "/snapshot/prepare");
        assert_eq!(line["event"]["key"], key);
        assert_eq!(line["event"]["snapshotter"], "overlaysnap");
    }
    live.stop();
    assert!(lines.next().is_none(), "no more events");
    assert!(
        events.wait().unwrap().success(),
        "events ends with the daemon"
    );
}

#[test]
fn refusals_without_a_daemon_or_with_the_wrong_mode() {
    let live = Live::new();
    let stderr = fails(live.offline(&["status"]), 2);
    assert!(stderr.contains("--address"), "{stderr}");
    fails(live.offline(&["events"]), 2);
    let stderr = fails(live.live(&["prepare", "k"]), 2);
    assert!(stderr.contains("the live commands are"), "{stderr}");
    let stderr = fails(live.live(&["ls"]), 1);
    assert!(stderr.contains("connecting to overlaysnapd"), "{stderr}");
}
