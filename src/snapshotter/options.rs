//! How a [`Snapshotter`](super::Snapshotter) behaves: [`Options`], including the journal
//! it writes to, and containerd's upper-directory label ([`UPPERDIR_LABEL`]).

use crate::journal::{Backend, LogBackend, Observer};
use crate::layout::QuotaChoice;
use std::sync::Arc;

/// containerd's label that carries the upper directory when [`Options::upperdir_label`] is
/// set (`WithUpperdirLabel`).
pub const UPPERDIR_LABEL: &str = "containerd.io/snapshot/overlay.upperdir";

/// How a [`Snapshotter`](super::Snapshotter) behaves; `Options::default()` is containerd's
/// default overlay snapshotter with a durable log.
#[derive(Debug, Clone)]
pub struct Options {
    /// Delete a removed snapshot's directory at once (containerd's sync remove). When false
    /// (containerd's default, async remove) directories go at the next
    /// [`Snapshotter::cleanup`](super::Snapshotter::cleanup).
    pub sync_remove: bool,
    /// Add [`UPPERDIR_LABEL`] with the upper directory to every Info returned.
    pub upperdir_label: bool,
    /// Options appended to every overlay mount (containerd's `mount_options`).
    pub mount_options: Vec<String>,
    /// Where the records go: the journal opened at `ROOT/journal` ([`LogBackend`], the
    /// durable default; [`MemoryBackend`](crate::journal::MemoryBackend); or an
    /// embedder's own [`Backend`]).
    pub journal: Arc<dyn Backend>,
    /// Take a checkpoint after this many records, so recovery replays at most about this
    /// many; 0 never checkpoints automatically.
    pub checkpoint_every: u64,
    /// Mount snapshots that carry containerd's ID-mapping labels
    /// (`containerd.io/snapshot/uidmapping`, `…/gidmapping`) with `uidmap=`/`gidmap=`,
    /// owned by the container's root: containerd 2.x's `remap-ids`. Turn it on only
    /// together with the proxy plugin's `capabilities = ["remap-ids", "only-remap-ids"]`:
    /// without the capability containerd makes a chowned copy of the image, which must
    /// then not be mapped again. Off (the default), the labels are stored and validated
    /// but mount nothing, as containerd's overlay snapshotter without `remap-ids`.
    pub remap_ids: bool,
    /// Mount an Active snapshot without a parent as `overlay` (its `fs` the `upperdir`, its
    /// `work` the `workdir`, the empty `ROOT/empty` the only `lowerdir`) instead of a bind
    /// mount: containerd 2.2's `rebase`. With the proxy plugin's `capabilities =
    /// ["rebase"]` containerd may unpack layers in parallel, each prepared without a
    /// parent and committed above the layer below; its applier writes a layer's whiteouts
    /// as overlay whiteouts (which survive the rebase) only into an overlay mount's
    /// `upperdir`. Turn it on together with that capability. Off (the default), every
    /// mount is as containerd 1.6/2.1's overlay snapshotter makes it.
    pub rebase: bool,
    /// Told of every flush of the journal (batch size, write and sync times), for metrics;
    /// see [`Observer`]. `None` (the default) costs one branch per flush.
    pub journal_observer: Option<Arc<dyn Observer>>,
    /// Whether usage and limits come from the file system's quotas (btrfs qgroups, XFS or
    /// ext4 project quotas) when the root's file system offers them ([`QuotaChoice::Auto`],
    /// the default), or always from walking the layer ([`QuotaChoice::Off`]).
    pub quota: QuotaChoice,
    /// The hard limit in bytes of an Active snapshot prepared without the
    /// `containerd.io/snapshot/max-size` label, in a quota mode; `None` (or 0): no limit.
    pub default_size: Option<u64>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            sync_remove: false,
            upperdir_label: false,
            mount_options: Vec::new(),
            journal: Arc::new(LogBackend),
            checkpoint_every: 100_000,
            remap_ids: false,
            rebase: false,
            journal_observer: None,
            quota: QuotaChoice::Auto,
            default_size: None,
        }
    }
}
