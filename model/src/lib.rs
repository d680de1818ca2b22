//! A deliberately naive reference model of containerd's snapshot metadata semantics.
//!
//! The model keeps every snapshot in one `Vec`, scans it linearly and recomputes children
//! on demand. It has no clock, no disk and no indexes: it exists to be obviously right, so
//! that a property test can drive it side by side with the real core and compare results.
//! Every operation checks its preconditions in the same order as containerd's overlay
//! snapshotter, so the first failing check decides the error kind.

#![deny(missing_docs)]

pub mod filter;

/// Snapshot labels, ordered by key.
pub type Labels = std::collections::BTreeMap<String, String>;

/// A point in time as `(seconds, nanoseconds)`; always passed in by the caller.
pub type Time = (i64, u32);

/// The kind of a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A read-only snapshot made by `view`.
    View,
    /// A writable snapshot made by `prepare`.
    Active,
    /// An immutable snapshot made by `commit`; the only kind that can be a parent.
    Committed,
}

impl Kind {
    /// containerd's string for the kind, as the `kind` filter field sees it.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::View => "view",
            Kind::Active => "active",
            Kind::Committed => "committed",
        }
    }
}

/// The error kinds the model can return (containerd's errdefs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrKind {
    /// The key, name or parent does not exist.
    NotFound,
    /// The key or name is already taken.
    AlreadyExists,
    /// The snapshot is in the wrong state for the operation.
    FailedPrecondition,
    /// A malformed argument: key, labels, fieldpath or filter.
    InvalidArgument,
}

/// One snapshot record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snap {
    /// Identifier, unique over the model's whole life.
    pub id: u64,
    /// Kind of the snapshot.
    pub kind: Kind,
    /// Key (Active, View) or name (Committed); keys and names share one namespace.
    pub name: String,
    /// Name of the committed parent, if any.
    pub parent: Option<String>,
    /// Labels; never holds an empty value.
    pub labels: Labels,
    /// Creation time (reset by commit).
    pub created: Time,
    /// Last update time.
    pub updated: Time,
    /// `(size, inodes)` measured at commit; `None` before.
    pub usage: Option<(i64, i64)>,
}

/// The whole model state: a flat list of snapshots and the id counter.
#[derive(Debug, Clone)]
pub struct Model {
    /// Every live snapshot, in creation order.
    pub snaps: Vec<Snap>,
    /// The id the next successful `prepare` or `view` gets; starts at 1, never goes back.
    pub next_id: u64,
}

impl Default for Model {
    fn default() -> Model {
        Model::new()
    }
}

/// A key, name or parent must be non-empty and free of control characters.
fn check_name(s: &str) -> Result<(), ErrKind> {
    if s.is_empty() || s.chars().any(char::is_control) {
        return Err(ErrKind::InvalidArgument);
    }
    Ok(())
}

/// Every label key is non-empty and key + value fit in 4096 bytes; a non-empty ID-mapping
/// label (`containerd.io/snapshot/uidmapping`, `…/gidmapping`) is a well-formed mapping.
fn check_labels(labels: &Labels) -> Result<(), ErrKind> {
    for (k, v) in labels {
        if k.is_empty() || k.len() + v.len() > 4096 {
            return Err(ErrKind::InvalidArgument);
        }
        let mapping =
            k == "containerd.io/snapshot/uidmapping" || k == "containerd.io/snapshot/gidmapping";
        if mapping && !v.is_empty() && !good_mapping(v) {
            return Err(ErrKind::InvalidArgument);
        }
        if k == "containerd.io/snapshot/max-size" && !v.is_empty() && !good_size(v) {
            return Err(ErrKind::InvalidArgument);
        }
    }
    Ok(())
}

/// Whether `v` is a size: decimal digits, then nothing or one of the units, at most
/// 2^63 - 1 bytes. Checked naively, in 128-bit arithmetic.
fn good_size(v: &str) -> bool {
    let units: [(&str, u128); 13] = [
        ("", 1),
        ("B", 1),
        ("K", 1024),
        ("KiB", 1024),
        ("KB", 1000),
        ("M", 1024 * 1024),
        ("MiB", 1024 * 1024),
        ("MB", 1000 * 1000),
        ("G", 1024 * 1024 * 1024),
        ("GiB", 1024 * 1024 * 1024),
        ("GB", 1000 * 1000 * 1000),
        ("T", 1024 * 1024 * 1024 * 1024),
        ("TB", 1000 * 1000 * 1000 * 1000),
    ];
    let digits: String = v.chars().take_while(char::is_ascii_digit).collect();
    let unit = &v[digits.len()..];
    let factor = match units.iter().find(|(u, _)| *u == unit) {
        Some((_, f)) => *f,
        None if unit == "TiB" => 1024 * 1024 * 1024 * 1024,
        None => return false,
    };
    if digits.is_empty() || digits.trim_start_matches('0').len() > 20 {
        return false;
    }
    let n: u128 = digits.parse().unwrap_or(u128::MAX);
    n.checked_mul(factor).is_some_and(|b| b <= i64::MAX as u128)
}

