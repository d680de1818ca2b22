//! Snapshot events (containerd's `/snapshot/*` topics), the [`Publisher`] seam and a
//! [`Hub`] that fans events out to subscribers over channels.

use parking_lot::Mutex;
use std::sync::mpsc::{channel, Receiver, Sender};

/// What a successful Prepare, Commit or Remove announces (containerd's
/// `events.SnapshotPrepare`, `SnapshotCommit` and `SnapshotRemove`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Topic `/snapshot/prepare`: the Active snapshot `key` was created above `parent`.
    Prepare {
        /// The new snapshot's key.
        key: String,
        /// Its committed parent, if any (containerd's empty string is `None`).
        parent: Option<String>,
    },
    /// Topic `/snapshot/commit`: the Active snapshot `key` became the Committed `name`.
    Commit {
        /// The key the snapshot had while Active.
        key: String,
        /// Its name now that it is Committed.
        name: String,
    },
    /// Topic `/snapshot/remove`: the snapshot `key` is gone.
    Remove {
        /// The removed snapshot's key or name.
        key: String,
    },
}

impl Event {
    /// containerd's topic for the event: `/snapshot/prepare`, `/snapshot/commit` or
    /// `/snapshot/remove`.
    pub fn topic(&self) -> &'static str {
        match self {
            Event::Prepare { .. } => "/snapshot/prepare",
            Event::Commit { .. } => "/snapshot/commit",
            Event::Remove { .. } => "/snapshot/remove",
        }
    }
}

/// Where events go (containerd's `events.Publisher`).
///
/// Publishing cannot fail: an event describes an operation that is already durable, so
/// a delivery problem is the publisher's to handle, never a reason to report the
/// operation as failed.
pub trait Publisher: Send + Sync {
    /// Delivers `event`.
    fn publish(&self, event: Event);
}

/// A [`Publisher`] that gives every subscriber its own copy of each event, in publishing
/// order, over a std `mpsc` channel. Subscribers that dropped their receiver are
/// forgotten at the next publish.
#[derive(Debug, Default)]
pub struct Hub {
    subscribers: Mutex<Vec<Sender<Event>>>,
}

impl Hub {
    /// A hub without subscribers.
    pub fn new() -> Self {
        Hub::default()
    }

    /// A new subscription: receives every event published from now on. Dropping the
    /// receiver unsubscribes.
    pub fn subscribe(&self) -> Receiver<Event> {
        let (tx, rx) = channel();
        self.subscribers.lock().push(tx);
        rx
    }
}

impl Publisher for Hub {
    fn publish(&self, event: Event) {
        // Under the lock, so that every subscriber sees events in one order.
        self.subscribers
            .lock()
            .retain(|tx| tx.send(event.clone()).is_ok());
    }
}
