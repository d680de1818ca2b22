//! Quotas on a loop btrfs of the bench's own (as root, needs btrfs-progs; skipped with a
//! message otherwise): Usage of an Active snapshot holding 100 000 small files, by the
//! walk and by the qgroup; and Prepare with quotas on (a subvolume and a qgroup limit)
//! against quotas off (a plain directory), on the same file system, measured in pairs:
//! every timed Prepare of one kind is followed by an untimed one of the other, so that
//! both see the same file-system state and noise; then both timed, pair by pair.

use criterion::{criterion_group, criterion_main, Criterion};
use overlaysnap::core::MAX_SIZE_LABEL;
use overlaysnap::{Labels, Options, QuotaChoice, QuotaMode, Snapshotter};
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A loop btrfs with quotas on, mounted under a temporary directory.
struct LoopBtrfs {
    _dir: tempfile::TempDir,
    mnt: PathBuf,
}

fn run(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .output()
        .is_ok_and(|o| o.status.success())
}

impl LoopBtrfs {
    fn new() -> Option<LoopBtrfs> {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("SKIPPING the quota bench: needs root");
            return None;
        }
        let dir = tempfile::Builder::new()
            .prefix("ovs-quota-bench-")
            .tempdir_in("/var/tmp")
            .ok()?;
        let image = dir.path().join("btrfs.img");
        let mnt = dir.path().join("mnt");
        std::fs::create_dir(&mnt).ok()?;
        let (i, m) = (image.to_str()?, mnt.to_str()?);
        let made = run("truncate", &["-s", "4G", i])
            && run("mkfs.btrfs", &["-q", i])
            && run("mount", &["-o", "loop", i, m])
            && run("btrfs", &["quota", "enable", m]);
        if !made {
            eprintln!("SKIPPING the quota bench: cannot make a loop btrfs (btrfs-progs?)");
            return None;
        }
        Some(LoopBtrfs { _dir: dir, mnt })
    }
}

impl Drop for LoopBtrfs {
    fn drop(&mut self) {
        run("umount", &[self.mnt.to_str().unwrap_or("/nonexistent")]);
    }
}

fn options(quota: QuotaChoice) -> Options {
    Options {
        upperdir_label: true,
        quota,
        ..Options::default()
    }
}

fn upper(s: &Snapshotter, key: &str) -> PathBuf {
    PathBuf::from(&s.stat(key).unwrap().labels[overlaysnap::snapshotter::UPPERDIR_LABEL])
}

/// 100 000 files of 100 bytes in 100 directories.
fn small_files(dir: &Path) {
    for d in 0..100 {
        let sub = dir.join(format!("d{d}"));
        std::fs::create_dir(&sub).unwrap();
        for f in 0..1000 {
            std::fs::write(sub.join(format!("f{f}")), [b'x'; 100]).unwrap();
        }
    }
}

fn usage(c: &mut Criterion) {
    let Some(btrfs) = LoopBtrfs::new() else {
        return;
    };
    let s = Snapshotter::open(btrfs.mnt.join("usage"), options(QuotaChoice::Auto)).unwrap();
    assert_eq!(s.quota_mode(), QuotaMode::Btrfs);
    s.prepare("a", None, Labels::new()).unwrap();
    let fs_dir = upper(&s, "a");
    small_files(&fs_dir);
    nix::unistd::syncfs(std::fs::File::open(&fs_dir).unwrap()).unwrap();
    let mut g = c.benchmark_group("usage_100k_files");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(20));
    g.bench_function("walk", |b| {
        b.iter(|| black_box(overlaysnap::layout::disk_usage(&fs_dir).unwrap()))
    });
    g.sample_size(100);
    g.measurement_time(Duration::from_secs(3));
    g.bench_function("btrfs_qgroup", |b| {
        b.iter(|| black_box(s.usage("a").unwrap()))
    });
    g.finish();
}

static KEYS: AtomicU64 = AtomicU64::new(0);

fn prepare_pairs(c: &mut Criterion) {
    let Some(btrfs) = LoopBtrfs::new() else {
        return;
    };
    let on = Snapshotter::open(btrfs.mnt.join("on"), options(QuotaChoice::Auto)).unwrap();
    let off = Snapshotter::open(btrfs.mnt.join("off"), options(QuotaChoice::Off)).unwrap();
    assert_eq!(on.quota_mode(), QuotaMode::Btrfs);
    let labels = Labels::from([(MAX_SIZE_LABEL.to_owned(), "1GiB".to_owned())]);
    let prepare = |s: &Snapshotter| {
        let key = format!("k{}", KEYS.fetch_add(1, Ordering::Relaxed));
        black_box(s.prepare(&key, None, labels.clone()).unwrap());
    };
    let mut g = c.benchmark_group("prepare_pairs");
    g.sample_size(20);
    g.measurement_time(Duration::from_secs(10));
    for (name, timed, other) in [("quota_off", &off, &on), ("quota_on", &on, &off)] {
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let start = Instant::now();
                    prepare(timed);
                    total += start.elapsed();
                    prepare(other);
                }
                total
            })
        });
    }
    g.finish();
    paired_differences("quota_on", &on, &off, prepare);
}

/// Both Prepares of each pair timed, in alternating order (so that neither always runs
/// second), for `PAIRS` pairs; prints the median of each, and the median of the per-pair
/// difference with its 95% confidence interval (the order statistics `n/2 ± 0.98 √n` of
/// the sorted differences, distribution-free). Criterion's figures above time one side
/// per pair; this one compares within each pair.
fn paired_differences(
    name: &str,
    with: &Snapshotter,
    without: &Snapshotter,
    prepare: impl Fn(&Snapshotter),
) {
    const PAIRS: usize = 3000;
    let time = |s: &Snapshotter| {
        let start = Instant::now();
        prepare(s);
        start.elapsed().as_secs_f64() * 1e6
    };
    let (mut a, mut b, mut diff) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..PAIRS {
        let (x, y) = if i % 2 == 0 {
            let x = time(with);
            (x, time(without))
        } else {
            let y = time(without);
            (time(with), y)
        };
        a.push(x);
        b.push(y);
        diff.push(x - y);
    }
    for v in [&mut a, &mut b, &mut diff] {
        v.sort_by(f64::total_cmp);
    }
    let n = PAIRS as f64;
    let half = 0.98 * n.sqrt();
    let (lo, hi) = ((n / 2.0 - half) as usize, (n / 2.0 + half) as usize);
    let median = |v: &[f64]| v[v.len() / 2];
    let tail = |v: &[f64]| (v[v.len() * 9 / 10], v[v.len() * 99 / 100]);
    println!(
        "prepare_pairs/{name} paired with quota_off over {PAIRS} pairs: median {:.0} µs vs \
         {:.0} µs; median difference {:+.0} µs, 95% CI [{:+.0}, {:+.0}] ({:+.1}% of \
         quota_off); p90/p99 {:.0}/{:.0} µs vs {:.0}/{:.0} µs",
        median(&a),
        median(&b),
        median(&diff),
        diff[lo],
        diff[hi],
        100.0 * median(&diff) / median(&b),
        tail(&a).0,
        tail(&a).1,
        tail(&b).0,
        tail(&b).1,
    );
}

criterion_group!(benches, usage, prepare_pairs);
criterion_main!(benches);
