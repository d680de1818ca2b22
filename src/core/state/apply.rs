//! Changing the state: [`State::admit`] checks that a record read back from storage fits
//! it, and [`State::apply`] applies a record deterministically, keeping every invariant of
//! [`State`] (the children counts are kept here, never recomputed).

use super::{add_child, check_stored, refuse, Snapshot, State};
use crate::core::info::{Timestamp, Usage};
use crate::core::kind::Kind;
use crate::core::labels::validate_key;
use crate::core::labels::Labels;
use crate::core::record::Record;
use crate::error::Result;

impl State {
    /// Checks that a record read back from storage fits this state, so that [`State::apply`]
    /// keeps every invariant. Records produced by [`State::decide`] on this state always fit.
    /// The error says why a record does not fit; the journal reports it as corruption.
    pub fn admit(&self, record: &Record) -> Result<()> {
        let live = |key: &str, id: u64| match self.snapshots.get(key) {
            Some(s) if s.id == id => Ok(s),
            Some(s) => refuse(format!("{key:?} has id {}, record says {id}", s.id)),
            None => refuse(format!("{key:?} does not exist")),
        };
        match record {
            Record::Created {
                id,
                kind,
                key,
                parent,
                labels,
                ..
            } => {
                validate_key("key", key)?;
                check_stored(labels)?;
                if *kind == Kind::Committed {
                    return refuse(format!("{key:?} created as committed"));
                }
                if *id < self.next_id {
                    return refuse(format!("id {id} of {key:?} was already issued"));
                }
                if *id == u64::MAX {
                    return refuse(format!("id {id} of {key:?} leaves no next id"));
                }
                if self.snapshots.contains_key(key) {
                    return refuse(format!("{key:?} already exists"));
                }
                match parent.as_deref().map(|p| (p, self.snapshots.get(p))) {
                    Some((p, None)) => refuse(format!("parent {p:?} does not exist")),
                    Some((p, Some(s))) if s.kind != Kind::Committed => {
                        refuse(format!("parent {p:?} is not committed"))
                    }
                    _ => Ok(()),
                }
            }
            Record::Committed {
                id,
                key,
                name,
                labels,
                ..
            } => {
                validate_key("name", name)?;
                check_stored(labels)?;
                if live(key, *id)?.kind != Kind::Active {
                    return refuse(format!("{key:?} is not active"));
                }
                if self.snapshots.contains_key(name) {
                    return refuse(format!("{name:?} already exists"));
                }
                Ok(())
            }
            Record::Rebased {
                id,
                key,
                name,
                parent,
                labels,
                ..
            } => {
                validate_key("name", name)?;
                check_stored(labels)?;
                let s = live(key, *id)?;
                if s.kind != Kind::Active {
                    return refuse(format!("{key:?} is not active"));
                }
                if let Some(own) = &s.parent {
                    return refuse(format!("{key:?} already has parent {own:?}"));
                }
                if self.snapshots.contains_key(name) {
                    return refuse(format!("{name:?} already exists"));
                }
                match self.snapshots.get(parent) {
                    Some(ps) if parent != key && ps.kind == Kind::Committed => Ok(()),
                    _ => refuse(format!("parent {parent:?} is not a committed snapshot")),
                }
            }
            Record::Removed { id, key } => {
                live(key, *id)?;
                if self.children.contains_key(key) {
                    return refuse(format!("{key:?} has children"));
                }
                Ok(())
            }
            Record::Updated {
                id, key, labels, ..
            } => {
                check_stored(labels)?;
                live(key, *id).map(|_| ())
            }
        }
    }

    /// Applies a record. Deterministic; the record must come from [`State::decide`] on this
    /// state or have passed [`State::admit`], otherwise invariants may break.
    pub fn apply(&mut self, record: &Record) {
        self.apply_owned(record.clone());
    }

    /// [`State::apply`] for a record the caller no longer needs: its strings and labels
    /// move into the state instead of being copied (replay of a long journal).
    pub fn apply_owned(&mut self, record: Record) {
        debug_assert!(
            self.admit(&record).is_ok(),
            "record does not fit: {record:?}"
        );
        match record {
            Record::Created {
                id,
                kind,
                key,
                parent,
                labels,
                at,
            } => {
                if let Some(p) = &parent {
                    add_child(&mut self.children, p);
                }
                self.snapshots.insert(
                    key,
                    Snapshot {
                        id,
                        kind,
                        parent,
                        labels,
                        created: at,
                        updated: at,
                        usage: None,
                    },
                );
                self.next_id = self.next_id.max(id + 1);
            }
            Record::Committed {
                key,
                name,
                labels,
                usage,
                at,
                ..
            } => self.commit(key, name, None, labels, usage, at),
            Record::Rebased {
                key,
                name,
                parent,
                labels,
                usage,
                at,
                ..
            } => self.commit(key, name, Some(parent), labels, usage, at),
            Record::Removed { key, .. } => {
                let Some(s) = self.snapshots.remove(&key) else {
                    return;
                };
                if let Some(p) = s.parent {
                    if let Some(count) = self.children.get_mut(&p) {
                        *count -= 1;
                        if *count == 0 {
                            self.children.remove(&p);
                        }
                    }
                }
            }
            Record::Updated {
                key, labels, at, ..
            } => {
                if let Some(s) = self.snapshots.get_mut(&key) {
                    s.labels = labels;
                    s.updated = at;
                }
            }
        }
    }

    /// The Active `key` becomes the Committed `name`; with `rebase`, above that parent
    /// (whose children count grows by one; the Active snapshot had no parent).
    fn commit(
        &mut self,
        key: String,
        name: String,
        rebase: Option<String>,
        labels: Labels,
        usage: Usage,
        at: Timestamp,
    ) {
        let Some(mut s) = self.snapshots.remove(&key) else {
            return;
        };
        if let Some(p) = rebase {
            add_child(&mut self.children, &p);
            s.parent = Some(p);
        }
        s.kind = Kind::Committed;
        s.labels = labels;
        s.usage = Some(usage);
        s.created = at;
        s.updated = at;
        self.snapshots.insert(name, s);
    }
}
