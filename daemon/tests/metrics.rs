//! Metrics of the real `overlaysnapd` (`metrics_address` in its config): known calls, then
//! a scrape over HTTP whose values are checked and whose text Prometheus's own `promtool
//! check metrics` must accept; and a metrics address that cannot be bound stops the start.
//!
//! promtool comes with Debian's `prometheus` package. Without it the promtool check is
//! skipped with a message, unless `OVERLAYSNAP_PROMTOOL=required`, which makes it fail.

mod support;

use overlaysnap_daemon::api::{
    CleanupRequest, ListSnapshotsRequest, StatSnapshotRequest, UsageRequest, ViewSnapshotRequest,
};
use overlaysnap_daemon::metrics;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use support::{assert_code, commit, prepare, temp_dir, Daemon, NAME};
use tonic::Code;

/// Starts a daemon in `dir` whose config serves metrics at `address`.
fn start_with_metrics(dir: &Path, address: &str) -> Daemon {
    let config = dir.join("config.toml");
    std::fs::write(&config, format!("metrics_address = {address:?}\n")).unwrap();
    Daemon::start(dir, &["--config", config.to_str().unwrap()])
}

/// Prometheus's own `Accept` header (2.x).
const PROMETHEUS_ACCEPT: &str = "application/openmetrics-text;version=1.0.0,\
    application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

/// One HTTP/1.1 request on `stream` with `accept` (if any): the status line, the
/// content type (empty when there is none), and the body.
fn http(
    mut stream: impl Read + Write,
    method: &str,
    path: &str,
    accept: Option<&str>,
) -> (String, String, String) {
    let accept = accept
        .map(|a| format!("Accept: {a}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: metrics\r\n{accept}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").expect("an HTTP answer");
    let status = head.lines().next().unwrap().to_owned();
    let content_type = head
        .lines()
        .find_map(|l| l.strip_prefix("content-type: "))
        .unwrap_or_default()
        .to_owned();
    (status, content_type, body.to_owned())
}

/// GET /metrics over the unix socket at `socket`, as curl asks (no `Accept`): the
/// Prometheus text format.
fn scrape(socket: &Path) -> String {
    let stream = std::os::unix::net::UnixStream::connect(socket).unwrap();
    let (status, content_type, body) = http(stream, "GET", "/metrics", None);
    assert!(status.ends_with("200 OK"), "{status}\n{body}");
    assert_eq!(content_type, metrics::PROMETHEUS_TEXT);
    body
}

/// The samples of a scrape: series (name and labels, as written) to value.
fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').expect("series value");
            (series.to_owned(), value.parse().expect("a number"))
        })
        .collect()
}

/// The value of `series`; panics, showing the scrape, when it is missing.
#[track_caller]
fn value(samples: &BTreeMap<String, f64>, series: &str) -> f64 {
    *samples
        .get(series)
        .unwrap_or_else(|| panic!("no {series} in {samples:#?}"))
}

