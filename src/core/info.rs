//! What a snapshot reports about itself: [`Info`], [`Usage`] and [`Timestamp`].

use super::kind::Kind;
use super::labels::Labels;
use serde::{Deserialize, Serialize};

/// A point in time, passed into the core from outside (the core has no clock).
///
/// Seconds and nanoseconds since the Unix epoch, as protobuf's `Timestamp`.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
pub struct Timestamp {
    /// Whole seconds since 1970-01-01T00:00:00Z.
    pub seconds: i64,
    /// Nanoseconds past `seconds`; invariant: `< 1_000_000_000`.
    pub nanos: u32,
}

impl Timestamp {
    /// A timestamp from seconds and nanoseconds; nanos beyond a second carry into seconds.
    pub fn new(seconds: i64, nanos: u32) -> Self {
        Timestamp {
            seconds: seconds + i64::from(nanos / 1_000_000_000),
            nanos: nanos % 1_000_000_000,
        }
    }
}

/// Disk usage of a snapshot's own layer (not its parents').
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Usage {
    /// Bytes allocated (blocks × 512), as containerd's `du`.
    pub size: i64,
    /// Inodes, each hard-linked inode counted once.
    pub inodes: i64,
}

/// What Stat, Walk and Update return about a snapshot (containerd's `snapshots.Info`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Info {
    /// View, Active or Committed.
    pub kind: Kind,
    /// The key (View, Active) or name (Committed).
    pub name: String,
    /// The committed parent's name, if any.
    pub parent: Option<String>,
    /// User labels.
    pub labels: Labels,
    /// When the snapshot was created (for Committed: when it was committed).
    pub created: Timestamp,
    /// When the snapshot was last changed.
    pub updated: Timestamp,
}
