//! The Snapshotter on real directories under /var/tmp with the durable log journal:
//! Prepare, Commit (empty and 1 000 small files), Remove + Cleanup, Stat, Mounts, Walk over
//! 10 000 snapshots and Usage; Prepare and Commit also from 8 concurrent clients.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use overlaysnap::{Options, Snapshotter};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use tempfile::TempDir;

fn open() -> (TempDir, Snapshotter) {
    let dir = tempfile::Builder::new()
        .prefix("ovs-bench-")
        .tempdir_in("/var/tmp")
        .expect("temp root");
    let s = Snapshotter::open(dir.path().join("root"), Options::default()).expect("open");
    (dir, s)
}

static KEYS: AtomicU64 = AtomicU64::new(0);

fn fresh(prefix: &str) -> String {
    format!("{prefix}-{}", KEYS.fetch_add(1, Ordering::Relaxed))
}

/// A base layer `base` committed, so that Prepares stack an overlay on it.
fn with_base(s: &Snapshotter) {
    s.prepare("base-key", None, Default::default()).unwrap();
    s.commit("base", "base-key", Default::default()).unwrap();
}

fn single(c: &mut Criterion) {
    let (_dir, s) = open();
    with_base(&s);
    let mut g = c.benchmark_group("snapshotter");
    g.throughput(Throughput::Elements(1));
    g.sample_size(30);
    g.bench_function("prepare", |b| {
        b.iter(|| {
            s.prepare(&fresh("p"), Some("base"), Default::default())
                .unwrap()
        })
    });
    g.bench_function("commit-empty", |b| {
        b.iter_batched(
            || {
                let key = fresh("c");
                s.prepare(&key, Some("base"), Default::default()).unwrap();
                key
            },
            |key| {
                s.commit(&format!("{key}-done"), &key, Default::default())
                    .unwrap()
            },
            BatchSize::PerIteration,
        )
    });
    g.sample_size(10);
    g.bench_function("commit-1000-files", |b| {
        b.iter_batched(
            || {
                let key = fresh("f");
                s.prepare(&key, Some("base"), Default::default()).unwrap();
                let id = s.mounts(&key).unwrap()[0]
                    .options
                    .iter()
                    .find_map(|o| o.strip_prefix("upperdir=").map(str::to_owned))
                    .unwrap();
                for i in 0..1000 {
                    std::fs::write(format!("{id}/file-{i}"), [7u8; 512]).unwrap();
                }
                key
            },
            |key| {
                s.commit(&format!("{key}-done"), &key, Default::default())
                    .unwrap()
            },
            BatchSize::PerIteration,
        )
    });
    g.sample_size(30);
    g.bench_function("remove+cleanup", |b| {
        b.iter_batched(
            || {
                let key = fresh("r");
                s.prepare(&key, Some("base"), Default::default()).unwrap();
                key
            },
            |key| {
                s.remove(&key).unwrap();
                s.cleanup().unwrap();
            },
            BatchSize::PerIteration,
        )
    });
    s.prepare("active", Some("base"), Default::default())
        .unwrap();
    g.sample_size(50);
    g.bench_function("stat", |b| b.iter(|| black_box(s.stat("active").unwrap())));
    g.bench_function("mounts", |b| {
        b.iter(|| black_box(s.mounts("active").unwrap()))
    });
    g.bench_function("usage-active", |b| {
        b.iter(|| black_box(s.usage("active").unwrap()))
    });
    g.bench_function("usage-committed", |b| {
        b.iter(|| black_box(s.usage("base").unwrap()))
    });
    g.finish();
}

fn walk(c: &mut Criterion) {
    let (_dir, s) = open();
    with_base(&s);
    for i in 0..10_000 {
        s.view(&format!("view-{i:05}"), Some("base"), Default::default())
            .unwrap();
    }
    let mut g = c.benchmark_group("snapshotter-walk");
    g.sample_size(20);
    g.throughput(Throughput::Elements(10_001));
    g.bench_function("walk-10k", |b| {
        b.iter(|| {
            let mut n = 0;
            s.walk(&[], |_| {
                n += 1;
                Ok(())
            })
            .unwrap();
            n
        })
    });
    g.finish();
}

/// `ops` Prepares (then Commits when `commit`) split over `clients` threads.
fn concurrent(s: &Arc<Snapshotter>, clients: usize, ops: usize, commit: bool) {
    let handles: Vec<_> = (0..clients)
        .map(|_| {
            let s = Arc::clone(s);
            thread::spawn(move || {
                for _ in 0..ops / clients {
                    let key = fresh("t");
                    s.prepare(&key, Some("base"), Default::default()).unwrap();
                    if commit {
                        s.commit(&format!("{key}-done"), &key, Default::default())
                            .unwrap();
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

fn clients(c: &mut Criterion) {
    let (_dir, s) = open();
    with_base(&s);
    let s = Arc::new(s);
    let mut g = c.benchmark_group("snapshotter-8-clients");
    g.sample_size(10);
    g.throughput(Throughput::Elements(64));
    g.bench_function("prepare", |b| b.iter(|| concurrent(&s, 8, 64, false)));
    g.bench_function("prepare+commit", |b| b.iter(|| concurrent(&s, 8, 64, true)));
    g.finish();
}

criterion_group!(benches, single, walk, clients);
criterion_main!(benches);
