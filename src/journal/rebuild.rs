//! [`Rebuild`]: the state rebuilt from what a journal reads back. The one replay loop of
//! every journal: each record is checked with [`State::admit`] before it is applied, so a
//! journal whose records do not fit its checkpoint is corruption, never a wrong state.

use super::{ReadBack, Recovery, Replay};
use crate::core::{Checkpoint, Record, State};
use crate::error::Result;

/// A state being rebuilt from a journal's checkpoint and records.
///
/// Invariant: `state` is the checkpoint delivered (or the empty state) with every record
/// delivered since applied, each admitted first.
#[derive(Debug)]
pub struct Rebuild {
    state: State,
}

impl Default for Rebuild {
    fn default() -> Rebuild {
        Rebuild::new()
    }
}

impl Rebuild {
    /// Starts from the empty state ([`State::new`]).
    pub fn new() -> Rebuild {
        Rebuild {
            state: State::new(),
        }
    }

    /// The rebuilt state, with what the journal reported of reading it back.
    pub fn finish(self, read: ReadBack) -> Recovery {
        Recovery {
            state: self.state,
            records_replayed: read.records,
            checkpoint: read.checkpoint,
            torn_tail: read.torn_tail,
        }
    }
}

impl Replay for Rebuild {
    fn checkpoint(&mut self, checkpoint: Checkpoint) -> Result<()> {
        self.state = State::from_checkpoint(checkpoint)?;
        Ok(())
    }

    fn record(&mut self, record: Record) -> Result<()> {
        self.state.admit(&record)?;
        self.state.apply_owned(record);
        Ok(())
    }
}
