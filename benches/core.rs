//! Throughput of the pure core: decide + apply for each command, Stat, and Walk over
//! 100 000 snapshots with and without a filter.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use overlaysnap::core::{Command, Filter, Labels, State, Timestamp, Usage};
use std::hint::black_box;

const NOW: Timestamp = Timestamp {
    seconds: 1_700_000_000,
    nanos: 0,
};

fn step(state: &mut State, cmd: &Command) {
    let record = state.decide(cmd).expect("bench command is valid");
    state.apply(&record);
}

fn prepare(key: String, parent: Option<String>) -> Command {
    Command::Prepare {
        key,
        parent,
        labels: Labels::new(),
        now: NOW,
    }
}

/// `n` committed layers in chains of 10, each with a label, the last 10 % left active.
fn populated(n: usize) -> State {
    let mut s = State::new();
    let committed = n - n / 10;
    for i in 0..n {
        let parent = if i >= committed {
            Some(format!("layer-{}", committed - 1))
        } else {
            (i % 10 != 0).then(|| format!("layer-{}", i - 1))
        };
        step(&mut s, &prepare(format!("key-{i}"), parent));
        if i < committed {
            step(
                &mut s,
                &Command::Commit {
                    name: format!("layer-{i}"),
                    key: format!("key-{i}"),
                    parent: None,
                    labels: [("tier".to_string(), (i % 3).to_string())].into(),
                    usage: Usage::default(),
                    now: NOW,
                },
            );
        }
    }
    s
}

fn commands(c: &mut Criterion) {
    let base = populated(10_000);
    let mut g = c.benchmark_group("core");
    g.throughput(Throughput::Elements(1));
    g.bench_function("prepare", |b| {
        let mut s = base.clone();
        let mut i = 0u64;
        b.iter(|| {
            i += 1;
            step(&mut s, &prepare(format!("new-{i}"), Some("layer-5".into())));
        })
    });
    g.bench_function("commit", |b| {
        b.iter_batched(
            || {
                let mut s = base.clone();
                step(&mut s, &prepare("fresh".into(), Some("layer-5".into())));
                s
            },
            |mut s| {
                step(
                    &mut s,
                    &Command::Commit {
                        name: "fresh-c".into(),
                        key: "fresh".into(),
                        parent: None,
                        labels: Labels::new(),
                        usage: Usage::default(),
                        now: NOW,
                    },
                );
                s
            },
            BatchSize::LargeInput,
        )
    });
    g.bench_function("prepare+remove", |b| {
        let mut s = base.clone();
        b.iter(|| {
            step(&mut s, &prepare("tmp".into(), Some("layer-5".into())));
            step(&mut s, &Command::Remove { key: "tmp".into() });
        })
    });
    g.bench_function("stat", |b| {
        b.iter(|| black_box(base.stat(black_box("layer-4321")).unwrap()))
    });
    g.finish();
}

fn walk(c: &mut Criterion) {
    let s = populated(100_000);
    let all = Filter::parse_all::<&str>(&[]).unwrap();
    let some = Filter::parse_all(&["labels.tier==1,kind==committed"]).unwrap();
    let mut g = c.benchmark_group("walk-100k");
    g.sample_size(10);
    g.throughput(Throughput::Elements(100_000));
    g.bench_function("all", |b| b.iter(|| s.walk(&all).count()));
    g.bench_function("filtered", |b| b.iter(|| s.walk(&some).count()));
    g.finish();
}

criterion_group!(benches, commands, walk);
criterion_main!(benches);
