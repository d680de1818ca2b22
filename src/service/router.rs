//! [`Router`]: containerd's external snapshot service, which serves requests naming a
//! snapshotter by routing them to the snapshotter registered under that name.

use crate::core::Info;
use crate::error::{Error, Result};
use crate::snapshots::Snapshots;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The most Infos one List block holds (containerd's service sends blocks of 100).
pub const LIST_BLOCK: usize = 100;

/// Snapshotters by name, as containerd's snapshot service holds them.
#[derive(Default, Clone)]
pub struct Router {
    snapshotters: BTreeMap<String, Arc<dyn Snapshots>>,
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Router")
            .field("names", &self.snapshotters.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Router {
    /// A router with no snapshotters.
    pub fn new() -> Self {
        Router::default()
    }

    /// Serves `snapshotter` under `name`. Refused when `name` is empty (InvalidArgument)
    /// or already taken (AlreadyExists).
    pub fn register(
        &mut self,
        name: impl Into<String>,
        snapshotter: Arc<dyn Snapshots>,
    ) -> Result<()> {
        let name = name.into();
        if name.is_empty() {
            return Err(Error::InvalidArgument(
                "a snapshotter cannot be registered under an empty name".into(),
            ));
        }
        if self.snapshotters.contains_key(&name) {
            return Err(Error::AlreadyExists(format!(
                "snapshotter {name:?} is already registered"
            )));
        }
        self.snapshotters.insert(name, snapshotter);
        Ok(())
    }

    /// The names served, in byte order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.snapshotters.keys().map(String::as_str)
    }

    /// The snapshotter a request names: InvalidArgument `snapshotter argument missing` for
    /// an empty name and `snapshotter not loaded: NAME` for an unknown one, as containerd.
    pub fn get(&self, name: &str) -> Result<&Arc<dyn Snapshots>> {
        if name.is_empty() {
            return Err(Error::InvalidArgument(
                "snapshotter argument missing".into(),
            ));
        }
        self.snapshotters
            .get(name)
            .ok_or_else(|| Error::InvalidArgument(format!("snapshotter not loaded: {name}")))
    }

    /// containerd's List: walks the snapshotter `name` with `filters` and hands the Infos
    /// to `send` in blocks of at most [`LIST_BLOCK`], in walk order; no empty block is
    /// sent. An error from `send` stops the walk and is returned.
    pub fn list(
        &self,
        name: &str,
        filters: &[String],
        send: &mut dyn FnMut(Vec<Info>) -> Result<()>,
    ) -> Result<()> {
        let snapshotter = self.get(name)?;
        let mut block = Vec::with_capacity(LIST_BLOCK);
        snapshotter.walk(filters, &mut |info| {
            block.push(info);
            if block.len() == LIST_BLOCK {
                send(std::mem::replace(
                    &mut block,
                    Vec::with_capacity(LIST_BLOCK),
                ))?;
            }
            Ok(())
        })?;
        if block.is_empty() {
            Ok(())
        } else {
            send(block)
        }
    }

    /// containerd's Cleanup on the snapshotter `name`: NotImplemented when that
    /// snapshotter does not offer it.
    pub fn cleanup(&self, name: &str) -> Result<()> {
        self.get(name)?.cleanup()
    }
}
