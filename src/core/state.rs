//! The snapshot state: every snapshot by key, the children counts and the id counter.

use super::command::Command;
use super::filter::Filter;
use super::info::{Info, Timestamp, Usage};
use super::kind::Kind;
use super::labels::{validate_key, validate_labels, Labels};
use super::record::Record;
use crate::error::{Error, Result};
use foldhash::fast::FixedState;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};

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
    /// User labels. Invariant: no empty values.
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
}

/// The whole snapshot state. Pure: no I/O, clock, randomness or locks.
///
/// Change it only through [`State::decide`] then [`State::apply`] (or by replaying records
/// through [`State::admit`] and [`State::apply`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
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
        State {
            next_id: 1,
            ..State::default()
        }
    }

    /// Checks `cmd` against the state and yields the record that carries it out, or the
    /// precise error. Never changes the state.
    ///
    /// Checks run in a fixed order, and the first that fails decides the error: the
    /// arguments' form, then existence, then the snapshot's kind and relations.
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
                labels,
                usage,
                now,
            } => self.decide_commit(name, key, labels, *usage, *now),
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

    /// The snapshot `p` as a parent for a new snapshot: it must exist (else NotFound) and
    /// be Committed (else InvalidArgument).
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

    fn decide_commit(
        &self,
        name: &str,
        key: &str,
        labels: &Labels,
        usage: Usage,
        now: Timestamp,
    ) -> Result<Record> {
        validate_key("name", name)?;
        validate_key("key", key)?;
        validate_labels(labels)?;
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
        Ok(Record::Committed {
            id: s.id,
            key: key.to_owned(),
            name: name.to_owned(),
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
            } => {
                let Some(mut s) = self.snapshots.remove(&key) else {
                    return;
                };
                s.kind = Kind::Committed;
                s.labels = labels;
                s.usage = Some(usage);
                s.created = at;
                s.updated = at;
                self.snapshots.insert(name, s);
            }
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

    /// The snapshot `key`, if it exists.
    pub fn get(&self, key: &str) -> Option<&Snapshot> {
        self.snapshots.get(key)
    }

    /// containerd's Stat: the Info of `key`.
    pub fn stat(&self, key: &str) -> Result<Info> {
        validate_key("key", key)?;
        let s = self.snapshots.get(key).ok_or_else(|| not_found(key))?;
        Ok(info(key, s))
    }

    /// The ids whose layers make up the mounts of the Active or View snapshot `key`.
    /// A Committed snapshot has no mounts: FailedPrecondition.
    pub fn mounts_plan(&self, key: &str) -> Result<MountPlan> {
        validate_key("key", key)?;
        let s = self.snapshots.get(key).ok_or_else(|| not_found(key))?;
        if s.kind == Kind::Committed {
            return Err(Error::FailedPrecondition(format!(
                "snapshot {key:?} is committed; only active or view snapshots have mounts"
            )));
        }
        Ok(self.plan(s.kind, s.id, s.parent.as_deref()))
    }

    /// The mount plan of a snapshot about to be created: of kind `kind` (Active or View),
    /// with the id `id` (the one its Created record carries, [`State::next_id`]), above
    /// `parent`. The same plan as [`State::mounts_plan`] gives once the record is applied;
    /// the effect layer builds the new snapshot's mounts from it before publishing.
    ///
    /// Errors as [`State::decide`] refuses such a creation: a `parent` that is not a
    /// valid key is InvalidArgument, a missing one NotFound, one that is not Committed
    /// InvalidArgument; and `kind` Committed (which has no mounts) is FailedPrecondition.
    ///
    /// ```
    /// use overlaysnap::core::{Command, Kind, State, Timestamp};
    ///
    /// let mut state = State::new();
    /// let now = Timestamp::new(1_700_000_000, 0);
    /// let prepare = |key: &str, parent: Option<&str>| Command::Prepare {
    ///     key: key.into(),
    ///     parent: parent.map(Into::into),
    ///     labels: Default::default(),
    ///     now,
    /// };
    /// let record = state.decide(&prepare("base", None))?;
    /// state.apply(&record);
    /// let commit = Command::Commit {
    ///     name: "sha256:base".into(),
    ///     key: "base".into(),
    ///     labels: Default::default(),
    ///     usage: Default::default(),
    ///     now,
    /// };
    /// let record = state.decide(&commit)?;
    /// state.apply(&record);
    ///
    /// let record = state.decide(&prepare("rootfs", Some("sha256:base")))?;
    /// let plan = state.plan_for_new(Kind::Active, record.id(), Some("sha256:base"))?;
    /// assert_eq!(plan.parents, [1]);
    /// state.apply(&record);
    /// assert_eq!(state.mounts_plan("rootfs")?, plan);
    /// # Ok::<(), overlaysnap::Error>(())
    /// ```
    pub fn plan_for_new(&self, kind: Kind, id: u64, parent: Option<&str>) -> Result<MountPlan> {
        if kind == Kind::Committed {
            return Err(Error::FailedPrecondition(
                "a committed snapshot is never created and has no mounts".into(),
            ));
        }
        if let Some(p) = parent {
            validate_key("parent", p)?;
            self.committed_parent(p)?;
        }
        Ok(self.plan(kind, id, parent))
    }

    /// The plan of a snapshot `id` of kind `kind` above `parent`, which must be live.
    fn plan(&self, kind: Kind, id: u64, parent: Option<&str>) -> MountPlan {
        MountPlan {
            id,
            kind,
            parents: self.chain_from(parent),
        }
    }

    /// Ids of the parent chain of `key`, nearest parent first.
    pub fn parent_ids(&self, key: &str) -> Result<Vec<u64>> {
        validate_key("key", key)?;
        let s = self.snapshots.get(key).ok_or_else(|| not_found(key))?;
        Ok(self.chain_from(s.parent.as_deref()))
    }

    /// Ids of `parent` (which must be live) and of its parent chain, nearest first; empty
    /// without a parent.
    fn chain_from<'a>(&'a self, mut parent: Option<&'a str>) -> Vec<u64> {
        let mut ids = Vec::new();
        while let Some(p) = parent {
            let s = &self.snapshots[p];
            ids.push(s.id);
            parent = s.parent.as_deref();
        }
        ids
    }

    /// Infos of every snapshot selected by `filter`, ordered by name (byte order).
    pub fn walk(&self, filter: &Filter) -> std::vec::IntoIter<Info> {
        let always = filter.is_always();
        let mut infos: Vec<Info> = self
            .snapshots
            .iter()
            .map(|(k, s)| info(k, s))
            .filter(|i| always || filter.matches(i))
            .collect();
        infos.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        infos.into_iter()
    }

    /// Keys of the children of `key`, in byte order; empty when there are none. Scans
    /// every snapshot (for tools and tests; decisions use the counts).
    pub fn children(&self, key: &str) -> impl Iterator<Item = &str> {
        let mut keys: Vec<&str> = self
            .snapshots
            .iter()
            .filter(|(_, s)| s.parent.as_deref() == Some(key))
            .map(|(k, _)| k.as_str())
            .collect();
        keys.sort_unstable();
        keys.into_iter()
    }

    /// How many snapshots have `key` as their parent, from the counts kept by `apply`.
    pub fn child_count(&self, key: &str) -> usize {
        self.children.get(key).copied().unwrap_or(0)
    }

    /// Every live id, in no particular order.
    pub fn ids(&self) -> impl Iterator<Item = u64> + '_ {
        self.snapshots.values().map(|s| s.id)
    }

    /// Every live id with its key or name, ordered by id.
    pub fn id_map(&self) -> BTreeMap<u64, &str> {
        self.snapshots
            .iter()
            .map(|(k, s)| (s.id, k.as_str()))
            .collect()
    }

    /// The id the next created snapshot will get.
    pub fn next_id(&self) -> u64 {
        self.next_id
    }

    /// How many snapshots there are.
    pub fn len(&self) -> usize {
        self.snapshots.len()
    }

    /// Whether there are no snapshots.
    pub fn is_empty(&self) -> bool {
        self.snapshots.is_empty()
    }

    /// The state's content, for a checkpoint.
    pub fn checkpoint(&self) -> Checkpoint {
        let mut snapshots: Vec<(String, Snapshot)> = self
            .snapshots
            .iter()
            .map(|(k, s)| (k.clone(), s.clone()))
            .collect();
        snapshots.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        Checkpoint {
            next_id: self.next_id,
            snapshots,
        }
    }

    /// Rebuilds a state from a checkpoint, checking every invariant (unique keys and ids,
    /// ids below `next_id`, parents existing and Committed, acyclic, usage exactly on
    /// Committed). The error says which snapshot breaks which rule.
    pub fn from_checkpoint(cp: Checkpoint) -> Result<State> {
        if cp.next_id == 0 {
            return refuse("next id 0: ids start at 1".into());
        }
        let mut state = State {
            next_id: cp.next_id,
            ..State::default()
        };
        let mut ids = BTreeSet::new();
        for (key, s) in cp.snapshots {
            validate_key("key", &key)?;
            check_stored(&s.labels)?;
            if s.id == 0 || s.id >= cp.next_id || !ids.insert(s.id) {
                return refuse(format!("{key:?} has id {} (next id {})", s.id, cp.next_id));
            }
            if s.usage.is_some() != (s.kind == Kind::Committed) {
                return refuse(format!("{key:?} is {} with usage {:?}", s.kind, s.usage));
            }
            if let Some(p) = &s.parent {
                add_child(&mut state.children, p);
            }
            if state.snapshots.insert(key.clone(), s).is_some() {
                return refuse(format!("{key:?} appears twice"));
            }
        }
        for (p, count) in &state.children {
            match state.snapshots.get(p) {
                Some(ps) if ps.kind == Kind::Committed => {}
                _ => {
                    return refuse(format!(
                        "parent {p:?} of {count} snapshots is missing or not committed"
                    ))
                }
            }
        }
        // A chain longer than the number of snapshots has a cycle.
        for key in state.snapshots.keys() {
            let mut cur = key;
            for _ in 0..=state.snapshots.len() {
                match &state.snapshots[cur].parent {
                    Some(p) => cur = p,
                    None => break,
                }
            }
            if state.snapshots[cur].parent.is_some() {
                return refuse(format!("the parents of {key:?} form a cycle"));
            }
        }
        Ok(state)
    }
}

fn info(key: &str, s: &Snapshot) -> Info {
    Info {
        kind: s.kind,
        name: key.to_owned(),
        parent: s.parent.clone(),
        labels: s.labels.clone(),
        created: s.created,
        updated: s.updated,
    }
}
