//! The in-flight set that keeps Cleanup away from the temporary names in use.

use crate::sync::Mutex;
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// Names in `ROOT/snapshots` that operations of this process are using (`new-*` being
/// filled, `rm-*` being deleted).
///
/// Invariant: a name is registered before it exists on disk and stays registered until it
/// is gone from disk (renamed into place or deleted), so a Cleanup that lists the
/// directory and then checks this set can never take a directory from a live operation.
#[derive(Debug, Default, Clone)]
pub(crate) struct InFlight(Arc<Mutex<HashSet<String>>>);

impl InFlight {
    /// Registers a fresh name `prefix<pid>-<time>-<counter>`; the name leaves the set when
    /// the returned claim is dropped.
    pub(crate) fn claim(&self, prefix: &str) -> Claim {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let name = format!(
            "{prefix}{}-{nanos:x}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        self.0.lock().insert(name.clone());
        Claim {
            name,
            set: self.clone(),
        }
    }

    /// Whether an operation of this process is using `name`.
    pub(crate) fn contains(&self, name: &str) -> bool {
        self.0.lock().contains(name)
    }
}

/// A registered name; unregistered on drop.
#[derive(Debug)]
pub(crate) struct Claim {
    name: String,
    set: InFlight,
}

impl Claim {
    /// The claimed name.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.set.0.lock().remove(&self.name);
    }
}
