//! Journal benchmarks on a real disk (a temporary directory under /var/tmp, not tmpfs):
//! - durable appends per second with 1, 4 and 16 writers, beside a raw `pwrite` +
//!   `fdatasync` loop on the same disk (goals: one writer within 1.3x of the raw loop, 16
//!   writers at least 8x one writer);
//! - recovery (open) of 1 000 000 records, without and with a checkpoint (goal: < 1 s);
//! - checkpoint time for 100 000 snapshots (the size is printed);
//! - the flush observer's cost (metrics): one writer's appends with no observer and with
//!   one, one after the other in the same run, on the disk and on tmpfs (`/dev/shm`, where
//!   `fdatasync` does nothing, so the observer's clock reads weigh the most there).
//!
//! Sample sizes and times are small so the whole run takes a few minutes.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use overlaysnap::core::{Command, Kind, Labels, Record, State, Timestamp, Usage};
use overlaysnap::journal::{checkpoint_file, codec, frame, Flush, Journal, LogJournal, Observer};
use parking_lot::Mutex;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn temp_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("overlaysnap-bench-")
        .tempdir_in("/var/tmp")
        .unwrap()
}

/// A content digest like containerd's chain ids: 64 hex digits that look random.
fn digest(n: u64) -> String {
    let mut x = n;
    let mut word = || {
        x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let z = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        let z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    format!(
        "sha256:{:016x}{:016x}{:016x}{:016x}",
        word(),
        word(),
        word(),
        word()
    )
}

fn labels() -> Labels {
    [(
        "containerd.io/gc.root".to_owned(),
        "2024-01-01T00:00:00Z".to_owned(),
    )]
    .into()
}

/// A Created record like the snapshotter's, for snapshot `id`.
fn created(id: u64) -> Record {
    Record::Created {
        id,
        kind: Kind::Active,
        key: format!("default/{id}/{}", digest(id)),
        parent: None,
        labels: labels(),
        at: Timestamp::new(1_700_000_000 + id as i64, 0),
    }
}

fn appends(c: &mut Criterion) {
    let mut group = c.benchmark_group("appends");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .throughput(Throughput::Elements(1));

    // The floor: one frame-sized pwrite and one fdatasync per op, nothing else.
    let mut frame_bytes = Vec::new();
    let start = frame::begin_frame(&mut frame_bytes);
    codec::encode_record(&created(1), &mut frame_bytes);
    frame::finish_frame(&mut frame_bytes, start, frame::MAX_RECORD_FRAME).unwrap();
    let dir = temp_dir();
    let file = std::fs::File::create(dir.path().join("raw")).unwrap();
    let mut offset = 0;
    group.bench_function("raw_pwrite_fdatasync", |b| {
        b.iter(|| {
            file.write_all_at(&frame_bytes, offset).unwrap();
            offset += frame_bytes.len() as u64;
            file.sync_data().unwrap();
        })
    });

    for writers in [1u64, 4, 16] {
        let dir = temp_dir();
        let (journal, _) = LogJournal::open_dir(dir.path()).unwrap();
        // Ids are handed out and submitted under one lock, as the snapshotter does.
        let next_id = Mutex::new(1u64);
        group.bench_with_input(
            BenchmarkId::new("journal_writers", writers),
            &writers,
            |b, &writers| {
                b.iter_custom(|iters| {
                    let per_writer = iters.div_ceil(writers);
                    let start = Instant::now();
                    std::thread::scope(|s| {
                        for _ in 0..writers {
                            s.spawn(|| {
                                for _ in 0..per_writer {
                                    let ticket = {
                                        let mut id = next_id.lock();
                                        *id += 1;
                                        journal.submit(&[created(*id)]).unwrap()
                                    };
                                    journal.wait(ticket).unwrap();
                                }
                            });
                        }
                    });
                    start
                        .elapsed()
                        .mul_f64(iters as f64 / (per_writer * writers) as f64)
                })
            },
        );
    }
    group.finish();
}

/// About `n` records of a busy host: layers committed on 1000 bases, labelled, and the
/// oldest removed, so that some 50 000 snapshots stay live.
fn history(n: usize) -> (Vec<Record>, State) {
    let mut state = State::new();
    let mut records = Vec::with_capacity(n);
    let mut step = |state: &mut State, cmd: Command| {
        let record = state.decide(&cmd).unwrap();
        state.apply(&record);
        records.push(record);
        records.len() >= n
    };
    let now = Timestamp::new(1_700_000_000, 0);
    for i in 0..1000 {
        step(
            &mut state,
            Command::Prepare {
                key: format!("base-{i}-tmp"),
                parent: None,
                labels: Labels::new(),
                now,
            },
        );
        step(
            &mut state,
            Command::Commit {
                name: format!("base-{i}"),
                key: format!("base-{i}-tmp"),
                parent: None,
                labels: labels(),
                usage: Usage {
                    size: 4096,
                    inodes: 1,
                },
                now,
            },
        );
    }
    for j in 0.. {
        let (key, name) = (format!("default/{j}/{}", digest(j)), digest(j + (1 << 40)));
        let parent = Some(format!("base-{}", j % 1000));
        let usage = Usage {
            size: 1 << 20,
            inodes: 42,
        };
        let fieldpaths = vec!["labels.containerd.io/gc.root".to_owned()];
        let mut cmds = vec![
            Command::Prepare {
                key: key.clone(),
                parent,
                labels: labels(),
                now,
            },
            Command::Commit {
                name: name.clone(),
                key,
                parent: None,
                labels: labels(),
                usage,
                now,
            },
            Command::Update {
                key: name,
                labels: labels(),
                fieldpaths,
                now,
            },
        ];
        if j >= 50_000 {
            cmds.push(Command::Remove {
                key: digest(j - 50_000 + (1 << 40)),
            });
        }
        if cmds.into_iter().any(|cmd| step(&mut state, cmd)) {
            break;
        }
    }
    (records, state)
}

/// A journal directory holding `records`, checkpointed at the end when asked.
fn journal_of(records: &[Record], state: &State, checkpoint: bool) -> tempfile::TempDir {
    let dir = temp_dir();
    let (journal, _) = LogJournal::open_dir(dir.path()).unwrap();
    for chunk in records.chunks(10_000) {
        journal.append(chunk).unwrap();
    }
    if checkpoint {
        journal.checkpoint(&state.checkpoint()).unwrap();
    }
    dir
}

fn dir_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum()
}

