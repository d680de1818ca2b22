//! Services over snapshotters, as containerd stacks them in front of a snapshotter plugin.
//!
//! - [`Published`] is containerd's *internal* snapshot service: it wraps one snapshotter
//!   and publishes an [`Event`] after every successful Prepare, Commit and Remove.
//! - [`Router`] is containerd's *external* service: named snapshotters, looked up by the
//!   `snapshotter` argument of each request, with List delivered in blocks.
//! - [`Hub`] is a [`Publisher`] that hands events to subscribers over bounded buffers,
//!   dropping a subscriber that falls behind rather than slowing the writer.
//!
//! Everything here is synchronous, like the rest of the library; the gRPC daemon calls it
//! from blocking threads.
//!
//! ```
//! use overlaysnap::service::{Event, Hub, Published, Router};
//! use overlaysnap::{MemoryBackend, Options, Snapshotter, Snapshots};
//! use std::sync::Arc;
//!
//! let root = tempfile::tempdir()?;
//! let options = Options { journal: Arc::new(MemoryBackend), ..Options::default() };
//! let hub = Arc::new(Hub::new());
//! let events = hub.subscribe();
//! let snapshotter = Arc::new(Snapshotter::open(root.path(), options)?);
//! let mut router = Router::new();
//! router.register("overlaysnap", Arc::new(Published::new(snapshotter, hub)))?;
//!
//! router.get("overlaysnap")?.prepare("k1", None, Default::default())?;
//! assert_eq!(events.recv().unwrap(), Event::Prepare { key: "k1".into(), parent: None });
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod events;
pub mod published;
pub mod router;

pub use events::{Event, Hub, Offer, Publisher, Subscriber, SUBSCRIBER_BUFFER};
pub use published::Published;
pub use router::{Router, LIST_BLOCK};
