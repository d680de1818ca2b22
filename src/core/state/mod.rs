//! The snapshot state: every snapshot by key, the children counts and the id counter.
//!
//! This file holds the types, their invariants and the small rules the other files share;
//! [`State`]'s methods are split by purpose:
//! - `decide`: [`State::decide`], checking a command and yielding its record;
//! - `apply`: [`State::admit`] (does a stored record fit?) and [`State::apply`];
//! - `query`: reads (Stat, mount plans, Walk, ids, counts);
//! - `checkpoint`: [`State::checkpoint`] and [`State::from_checkpoint`].

mod apply;
mod checkpoint;
mod decide;
mod query;

pub use query::KindCounts;

use super::info::{Timestamp, Usage};
use super::kind::Kind;
use super::labels::{validate_labels, IdMap, Labels};
use crate::error::{Error, Result};
use foldhash::fast::FixedState;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// A map by key or name. Hashed, not ordered: with containerd's keys (long digests that
/// share prefixes) every comparison in an ordered map's search reaches into another heap
/// string, and recovery spent most of its time there. What must be ordered (Walk,
/// checkpoints) is sorted on the way out.
///
/// foldhash with a fixed seed: fast on 70-byte digests (SipHash took a fifth of recovery)
/// and free of randomness, as the core must be. A fixed seed gives no protection against
/// keys chosen to collide; whoever can send keys to a snapshotter already controls the
/// node's containers.
type Map<V> = HashMap<String, V, FixedState>;

/// Counts one more child of `parent`.
fn add_child(children: &mut Map<usize>, parent: &str) {
    match children.get_mut(parent) {
        Some(count) => *count += 1,
        None => {
            children.insert(parent.to_owned(), 1);
        }
    }
}

/// One snapshot as the state holds it. Its key or name is the map key in [`State`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// The directory id (`snapshots/<id>`); unique over the state's whole history.
    pub id: u64,
    /// View, Active or Committed.
    pub kind: Kind,
    /// The parent's name. Invariant: the parent exists and is Committed.
    pub parent: Option<String>,
    /// User labels. Invariant: no empty values. The ID-mapping labels of a snapshot that
    /// [`State::decide`] let in parse ([`crate::core::labels::IdMap::from_labels`]); a
    /// replayed record is not checked for them, and a mount plan of a malformed one is
    /// InvalidArgument.
    pub labels: Labels,
    /// Creation (for Committed: commit) time.
    pub created: Timestamp,
    /// Last change time.
    pub updated: Timestamp,
    /// The usage measured at Commit. Invariant: `Some` exactly when Committed.
    pub usage: Option<Usage>,
}

/// What the effect layer needs to build the mounts of an Active or View snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountPlan {
    /// The snapshot's own id.
    pub id: u64,
    /// Active (writable) or View (read-only).
    pub kind: Kind,
    /// Ids of the parent chain, nearest parent first.
    pub parents: Vec<u64>,
    /// The ID mappings of the snapshot's labels, for ID-mapped mounts (empty: none).
    pub idmap: IdMap,
}

/// The whole snapshot state. Pure: no I/O, clock, randomness or locks.
///
/// Change it only through [`State::decide`] then [`State::apply`] (or by replaying records
/// through [`State::admit`] and [`State::apply`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct State {
    /// Every snapshot by key (Active, View) or name (Committed): one namespace. Unordered:
    /// [`State::walk`] and [`State::checkpoint`] sort by name (byte order).
    snapshots: Map<Snapshot>,
    /// Parent name → how many snapshots have it as their parent. Invariant: exactly that
    /// number, and no entry rather than 0; kept up to date by `apply`, never recomputed by
    /// scanning. A count is all that decisions need ("has children?"); a Commit renames a
    /// child without changing its parent, so it leaves the counts alone.
    children: Map<usize>,
    /// The next id to hand out. Invariant: greater than every id ever issued, including
    /// those of removed snapshots, so ids are never reused.
    next_id: u64,
}

/// `State::default()` is [`State::new`]: ids start at 1, never 0.
impl Default for State {
    fn default() -> State {
        State::new()
    }
}

/// The serialisable content of a [`State`]: what a checkpoint stores. The children index is
/// derived, so it is rebuilt (and checked) on load rather than stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The id counter.
    pub next_id: u64,
    /// Every snapshot with its key or name; [`State::checkpoint`] orders them by name.
    pub snapshots: Vec<(String, Snapshot)>,
}

/// A record or checkpoint that does not fit the state.
fn refuse<T>(why: String) -> Result<T> {
    Err(Error::FailedPrecondition(why))
}

fn not_found(key: &str) -> Error {
    Error::NotFound(format!("snapshot {key:?} does not exist"))
}

/// Labels as they are stored: containerd never stores a label whose value is empty.
fn stored(labels: &Labels) -> Labels {
    labels
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Checks labels read back from storage: valid, and as [`stored`] keeps them (a decided
/// record never holds an empty value, which would mean "delete" in an Update).
fn check_stored(labels: &Labels) -> Result<()> {
    validate_labels(labels)?;
    match labels.iter().find(|(_, v)| v.is_empty()) {
        Some((k, _)) => refuse(format!("label {k:?} has an empty value")),
        None => Ok(()),
    }
}

impl State {
    /// An empty state whose first id is 1.
    pub fn new() -> State {
        State::empty(1)
    }

    /// An empty state whose next id is `next_id`; callers keep `next_id > 0`.
    fn empty(next_id: u64) -> State {
        State {
            snapshots: Map::default(),
            children: Map::default(),
            next_id,
        }
    }

    /// The snapshot `p` as a parent for a new snapshot: it must exist (else NotFound) and
    /// be Committed (else InvalidArgument). Shared by [`State::decide`] and
    /// [`State::plan_for_new`].
    fn committed_parent(&self, p: &str) -> Result<()> {
        let ps = self
            .snapshots
            .get(p)
            .ok_or_else(|| Error::NotFound(format!("parent snapshot {p:?} does not exist")))?;
        if ps.kind != Kind::Committed {
            return Err(Error::InvalidArgument(format!(
                "parent {p:?} is not a committed snapshot (it is {})",
                ps.kind
            )));
        }
        Ok(())
    }
}
