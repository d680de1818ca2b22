//! Cleanup: deleting every entry of `ROOT/snapshots` that is not a live snapshot, and the
//! short links of ids that are not live, except what operations in flight are using.
//!
//! Cleanup comes in two steps, and neither lists or deletes under the snapshotter's lock:
//! [`Layout::find_garbage`] lists (one `readdir` per directory), then asks for the live
//! ids, which the caller reads under the lock that orders "directory installed" with "id
//! live". Listing first is what makes this safe: an `<id>` directory that was listed was
//! installed before the ids were read, so it is either live then or garbage. (Reading the
//! ids first would let an `<id>` installed in between look like garbage.)
//! [`Layout::remove_garbage`] deletes: garbage never becomes live again, because ids are
//! never reused and temporary names are unique; a `new-*` directory listed just before its
//! operation renamed it into place is found missing and skipped.

use super::dirs::Entry;
use super::links::link_name;
use super::Layout;
use crate::error::{Error, Result};
use std::collections::HashSet;
use std::ffi::OsString;
use std::io;
use std::path::PathBuf;

/// What [`Layout::find_garbage`] found: entries of `ROOT/snapshots` and of `ROOT/l` that no
/// live snapshot and no operation in flight uses.
#[derive(Debug, Default)]
#[must_use = "garbage is only listed; pass it to remove_garbage"]
pub struct Garbage {
    /// Names in `ROOT/snapshots`.
    entries: Vec<OsString>,
    /// Names in `ROOT/l`.
    links: Vec<OsString>,
}

impl Garbage {
    /// Whether nothing was found.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty() && self.links.is_empty()
    }
}

impl Layout {
    /// Lists the garbage: every entry of `ROOT/snapshots` that is not the directory of one of
    /// the live ids nor a temporary directory of an operation in flight, and every link of
    /// `ROOT/l` that is not the link of a live id. `live` is called once, after listing; it
    /// must read the ids under the lock that orders installs (see the module docs).
    pub fn find_garbage<I: IntoIterator<Item = u64>>(
        &self,
        live: impl FnOnce() -> I,
    ) -> Result<Garbage> {
        let entries = self.list_entries()?;
        let context = || format!("cannot list {}", self.links.display());
        let links = self
            .fs
            .read_dir(&self.links)
            .map_err(|e| Error::io(context(), e))?;
        let live: HashSet<u64> = live().into_iter().collect();
        // Checked after listing: a name in the set when listed stays until it is gone.
        let in_flight = |name: &OsString| name.to_str().is_some_and(|n| self.in_flight.contains(n));
        let mut garbage = Garbage::default();
        for entry in entries {
            match entry {
                Entry::Snapshot(id) if live.contains(&id) => {}
                Entry::Snapshot(id) => garbage.entries.push(id.to_string().into()),
                Entry::Other(name) if in_flight(&name) => {}
                Entry::Other(name) => garbage.entries.push(name),
            }
        }
        let wanted: HashSet<OsString> = live.iter().map(|&id| link_name(id).into()).collect();
        for name in links {
            if !wanted.contains(&name) && !in_flight(&name) {
                garbage.links.push(name);
            }
        }
        Ok(garbage)
    }

    /// Deletes the entry `name` of `ROOT/snapshots` that belongs to no snapshot, while
    /// opening (nothing is in flight).
    pub fn remove_leftover(&self, name: &OsString) -> Result<()> {
        let mounts = self.fs.mount_points()?;
        self.remove_entry(name, &mounts).map(drop)
    }

    /// Deletes `garbage`, returning the paths deleted. Every item is tried; if some could not
    /// be deleted, the first such error is returned after the others were tried (and the
    /// rest stays for the next Cleanup).
    pub fn remove_garbage(&self, garbage: Garbage) -> Result<Vec<PathBuf>> {
        let mut removed = Vec::new();
        let mut first_error = None;
        let mounts = if garbage.entries.is_empty() {
            Vec::new()
        } else {
            self.fs.mount_points()?
        };
        for name in garbage.entries {
            match self.remove_entry(&name, &mounts) {
                Ok(true) => removed.push(self.snapshots.join(&name)),
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "cleanup could not remove a directory");
                    first_error.get_or_insert(e);
                }
            }
        }
        for name in garbage.links {
            let path = self.links.join(&name);
            match self.fs.remove_file(&path) {
                Ok(()) => removed.push(path),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => {
                    let e = Error::io(format!("cannot remove {}", path.display()), e);
                    tracing::warn!(error = %e, "cleanup could not remove a link");
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(removed),
        }
    }
}
