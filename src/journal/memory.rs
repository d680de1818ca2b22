//! [`MemoryJournal`]: the journal kept in memory, for embedding and tests.

use super::{corrupt, Journal, ReadBack, Replay, Ticket};
use crate::core::{Checkpoint, Record};
use crate::error::{Error, Result};
use crate::sync::Mutex;

/// A journal in memory: the newest checkpoint and the records after it. Every submitted
/// record is "durable" at once (for as long as the process lives), so [`Journal::wait`]
/// never blocks, and nothing survives the value.
///
/// Records are checked only when read back, as a log's are on open: a record that
/// does not fit is [`Error::Corrupt`] at its index.
#[derive(Debug, Default)]
pub struct MemoryJournal {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    checkpoint: Option<Checkpoint>,
    /// The records after the checkpoint, in submission order.
    records: Vec<Record>,
    /// Records submitted over the journal's life: the newest ticket.
    submitted: u64,
}

/// The name under which a memory journal's errors refer to its records.
const PATH: &str = "memory journal";

impl MemoryJournal {
    /// An empty journal.
    pub fn new() -> MemoryJournal {
        MemoryJournal::default()
    }
}

impl Journal for MemoryJournal {
    fn submit(&self, records: &[Record]) -> Result<Ticket> {
        let mut inner = self.inner.lock();
        inner.records.extend_from_slice(records);
        inner.submitted += records.len() as u64;
        Ok(Ticket(inner.submitted))
    }

    fn wait(&self, ticket: Ticket) -> Result<()> {
        let submitted = self.inner.lock().submitted;
        if ticket.0 > submitted {
            return Err(Error::InvalidArgument(format!(
                "ticket {} was not issued by this journal (last issued: {submitted})",
                ticket.0
            )));
        }
        Ok(())
    }

    fn read_back(&self, into: &mut dyn Replay) -> Result<ReadBack> {
        let inner = self.inner.lock();
        if let Some(cp) = &inner.checkpoint {
            into.checkpoint(cp.clone())
                .map_err(|e| corrupt(format!("{PATH} checkpoint"), 0, e.to_string()))?;
        }
        for (i, record) in inner.records.iter().enumerate() {
            into.record(record.clone()).map_err(|e| {
                corrupt(
                    PATH.into(),
                    i as u64,
                    format!("record {i} does not fit the state: {e}"),
                )
            })?;
        }
        Ok(ReadBack {
            records: inner.records.len() as u64,
            checkpoint: inner
                .checkpoint
                .as_ref()
                .map(|_| format!("{PATH} checkpoint")),
            torn_tail: None,
        })
    }

    fn checkpoint(&self, checkpoint: &Checkpoint) -> Result<()> {
        let mut inner = self.inner.lock();
        inner.checkpoint = Some(checkpoint.clone());
        inner.records.clear();
        Ok(())
    }
}
