//! [`Beacon`]: a counter that threads sleep on until it moves, so that one call wakes
//! every sleeper at once, with no lock for them to take on the way out.
//!
//! The protocol: a waiter reads [`Beacon::generation`] while it holds the lock that guards
//! its condition and sees the condition false, releases that lock, then calls
//! [`Beacon::wait_past`]. Whoever makes the condition true calls [`Beacon::advance`] after
//! making it so (holding the lock or not). Since the waiter read the generation before the
//! change and `advance` moves it after, no wake-up is lost. `wait_past` returns only once
//! the generation has moved; the waiter then re-checks its condition, which another
//! thread may have made false again.
//!
//! A normal build sleeps on a futex on the counter itself (`advance` is one `FUTEX_WAKE`
//! for all sleepers); a shuttle build uses the shim's mutex and condition variable, so
//! that shuttle schedules the sleep and the wake-up.

#[cfg(not(shuttle))]
pub(crate) use futex::Beacon;
#[cfg(shuttle)]
pub(crate) use shuttled::Beacon;

#[cfg(not(shuttle))]
mod futex {
    use rustix::thread::futex::{self, Flags};
    use std::sync::atomic::{AtomicU32, Ordering};

    /// See the module documentation.
    #[derive(Debug, Default)]
    pub(crate) struct Beacon {
        /// Moves by one per [`Beacon::advance`], wrapping: a sleeper would have to sleep
        /// through 2^32 advances to miss one.
        generation: AtomicU32,
    }

    impl Beacon {
        /// The current generation, to pass to [`Beacon::wait_past`].
        pub(crate) fn generation(&self) -> u32 {
            self.generation.load(Ordering::Acquire)
        }

        /// Sleeps until the generation is no longer `seen`.
        pub(crate) fn wait_past(&self, seen: u32) {
            while self.generation.load(Ordering::Acquire) == seen {
                // EAGAIN (it moved before the sleep) and EINTR are re-checked by the loop.
                let _ = futex::wait(&self.generation, Flags::PRIVATE, seen, None);
            }
        }

        /// Moves the generation and wakes every thread sleeping in [`Beacon::wait_past`].
        pub(crate) fn advance(&self) {
            self.generation.fetch_add(1, Ordering::Release);
            // The kernel reads the count as an int: i32::MAX is "all" (u32::MAX would be -1,
            // which wakes one). Cannot fail on a valid address; it returns how many woke.
            let _ = futex::wake(&self.generation, Flags::PRIVATE, i32::MAX as u32);
        }
    }
}

#[cfg(shuttle)]
mod shuttled {
    use crate::sync::{Condvar, Mutex};

    /// See the module documentation.
    #[derive(Default)]
    pub(crate) struct Beacon {
        generation: Mutex<u32>,
        moved: Condvar,
    }

    impl Beacon {
        /// The current generation, to pass to [`Beacon::wait_past`].
        pub(crate) fn generation(&self) -> u32 {
            *self.generation.lock()
        }

        /// Sleeps until the generation is no longer `seen`.
        pub(crate) fn wait_past(&self, seen: u32) {
            let mut generation = self.generation.lock();
            while *generation == seen {
                self.moved.wait(&mut generation);
            }
        }

        /// Moves the generation and wakes every thread sleeping in [`Beacon::wait_past`].
        pub(crate) fn advance(&self) {
            let mut generation = self.generation.lock();
            *generation = generation.wrapping_add(1);
            self.moved.notify_all();
        }
    }
}
