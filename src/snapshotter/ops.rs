//! containerd's operations on a [`Snapshotter`]: the writes (Prepare, View, Commit,
//! Remove, Update) do their slow work on directories first, outside the locks, then go
//! through the write pipeline (`pipeline`); the reads (Stat, Mounts, Walk, Usage) copy
//! what they need from the visible state and never wait behind I/O; then Cleanup and
//! Close.

use super::pipeline::{replaced, Relied};
use super::{Snapshotter, UPPERDIR_LABEL};
use crate::core::labels::IdMap;
use crate::core::{Command, Filter, Info, Kind, Labels, MountPlan, Record, Timestamp, Usage};
use crate::error::{Error, Result};
use crate::fs::Mount;
use crate::layout::Owner;
use std::sync::atomic::Ordering;
use std::time::{SystemTime, UNIX_EPOCH};

/// The current time as the core takes it.
fn now() -> Timestamp {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    Timestamp::new(d.as_secs() as i64, d.subsec_nanos())
}

impl Snapshotter {
    /// containerd's Prepare: a new Active snapshot `key` above the committed `parent`,
    /// with the mounts to use it.
    pub fn prepare(&self, key: &str, parent: Option<&str>, labels: Labels) -> Result<Vec<Mount>> {
        self.create(Kind::Active, key, parent, labels)
    }

    /// containerd's View: a new read-only snapshot `key` of the committed `parent`, with the
    /// mounts to use it.
    pub fn view(&self, key: &str, parent: Option<&str>, labels: Labels) -> Result<Vec<Mount>> {
        self.create(Kind::View, key, parent, labels)
    }

    fn create(
        &self,
        kind: Kind,
        key: &str,
        parent: Option<&str>,
        labels: Labels,
    ) -> Result<Vec<Mount>> {
        let now = now();
        let (owned_key, owned_parent) = (key.to_owned(), parent.map(str::to_owned));
        let cmd = match kind {
            Kind::View => Command::View {
                key: owned_key,
                parent: owned_parent,
                labels,
                now,
            },
            _ => Command::Prepare {
                key: owned_key,
                parent: owned_parent,
                labels,
                now,
            },
        };
        self.check_open()?;
        // Refuse bad requests before touching the disk, and learn the parent's id.
        let parent_id = {
            let visible = self.visible.read();
            visible.decide(&cmd)?;
            parent.and_then(|p| visible.get(p)).map(|s| s.id)
        };
        let (Command::Prepare { labels, .. } | Command::View { labels, .. }) = &cmd else {
            unreachable!("create builds a Prepare or a View")
        };
        // In a user namespace (ID-mapping labels, which decide let through, and
        // `remap_ids` on), the container's root owns `fs`, as in containerd's overlay
        // snapshotter; otherwise the parent's owner does.
        let mapped_root = match self.options.remap_ids {
            true => IdMap::from_labels(labels)?.root(),
            false => None,
        };
        let prepared = match mapped_root {
            Some((uid, gid)) => Ok(Some(Owner { uid, gid })),
            None => parent_id
                .map(|id| {
                    self.layout
                        .fs_owner(id)
                        .map_err(|e| self.recheck(&cmd, Relied::Parent(id), e))
                })
                .transpose(),
        }
        .and_then(|owner| {
            let limit = self.layout.limit_for(kind, labels);
            self.layout.prepare_dir_with_limit(kind, owner, limit)
        });
        let mut temp = Some(prepared?);
        let (_, plan) = self.execute(&cmd, |state, record| {
            if parent.and_then(|p| state.get(p)).map(|s| s.id) != parent_id {
                return Err(replaced(&cmd));
            }
            if let Some(t) = temp.take() {
                t.install(record.id())?;
            }
            state.plan_for_new(kind, record.id(), parent, labels)
        })?;
        self.layout.mounts(&self.remapped(plan))
    }

    /// containerd's Mounts: the mounts of the Active or View snapshot `key`.
    pub fn mounts(&self, key: &str) -> Result<Vec<Mount>> {
        self.check_open()?;
        let plan = self.visible.read().mounts_plan(key)?;
        self.layout.mounts(&self.remapped(plan))
    }

    /// `plan` as mounted: its ID mappings only when [`Options::remap_ids`] is on (as
    /// containerd's overlay snapshotter maps only when it offers `remap-ids`); otherwise
    /// the labels are kept but mount nothing.
    ///
    /// [`Options::remap_ids`]: super::Options::remap_ids
    fn remapped(&self, mut plan: MountPlan) -> MountPlan {
        if !self.options.remap_ids {
            plan.idmap = IdMap::default();
        }
        plan
    }

    /// containerd's Commit: the Active snapshot `key` becomes the Committed snapshot
    /// `name`, its usage measured and its layer made durable before the record is.
    pub fn commit(&self, name: &str, key: &str, labels: Labels) -> Result<()> {
        self.commit_with_parent(name, key, None, labels)
    }

