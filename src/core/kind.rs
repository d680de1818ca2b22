//! The kind of a snapshot, with containerd's byte values and strings.

use serde::{Deserialize, Serialize};
use std::fmt;

/// What a snapshot is: a read-only view, a writable active snapshot, or a committed layer.
///
/// The discriminants are containerd's (`snapshots.Kind`): View = 1, Active = 2, Committed = 3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[repr(u8)]
pub enum Kind {
    /// A read-only snapshot named by a key; never a parent.
    View = 1,
    /// A writable snapshot named by a key; becomes Committed through Commit.
    Active = 2,
    /// An immutable layer named by a name; the only kind that can be a parent.
    Committed = 3,
}

impl Kind {
    /// containerd's string for the kind: `view`, `active` or `committed`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::View => "view",
            Kind::Active => "active",
            Kind::Committed => "committed",
        }
    }

    /// Parses containerd's string for a kind (case-insensitive, as containerd's `ParseKind`).
    pub fn parse(s: &str) -> Option<Kind> {
        match s.to_ascii_lowercase().as_str() {
            "view" => Some(Kind::View),
            "active" => Some(Kind::Active),
            "committed" => Some(Kind::Committed),
            _ => None,
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}
