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
//! The writers a flush wakes come back one at a time (each wake-up is a hand-off of the
//! lock and a context switch), and the first to submit again would lead a flush of its
//! own frames alone while the others are still waking. So a leader first gathers: when
//! the previous flush covered `n > 1` submissions, it waits (on `gather`, at most
//! [`GATHER_MAX`]) until `n` submissions are pending. A lone writer (`n = 1`) never
//! waits, and a leader waits in vain at most once: its flush then covers fewer
//! submissions, and the next leader expects that many.
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
use std::time::{Duration, Instant};

/// The longest a leader waits for writers to join its flush: below one `fdatasync` here
/// (130–200 µs), so a flush is never delayed by more than it saves.
const GATHER_MAX: Duration = Duration::from_micros(100);

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
    /// Wakes a gathering leader once enough submissions are pending.
    gather: Condvar,
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
    /// Submissions (calls, not records) since open.
    submissions: u64,
    /// Submissions covered by the durable prefix.
    durable_submissions: u64,
    /// Submissions the previous flush covered: how many writers were active then.
    last_batch: u64,
    /// Whether the leader is gathering (waiting on `gather`).
    gathering: bool,
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
                submissions: 0,
                durable_submissions: 0,
                last_batch: 0,
                gathering: false,
                poison: None,
            }),
            wake: Condvar::new(),
            gather: Condvar::new(),
            io: Mutex::new(io),
        }
    }

    /// Queues `frames`, the encoding of `records` records, after everything submitted.
    pub fn submit(&self, frames: &[u8], records: u64) -> Result<Ticket> {
        let mut q = self.queue.lock();
        q.check()?;
        q.pending.extend_from_slice(frames);
        q.submitted += records;
        q.submissions += 1;
        if q.gathering && q.submissions - q.durable_submissions >= q.last_batch {
            self.gather.notify_one();
        }
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
            // Lead: gather the writers of the previous flush, then everything pending goes
            // out in one write and one sync.
            q.busy = true;
            let deadline = Instant::now() + GATHER_MAX;
            let mut waits = 0;
            while q.submissions - q.durable_submissions < q.last_batch && waits < q.last_batch {
                let now = Instant::now();
                if now >= deadline {
                    break;
                }
                q.gathering = true;
                self.gather.wait_for(&mut q, deadline - now);
                q.gathering = false;
                waits += 1;
            }
            let batch = std::mem::take(&mut q.pending);
            let upto = q.submitted;
            let upto_submissions = q.submissions;
            q.last_batch = upto_submissions - q.durable_submissions;
            drop(q);
            let result = flush(&mut self.io.lock(), &batch);
            q = self.queue.lock();
            q.busy = false;
            if q.pending.capacity() == 0 {
                q.pending = batch;
                q.pending.clear();
            }
            match result {
                Ok(()) => {
                    q.durable = upto;
                    q.durable_submissions = upto_submissions;
                }
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
        let upto_submissions = q.submissions;
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
                    let mut q = self.queue.lock();
                    q.durable = upto;
                    q.durable_submissions = upto_submissions;
                    drop(q);
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
