//! Group commit: many submitters, one thread doing I/O at a time, one sync per batch.
//!
//! Submitters append encoded frames to a shared pending buffer under a short lock and get
//! a ticket. A waiter whose ticket is not yet durable either sleeps, while another thread
//! holds the I/O role, or takes the role itself: it becomes the leader, takes everything
//! pending (its own frames and everyone else's), writes and syncs it without holding the
//! lock, then publishes the new durable ticket and wakes everyone. Frames submitted while
//! a leader syncs pile up for the next leader, so the number of syncs grows with elapsed
//! time, not with the number of writers.
//!
//! The same role serialises checkpoints and read-backs with appends ([`Group::exclusive`]),
//! and the I/O-side state `W` (the open segment) is touched only by the role's holder.
//!
//! After a failed flush the group is poisoned: storage is in an unknown state, and no
//! later call writes, syncs or succeeds.

use super::Ticket;
use crate::error::{Error, Result};
use crate::sync::{Condvar, Mutex};
use std::io;

/// A failure while holding the I/O role; `poisons` says whether storage is left in an
/// unknown state (so the group must refuse all later work).
pub(crate) struct Failed {
    pub error: Error,
    pub poisons: bool,
}

/// Group commit over the I/O-side state `W`.
pub(crate) struct Group<W> {
    queue: Mutex<Queue>,
    wake: Condvar,
    /// Locked only by the holder of the I/O role, so never contended.
    io: Mutex<W>,
}

struct Queue {
    /// Frames submitted but not yet taken by a leader, in ticket order.
    pending: Vec<u8>,
    /// Records submitted since open: the newest ticket. Invariant: `durable <= submitted`.
    submitted: u64,
    /// Every ticket up to this one is durable.
    durable: u64,
    /// Whether some thread holds the I/O role. Invariant: at most one does.
    busy: bool,
    /// Why the group is poisoned, once it is.
    poison: Option<(io::ErrorKind, String)>,
}

impl Queue {
    fn check(&self) -> Result<()> {
        match &self.poison {
            None => Ok(()),
            Some((kind, why)) => Err(Error::io(
                "journal is poisoned by an earlier I/O failure; reopen it to continue",
                io::Error::new(*kind, why.clone()),
            )),
        }
    }

    fn poison(&mut self, error: &Error) {
        let kind = match error {
            Error::Io { source, .. } => source.kind(),
            _ => io::ErrorKind::Other,
        };
        self.poison.get_or_insert((kind, error.to_string()));
    }
}

impl<W> Group<W> {
    /// A group whose I/O side is `io`.
    pub fn new(io: W) -> Group<W> {
        Group {
            queue: Mutex::new(Queue {
                pending: Vec::new(),
                submitted: 0,
                durable: 0,
                busy: false,
                poison: None,
            }),
            wake: Condvar::new(),
            io: Mutex::new(io),
        }
    }

    /// Queues `frames`, the encoding of `records` records, after everything submitted.
    pub fn submit(&self, frames: &[u8], records: u64) -> Result<Ticket> {
        let mut q = self.queue.lock();
        q.check()?;
        q.pending.extend_from_slice(frames);
        q.submitted += records;
        Ok(Ticket(q.submitted))
    }

    /// Blocks until `ticket` is durable, leading a flush when no one else is: `flush` must
    /// make the bytes it is given durable after everything flushed before.
    pub fn wait(&self, ticket: Ticket, flush: impl Fn(&mut W, &[u8]) -> Result<()>) -> Result<()> {
        let mut q = self.queue.lock();
        if ticket.0 > q.submitted {
            return Err(Error::InvalidArgument(format!(
                "ticket {} was not issued by this journal (last issued: {})",
                ticket.0, q.submitted
            )));
        }
        loop {
            q.check()?;
            if q.durable >= ticket.0 {
                return Ok(());
            }
            if q.busy {
                self.wake.wait(&mut q);
                continue;
            }
            // Lead: everything pending goes out in one write and one sync.
            let batch = std::mem::take(&mut q.pending);
            let upto = q.submitted;
            q.busy = true;
            drop(q);
            let result = flush(&mut self.io.lock(), &batch);
            q = self.queue.lock();
            q.busy = false;
            if q.pending.capacity() == 0 {
                q.pending = batch;
                q.pending.clear();
            }
            match result {
                Ok(()) => q.durable = upto,
                Err(e) => {
                    q.poison(&e);
                    self.wake.notify_all();
                    return Err(e);
                }
            }
            self.wake.notify_all();
        }
    }

    /// Takes the I/O role once no one else holds it, flushes everything pending with
    /// `flush` (a failure there poisons), then runs `f` alone. Nothing is written by others
    /// until `f` returns.
    pub fn exclusive<R>(
        &self,
        flush: impl Fn(&mut W, &[u8]) -> Result<()>,
        f: impl FnOnce(&mut W) -> Result<R, Failed>,
    ) -> Result<R> {
        let mut q = self.queue.lock();
        loop {
            q.check()?;
            if !q.busy {
                break;
            }
            self.wake.wait(&mut q);
        }
        let batch = std::mem::take(&mut q.pending);
        let upto = q.submitted;
        q.busy = true;
        drop(q);
        let result = {
            let mut io = self.io.lock();
            let flushed = if batch.is_empty() {
                Ok(())
            } else {
                flush(&mut io, &batch)
            };
            match flushed {
                Ok(()) => {
                    self.queue.lock().durable = upto;
                    f(&mut io)
                }
                Err(error) => Err(Failed {
                    error,
                    poisons: true,
                }),
            }
        };
        let mut q = self.queue.lock();
        q.busy = false;
        if let Err(Failed {
            error,
            poisons: true,
        }) = &result
        {
            q.poison(error);
        }
        self.wake.notify_all();
        result.map_err(|f| f.error)
    }
}
