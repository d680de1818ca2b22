//! [`State::decide`]: checks a command against the state and yields the record that
//! carries it out, or containerd's precise error. Never changes the state.

use super::{not_found, stored, State};
use crate::core::command::Command;
use crate::core::info::{Timestamp, Usage};
use crate::core::kind::Kind;
use crate::core::labels::{validate_id_mappings, validate_key, validate_labels, Labels};
use crate::core::record::Record;
use crate::core::size::max_size;
use crate::error::{Error, Result};

impl State {
    /// Checks `cmd` against the state and yields the record that carries it out, or the
    /// precise error. Never changes the state.
    ///
    /// Checks run in a fixed order, and the first that fails decides the error: the
    /// arguments' form, then existence, then the snapshot's kind and relations. The form
    /// includes the ID-mapping labels (`containerd.io/snapshot/uidmapping`, `…/gidmapping`)
    /// and the size label (`containerd.io/snapshot/max-size`, see [`max_size`]) of Prepare,
    /// View, Commit and Update: a malformed one is InvalidArgument, so a snapshot given
    /// them by this build always has mappings and a size that parse.
    pub fn decide(&self, cmd: &Command) -> Result<Record> {
        match cmd {
            Command::Prepare {
                key,
                parent,
                labels,
                now,
            } => self.decide_create(Kind::Active, key, parent.as_deref(), labels, *now),
            Command::View {
                key,
                parent,
                labels,
                now,
            } => self.decide_create(Kind::View, key, parent.as_deref(), labels, *now),
            Command::Commit {
                name,
                key,
                parent,
                labels,
                usage,
                now,
            } => self.decide_commit(name, key, parent.as_deref(), labels, *usage, *now),
            Command::Remove { key } => self.decide_remove(key),
            Command::Update {
                key,
                labels,
                fieldpaths,
                now,
            } => self.decide_update(key, labels, fieldpaths, *now),
        }
    }

    fn decide_create(
        &self,
        kind: Kind,
        key: &str,
        parent: Option<&str>,
        labels: &Labels,
        now: Timestamp,
    ) -> Result<Record> {
        validate_key("key", key)?;
        if let Some(p) = parent {
            validate_key("parent", p)?;
        }
        validate_labels(labels)?;
        validate_id_mappings(labels)?;
        max_size(labels)?;
        if let Some(p) = parent {
            self.committed_parent(p)?;
        }
        if self.snapshots.contains_key(key) {
            return Err(Error::AlreadyExists(format!(
                "snapshot {key:?} already exists"
            )));
        }
        Ok(Record::Created {
            id: self.next_id,
            kind,
            key: key.to_owned(),
            parent: parent.map(str::to_owned),
            labels: stored(labels),
            at: now,
        })
    }

    /// Commit, with containerd 2.2's rebase (`CommitActive` in
    /// `core/snapshots/storage/bolt.go`): a `parent` given for an Active snapshot that has
    /// none becomes its parent; the Active snapshot's own parent is accepted as if none was
    /// given; another parent is InvalidArgument. The new parent must then exist (NotFound;
    /// the key itself is gone by then, as in containerd) and be Committed
    /// (FailedPrecondition, where Prepare answers InvalidArgument).
    fn decide_commit(
        &self,
        name: &str,
        key: &str,
        parent: Option<&str>,
        labels: &Labels,
        usage: Usage,
        now: Timestamp,
    ) -> Result<Record> {
        validate_key("name", name)?;
        validate_key("key", key)?;
        if let Some(p) = parent {
            validate_key("parent", p)?;
        }
        validate_labels(labels)?;
        validate_id_mappings(labels)?;
        max_size(labels)?;
        let s = self.snapshots.get(key).ok_or_else(|| not_found(key))?;
        if self.snapshots.contains_key(name) {
            return Err(Error::AlreadyExists(format!(
                "cannot commit {key:?} as {name:?}: snapshot {name:?} already exists"
            )));
        }
        if s.kind != Kind::Active {
            return Err(Error::FailedPrecondition(format!(
                "cannot commit {key:?}: it is {}, not active",
                s.kind
            )));
        }
        let rebase = match (s.parent.as_deref(), parent) {
            (Some(own), Some(p)) if own != p => {
                return Err(Error::InvalidArgument(format!(
                    "cannot change parent of active snapshot {key:?} on commit: it has \
                     parent {own:?}, not {p:?}"
                )))
            }
            (None, Some(p)) => Some(p),
            _ => None,
        };
        let Some(p) = rebase else {
            return Ok(Record::Committed {
                id: s.id,
                key: key.to_owned(),
                name: name.to_owned(),
                labels: stored(labels),
                usage,
                at: now,
            });
        };
        match self.snapshots.get(p) {
            Some(ps) if p != key => {
                if ps.kind != Kind::Committed {
                    return Err(Error::FailedPrecondition(format!(
                        "cannot commit {key:?} above {p:?}: parent {p:?} is not committed \
                         (it is {})",
                        ps.kind
                    )));
                }
            }
            _ => {
                return Err(Error::NotFound(format!(
                    "cannot commit {key:?} above {p:?}: parent snapshot {p:?} does not exist"
                )))
            }
        }
        Ok(Record::Rebased {
            id: s.id,
            key: key.to_owned(),
            name: name.to_owned(),
            parent: p.to_owned(),
            labels: stored(labels),
            usage,
            at: now,
        })
    }

    fn decide_remove(&self, key: &str) -> Result<Record> {
        validate_key("key", key)?;
        let s = self.snapshots.get(key).ok_or_else(|| not_found(key))?;
        if self.children.contains_key(key) {
            return Err(Error::FailedPrecondition(format!(
                "snapshot {key:?} has children; cannot remove snapshot with child"
            )));
        }
        Ok(Record::Removed {
            id: s.id,
            key: key.to_owned(),
        })
    }

    fn decide_update(
        &self,
        key: &str,
        labels: &Labels,
        fieldpaths: &[String],
        now: Timestamp,
    ) -> Result<Record> {
        validate_key("key", key)?;
        validate_labels(labels)?;
        validate_id_mappings(labels)?;
        max_size(labels)?;
        let s = self.snapshots.get(key).ok_or_else(|| not_found(key))?;
        let mut new = if fieldpaths.is_empty() {
            labels.clone()
        } else {
            s.labels.clone()
        };
        for path in fieldpaths {
            match path.strip_prefix("labels.") {
                Some(k) if !k.is_empty() => match labels.get(k) {
                    Some(v) => new.insert(k.to_owned(), v.clone()),
                    None => new.remove(k),
                },
                _ if path == "labels" => {
                    new = labels.clone();
                    continue;
                }
                _ => {
                    return Err(Error::InvalidArgument(format!(
                        "cannot update {path:?} field on snapshot {key:?}"
                    )))
                }
            };
        }
        Ok(Record::Updated {
            id: s.id,
            key: key.to_owned(),
            labels: stored(&new),
            at: now,
        })
    }
}
