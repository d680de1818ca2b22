//! Shared by the fixed-case suites of the pure core (`core_cases`, `core_mutants`): fixed
//! times, labels from pairs, and commands with empty labels.
#![allow(dead_code)] // each test binary uses a different part of it

use overlaysnap::core::{Command, Labels, Timestamp, Usage};

/// The time of creations.
pub const T0: Timestamp = Timestamp {
    seconds: 1_700_000_000,
    nanos: 0,
};

/// The time of commits.
pub const T1: Timestamp = Timestamp {
    seconds: 1_700_000_001,
    nanos: 5,
};

/// Labels from `(key, value)` pairs.
pub fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Prepare `key` on `parent` at [`T0`].
pub fn prepare(key: &str, parent: Option<&str>) -> Command {
    Command::Prepare {
        key: key.into(),
        parent: parent.map(Into::into),
        labels: Labels::new(),
        now: T0,
    }
}

/// View `key` on `parent` at [`T0`].
pub fn view(key: &str, parent: Option<&str>) -> Command {
    Command::View {
        key: key.into(),
        parent: parent.map(Into::into),
        labels: Labels::new(),
        now: T0,
    }
}

/// Commit `key` as `name` at [`T1`], with a usage of one 512-byte inode.
pub fn commit(name: &str, key: &str) -> Command {
    Command::Commit {
        name: name.into(),
        key: key.into(),
        parent: None,
        labels: Labels::new(),
        usage: Usage {
            size: 512,
            inodes: 1,
        },
        now: T1,
    }
}

/// Remove `key`.
pub fn remove(key: &str) -> Command {
    Command::Remove { key: key.into() }
}
