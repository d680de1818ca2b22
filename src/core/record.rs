//! Records: the decided, self-contained outcome of a command, as the journal stores it.

use super::info::{Timestamp, Usage};
use super::kind::Kind;
use super::labels::Labels;
use serde::{Deserialize, Serialize};

/// A decided change. Applying a record never fails and never consults anything but the
/// record and the state, so replaying the journal rebuilds the state exactly.
///
/// Every record names the snapshot's id so that the effect layer can act on its directory
/// (`snapshots/<id>`) without looking anything up.
///
/// The serde shape of this type is the journal's on-disk payload: changing it needs a new
/// journal format version (see the codec's golden-byte tests).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Record {
    /// A View or Active snapshot was created.
    Created {
        /// The new id; always the state's next id at the time.
        id: u64,
        /// View or Active; never Committed.
        kind: Kind,
        /// The new snapshot's key.
        key: String,
        /// The committed parent's name.
        parent: Option<String>,
        /// Labels, without empty values.
        labels: Labels,
        /// Creation time (`created` and `updated`).
        at: Timestamp,
    },
    /// An Active snapshot became Committed under a new name, keeping its id.
    Committed {
        /// The snapshot's id.
        id: u64,
        /// The Active key that goes away.
        key: String,
        /// The Committed name that replaces it.
        name: String,
        /// The committed labels, without empty values.
        labels: Labels,
        /// The layer's measured usage.
        usage: Usage,
        /// Commit time (`created` and `updated`).
        at: Timestamp,
    },
    /// A snapshot without children was removed.
    Removed {
        /// The removed snapshot's id.
        id: u64,
        /// The removed key or name.
        key: String,
    },
    /// A snapshot's labels were replaced by the resolved result of an Update.
    Updated {
        /// The snapshot's id.
        id: u64,
        /// The key or name.
        key: String,
        /// The complete new labels, without empty values.
        labels: Labels,
        /// Update time (`updated`).
        at: Timestamp,
    },
    /// An Active snapshot created without a parent became Committed under a new name above
    /// the committed `parent`, keeping its id (a rebase: containerd 2.2's Commit with a
    /// parent). Journal format version 2; version 1 files never hold one.
    Rebased {
        /// The snapshot's id.
        id: u64,
        /// The Active key that goes away.
        key: String,
        /// The Committed name that replaces it.
        name: String,
        /// The committed parent it now has.
        parent: String,
        /// The committed labels, without empty values.
        labels: Labels,
        /// The layer's measured usage.
        usage: Usage,
        /// Commit time (`created` and `updated`).
        at: Timestamp,
    },
}

impl Record {
    /// The id of the snapshot the record is about.
    pub fn id(&self) -> u64 {
        match self {
            Record::Created { id, .. }
            | Record::Committed { id, .. }
            | Record::Removed { id, .. }
            | Record::Updated { id, .. }
            | Record::Rebased { id, .. } => *id,
        }
    }
}
