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
//! Waiting writers sleep on a [`Beacon`] that the releaser of the I/O role advances, which
//! wakes them all at once, and a writer whose ticket is durable returns without taking the
//! queue lock again. On a condition variable they came back one at a time, each through a
//! hand-off of the queue lock: waking 16 writers took about as long as a flush, and 16
//! writers reached 6.2x one writer's appends against 7.3x when woken at once (means of 8
//! alternating pairs of runs on the project's 2-core machine; `docs/bench.md`).
//!
//! The woken writers still submit again one by one, and the first to do so would lead a
//! flush of its own frames alone while the others are still waking. So a leader first
//! gathers: when the previous flush covered `n > 1` submissions, it waits (on `gather`,
//! at most [`GATHER_MAX`]) until `n` submissions are pending. A lone writer (`n = 1`)
//! never waits, and a leader waits in vain at most once: its flush then covers fewer
//! submissions, and the next leader expects that many.
//!
//! The same role serialises checkpoints and read-backs with appends ([`Group::exclusive`]),
//! and the I/O-side state `W` (the open segment) is touched only by the role's holder.
//!
//! After a failed flush the group is poisoned: storage is in an unknown state, and no
//! later call writes, syncs or succeeds.

use super::Ticket;
use crate::error::{Error, Result};
use crate::sync::{AtomicBool, AtomicU64, Beacon, Condvar, Mutex, MutexGuard};
use std::io;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// The longest a leader waits for writers to join its flush: below one `fdatasync` here
/// (130–300 µs), so a flush is never delayed by more than it saves.
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
    /// Every ticket up to this one is durable. Written under the queue lock; read without
    /// it by woken writers. Invariant: at most `queue.submitted`.
    durable: AtomicU64,
    /// Set (under the lock) when the group is poisoned, before any sleeper is woken.
    poisoned: AtomicBool,
    /// Advanced each time the I/O role is released: what sleepers wait on.
    released: Beacon,
    /// Wakes a gathering leader once enough submissions are pending.
    gather: Condvar,
    /// Locked only by the holder of the I/O role, so never contended.
    io: Mutex<W>,
    /// The longest a leader gathers: [`GATHER_MAX`], except in this module's tests.
    gather_max: Duration,
}

struct Queue {
    /// Frames submitted but not yet taken by a leader, in ticket order.
    pending: Vec<u8>,
    /// Records submitted since open: the newest ticket.
    submitted: u64,
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
}

impl<W> Group<W> {
    /// A group whose I/O side is `io`.
    pub fn new(io: W) -> Group<W> {
        Group::gathering_at_most(io, GATHER_MAX)
    }

