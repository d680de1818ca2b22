//! [`Published`]: containerd's internal snapshot service, a snapshotter that announces its
//! successful changes.

use super::events::{Event, Publisher};
use crate::core::{Info, Labels, Usage};
use crate::error::Result;
use crate::fs::Mount;
use crate::snapshots::Snapshots;
use std::sync::Arc;

/// Forwards every call to a snapshotter and, after a Prepare, Commit or Remove succeeds,
/// publishes `/snapshot/prepare`, `/snapshot/commit` or `/snapshot/remove`. A failed call
/// publishes nothing. View, Update and the rest publish nothing, as in containerd.
pub struct Published {
    inner: Arc<dyn Snapshots>,
    publisher: Arc<dyn Publisher>,
}

impl Published {
    /// Wraps `inner`, announcing its changes to `publisher`.
    pub fn new(inner: Arc<dyn Snapshots>, publisher: Arc<dyn Publisher>) -> Self {
        Published { inner, publisher }
    }
}

impl std::fmt::Debug for Published {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Published").finish_non_exhaustive()
    }
}

impl Snapshots for Published {
    fn stat(&self, key: &str) -> Result<Info> {
        self.inner.stat(key)
    }
    fn update(&self, key: &str, labels: Labels, fieldpaths: &[String]) -> Result<Info> {
        self.inner.update(key, labels, fieldpaths)
    }
    fn usage(&self, key: &str) -> Result<Usage> {
        self.inner.usage(key)
    }
    fn mounts(&self, key: &str) -> Result<Vec<Mount>> {
        self.inner.mounts(key)
    }
    fn prepare(&self, key: &str, parent: Option<&str>, labels: Labels) -> Result<Vec<Mount>> {
        let mounts = self.inner.prepare(key, parent, labels)?;
        self.publisher.publish(Event::Prepare {
            key: key.to_owned(),
            parent: parent.map(str::to_owned),
        });
        Ok(mounts)
    }
    fn view(&self, key: &str, parent: Option<&str>, labels: Labels) -> Result<Vec<Mount>> {
        self.inner.view(key, parent, labels)
    }
    fn commit(&self, name: &str, key: &str, parent: Option<&str>, labels: Labels) -> Result<()> {
        self.inner.commit(name, key, parent, labels)?;
        self.publisher.publish(Event::Commit {
            key: key.to_owned(),
            name: name.to_owned(),
        });
        Ok(())
    }
    fn remove(&self, key: &str) -> Result<()> {
        self.inner.remove(key)?;
        self.publisher.publish(Event::Remove {
            key: key.to_owned(),
        });
        Ok(())
    }
    fn walk(&self, filters: &[String], f: &mut dyn FnMut(Info) -> Result<()>) -> Result<()> {
        self.inner.walk(filters, f)
    }
    fn cleanup(&self) -> Result<()> {
        self.inner.cleanup()
    }
    fn close(&self) -> Result<()> {
        self.inner.close()
    }
}
