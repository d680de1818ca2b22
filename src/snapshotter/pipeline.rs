//! The write pipeline every change goes through (its locks are described in the module
//! documentation of [`snapshotter`](super)), in order:
//!
//! 1. the caller checks the command against the visible state (bad requests are refused
//!    before the disk is touched) and prepares directories outside the locks (mkdir,
//!    chown, du, syncfs); a failure there is [rechecked](Snapshotter::recheck) to tell a
//!    concurrent change from a real error;
//! 2. [`execute`](Snapshotter::execute) decides the command again under the writer lock,
//!    where the caller's `on_decided` checks that what the slow work relied on is still in
//!    place and installs the directory; a refusal is [settled](Snapshotter::settle);
//! 3. the record is submitted to the journal, applied to the writer's state and queued in
//!    `pending`, all under the writer lock; the wait for durability happens without it,
//!    so concurrent writers share one fsync (group commit);
//! 4. once durable, every pending record up to it is [published](Snapshotter::publish) to
//!    `visible`, in submission order; then a checkpoint when one is due.

use super::Snapshotter;
use crate::core::{Command, Record, State};
use crate::error::{Error, Result};
use crate::journal::Ticket;

/// The state a writer works on.
pub(super) struct Writer {
    /// Visible state plus every submitted record. Invariant: equals the journal's state
    /// after everything submitted.
    pub(super) state: State,
    /// Records submitted since the last checkpoint.
    pub(super) since_checkpoint: u64,
    /// Set when the journal failed: what is durable is then unknown, so no more writes
    /// until the snapshotter is reopened.
    pub(super) poisoned: Option<String>,
}

/// What slow work done outside the locks relied on: an id that must still be in place
/// when the command is decided again, or the work was done for a snapshot since replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Relied {
    /// The id of the snapshot the command acts on (the id its record carries): Commit's
    /// usage and syncfs of the layer `<id>`.
    Target(u64),
    /// The id of the parent of the snapshot the command creates: Prepare and View read
    /// the owner of the parent's directory.
    Parent(u64),
}

impl Snapshotter {
    /// Decides `cmd` under the writer lock and runs `on_decided` with the state it was
    /// decided on and the record (still under the lock; it may refuse, and what it returns
    /// is what the caller answers, so it never has to look the key up again), then submits
    /// the record, waits until it is durable and publishes it.
    pub(super) fn execute<T>(
        &self,
        cmd: &Command,
        on_decided: impl FnOnce(&State, &Record) -> Result<T>,
    ) -> Result<(Record, T)> {
        self.check_open()?;
        let (ticket, record, answer) = {
            let mut w = self.writer.lock();
            if let Some(why) = &w.poisoned {
                return Err(Error::io(
                    "snapshotter refuses writes after a journal failure; reopen it",
                    std::io::Error::other(why.clone()),
                ));
            }
            let decided = w
                .state
                .decide(cmd)
                .and_then(|record| Ok((on_decided(&w.state, &record)?, record)));
            let (answer, record) = match decided {
                Ok(decided) => decided,
                Err(refusal) => {
                    drop(w);
                    return Err(self.settle(refusal));
                }
            };
            let ticket = match self.journal.submit(std::slice::from_ref(&record)) {
                Ok(t) => t,
                Err(e) => {
                    w.poisoned = Some(e.to_string());
                    return Err(e);
                }
            };
            w.state.apply(&record);
            self.pending.lock().push_back((ticket, record.clone()));
            w.since_checkpoint += 1;
            (ticket, record, answer)
        };
        if let Err(e) = self.journal.wait(ticket) {
            self.writer.lock().poisoned = Some(e.to_string());
            return Err(e);
        }
        self.publish(ticket);
        self.maybe_checkpoint();
        Ok((record, answer))
    }

    /// Returns `refusal` only once every record it may have been decided on is durable and
    /// published: a refusal must not reflect a write that a crash could still undo, nor one
    /// that the caller's next read cannot see yet.
    fn settle(&self, refusal: Error) -> Error {
        let newest = self.pending.lock().back().map(|(ticket, _)| *ticket);
        if let Some(ticket) = newest {
            if let Err(e) = self.journal.wait(ticket) {
                self.writer.lock().poisoned = Some(e.to_string());
                return e;
            }
            self.publish(ticket);
        }
        refusal
    }

    /// The answer for slow work that failed with `error` outside the locks and relied on
    /// `relied`: when `cmd` (decided again now) is refused, or what the work relied on is
    /// no longer in place (the id now names another snapshot), the disk changed under it
    /// because of a concurrent call, and that is the answer; otherwise `error` itself.
    pub(super) fn recheck(&self, cmd: &Command, relied: Relied, error: Error) -> Error {
        let visible = self.visible.read();
        let in_place = |record: &Record| match relied {
            Relied::Target(id) => record.id() == id,
            Relied::Parent(id) => {
                let parent = match cmd {
                    Command::Prepare { parent, .. } | Command::View { parent, .. } => {
                        parent.as_deref()
                    }
                    _ => None,
                };
                parent.and_then(|p| visible.get(p)).map(|s| s.id) == Some(id)
            }
        };
        match visible.decide(cmd) {
            Err(refused) => refused,
            Ok(record) if !in_place(&record) => replaced(cmd),
            Ok(_) => error,
        }
    }

    /// Moves every pending record up to `upto` (all durable) into the visible state.
    fn publish(&self, upto: Ticket) {
        let mut visible = self.visible.write();
        let mut pending = self.pending.lock();
        while pending.front().is_some_and(|(t, _)| *t <= upto) {
            if let Some((_, record)) = pending.pop_front() {
                visible.apply(&record);
            }
        }
    }

    fn maybe_checkpoint(&self) {
        let every = self.options.checkpoint_every;
        let mut w = self.writer.lock();
        if every == 0 || w.since_checkpoint < every || w.poisoned.is_some() {
            return;
        }
        match self.journal.checkpoint(&w.state.checkpoint()) {
            Ok(()) => w.since_checkpoint = 0,
            Err(e) => {
                tracing::error!(error = %e, "checkpoint failed; refusing further writes");
                w.poisoned = Some(e.to_string());
            }
        }
    }

    /// Writes a checkpoint now, so that the next open replays nothing.
    pub fn checkpoint(&self) -> Result<()> {
        self.check_open()?;
        let mut w = self.writer.lock();
        self.journal.checkpoint(&w.state.checkpoint())?;
        w.since_checkpoint = 0;
        Ok(())
    }
}

/// The error for a snapshot that was removed and created again (or whose parent was)
/// while `cmd` did its slow work outside the locks.
pub(super) fn replaced(cmd: &Command) -> Error {
    let key = match cmd {
        Command::Prepare { key, .. }
        | Command::View { key, .. }
        | Command::Commit { key, .. }
        | Command::Remove { key }
        | Command::Update { key, .. } => key,
    };
    Error::FailedPrecondition(format!(
        "snapshot {key:?} (or its parent) was removed and created again during the call; retry"
    ))
}
