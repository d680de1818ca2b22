//! Labels and the validation of labels, keys and names.

use crate::error::{Error, Result};
use std::collections::BTreeMap;

/// A snapshot's user labels, ordered by key.
pub type Labels = BTreeMap<String, String>;

/// The most bytes a label's key and value may hold together (containerd's `maxSize`).
pub const MAX_LABEL_SIZE: usize = 4096;

/// Checks every label: the key is not empty and key + value fit in [`MAX_LABEL_SIZE`] bytes.
///
/// The error names the offending label, as containerd's `labels.Validate` does.
pub fn validate_labels(labels: &Labels) -> Result<()> {
    for (k, v) in labels {
        if k.is_empty() {
            return Err(Error::InvalidArgument("label key must not be empty".into()));
        }
        if k.len() + v.len() > MAX_LABEL_SIZE {
            let head: String = k.chars().take(10).collect();
            return Err(Error::InvalidArgument(format!(
                "label key and value length ({} bytes) greater than maximum size ({} bytes), key: {head}",
                k.len() + v.len(),
                MAX_LABEL_SIZE
            )));
        }
    }
    Ok(())
}

/// Checks a snapshot key or name: not empty and free of control characters.
///
/// containerd accepts any bytes; overlaysnap refuses NUL and other control characters,
/// which would break a log line or a mount option, and says which byte and where.
/// `what` says which argument is checked (`key`, `name`, `parent`).
pub fn validate_key(what: &str, key: &str) -> Result<()> {
    if key.is_empty() {
        return Err(Error::InvalidArgument(format!("{what} must not be empty")));
    }
    // Printable ASCII, the usual case, needs no decoding: every control character is
    // below 0x20, 0x7f, or in U+0080..U+009F (encoded from 0xc2).
    // (A fold, not `all`: without the early exit the loop is vectorized.)
    if key
        .bytes()
        .fold(true, |printable, b| printable & (0x20..0x7f).contains(&b))
    {
        return Ok(());
    }
    if let Some((at, c)) = key.char_indices().find(|(_, c)| c.is_control()) {
        return Err(Error::InvalidArgument(format!(
            "{what} {key:?} has control character {:#04x} at byte {at}",
            c as u32
        )));
    }
    Ok(())
}

/// The label asking for ID-mapped mounts of the container's user IDs (containerd 2.x's
/// `snapshots.LabelSnapshotUIDMapping`): `ctr:host:size[,ctr:host:size…]`.
pub const UID_MAPPING_LABEL: &str = "containerd.io/snapshot/uidmapping";
/// The same for group IDs (`snapshots.LabelSnapshotGIDMapping`).
pub const GID_MAPPING_LABEL: &str = "containerd.io/snapshot/gidmapping";
/// The most ranges a mapping may hold: the kernel's `UID_GID_MAP_MAX_EXTENTS`.
pub const MAX_ID_RANGES: usize = 340;

/// One range of an ID mapping: container IDs `container..container + size` are host IDs
/// `host..host + size`.
///
/// Invariant (from [`parse_id_mapping`]): `size >= 1`, and neither range passes
/// `u32::MAX - 1` (4294967295 is the kernel's invalid ID), as the kernel requires of a
/// user namespace's `uid_map`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdRange {
    /// The first ID inside the container.
    pub container: u32,
    /// The first ID on the host.
    pub host: u32,
    /// How many IDs.
    pub size: u32,
}

/// A snapshot's ID mappings, from its [`UID_MAPPING_LABEL`] and [`GID_MAPPING_LABEL`].
/// An empty list: the label is absent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdMap {
    /// The user ID ranges, in the label's order.
    pub uid: Vec<IdRange>,
    /// The group ID ranges, in the label's order.
    pub gid: Vec<IdRange>,
}

impl IdMap {
    /// The mappings in `labels`; an absent or empty-valued label maps nothing. A malformed
    /// one is InvalidArgument (see [`parse_id_mapping`]).
    pub fn from_labels(labels: &Labels) -> Result<IdMap> {
        let parse = |key| {
            labels
                .get(key)
                .filter(|v| !v.is_empty())
                .map_or(Ok(Vec::new()), |v| parse_id_mapping(key, v))
        };
        Ok(IdMap {
            uid: parse(UID_MAPPING_LABEL)?,
            gid: parse(GID_MAPPING_LABEL)?,
        })
    }

    /// Whether no ID is mapped.
    pub fn is_empty(&self) -> bool {
        self.uid.is_empty() && self.gid.is_empty()
    }

