//! [`Observer`]: what a [`LogJournal`](super::LogJournal) tells an embedder about each
//! group-commit flush (batch size, write and sync durations), for metrics.
//!
//! Invariant: a journal without an observer does no more work per flush than one branch
//! on the `Option` (no clock reads); one with an observer reads the clock three times per
//! flush and calls [`Observer::flushed`] once, on the thread that led the flush, after the
//! sync and before any waiter is acknowledged. A failed flush is not reported (it poisons
//! the journal, which reports the failure to every caller instead).

use std::fmt::Debug;
use std::time::Duration;

/// Told of every successful flush of a [`LogJournal`](super::LogJournal); set with
/// [`LogJournal::observe`](super::LogJournal::observe) or, for a snapshotter's journal,
/// [`Options::journal_observer`](crate::Options::journal_observer).
///
/// It runs on the flushing thread while the journal's I/O role is held, so every writer
/// waiting for that flush waits for it too: it must be quick and must not block (update a
/// counter or a histogram; do not log or do I/O).
pub trait Observer: Send + Sync + Debug {
    /// One flush has written and synced `flush.records` records.
    fn flushed(&self, flush: &Flush);
}

/// One group-commit flush: one positioned write and one `fdatasync` of everything queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flush {
    /// Records the flush made durable: the group-commit batch size.
    pub records: u64,
    /// Bytes written (frames of those records).
    pub bytes: u64,
    /// Time spent in the write.
    pub write: Duration,
    /// Time spent in the `fdatasync` that followed.
    pub sync: Duration,
}