/// Whether `v` is 1 to 340 comma-separated `ctr:host:size` ranges of decimal digits whose
/// ID ranges have size ≥ 1, end at 4294967294 at most, and do not overlap (the kernel's
/// rules for a `uid_map`). Checked naively: every ID range against every other.
fn good_mapping(v: &str) -> bool {
    let mut ranges: Vec<(u64, u64, u64)> = Vec::new();
    for range in v.split(',') {
        let fields: Vec<&str> = range.split(':').collect();
        if fields.len() != 3 {
            return false;
        }
        let mut n = [0u64; 3];
        for (slot, f) in n.iter_mut().zip(&fields) {
            let digits = f.trim_start_matches('0');
            if f.is_empty() || !f.chars().all(|c| c.is_ascii_digit()) || digits.len() > 10 {
                return false;
            }
            *slot = if digits.is_empty() {
                0
            } else {
                digits.parse().unwrap()
            };
        }
        let [ctr, host, size] = n;
        if size == 0 || ctr + size > 4294967295 || host + size > 4294967295 {
            return false;
        }
        ranges.push((ctr, host, size));
    }
    if ranges.len() > 340 {
        return false;
    }
    for (i, a) in ranges.iter().enumerate() {
        for b in &ranges[i + 1..] {
            let overlap = |x: u64, y: u64| x < y + b.2 && y < x + a.2;
            if overlap(a.0, b.0) || overlap(a.1, b.1) {
                return false;
            }
        }
    }
    true
}

/// The labels as stored: empty values are dropped (containerd's `boltutil.WriteLabels`).
fn stored(labels: &Labels) -> Labels {
    let mut out = labels.clone();
    out.retain(|_, v| !v.is_empty());
    out
}

impl Model {
    /// An empty model; the first snapshot gets id 1.
    pub fn new() -> Model {
        Model {
            snaps: Vec::new(),
            next_id: 1,
        }
    }

    fn find(&self, key: &str) -> Option<&Snap> {
        self.snaps.iter().find(|s| s.name == key)
    }

    fn create(
        &mut self,
        kind: Kind,
        key: &str,
        parent: Option<&str>,
        labels: &Labels,
        now: Time,
    ) -> Result<Snap, ErrKind> {
        check_name(key)?;
        if let Some(p) = parent {
            check_name(p)?;
        }
        check_labels(labels)?;
        if let Some(p) = parent {
            match self.find(p) {
                None => return Err(ErrKind::NotFound),
                Some(ps) if ps.kind != Kind::Committed => return Err(ErrKind::InvalidArgument),
                Some(_) => {}
            }
        }
        if self.find(key).is_some() {
            return Err(ErrKind::AlreadyExists);
        }
        let snap = Snap {
            id: self.next_id,
            kind,
            name: key.to_string(),
            parent: parent.map(str::to_string),
            labels: stored(labels),
            created: now,
            updated: now,
            usage: None,
        };
        self.next_id += 1;
        self.snaps.push(snap.clone());
        Ok(snap)
    }

    /// Creates an Active snapshot `key` on top of the committed `parent`; returns it.
    pub fn prepare(
        &mut self,
        key: &str,
        parent: Option<&str>,
        labels: &Labels,
        now: Time,
    ) -> Result<Snap, ErrKind> {
        self.create(Kind::Active, key, parent, labels, now)
    }

    /// Creates a View snapshot `key` on top of the committed `parent`; returns it.
    pub fn view(
        &mut self,
        key: &str,
        parent: Option<&str>,
        labels: &Labels,
        now: Time,
    ) -> Result<Snap, ErrKind> {
        self.create(Kind::View, key, parent, labels, now)
    }

