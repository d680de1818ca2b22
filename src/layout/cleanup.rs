//! Cleanup: deleting every entry of `ROOT/snapshots` that is not a live snapshot, and the
//! short links of ids that are not live, except what operations in flight are using.
//!
//! Cleanup comes in two steps so that the slow one can run outside the snapshotter's lock:
//! [`Layout::find_garbage`] lists (one `readdir` per directory) and must run under the lock
//! that orders "directory installed" with "id live", so that no `<id>` can be installed
//! between reading the live ids and listing; [`Layout::remove_garbage`] deletes, and may
//! run after the lock is released: garbage never becomes live again, because ids are never
//! reused and temporary names are unique.

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
    /// the `live` ids nor a temporary directory of an operation in flight, and every link of
    /// `ROOT/l` that is not the link of a live id. See the module docs for the locking rule.
    pub fn find_garbage(&self, live: impl IntoIterator<Item = u64>) -> Result<Garbage> {
        let live: HashSet<u64> = live.into_iter().collect();
        let in_flight = |name: &OsString| name.to_str().is_some_and(|n| self.in_flight.contains(n));
        let mut garbage = Garbage::default();
        for entry in self.list_entries()? {
            match entry {
                Entry::Snapshot(id) if live.contains(&id) => {}
                Entry::Snapshot(id) => garbage.entries.push(id.to_string().into()),
                Entry::Other(name) if in_flight(&name) => {}
                Entry::Other(name) => garbage.entries.push(name),
            }
        }
        let wanted: HashSet<OsString> = live.iter().map(|&id| link_name(id).into()).collect();
        let context = || format!("cannot list {}", self.links.display());
        let names = self
            .fs
            .read_dir(&self.links)
            .map_err(|e| Error::io(context(), e))?;
        for name in names {
            if !wanted.contains(&name) && !in_flight(&name) {
                garbage.links.push(name);
            }
        }
        Ok(garbage)
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

    /// [`Layout::find_garbage`] then [`Layout::remove_garbage`], in one call.
    pub fn cleanup(&self, live: impl IntoIterator<Item = u64>) -> Result<Vec<PathBuf>> {
        let garbage = self.find_garbage(live)?;
        self.remove_garbage(garbage)
    }
}
