//! overlaysnap: a containerd-compatible overlay snapshotter whose core is a pure state
//! machine, checked against a naive reference model (`overlaysnap-model`).
//!
//! One picture: **commands → pure core → journal records → effects**.
//!
//! - [`core`]: the pure state machine. [`core::State::decide`] checks a [`core::Command`]
//!   and yields a [`core::Record`] or containerd's precise error; [`core::State::apply`]
//!   applies a record deterministically. No I/O, clock, randomness or locks.
//! - [`journal`]: records made durable (append-only log with checksums, group commit,
//!   checkpoints; or memory), and rebuilt into a state in one place ([`journal::Rebuild`]).
//! - [`layout`]: the overlay directories, mounts, usage, durability and cleanup on disk.
//! - [`fs`]: the file-system seam under both, the host's file system, the root lock and
//!   mounting; with the `testing` feature, the simulated disk of the crash tests.
//! - `model_terms` (with the `testing` feature): the core in the terms of the reference
//!   model, for the suites and fuzz targets that check one against the other.
//! - [`Snapshotter`]: the three joined, with containerd's operations; [`Snapshots`] is
//!   containerd's Snapshotter interface that [`service`] routes through.
//!
//! # Embedding the snapshotter
//!
//! ```
//! use overlaysnap::{Options, Snapshotter};
//!
//! let root = tempfile::tempdir()?;
//! let snapshotter = Snapshotter::open(root.path(), Options::default())?;
//! // A base layer: prepare, fill (mount the returned mounts and unpack), commit.
//! let mounts = snapshotter.prepare("extract-base", None, Default::default())?;
//! assert_eq!(mounts[0].kind, "bind");
//! snapshotter.commit("sha256:base", "extract-base", Default::default())?;
//! // A container's root file system above it: an overlay mount.
//! let mounts = snapshotter.prepare("rootfs", Some("sha256:base"), Default::default())?;
//! assert_eq!(mounts[0].kind, "overlay");
//! let mut names = Vec::new();
//! snapshotter.walk(&["kind==committed".to_string()], |info| {
//!     names.push(info.name);
//!     Ok(())
//! })?;
//! assert_eq!(names, ["sha256:base"]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Embedding the core alone
//!
//! The caller's duties, in order, for every change (as [`Snapshotter`] does them):
//! 1. build a [`core::Command`] with the current time (and, for Commit, the measured usage);
//! 2. [`core::State::decide`] it: an error leaves everything untouched;
//! 3. persist the record ([`journal::Journal::append`]) and wait until it is durable;
//! 4. [`core::State::apply`] it, then carry out its effects on disk.
//!
//! After a restart, [`journal::Journal::recover`] replays the records into an equal state
//! (through [`journal::Rebuild`], the one replay loop every journal shares).
//!
//! ```
//! use overlaysnap::core::{Command, State, Timestamp};
//! use overlaysnap::journal::{Journal, MemoryJournal};
//!
//! let journal = MemoryJournal::new();
//! let mut state = State::new();
//! let cmd = Command::Prepare {
//!     key: "k".into(),
//!     parent: None,
//!     labels: Default::default(),
//!     now: Timestamp::new(1_700_000_000, 0),
//! };
//! let record = state.decide(&cmd)?;
//! journal.append(std::slice::from_ref(&record))?;
//! state.apply(&record);
//! assert_eq!(journal.recover()?.state, state);
//! # Ok::<(), overlaysnap::Error>(())
//! ```

pub mod core;
pub mod error;
pub mod fs;
pub mod journal;
pub mod layout;
#[cfg(feature = "testing")]
pub mod model_terms;
pub mod service;
pub(crate) mod shared_flush;
pub mod snapshots;
pub mod snapshotter;
pub(crate) mod sync;

pub use crate::core::{Info, Kind, Labels, Timestamp, Usage};
pub use error::{Error, ErrorKind, Result};
pub use fs::{Mount, QuotaMode};
pub use journal::{Backend, LogBackend, MemoryBackend};
pub use layout::QuotaChoice;
pub use snapshots::Snapshots;
pub use snapshotter::{OpenReport, Options, Snapshotter};