    /// Turns the Active `key` into the Committed `name` (same id, labels replaced); returns it.
    /// With `parent` (containerd 2.2's rebase): a snapshot without a parent gets it; its
    /// own parent changes nothing; any other parent is InvalidArgument. A parent it gets
    /// must exist (NotFound; `key` itself no longer does) and be Committed
    /// (FailedPrecondition).
    pub fn commit(
        &mut self,
        name: &str,
        key: &str,
        parent: Option<&str>,
        labels: &Labels,
        usage: (i64, i64),
        now: Time,
    ) -> Result<Snap, ErrKind> {
        check_name(name)?;
        check_name(key)?;
        if let Some(p) = parent {
            check_name(p)?;
        }
        check_labels(labels)?;
        let active = self.find(key).ok_or(ErrKind::NotFound)?.clone();
        if self.find(name).is_some() {
            return Err(ErrKind::AlreadyExists);
        }
        if active.kind != Kind::Active {
            return Err(ErrKind::FailedPrecondition);
        }
        let new_parent = match (&active.parent, parent) {
            (Some(own), Some(p)) if own != p => return Err(ErrKind::InvalidArgument),
            (None, Some(p)) => {
                let found = self.snaps.iter().find(|s| s.name == p && s.name != key);
                match found {
                    None => return Err(ErrKind::NotFound),
                    Some(ps) if ps.kind != Kind::Committed => {
                        return Err(ErrKind::FailedPrecondition)
                    }
                    Some(_) => Some(p.to_string()),
                }
            }
            (own, _) => own.clone(),
        };
        let snap = self.snaps.iter_mut().find(|s| s.name == key).unwrap();
        snap.kind = Kind::Committed;
        snap.name = name.to_string();
        snap.parent = new_parent;
        snap.labels = stored(labels);
        snap.created = now;
        snap.updated = now;
        snap.usage = Some(usage);
        Ok(snap.clone())
    }

    /// Removes `key`; refused while any snapshot names it as parent.
    pub fn remove(&mut self, key: &str) -> Result<(), ErrKind> {
        check_name(key)?;
        if self.find(key).is_none() {
            return Err(ErrKind::NotFound);
        }
        if !self.children(key).is_empty() {
            return Err(ErrKind::FailedPrecondition);
        }
        self.snaps.retain(|s| s.name != key);
        Ok(())
    }

    /// Changes the labels of `key` as `fieldpaths` say (none: replace all); returns the result.
    ///
    /// `"labels"` replaces every label; `"labels.<k>"` sets label `k` to `labels[k]`, or
    /// deletes it when that is absent or empty. Any other path fails and changes nothing.
    pub fn update(
        &mut self,
        key: &str,
        labels: &Labels,
        fieldpaths: &[String],
        now: Time,
    ) -> Result<Snap, ErrKind> {
        check_name(key)?;
        check_labels(labels)?;
        let mut new = self.find(key).ok_or(ErrKind::NotFound)?.labels.clone();
        if fieldpaths.is_empty() {
            new = stored(labels);
        }
        for path in fieldpaths {
            if path == "labels" {
                new = stored(labels);
                continue;
            }
            match path.strip_prefix("labels.") {
                Some(k) if !k.is_empty() => match labels.get(k) {
                    Some(v) if !v.is_empty() => {
                        new.insert(k.to_string(), v.clone());
                    }
                    _ => {
                        new.remove(k);
                    }
                },
                _ => return Err(ErrKind::InvalidArgument),
            }
        }
        let snap = self.snaps.iter_mut().find(|s| s.name == key).unwrap();
        snap.labels = new;
        snap.updated = now;
        Ok(snap.clone())
    }

    /// The snapshot `key`.
    pub fn stat(&self, key: &str) -> Result<Snap, ErrKind> {
        check_name(key)?;
        self.find(key).cloned().ok_or(ErrKind::NotFound)
    }

    /// Every snapshot matching any of `filters` (none: all), ordered by name in byte order.
    pub fn walk(&self, filters: &[String]) -> Result<Vec<Snap>, ErrKind> {
        let filters = filters
            .iter()
            .map(|f| filter::parse(f))
            .collect::<Result<Vec<_>, _>>()?;
        let mut out: Vec<Snap> = self
            .snaps
            .iter()
            .filter(|s| filters.is_empty() || filters.iter().any(|f| f.matches(s)))
            .cloned()
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Sorted names of the snapshots whose parent is `key`.
    pub fn children(&self, key: &str) -> Vec<String> {
        let mut out: Vec<String> = self
            .snaps
            .iter()
            .filter(|s| s.parent.as_deref() == Some(key))
            .map(|s| s.name.clone())
            .collect();
        out.sort();
        out
    }

    /// Ids of the parent chain of `key`, nearest parent first.
    pub fn parent_ids(&self, key: &str) -> Result<Vec<u64>, ErrKind> {
        check_name(key)?;
        let mut cur = self.find(key).ok_or(ErrKind::NotFound)?;
        let mut ids = Vec::new();
        while let Some(p) = &cur.parent {
            cur = self
                .find(p)
                .expect("a parent is never removed before its children");
            ids.push(cur.id);
        }
        Ok(ids)
    }

    /// What mounting `key` needs: `(kind, own id, parent ids)`; only Active and View mount.
    pub fn mounts_plan(&self, key: &str) -> Result<(Kind, u64, Vec<u64>), ErrKind> {
        check_name(key)?;
        let snap = self.find(key).ok_or(ErrKind::NotFound)?;
        if snap.kind == Kind::Committed {
            return Err(ErrKind::FailedPrecondition);
        }
        Ok((snap.kind, snap.id, self.parent_ids(key)?))
    }
}
