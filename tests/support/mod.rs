//! Shared test support: proptest strategies for commands over a small key pool, so that
//! collisions, missing parents, name == key, commits of views and removals with children
//! all happen often; [`machine`] draws commands from the model's state instead, and
//! [`reach`] counts what a run of sequences reached.
#![allow(dead_code)] // each test binary uses a different part of it

pub mod machine;
pub mod reach;
pub mod rng;

use overlaysnap::core::{Command, Labels, Timestamp, Usage};
use proptest::prelude::*;

/// The key pool: few enough that random commands collide often. "" is refused input.
pub const KEYS: &[&str] = &["a", "b", "c", "d", "e", "sha256:f", "g/h", ""];

/// A key from the pool, mostly valid.
pub fn key() -> impl Strategy<Value = String> + Clone {
    prop_oneof![
        20 => prop::sample::select(&KEYS[..KEYS.len() - 1]).prop_map(str::to_owned),
        1 => Just(String::new()),
        1 => Just("bad\0key".to_owned()),
    ]
}

/// Labels over a few keys; empty values (which are never stored) and one oversized pair.
pub fn labels() -> impl Strategy<Value = Labels> {
    let pair = (
        prop::sample::select(&["l", "m", "containerd.io/gc.root"][..]),
        prop_oneof![
            8 => prop::sample::select(&["x", "y", ""][..]).prop_map(str::to_owned),
            1 => Just("v".repeat(4096)),
        ],
    );
    prop::collection::btree_map(pair.0.prop_map(str::to_owned), pair.1, 0..3)
}

/// Field paths for Update: mostly valid, sometimes not.
pub fn fieldpaths() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec(
        prop::sample::select(
            &[
                "labels",
                "labels.l",
                "labels.m",
                "labels.containerd.io/gc.root",
                "parent",
                "labels.",
            ][..],
        )
        .prop_map(str::to_owned),
        0..3,
    )
}

/// One command at time `now`.
pub fn command(now: Timestamp) -> impl Strategy<Value = Command> {
    let parent = prop::option::weighted(0.6, key());
    prop_oneof![
        3 => (key(), parent.clone(), labels()).prop_map(move |(key, parent, labels)| Command::Prepare { key, parent, labels, now }),
        1 => (key(), parent, labels()).prop_map(move |(key, parent, labels)| Command::View { key, parent, labels, now }),
        3 => (key(), key(), prop::option::weighted(0.3, key()), labels(), 0i64..1 << 20, 0i64..64).prop_map(move |(name, key, parent, labels, size, inodes)| Command::Commit {
            name, key, parent, labels, usage: Usage { size, inodes }, now,
        }),
        2 => key().prop_map(|key| Command::Remove { key }),
        1 => (key(), labels(), fieldpaths()).prop_map(move |(key, labels, fieldpaths)| Command::Update { key, labels, fieldpaths, now }),
    ]
}

/// A sequence of up to `max` commands with strictly increasing timestamps.
pub fn commands(max: usize) -> impl Strategy<Value = Vec<Command>> {
    prop::collection::vec(any::<u32>(), 0..max).prop_flat_map(|seeds| {
        seeds
            .iter()
            .enumerate()
            .map(|(i, _)| command(Timestamp::new(1_700_000_000 + i as i64, 7)))
            .collect::<Vec<_>>()
    })
}
