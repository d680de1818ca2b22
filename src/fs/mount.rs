//! containerd's `Mount`: what to mount, as data; [`Mount::mount`] and
//! [`mount_all`](super::mount_all) perform it (module `mounter`).

use serde::{Deserialize, Serialize};

/// containerd's `Mount` (`containerd.types.Mount`): what to mount, as `mount(8)` takes it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Mount {
    /// containerd's `type`: the file system type, `bind` or `overlay` here.
    pub kind: String,
    /// The source: a directory for `bind`, the word `overlay` for overlay.
    pub source: String,
    /// containerd 2.x's `target`: where to mount, relative to the directory the mounts are
    /// mounted at; empty (as here) for that directory itself.
    pub target: String,
    /// fstab-style options: flags such as `ro` and `rbind`, and file-system data such as
    /// `lowerdir=…`.
    pub options: Vec<String>,
}
