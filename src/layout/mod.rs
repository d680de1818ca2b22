//! The disk side of the snapshotter: directories, mounts, usage, cleanup and durability.
//!
//! This module holds no journal and no snapshot state. The snapshotter decides (through the
//! core) which ids exist and calls these functions to make the disk match; every function
//! here takes ids and kinds, never keys.
//!
//! ```text
//! ROOT/                           0700 when created here
//!   snapshots/                    0700
//!     <id>/                       one per snapshot, the id in decimal (0700)
//!       fs/                       0755, owned like the parent's fs: the layer (upperdir)
//!       work/                     0711, Active only: overlayfs' workdir
//!     new-<unique>/               a snapshot directory being filled (TEMP_PREFIX)
//!     rm-<unique>/                a snapshot directory being deleted (REMOVING_PREFIX)
//!   l/                            0700, short links for lowerdir lists too long for a page
//!     <id in base 62>             -> ../snapshots/<id>/fs
//!   empty/                        0755, with_empty_lower only: the lowerdir of parentless
//!                                 Active snapshots, always empty
//! ```
//!
//! Invariants kept by this module:
//! - A `<id>` directory appears complete or not at all: it is filled under a `new-*` name
//!   and renamed into place ([`TempDir::install`]); in the btrfs quota mode it is made in
//!   place under the writer lock, before its id is issued, and deleted if that fails (a
//!   crash that keeps it half-made is repaired at open: reconcile.rs), and leaves by being renamed to `rm-*`
//!   before its content is deleted ([`Layout::remove_dir`]). A crash can leave `new-*` and
//!   `rm-*` directories, which Cleanup removes, but never a half-built or half-deleted `<id>`.
//! - Every `new-*` or `rm-*` name that an operation of this process is using is registered
//!   in the Layout's in-flight set before it exists on disk and until it is gone, so Cleanup
//!   never deletes the directory of an operation in progress.
//! - An Active snapshot's directory is its quota unit (a btrfs subvolume, or a project whose
//!   id is derived from the snapshot id) with its limit before it is installed, in a quota
//!   mode (quota.rs).
//! - Links in `l/` are derived from ids alone: they can be deleted and re-created at any
//!   time, and [`Layout::mounts`] re-creates those a mount needs.
//!
//! - Every file-system call goes through the Layout's [`FileSystem`] ([`RealFs`] unless
//!   opened with [`Layout::open_on`]), so that crash tests can run the same code over the
//!   simulated disk (`SimFs`).
//!
//! The mounts returned by [`Layout::mounts`] are containerd `Mount`s: containerd (1.6 and
//! 2.x) can mount them with its own code, and [`mount_all`](crate::fs::mount_all) mounts
//! them from Rust.

mod cleanup;
mod dirs;
mod durable;
mod empty;
mod in_flight;
mod links;
mod mounts;
mod project_block;
mod quota;
mod temp;
mod usage;

pub use cleanup::Garbage;
pub use dirs::{Entry, Owner};
pub use durable::make_durable;
pub use mounts::overlay_options;
pub use project_block::{PROJECT_BLOCK, PROJECT_BLOCK_DIR, PROJECT_ID_BASE};
pub use quota::{QuotaChoice, QUOTA_FILE};
pub use temp::TempDir;
pub use usage::disk_usage;

#[cfg(doc)]
use crate::fs::RealFs;
use crate::fs::{FileSystem, QuotaMode};
use in_flight::InFlight;
use std::path::PathBuf;
use std::sync::Arc;

/// Prefix of the directories in `ROOT/snapshots` that hold a snapshot being created.
pub const TEMP_PREFIX: &str = "new-";

/// Prefix of the directories in `ROOT/snapshots` that hold a snapshot being deleted.
pub const REMOVING_PREFIX: &str = "rm-";

/// The directories of one snapshotter root, and what the host's overlayfs needs.
///
/// Cheap to share behind an `Arc`: every method takes `&self`, and the only mutable part
/// (the in-flight set) has its own lock.
#[derive(Debug)]
pub struct Layout {
    /// Where every file-system call goes.
    fs: Arc<dyn FileSystem>,
    /// The root, absolute and canonical. Invariant: valid UTF-8 without `,` or `:`, so that
    /// paths under it can be written into overlay mount options unescaped.
    root: PathBuf,
    /// `root/snapshots`.
    snapshots: PathBuf,
    /// `root/l`.
    links: PathBuf,
    /// Options appended to every overlay mount: the configured ones, then `userxattr` and
    /// `index=off` when the host needs them (see [`overlay_options`]).
    overlay_options: Vec<String>,
    /// `root/empty` when parentless Active snapshots mount as overlay above it
    /// ([`Layout::with_empty_lower`]); `None`: they bind-mount their `fs`.
    empty_lower: Option<PathBuf>,
    /// The page size: the kernel reads at most one page of mount data.
    page_size: usize,
    /// Names in `snapshots/` that operations of this process are using.
    in_flight: InFlight,
    /// How usage is measured and sizes limited ([`Layout::enable_quotas`]; the walk until
    /// then).
    quota: QuotaMode,
    /// The limit of an Active snapshot without a size label, in quota modes.
    default_size: Option<u64>,
    /// In a project-quota mode, the first id of the root's block of project ids (see
    /// [`Layout::project_of`]); `None` otherwise. Invariant: `Some` only if `quota` uses
    /// projects, and then the id of `ROOT/project-block`, recorded in `ROOT/quota`.
    project_base: Option<u32>,
}