fn recovery(c: &mut Criterion) {
    let mut group = c.benchmark_group("recovery_1M_records");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(8));
    let (records, state) = history(1_000_000);
    for checkpoint in [false, true] {
        let dir = journal_of(&records, &state, checkpoint);
        eprintln!(
            "recovery_1M_records/{}: {} bytes on disk, {} live snapshots",
            if checkpoint {
                "checkpointed"
            } else {
                "log_only"
            },
            dir_size(dir.path()),
            state.len()
        );
        let name = if checkpoint {
            "checkpointed"
        } else {
            "log_only"
        };
        group.bench_function(name, |b| {
            b.iter(|| {
                let (_, recovery) = LogJournal::open_dir(dir.path()).unwrap();
                assert_eq!(recovery.state.len(), state.len());
            })
        });
    }
    group.finish();
}

fn checkpoint(c: &mut Criterion) {
    let mut group = c.benchmark_group("checkpoint");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    let mut state = State::new();
    let now = Timestamp::new(1_700_000_000, 0);
    for i in 0..100_000 {
        let parent = (i >= 1000).then(|| format!("base-{}", i % 1000));
        let key = if i < 1000 {
            format!("base-{i}-tmp")
        } else {
            format!("default/{i}/{}", digest(i))
        };
        let cmd = Command::Prepare {
            key: key.clone(),
            parent,
            labels: labels(),
            now,
        };
        let record = state.decide(&cmd).unwrap();
        state.apply(&record);
        if i < 1000 {
            let usage = Usage {
                size: 1 << 20,
                inodes: 42,
            };
            let cmd = Command::Commit {
                name: format!("base-{i}"),
                key,
                parent: None,
                labels: labels(),
                usage,
                now,
            };
            let record = state.decide(&cmd).unwrap();
            state.apply(&record);
        }
    }
    let dir = temp_dir();
    let (journal, _) = LogJournal::open_dir(dir.path()).unwrap();
    journal.checkpoint(&state.checkpoint()).unwrap();
    let size = std::fs::metadata(dir.path().join(checkpoint_file(1)))
        .unwrap()
        .len();
    eprintln!(
        "checkpoint/100k_snapshots: {size} bytes ({} snapshots)",
        state.len()
    );
    group.bench_function("100k_snapshots", |b| {
        // Converting the state is part of checkpointing, as it was when the journal took it.
        b.iter(|| journal.checkpoint(&state.checkpoint()).unwrap())
    });
    group.finish();
}

/// An observer as cheap as a metrics one: it adds each flush to atomic sums.
#[derive(Debug, Default)]
struct Sums {
    records: AtomicU64,
    nanos: AtomicU64,
}

impl Observer for Sums {
    fn flushed(&self, flush: &Flush) {
        self.records.fetch_add(flush.records, Ordering::Relaxed);
        let nanos = (flush.write + flush.sync).as_nanos() as u64;
        self.nanos.fetch_add(nanos, Ordering::Relaxed);
    }
}

fn observer(c: &mut Criterion) {
    let mut group = c.benchmark_group("observer");
    group
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .throughput(Throughput::Elements(1));
    for (disk, under) in [("disk", "/var/tmp"), ("tmpfs", "/dev/shm")] {
        // Both journals first, then their benches in turn: one run, same conditions.
        let dirs: Vec<_> = (0..2)
            .map(|_| {
                tempfile::Builder::new()
                    .prefix("overlaysnap-bench-")
                    .tempdir_in(under)
                    .unwrap()
            })
            .collect();
        let plain = LogJournal::open_dir(dirs[0].path()).unwrap().0;
        let mut observed = LogJournal::open_dir(dirs[1].path()).unwrap().0;
        let sums = Arc::new(Sums::default());
        observed.observe(sums.clone());
        for (name, journal) in [("none", &plain), ("set", &observed)] {
            let mut id = 0;
            group.bench_function(BenchmarkId::new(disk, name), |b| {
                b.iter(|| {
                    id += 1;
                    journal.append(&[created(id)]).unwrap();
                })
            });
        }
        assert!(sums.records.load(Ordering::Relaxed) > 0);
    }
    group.finish();
}

criterion_group!(benches, appends, recovery, checkpoint, observer);
criterion_main!(benches);
