//! Per-call latency and throughput of Prepare, Commit, Stat and a List of 10 000
//! snapshots, over the daemon's unix socket (the real `overlaysnapd`) and in process (the
//! library's `Snapshotter`), with 1 and 8 concurrent clients.
//!
//! `cargo bench -p overlaysnap-daemon --bench rpc`; `OVERLAYSNAP_BENCH_OPS` sets the calls
//! per Prepare/Commit/Stat row (default 2000), `OVERLAYSNAP_BENCH_DIR` where the roots go
//! (default /var/tmp), `OVERLAYSNAPD` another daemon binary to measure (default: this
//! build's). Both sides use the durable log journal on the same file system.

use overlaysnap::core::Labels;
use overlaysnap::{Options, Snapshotter};
use overlaysnap_daemon::api::snapshots_client::SnapshotsClient;
use overlaysnap_daemon::api::{
    CommitSnapshotRequest, ListSnapshotsRequest, PrepareSnapshotRequest, StatSnapshotRequest,
};
use overlaysnap_daemon::client;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tonic::transport::Channel;

const NAME: &str = "overlaysnap";
const LIST_SIZE: usize = 10_000;
/// Lists per round.
const LIST_ROUNDS: usize = 4;
/// Rounds, each running the socket side then the in-process side.
const ROUNDS: usize = 5;

/// The latencies of one row, and the wall time they took together.
struct Row {
    latencies: Vec<Duration>,
    wall: Duration,
}

impl Row {
    fn quantile(&self, q: f64) -> Duration {
        let mut sorted = self.latencies.clone();
        sorted.sort();
        sorted[((sorted.len() - 1) as f64 * q).round() as usize]
    }
    fn mean(&self) -> Duration {
        self.latencies.iter().sum::<Duration>() / self.latencies.len() as u32
    }
    fn ops_per_sec(&self) -> f64 {
        self.latencies.len() as f64 / self.wall.as_secs_f64()
    }
}

fn print_row(op: &str, clients: usize, rpc: &Row, local: &Row) {
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!(
        "{op:<10} {clients:>2} | {:>9.1} {:>9.1} {:>9.1} {:>9.0} | {:>9.1} {:>9.1} {:>9.1} {:>9.0} | {:>6.2}x {:>6.2}x",
        us(rpc.mean()),
        us(rpc.quantile(0.5)),
        us(rpc.quantile(0.99)),
        rpc.ops_per_sec(),
        us(local.mean()),
        us(local.quantile(0.5)),
        us(local.quantile(0.99)),
        local.ops_per_sec(),
        rpc.mean().as_secs_f64() / local.mean().as_secs_f64(),
        rpc.quantile(0.5).as_secs_f64() / local.quantile(0.5).as_secs_f64(),
    );
}