    /// A group whose leaders gather for at most `gather_max`.
    fn gathering_at_most(io: W, gather_max: Duration) -> Group<W> {
        Group {
            queue: Mutex::new(Queue {
                pending: Vec::new(),
                submitted: 0,
                busy: false,
                submissions: 0,
                durable_submissions: 0,
                last_batch: 0,
                gathering: false,
                poison: None,
            }),
            durable: AtomicU64::new(0),
            poisoned: AtomicBool::new(false),
            released: Beacon::default(),
            gather: Condvar::new(),
            io: Mutex::new(io),
            gather_max,
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
    /// make the bytes it is given (the frames of the given number of records) durable after
    /// everything flushed before.
    pub fn wait(
        &self,
        ticket: Ticket,
        flush: impl Fn(&mut W, &[u8], u64) -> Result<()>,
    ) -> Result<()> {
        let mut q = self.queue.lock();
        if ticket.0 > q.submitted {
            return Err(Error::InvalidArgument(format!(
                "ticket {} was not issued by this journal (last issued: {})",
                ticket.0, q.submitted
            )));
        }
        loop {
            q.check()?;
            if self.durable.load(Ordering::Acquire) >= ticket.0 {
                return Ok(());
            }
            if !q.busy {
                break;
            }
            self.sleep(q);
            if !self.poisoned.load(Ordering::Acquire)
                && self.durable.load(Ordering::Acquire) >= ticket.0
            {
                return Ok(());
            }
            q = self.queue.lock();
        }
        // Lead: gather the writers of the previous flush, then everything pending goes out
        // in one write and one sync, which covers `ticket` (submitted before this).
        q.busy = true;
        let deadline = Instant::now() + self.gather_max;
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
        let upto = (q.submitted, q.submissions);
        q.last_batch = upto.1 - q.durable_submissions;
        let records = upto.0 - self.durable.load(Ordering::Acquire);
        drop(q);
        let result = flush(&mut self.io.lock(), &batch, records);
        let mut q = self.queue.lock();
        if q.pending.capacity() == 0 {
            q.pending = batch;
            q.pending.clear();
        }
        match &result {
            Ok(()) => self.mark_durable(&mut q, upto),
            Err(e) => self.poison(&mut q, e),
        }
        self.release(q);
        result
    }

    /// Takes the I/O role once no one else holds it, flushes everything pending with
    /// `flush` (a failure there poisons), then runs `f` alone. Nothing is written by others
    /// until `f` returns.
    pub fn exclusive<R>(
        &self,
        flush: impl Fn(&mut W, &[u8], u64) -> Result<()>,
        f: impl FnOnce(&mut W) -> Result<R, Failed>,
    ) -> Result<R> {
        let mut q = self.queue.lock();
        loop {
            q.check()?;
            if !q.busy {
                break;
            }
            self.sleep(q);
            q = self.queue.lock();
        }
        let batch = std::mem::take(&mut q.pending);
        let upto = (q.submitted, q.submissions);
        let records = upto.0 - self.durable.load(Ordering::Acquire);
        q.busy = true;
        drop(q);
        let result = {
            let mut io = self.io.lock();
            let flushed = if batch.is_empty() {
                Ok(())
            } else {
                flush(&mut io, &batch, records)
            };
            match flushed {
                Ok(()) => {
                    self.mark_durable(&mut self.queue.lock(), upto);
                    f(&mut io)
                }
                Err(error) => Err(Failed {
                    error,
                    poisons: true,
                }),
            }
        };
        let mut q = self.queue.lock();
        if let Err(Failed {
            error,
            poisons: true,
        }) = &result
        {
            self.poison(&mut q, error);
        }
        self.release(q);
        result.map_err(|f| f.error)
    }

    /// Unlocks `q` and sleeps until the I/O role, which the caller saw held, is released.
    fn sleep(&self, q: MutexGuard<'_, Queue>) {
        let seen = self.released.generation();
        drop(q);
        self.released.wait_past(seen);
    }

    /// Records that every ticket up to `upto` (tickets, submissions) is durable.
    fn mark_durable(&self, q: &mut Queue, (tickets, submissions): (u64, u64)) {
        q.durable_submissions = submissions;
        self.durable.store(tickets, Ordering::Release);
    }

    /// Poisons the group with `error` (the first poison stays): every later call fails.
    fn poison(&self, q: &mut Queue, error: &Error) {
        let kind = match error {
            Error::Io { source, .. } => source.kind(),
            _ => io::ErrorKind::Other,
        };
        q.poison.get_or_insert((kind, error.to_string()));
        self.poisoned.store(true, Ordering::Release);
    }

    /// Gives up the I/O role (held by the caller) and wakes every sleeper at once.
    fn release(&self, mut q: MutexGuard<'_, Queue>) {
        q.busy = false;
        drop(q);
        self.released.advance();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Polls `done` every millisecond for at most 10 s and fails the test with `what` when
    /// it never holds. A watchdog for a wait that should end at once, not a measure of speed.
    fn until(what: &str, done: impl Fn() -> bool) {
        let end = Instant::now() + Duration::from_secs(10);
        while !done() {
            assert!(Instant::now() < end, "after 10 s, still not: {what}");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// The gather, without its clock: leaders here may wait 30 s, so what ends each wait is
    /// the count of submissions, and a wait that misses it fails the watchdog.
    #[test]
    fn a_leader_gathers_as_many_submissions_as_the_last_flush_covered() {
        let group = Group::gathering_at_most(Vec::new(), Duration::from_secs(30));
        // Each flush records how many records it covered.
        let flush = |flushes: &mut Vec<u64>, _: &[u8], records: u64| {
            flushes.push(records);
            Ok(())
        };
        // A lone writer does not gather (no flush covered anyone before).
        let mut ticket = group.submit(b"a", 1).unwrap();
        group.wait(ticket, flush).unwrap();
        // The leader of three pending submissions, after a flush of one, does not wait;
        // the next leader then expects three.
        for _ in 0..3 {
            ticket = group.submit(b"b", 1).unwrap();
        }
        group.wait(ticket, flush).unwrap();
        std::thread::scope(|s| {
            let leader = s.spawn(|| {
                let ticket = group.submit(b"c", 1)?;
                group.wait(ticket, flush)
            });
            until("the leader gathers", || group.queue.lock().gathering);
            group.submit(b"d", 1).unwrap();
            let last = group.submit(b"e", 1).unwrap();
            until("the leader flushed the three submissions", || {
                group.durable.load(Ordering::Acquire) >= last.0
            });
            leader.join().unwrap().unwrap();
        });
        assert_eq!(
            *group.io.lock(),
            vec![1, 3, 3],
            "records covered by each flush"
        );
    }
}