    /// The host `(uid, gid)` of the container's root, which must own a new snapshot's `fs`
    /// (the merged root directory of an overlay is its upper directory, which no ID-mapped
    /// mount covers). An unmapped kind of ID stays 0, as in containerd's `IDMap.RootPair`.
    /// `None` without mappings, or when a mapping leaves container ID 0 out (containerd's
    /// Prepare fails then with "failed to find root pair"; overlaysnap keeps the parent's
    /// owner).
    pub fn root(&self) -> Option<(u32, u32)> {
        if self.is_empty() {
            return None;
        }
        let host_of_0 = |ranges: &[IdRange]| {
            if ranges.is_empty() {
                return Some(0);
            }
            ranges.iter().find(|r| r.container == 0).map(|r| r.host)
        };
        Some((host_of_0(&self.uid)?, host_of_0(&self.gid)?))
    }
}

/// Checks the ID-mapping labels of `labels` (empty values are never stored, so they are
/// not checked): each must parse with [`parse_id_mapping`].
pub fn validate_id_mappings(labels: &Labels) -> Result<()> {
    IdMap::from_labels(labels).map(drop)
}

/// Parses the value of the ID-mapping label `key`: comma-separated `ctr:host:size` ranges
/// of decimal digits (containerd's `userns.IDMap.Marshal`), at most [`MAX_ID_RANGES`].
///
/// containerd's overlay snapshotter copies the label text into its mount options and
/// finds out at mount time; overlaysnap refuses here, with InvalidArgument naming the
/// label and the range, what the kernel would refuse in a user namespace's `uid_map`: a
/// range of size 0, one that runs past ID 4294967294 (in the container or on the host),
/// ranges that overlap (in the container or on the host), more than 340 ranges; and
/// anything but digits (no sign, no spaces, no empty field).
pub fn parse_id_mapping(key: &str, value: &str) -> Result<Vec<IdRange>> {
    let bad = |why: String| Error::InvalidArgument(format!("label {key}={value:?}: {why}"));
    let mut ranges = Vec::new();
    for (i, text) in value.split(',').enumerate() {
        if i == MAX_ID_RANGES {
            return Err(bad(format!("more than {MAX_ID_RANGES} ranges")));
        }
        let mut fields = [0u32; 3];
        let mut parts = text.split(':');
        for (field, name) in fields.iter_mut().zip(["container ID", "host ID", "size"]) {
            let part = parts.next().unwrap_or("");
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad(format!(
                    "range {text:?}: {name} {part:?} is not a decimal number \
                     (a range is container-id:host-id:size)"
                )));
            }
            *field = part
                .parse()
                .map_err(|_| bad(format!("range {text:?}: {name} {part} is above 4294967295")))?;
        }
        if parts.next().is_some() {
            return Err(bad(format!(
                "range {text:?} has more than 3 fields (container-id:host-id:size)"
            )));
        }
        let [container, host, size] = fields;
        if size == 0 {
            return Err(bad(format!("range {text:?} has size 0")));
        }
        let last = u64::from(u32::MAX - 1);
        for (name, first) in [("container", container), ("host", host)] {
            if u64::from(first) + u64::from(size) - 1 > last {
                return Err(bad(format!(
                    "range {text:?}: its {name} IDs run past {last}"
                )));
            }
        }
        ranges.push(IdRange {
            container,
            host,
            size,
        });
    }
    for (name, side) in [
        (
            "container",
            (|r: &IdRange| r.container) as fn(&IdRange) -> u32,
        ),
        ("host", |r: &IdRange| r.host),
    ] {
        let mut sorted: Vec<&IdRange> = ranges.iter().collect();
        sorted.sort_unstable_by_key(|r| side(r));
        for pair in sorted.windows(2) {
            if u64::from(side(pair[0])) + u64::from(pair[0].size) > u64::from(side(pair[1])) {
                return Err(bad(format!(
                    "ranges {}:{}:{} and {}:{}:{} overlap on the {name} side",
                    pair[0].container,
                    pair[0].host,
                    pair[0].size,
                    pair[1].container,
                    pair[1].host,
                    pair[1].size
                )));
            }
        }
    }
    Ok(ranges)
}

/// Writes `ranges` as a mount option's value, `ctr:host:size[,…]`, from the numbers.
pub fn write_id_ranges(out: &mut String, ranges: &[IdRange]) {
    use std::fmt::Write;
    for (i, r) in ranges.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        // Writing into a String cannot fail.
        let _ = write!(out, "{}:{}:{}", r.container, r.host, r.size);
    }
}