    /// containerd 2.2's Commit with the `WithParent` option: as [`Snapshotter::commit`],
    /// and an Active snapshot prepared without a parent is committed above the committed
    /// `parent` (a rebase; the rules are [`Command::Commit`]'s). Its directory stays
    /// where it is: the mounts of its children list it above the parent's chain.
    pub fn commit_with_parent(
        &self,
        name: &str,
        key: &str,
        parent: Option<&str>,
        labels: Labels,
    ) -> Result<()> {
        self.check_open()?;
        let mut cmd = Command::Commit {
            name: name.to_owned(),
            key: key.to_owned(),
            parent: parent.map(str::to_owned),
            labels,
            usage: Usage::default(),
            now: now(),
        };
        // Refuse bad requests before the slow work, and learn the id.
        let id = self.visible.read().decide(&cmd)?.id();
        // One syncfs covers the whole file system: a Commit arriving while another one's
        // runs waits for the next and shares it. Measured after it: btrfs accounts qgroups
        // when the transaction commits, which syncfs does.
        let measured = self
            .layer_sync
            .run(|| self.layout.make_durable(id))
            .and_then(|()| self.layout.usage(id))
            .map_err(|e| self.recheck(&cmd, Relied::Target(id), e))?;
        if let Command::Commit { usage, .. } = &mut cmd {
            *usage = measured;
        }
        self.execute(&cmd, |_, record| {
            if record.id() == id {
                Ok(())
            } else {
                Err(replaced(&cmd))
            }
        })?;
        Ok(())
    }

    /// containerd's Remove: the snapshot `key` goes at once; its directory now
    /// ([`Options::sync_remove`](super::Options::sync_remove)) or at the next Cleanup.
    pub fn remove(&self, key: &str) -> Result<()> {
        let (record, ()) = self.execute(
            &Command::Remove {
                key: key.to_owned(),
            },
            |_, _| Ok(()),
        )?;
        if self.options.sync_remove {
            if let Err(e) = self.layout.remove_dir(record.id()) {
                tracing::warn!(key, id = record.id(), error = %e,
                    "failed to delete a removed snapshot's directory; Cleanup will retry");
            }
        }
        Ok(())
    }

    /// containerd's Stat.
    pub fn stat(&self, key: &str) -> Result<Info> {
        self.check_open()?;
        let info = self.visible.read().stat(key)?;
        Ok(self.labelled(info))
    }

    /// containerd's Update: changes the labels of `key` as `fieldpaths` say (see
    /// [`Command::Update`]) and returns the new Info.
    pub fn update(&self, key: &str, labels: Labels, fieldpaths: &[String]) -> Result<Info> {
        let cmd = Command::Update {
            key: key.to_owned(),
            labels,
            fieldpaths: fieldpaths.to_vec(),
            now: now(),
        };
        let (_, info) = self.execute(&cmd, |state, record| {
            let mut info = state.stat(key)?;
            if let Record::Updated { labels, at, .. } = record {
                info.labels = labels.clone();
                info.updated = *at;
            }
            Ok(info)
        })?;
        Ok(self.labelled(info))
    }

    /// containerd's Walk: calls `f` with the Info of every snapshot selected by any of
    /// `filters` (all when none), ordered by name. No lock is held while `f` runs, so it may
    /// call any method of the snapshotter; the listing is the state when Walk began.
    pub fn walk(&self, filters: &[String], mut f: impl FnMut(Info) -> Result<()>) -> Result<()> {
        self.check_open()?;
        let filter = Filter::parse_all(filters)?;
        let infos: Vec<Info> = self.visible.read().walk(&filter).collect();
        for info in infos {
            f(self.labelled(info))?;
        }
        Ok(())
    }

    /// containerd's Usage: for an Active snapshot, measured now (one quota query in a quota
    /// mode; btrfs reports the last committed transaction, at most its commit interval
    /// old); for a Committed one, the value measured at Commit; a View uses nothing of its
    /// own.
    pub fn usage(&self, key: &str) -> Result<Usage> {
        self.check_open()?;
        let (id, kind, stored) = {
            let visible = self.visible.read();
            visible.stat(key)?;
            let s = visible.get(key).expect("stat found it");
            (s.id, s.kind, s.usage)
        };
        match kind {
            Kind::Active => self
                .layout
                .usage(id)
                .map_err(|e| match self.visible.read().get(key) {
                    Some(s) if s.id == id => e,
                    _ => Error::NotFound(format!("snapshot {key:?} was removed while measured")),
                }),
            _ => Ok(stored.unwrap_or_default()),
        }
    }

    /// containerd's Cleanup: deletes every entry of `ROOT/snapshots` (and every short link)
    /// that belongs to no live snapshot, except the directories of operations in flight.
    /// Returns how many entries were deleted.
    pub fn cleanup(&self) -> Result<usize> {
        self.check_open()?;
        // The ids are read under the writer lock, which orders them with installs, and
        // after listing (see find_garbage); listing and deleting need no lock.
        let garbage = self
            .layout
            .find_garbage(|| self.writer.lock().state.ids().collect::<Vec<_>>())?;
        Ok(self.layout.remove_garbage(garbage)?.len())
    }

    /// containerd's Close: refuses every later call; a second Close is Ok.
    pub fn close(&self) -> Result<()> {
        self.closed.store(true, Ordering::Release);
        Ok(())
    }

    /// The Info as returned to callers: with [`UPPERDIR_LABEL`] when configured.
    fn labelled(&self, mut info: Info) -> Info {
        if self.options.upperdir_label {
            if let Some(s) = self.visible.read().get(&info.name) {
                let upper = self.layout.fs_path(s.id);
                info.labels
                    .insert(UPPERDIR_LABEL.to_owned(), upper.display().to_string());
            }
        }
        info
    }
}