/// Runs `promtool check metrics` on `text`, or says why it cannot.
fn promtool_check(text: &str) {
    let required = std::env::var("OVERLAYSNAP_PROMTOOL").as_deref() == Ok("required");
    let mut child = match Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => {
            eprintln!(
                "SKIPPED: promtool check metrics: promtool is not installed (Debian package \
                 prometheus); set OVERLAYSNAP_PROMTOOL=required to make this a failure"
            );
            return;
        }
        Err(e) => panic!("running promtool (OVERLAYSNAP_PROMTOOL=required): {e}"),
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && said.trim().is_empty(),
        "promtool check metrics: {}\n{said}\n--- text ---\n{text}",
        out.status
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scrape_counts_the_calls_made_and_the_snapshots_by_kind() {
    let dir = temp_dir();
    let socket = dir.path().join("run").join("metrics.sock");
    let daemon = start_with_metrics(dir.path(), socket.to_str().unwrap());
    let mut c = daemon.client().await;

    c.prepare(prepare("a", "")).await.unwrap();
    c.commit(commit("base", "a")).await.unwrap();
    c.prepare(prepare("b", "base")).await.unwrap();
    c.view(ViewSnapshotRequest {
        snapshotter: NAME.into(),
        key: "v".into(),
        parent: "base".into(),
        labels: Default::default(),
    })
    .await
    .unwrap();
    let again = c.prepare(prepare("b", "base")).await;
    assert_code(again, Code::AlreadyExists, "prepare b again");
    for _ in 0..2 {
        let missing = c
            .stat(StatSnapshotRequest {
                snapshotter: NAME.into(),
                key: "missing".into(),
            })
            .await;
        assert_code(missing, Code::NotFound, "stat missing");
    }
    let mut listed = c
        .list(ListSnapshotsRequest {
            snapshotter: NAME.into(),
            filters: vec![],
        })
        .await
        .unwrap()
        .into_inner();
    let mut infos = 0;
    while let Some(block) = listed.message().await.unwrap() {
        infos += block.info.len();
    }
    assert_eq!(infos, 3);
    c.usage(UsageRequest {
        snapshotter: NAME.into(),
        key: "b".into(),
    })
    .await
    .unwrap();
    c.cleanup(CleanupRequest {
        snapshotter: NAME.into(),
    })
    .await
    .unwrap();

    let text = scrape(&socket);
    promtool_check(&text);
    let s = samples(&text);
    let calls = |op: &str, result: &str| {
        value(
            &s,
            &format!("overlaysnap_calls_total{{op=\"{op}\",result=\"{result}\"}}"),
        )
    };
    assert_eq!(calls("prepare", "ok"), 2.0);
    assert_eq!(calls("prepare", "already_exists"), 1.0);
    assert_eq!(calls("commit", "ok"), 1.0);
    assert_eq!(calls("view", "ok"), 1.0);
    assert_eq!(calls("stat", "not_found"), 2.0);
    assert_eq!(calls("list", "ok"), 1.0);
    assert_eq!(calls("usage", "ok"), 1.0);
    assert_eq!(calls("cleanup", "ok"), 1.0);
    let calls_total: f64 = s
        .iter()
        .filter(|(k, _)| k.starts_with("overlaysnap_calls_total{"))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(calls_total, 10.0, "no call counted but those made");
    assert_eq!(
        value(
            &s,
            "overlaysnap_call_duration_seconds_count{op=\"prepare\"}"
        ),
        3.0
    );
    assert_eq!(
        value(&s, "overlaysnap_call_duration_seconds_count{op=\"stat\"}"),
        2.0
    );
    assert_eq!(value(&s, "overlaysnap_snapshots{kind=\"active\"}"), 1.0);
    assert_eq!(value(&s, "overlaysnap_snapshots{kind=\"committed\"}"), 1.0);
    assert_eq!(value(&s, "overlaysnap_snapshots{kind=\"view\"}"), 1.0);
    // Four records (three creations, one commit), each made durable by exactly one flush.
    assert_eq!(value(&s, "overlaysnap_journal_batch_records_sum"), 4.0);
    let flushes = value(&s, "overlaysnap_journal_sync_seconds_count");
    assert!((1.0..=4.0).contains(&flushes), "{flushes} flushes");
    assert_eq!(
        value(&s, "overlaysnap_journal_write_seconds_count"),
        flushes
    );
    assert_eq!(value(&s, "overlaysnap_usage_duration_seconds_count"), 1.0);
    assert_eq!(value(&s, "overlaysnap_cleanup_duration_seconds_count"), 1.0);
    assert_eq!(value(&s, "overlaysnap_recovery_records_replayed"), 0.0);
    assert_eq!(value(&s, "overlaysnap_recovery_orphans"), 0.0);
    assert_eq!(value(&s, "overlaysnap_recovery_damaged_layers"), 0.0);
    assert!(value(&s, "overlaysnap_recovery_seconds") > 0.0);

    // A scrape reads the snapshots now; Prometheus gets the same samples in OpenMetrics;
    // other requests are refused by HTTP status.
    c.prepare(prepare("c", "base")).await.unwrap();
    let s = samples(&scrape(&socket));
    assert_eq!(value(&s, "overlaysnap_snapshots{kind=\"active\"}"), 2.0);
    let unix = || std::os::unix::net::UnixStream::connect(&socket).unwrap();
    let (status, content_type, text) = http(unix(), "GET", "/metrics", Some(PROMETHEUS_ACCEPT));
    assert!(status.ends_with("200 OK"), "{status}");
    assert_eq!(content_type, metrics::OPENMETRICS);
    assert!(text.ends_with("# EOF\n"), "{text}");
    assert!(
        text.contains("# TYPE overlaysnap_calls counter\n"),
        "{text}"
    );
    assert_eq!(samples(&text).len(), s.len(), "{text}");
    assert_eq!(
        value(&samples(&text), "overlaysnap_snapshots{kind=\"active\"}"),
        2.0
    );
    assert!(http(unix(), "GET", "/", None).0.ends_with("404 Not Found"));
    assert!(http(unix(), "POST", "/metrics", None)
        .0
        .ends_with("405 Method Not Allowed"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_crash_the_restart_reports_what_it_replayed_over_tcp() {
    let dir = temp_dir();
    // A port the kernel just handed out, then freed for the daemon.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let address = format!("127.0.0.1:{port}");
    let daemon = start_with_metrics(dir.path(), &address);
    let mut c = daemon.client().await;
    c.prepare(prepare("a", "")).await.unwrap();
    c.commit(commit("base", "a")).await.unwrap();
    c.prepare(prepare("b", "base")).await.unwrap();
    // Killed (SIGKILL when dropped): no checkpoint at stop, so the restart replays.
    drop(c);
    drop(daemon);
    let daemon = start_with_metrics(dir.path(), &address);
    let stream = std::net::TcpStream::connect(&address).unwrap();
    let (status, _, text) = http(stream, "GET", "/metrics", None);
    assert!(status.ends_with("200 OK"), "{status}");
    promtool_check(&text);
    let s = samples(&text);
    assert_eq!(value(&s, "overlaysnap_recovery_records_replayed"), 3.0);
    assert_eq!(value(&s, "overlaysnap_snapshots{kind=\"active\"}"), 1.0);
    assert_eq!(value(&s, "overlaysnap_snapshots{kind=\"committed\"}"), 1.0);
    assert!(daemon.stop().success());
}

#[test]
fn a_metrics_address_that_cannot_be_bound_stops_the_start() {
    let dir = temp_dir();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let config = dir.path().join("config.toml");
    std::fs::write(&config, format!("metrics_address = {address:?}\n")).unwrap();
    let daemon = Daemon::spawn(dir.path(), &["--config", config.to_str().unwrap()]);
    let socket = daemon.socket.clone();
    let log_path = daemon.log.clone();
    let status = daemon.wait();
    let log = std::fs::read_to_string(log_path).unwrap();
    assert_eq!(status.code(), Some(1), "{log}");
    assert!(
        log.contains(&format!("metrics_address http://{address}/metrics"))
            && log.contains("Address already in use"),
        "{log}"
    );
    assert!(!socket.exists(), "the snapshot socket was bound: {log}");
}
