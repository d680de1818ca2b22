//! Commands: what a caller asks of the state, with every outside input already resolved.

use super::info::{Timestamp, Usage};
use super::labels::Labels;

/// A change a caller asks for. The effect layer fills in what the pure core cannot know:
/// the time (`now`) and, for Commit, the measured usage of the layer.
///
/// A command is checked by [`State::decide`](super::State::decide), which yields a
/// [`Record`](super::Record) or the precise error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Create an Active snapshot `key` above the committed `parent`.
    Prepare {
        /// The new snapshot's key.
        key: String,
        /// The committed parent's name; `None` for a base layer.
        parent: Option<String>,
        /// Labels of the new snapshot; empty values are dropped.
        labels: Labels,
        /// Creation time.
        now: Timestamp,
    },
    /// Create a read-only View `key` of the committed `parent`.
    View {
        /// The new snapshot's key.
        key: String,
        /// The committed parent's name; `None` for an empty view.
        parent: Option<String>,
        /// Labels of the new snapshot; empty values are dropped.
        labels: Labels,
        /// Creation time.
        now: Timestamp,
    },
    /// Turn the Active snapshot `key` into the Committed snapshot `name`.
    Commit {
        /// The committed snapshot's name.
        name: String,
        /// The Active snapshot's key.
        key: String,
        /// containerd 2.2's `WithParent` commit option (snapshots API v1.10,
        /// `CommitSnapshotRequest.parent`): an Active snapshot prepared without a parent is
        /// committed above this committed snapshot (a rebase). `None`, or the Active
        /// snapshot's own parent, commits as before; any other parent of an Active snapshot
        /// that has one is InvalidArgument.
        parent: Option<String>,
        /// The committed snapshot's labels; they replace the Active snapshot's labels.
        labels: Labels,
        /// The layer's usage, measured by the effect layer before deciding.
        usage: Usage,
        /// Commit time: the committed snapshot's `created` and `updated`.
        now: Timestamp,
    },
    /// Remove the snapshot `key`, which must have no children.
    Remove {
        /// The key or name to remove.
        key: String,
    },
    /// Change the labels of `key` as containerd's `Update(info, fieldpaths...)` does.
    Update {
        /// The key or name to update.
        key: String,
        /// The labels the field paths read from.
        labels: Labels,
        /// `[]` or `["labels"]` replace all labels; `"labels.<k>"` sets (or, when the value
        /// is absent or empty, deletes) label `k`; any other path is InvalidArgument.
        fieldpaths: Vec<String>,
        /// Update time.
        now: Timestamp,
    },
}
