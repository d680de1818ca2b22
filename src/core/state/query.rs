//! Reading the state: a snapshot, containerd's Stat, the mount plans (of a live snapshot
//! and of one about to be created, from one piece of code), Walk, and the ids and counts
//! the effect layer and tools need.

use super::{not_found, MountPlan, Snapshot, State};
use crate::core::filter::Filter;
use crate::core::info::Info;
use crate::core::kind::Kind;
use crate::core::labels::{validate_key, IdMap, Labels};
use crate::error::{Error, Result};
use std::collections::BTreeMap;

impl State {
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
        self.plan(s.kind, s.id, s.parent.as_deref(), &s.labels)
    }

    /// The mount plan of a snapshot about to be created: of kind `kind` (Active or View),
    /// with the id `id` (the one its Created record carries, [`State::next_id`]), above
    /// `parent`, with `labels`. The same plan as [`State::mounts_plan`] gives once the record is applied;
    /// the effect layer builds the new snapshot's mounts from it before publishing.
    ///
    /// Errors as [`State::decide`] refuses such a creation: a `parent` that is not a
    /// valid key is InvalidArgument, a missing one NotFound, one that is not Committed
    /// InvalidArgument, as is a malformed ID-mapping label; and `kind` Committed (which has
    /// no mounts) is FailedPrecondition.
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
    ///     parent: None,
    ///     labels: Default::default(),
    ///     usage: Default::default(),
    ///     now,
    /// };
    /// let record = state.decide(&commit)?;
    /// state.apply(&record);
    ///
    /// let record = state.decide(&prepare("rootfs", Some("sha256:base")))?;
    /// let plan = state.plan_for_new(Kind::Active, record.id(), Some("sha256:base"), &Default::default())?;
    /// assert_eq!(plan.parents, [1]);
    /// state.apply(&record);
    /// assert_eq!(state.mounts_plan("rootfs")?, plan);
    /// # Ok::<(), overlaysnap::Error>(())
    /// ```
    pub fn plan_for_new(
        &self,
        kind: Kind,
        id: u64,
        parent: Option<&str>,
        labels: &Labels,
    ) -> Result<MountPlan> {
        if kind == Kind::Committed {
            return Err(Error::FailedPrecondition(
                "a committed snapshot is never created and has no mounts".into(),
            ));
        }
        if let Some(p) = parent {
            validate_key("parent", p)?;
            self.committed_parent(p)?;
        }
        self.plan(kind, id, parent, labels)
    }

    /// The plan of a snapshot `id` of kind `kind` above `parent`, which must be live, with
    /// `labels`. InvalidArgument when an ID-mapping label is malformed (never for a
    /// snapshot [`State::decide`] let in).
    fn plan(
        &self,
        kind: Kind,
        id: u64,
        parent: Option<&str>,
        labels: &Labels,
    ) -> Result<MountPlan> {
        Ok(MountPlan {
            id,
            kind,
            parents: self.chain_from(parent),
            idmap: IdMap::from_labels(labels)?,
        })
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

    /// How many snapshots there are of each kind. One pass over the snapshots (no
    /// allocation): about a millisecond per 100 000 snapshots, for metrics and status.
    pub fn kind_counts(&self) -> KindCounts {
        let mut counts = KindCounts::default();
        for s in self.snapshots.values() {
            match s.kind {
                Kind::View => counts.view += 1,
                Kind::Active => counts.active += 1,
                Kind::Committed => counts.committed += 1,
            }
        }
        counts
    }
}

/// How many snapshots there are of each [`Kind`] ([`State::kind_counts`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KindCounts {
    /// Views.
    pub view: usize,
    /// Active snapshots.
    pub active: usize,
    /// Committed snapshots.
    pub committed: usize,
}

impl KindCounts {
    /// The count of `kind`.
    pub fn get(&self, kind: Kind) -> usize {
        match kind {
            Kind::View => self.view,
            Kind::Active => self.active,
            Kind::Committed => self.committed,
        }
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