/// The running daemon, killed when dropped.
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_daemon(dir: &Path) -> (Daemon, PathBuf) {
    let socket = dir.join("overlaysnap.sock");
    let daemon = std::env::var_os("OVERLAYSNAPD")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_overlaysnapd")));
    let child = Command::new(daemon)
        .arg("--root")
        .arg(dir.join("root"))
        .arg("--address")
        .arg(&socket)
        .args(["--log-level", "warn"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .expect("starting overlaysnapd");
    let daemon = Daemon(child);
    let started = Instant::now();
    while std::os::unix::net::UnixStream::connect(&socket).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "overlaysnapd did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    (daemon, socket)
}

/// Runs `op(client, i)` for i in 0..n split over the clients, timing every call.
async fn rpc_row<F, Fut>(clients: &[SnapshotsClient<Channel>], n: usize, op: F) -> Row
where
    F: Fn(SnapshotsClient<Channel>, usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let op = Arc::new(op);
    let k = clients.len();
    let start = Instant::now();
    let tasks: Vec<_> = clients
        .iter()
        .cloned()
        .enumerate()
        .map(|(t, c)| {
            let op = Arc::clone(&op);
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                for i in (t..n).step_by(k) {
                    let began = Instant::now();
                    op(c.clone(), i).await;
                    latencies.push(began.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::with_capacity(n);
    for t in tasks {
        latencies.extend(t.await.expect("a client task"));
    }
    Row {
        latencies,
        wall: start.elapsed(),
    }
}

/// Runs `op(i)` for i in 0..n split over `threads` threads, timing every call.
fn local_row(threads: usize, n: usize, op: impl Fn(usize) + Sync) -> Row {
    let start = Instant::now();
    let latencies = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let op = &op;
                s.spawn(move || {
                    (t..n)
                        .step_by(threads)
                        .map(|i| {
                            let began = Instant::now();
                            op(i);
                            began.elapsed()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("a bench thread"))
            .collect()
    });
    Row {
        latencies,
        wall: start.elapsed(),
    }
}

fn prepare_req(key: String) -> PrepareSnapshotRequest {
    PrepareSnapshotRequest {
        snapshotter: NAME.into(),
        key,
        ..Default::default()
    }
}

async fn list_count(mut c: SnapshotsClient<Channel>) -> usize {
    let mut stream = c
        .list(ListSnapshotsRequest {
            snapshotter: NAME.into(),
            filters: vec![],
        })
        .await
        .expect("list")
        .into_inner();
    let mut n = 0;
    while let Some(block) = stream.message().await.expect("list block") {
        n += block.info.len();
    }
    n
}

/// Latencies of one (operation, clients) pair, over the socket and in process, gathered
/// over interleaved rounds so that a change of machine load hits both sides alike.
#[derive(Default)]
struct Pair {
    rpc: Vec<Row>,
    local: Vec<Row>,
}

impl Pair {
    fn print(&self, op: &str, clients: usize) {
        let merge = |rows: &[Row]| Row {
            latencies: rows.iter().flat_map(|r| r.latencies.clone()).collect(),
            wall: rows.iter().map(|r| r.wall).sum(),
        };
        print_row(op, clients, &merge(&self.rpc), &merge(&self.local));
    }
}

fn connect_all(
    runtime: &tokio::runtime::Runtime,
    socket: &Path,
    n: usize,
) -> Vec<SnapshotsClient<Channel>> {
    runtime.block_on(async {
        let mut v = Vec::new();
        for _ in 0..n {
            v.push(client::connect(socket).await.expect("connect"));
        }
        v
    })
}

fn main() {
    let ops: usize = std::env::var("OVERLAYSNAP_BENCH_OPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let base = std::env::var("OVERLAYSNAP_BENCH_DIR").unwrap_or_else(|_| "/var/tmp".into());
    let dir = tempfile::Builder::new()
        .prefix("osd-bench-")
        .tempdir_in(&base)
        .expect("bench directory");
    // The clients share one thread, as a Go client's goroutines share few: a call's answer
    // wakes the thread that waits for it, with no hand-off between a runtime's workers.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (_daemon, socket) = start_daemon(dir.path());
    let local = Snapshotter::open(dir.path().join("local"), Options::default()).expect("open");

    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "{ops} calls per row in {ROUNDS} interleaved rounds; load average {}",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!("latencies in µs; ratios = rpc / in-process, of the means and of the medians");
    println!(
        "{:<10} {:>2} | {:>9} {:>9} {:>9} {:>9} | {:>9} {:>9} {:>9} {:>9} | {:>7} {:>7}",
        "op",
        "cl",
        "rpc mean",
        "p50",
        "p99",
        "ops/s",
        "local",
        "p50",
        "p99",
        "ops/s",
        "mean",
        "p50"
    );
    let per_round = ops / ROUNDS;
    for clients in [1usize, 8] {
        let conns = connect_all(&runtime, &socket, clients);
        let (mut prepare, mut commit, mut stat) =
            (Pair::default(), Pair::default(), Pair::default());
        for round in 0..ROUNDS {
            let tag = format!("c{clients}/r{round}");
            let t = tag.clone();
            prepare.rpc.push(
                runtime.block_on(rpc_row(&conns, per_round, move |mut c, i| {
                    let key = format!("{t}/k{i}");
                    async move {
                        c.prepare(prepare_req(key)).await.expect("prepare");
                    }
                })),
            );
            prepare.local.push(local_row(clients, per_round, |i| {
                local
                    .prepare(&format!("{tag}/k{i}"), None, Labels::new())
                    .expect("prepare");
            }));
            let t = tag.clone();
            commit.rpc.push(
                runtime.block_on(rpc_row(&conns, per_round, move |mut c, i| {
                    let (name, key) = (format!("{t}/n{i}"), format!("{t}/k{i}"));
                    async move {
                        c.commit(CommitSnapshotRequest {
                            snapshotter: NAME.into(),
                            name,
                            key,
                            ..Default::default()
                        })
                        .await
                        .expect("commit");
                    }
                })),
            );
            commit.local.push(local_row(clients, per_round, |i| {
                local
                    .commit(
                        &format!("{tag}/n{i}"),
                        &format!("{tag}/k{i}"),
                        Labels::new(),
                    )
                    .expect("commit");
            }));
            let t = tag.clone();
            stat.rpc.push(
                runtime.block_on(rpc_row(&conns, per_round, move |mut c, i| {
                    let key = format!("{t}/n{i}");
                    async move {
                        c.stat(StatSnapshotRequest {
                            snapshotter: NAME.into(),
                            key,
                        })
                        .await
                        .expect("stat");
                    }
                })),
            );
            stat.local.push(local_row(clients, per_round, |i| {
                local.stat(&format!("{tag}/n{i}")).expect("stat");
            }));
        }
        prepare.print("prepare", clients);
        commit.print("commit", clients);
        stat.print("stat", clients);
    }

    // Fill both sides up to LIST_SIZE snapshots, then list them all.
    let conns = connect_all(&runtime, &socket, 8);
    let have = runtime.block_on(list_count(conns[0].clone()));
    let missing = LIST_SIZE.saturating_sub(have);
    runtime.block_on(rpc_row(&conns, missing, |mut c, i| async move {
        c.prepare(prepare_req(format!("fill/{i}")))
            .await
            .expect("prepare");
    }));
    local_row(8, missing, |i| {
        local
            .prepare(&format!("fill/{i}"), None, Labels::new())
            .expect("prepare");
    });
    assert_eq!(runtime.block_on(list_count(conns[0].clone())), LIST_SIZE);
    for clients in [1usize, 8] {
        let mut list = Pair::default();
        for _ in 0..ROUNDS {
            list.rpc.push(runtime.block_on(rpc_row(
                &conns[..clients],
                LIST_ROUNDS,
                |c, _| async move {
                    assert_eq!(list_count(c).await, LIST_SIZE);
                },
            )));
            list.local.push(local_row(clients, LIST_ROUNDS, |_| {
                let mut n = 0;
                local
                    .walk(&[], |_| {
                        n += 1;
                        Ok(())
                    })
                    .expect("walk");
                assert_eq!(n, LIST_SIZE);
            }));
        }
        list.print("list 10k", clients);
    }
}
