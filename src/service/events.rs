//! Snapshot events (containerd's `/snapshot/*` topics), the [`Publisher`] seam and a
//! [`Hub`] that fans events out to subscribers over channels.

use parking_lot::Mutex;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};

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

/// How many events [`Hub::new`] lets one subscriber fall behind before dropping it.
pub const SUBSCRIBER_BUFFER: usize = 1024;

/// Hands a hub's events to one subscriber, never waiting (see [`Hub`]).
pub trait Subscriber: Send {
    /// Offers `event` without blocking: [`Offer::Taken`] when it was queued for the
    /// subscriber, [`Offer::Full`] when its buffer is full, [`Offer::Gone`] when it has
    /// unsubscribed.
    fn offer(&mut self, event: &Event) -> Offer;
}

/// What a [`Subscriber`] did with an offered event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offer {
    /// Queued for the subscriber.
    Taken,
    /// Not queued: the subscriber's buffer is full; the hub drops the subscriber.
    Full,
    /// Not queued: the subscriber is gone; the hub forgets it.
    Gone,
}

/// A bounded std channel as a subscriber ([`Hub::subscribe`]).
impl Subscriber for SyncSender<Event> {
    fn offer(&mut self, event: &Event) -> Offer {
        match self.try_send(event.clone()) {
            Ok(()) => Offer::Taken,
            Err(TrySendError::Full(_)) => Offer::Full,
            Err(TrySendError::Disconnected(_)) => Offer::Gone,
        }
    }
}

/// A [`Publisher`] that gives every subscriber its own copy of each event, in publishing
/// order.
///
/// Invariant: publishing never waits for a subscriber. Each subscriber has a bounded
/// buffer ([`SUBSCRIBER_BUFFER`] events for [`Hub::subscribe`]); one whose buffer is full
/// when an event arrives is dropped, with a warning in the log, and gets nothing more: its
/// channel ends after the events it still holds. A writer that publishes is therefore never
/// slowed by a subscriber that stopped reading. Subscribers that unsubscribed are
/// forgotten at the next publish.
pub struct Hub {
    subscribers: Mutex<Vec<Box<dyn Subscriber>>>,
    buffer: usize,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("subscribers", &self.subscribers.lock().len())
            .field("buffer", &self.buffer)
            .finish()
    }
}

impl Default for Hub {
    fn default() -> Self {
        Hub::with_buffer(SUBSCRIBER_BUFFER)
    }
}

impl Hub {
    /// A hub without subscribers, whose [`Hub::subscribe`] buffers [`SUBSCRIBER_BUFFER`]
    /// events per subscriber.
    pub fn new() -> Self {
        Hub::default()
    }

    /// A hub without subscribers, whose [`Hub::subscribe`] buffers `buffer` events per
    /// subscriber (at least 1).
    pub fn with_buffer(buffer: usize) -> Self {
        Hub {
            subscribers: Mutex::new(Vec::new()),
            buffer: buffer.max(1),
        }
    }

    /// A new subscription: receives every event published from now on, until it falls
    /// behind by more than the hub's buffer (then the channel ends; see [`Hub`]).
    /// Dropping the receiver unsubscribes.
    pub fn subscribe(&self) -> Receiver<Event> {
        let (tx, rx) = sync_channel(self.buffer);
        self.attach(Box::new(tx));
        rx
    }

    /// Adds `subscriber`, which is offered every event published from now on (for
    /// subscribers that are not std channels, such as an async server's).
    pub fn attach(&self, subscriber: Box<dyn Subscriber>) {
        self.subscribers.lock().push(subscriber);
    }

    /// How many subscribers the hub holds (gone ones count until the next publish).
    pub fn subscribers(&self) -> usize {
        self.subscribers.lock().len()
    }
}

impl Publisher for Hub {
    fn publish(&self, event: Event) {
        // Under the lock, so that every subscriber sees events in one order.
        self.subscribers
            .lock()
            .retain_mut(|s| match s.offer(&event) {
                Offer::Taken => true,
                Offer::Gone => false,
                Offer::Full => {
                    tracing::warn!(
                        topic = event.topic(),
                        "dropping an events subscriber that stopped reading: its buffer is full"
                    );
                    false
                }
            });
    }
}
