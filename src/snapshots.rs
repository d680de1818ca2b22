//! [`Snapshots`]: containerd's `snapshots.Snapshotter` interface, the seam the services
//! route through.

use crate::core::{Info, Labels, Usage};
use crate::error::{Error, Result};
use crate::fs::Mount;
use crate::snapshotter::Snapshotter;

/// What a snapshotter offers (containerd's `snapshots.Snapshotter`). The services route
/// requests to named `dyn Snapshots`; [`Snapshotter`] is overlaysnap's implementation.
///
/// `parent: None` is containerd's empty parent string.
pub trait Snapshots: Send + Sync {
    /// Info of `key`.
    fn stat(&self, key: &str) -> Result<Info>;
    /// Changes the labels of `key` as `fieldpaths` say; returns the new Info.
    fn update(&self, key: &str, labels: Labels, fieldpaths: &[String]) -> Result<Info>;
    /// Usage of `key`.
    fn usage(&self, key: &str) -> Result<Usage>;
    /// Mounts of the Active or View snapshot `key`.
    fn mounts(&self, key: &str) -> Result<Vec<Mount>>;
    /// A new Active snapshot above `parent`, and its mounts.
    fn prepare(&self, key: &str, parent: Option<&str>, labels: Labels) -> Result<Vec<Mount>>;
    /// A new View of `parent`, and its mounts.
    fn view(&self, key: &str, parent: Option<&str>, labels: Labels) -> Result<Vec<Mount>>;
    /// Commits the Active snapshot `key` as `name`; with `parent`, an Active snapshot
    /// prepared without one is committed above it (containerd 2.2's rebase).
    fn commit(&self, name: &str, key: &str, parent: Option<&str>, labels: Labels) -> Result<()>;
    /// Removes `key`.
    fn remove(&self, key: &str) -> Result<()>;
    /// Calls `f` with every snapshot selected by any of `filters`, ordered by name.
    fn walk(&self, filters: &[String], f: &mut dyn FnMut(Info) -> Result<()>) -> Result<()>;
    /// Deletes what no snapshot uses. A snapshotter without it answers NotImplemented, as
    /// containerd's services do for snapshotters that are not `snapshots.Cleaner`s.
    fn cleanup(&self) -> Result<()> {
        Err(Error::NotImplemented(
            "snapshotter does not implement Cleanup".into(),
        ))
    }
    /// Releases the snapshotter; a second call is Ok.
    fn close(&self) -> Result<()>;
}

impl Snapshots for Snapshotter {
    fn stat(&self, key: &str) -> Result<Info> {
        Snapshotter::stat(self, key)
    }
    fn update(&self, key: &str, labels: Labels, fieldpaths: &[String]) -> Result<Info> {
        Snapshotter::update(self, key, labels, fieldpaths)
    }
    fn usage(&self, key: &str) -> Result<Usage> {
        Snapshotter::usage(self, key)
    }
    fn mounts(&self, key: &str) -> Result<Vec<Mount>> {
        Snapshotter::mounts(self, key)
    }
    fn prepare(&self, key: &str, parent: Option<&str>, labels: Labels) -> Result<Vec<Mount>> {
        Snapshotter::prepare(self, key, parent, labels)
    }
    fn view(&self, key: &str, parent: Option<&str>, labels: Labels) -> Result<Vec<Mount>> {
        Snapshotter::view(self, key, parent, labels)
    }
    fn commit(&self, name: &str, key: &str, parent: Option<&str>, labels: Labels) -> Result<()> {
        Snapshotter::commit_with_parent(self, name, key, parent, labels)
    }
    fn remove(&self, key: &str) -> Result<()> {
        Snapshotter::remove(self, key)
    }
    fn walk(&self, filters: &[String], f: &mut dyn FnMut(Info) -> Result<()>) -> Result<()> {
        Snapshotter::walk(self, filters, f)
    }
    fn cleanup(&self) -> Result<()> {
        Snapshotter::cleanup(self).map(drop)
    }
    fn close(&self) -> Result<()> {
        Snapshotter::close(self)
    }
}
