//! A flush shared by concurrent callers: a caller is covered by any flush that *started*
//! after it arrived, so callers arriving while one flush runs share the next one.
//!
//! Used for the `syncfs` that makes a layer durable before its Commit: syncfs covers the
//! whole file system, so one call made after a caller's writes serves every caller that
//! arrived before it began. Without sharing, eight concurrent Commits make eight syncfs
//! calls that the kernel only partly merges; with it they make one or two.
//!
//! Invariants, under the lock: `ok` and the generation of `failed` never exceed `started`;
//! at most one flush runs (`running`). A caller arriving when `started` is `s` needs
//! generation `s + 1` or later, because generation `s` (if running) may have begun before
//! the caller's writes.

use crate::error::{Error, Result};
use crate::sync::{Condvar, Mutex};
use std::io;

/// See the module documentation.
#[derive(Default)]
pub(crate) struct SharedFlush {
    state: Mutex<Generations>,
    finished: Condvar,
}

#[derive(Default)]
struct Generations {
    /// Flushes started so far; the newest one's generation.
    started: u64,
    /// Whether a flush is running.
    running: bool,
    /// The newest generation that succeeded (0: none).
    ok: u64,
    /// The newest generation that failed, with its error's kind and message.
    failed: Option<(u64, io::ErrorKind, String)>,
}

impl SharedFlush {
    /// Returns once a flush that started after this call was made has finished: runs
    /// `flush` itself when none is running, or waits for the next one. A failed flush fails
    /// every caller it was to cover (with the same message), unless a later flush, also
    /// started after the caller arrived, succeeded.
    pub(crate) fn run(&self, flush: impl FnOnce() -> Result<()>) -> Result<()> {
        let mut state = self.state.lock();
        let needed = state.started + 1;
        loop {
            if state.ok >= needed {
                return Ok(());
            }
            if let Some((generation, kind, why)) = &state.failed {
                if *generation >= needed {
                    return Err(Error::io(
                        "a shared flush failed",
                        io::Error::new(*kind, why.clone()),
                    ));
                }
            }
            if !state.running {
                break;
            }
            self.finished.wait(&mut state);
        }
        state.running = true;
        state.started += 1;
        let generation = state.started;
        drop(state);
        let result = flush();
        let mut state = self.state.lock();
        state.running = false;
        match &result {
            Ok(()) => state.ok = generation,
            Err(e) => state.failed = Some((generation, io_kind(e), e.to_string())),
        }
        drop(state);
        self.finished.notify_all();
        result
    }
}

/// The I/O error kind of `e`, for the callers that share its flush.
fn io_kind(e: &Error) -> io::ErrorKind {
    match e {
        Error::Io { source, .. } => source.kind(),
        _ => io::ErrorKind::Other,
    }
}

#[cfg(all(test, not(shuttle)))]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{mpsc, Arc};
    use std::thread;
    use std::time::Duration;

    /// Runs a flush on another thread that stays running until the returned sender
    /// sends; returns once it runs, and fails the test if it has not after 10 s.
    fn running_flush(shared: &Arc<SharedFlush>, flushes: &Arc<AtomicUsize>) -> mpsc::Sender<()> {
        let (release, released) = mpsc::channel::<()>();
        let (started, has_started) = mpsc::channel();
        let (shared, flushes) = (shared.clone(), flushes.clone());
        thread::spawn(move || {
            shared
                .run(|| {
                    flushes.fetch_add(1, Ordering::SeqCst);
                    started.send(()).unwrap();
                    released.recv().unwrap();
                    Ok(())
                })
                .unwrap();
        });
        has_started
            .recv_timeout(Duration::from_secs(10))
            .expect("a lone call runs its flush");
        release
    }

    #[test]
    fn calls_one_after_another_flush_each_time() {
        // On a thread of their own, so that a call waiting for a flush that nobody runs
        // fails the test (after 10 s) instead of hanging it.
        let (done, finished) = mpsc::channel();
        thread::spawn(move || {
            let shared = SharedFlush::default();
            let mut flushes = 0;
            for _ in 0..3 {
                shared
                    .run(|| {
                        flushes += 1;
                        Ok(())
                    })
                    .unwrap();
            }
            done.send(flushes).unwrap();
        });
        let flushes = finished
            .recv_timeout(Duration::from_secs(10))
            .expect("three lone calls return");
        assert_eq!(flushes, 3);
    }

    // The running flush may have begun before the callers' writes: they share the next.
    #[test]
    fn callers_arriving_during_a_flush_share_the_next_one() {
        let shared = Arc::new(SharedFlush::default());
        let flushes = Arc::new(AtomicUsize::new(0));
        let release = running_flush(&shared, &flushes);
        let callers: Vec<_> = (0..4)
            .map(|_| {
                let (shared, flushes) = (shared.clone(), flushes.clone());
                thread::spawn(move || {
                    shared.run(|| {
                        flushes.fetch_add(1, Ordering::SeqCst);
                        Ok(())
                    })
                })
            })
            .collect();
        // Let every caller arrive and wait; only then may the first flush end.
        thread::sleep(Duration::from_millis(200));
        assert_eq!(
            flushes.load(Ordering::SeqCst),
            1,
            "no caller used the running flush"
        );
        release.send(()).unwrap();
        for caller in callers {
            caller.join().unwrap().unwrap();
        }
        assert_eq!(flushes.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn a_failed_flush_fails_the_callers_it_covered() {
        let shared = Arc::new(SharedFlush::default());
        let flushes = Arc::new(AtomicUsize::new(0));
        let release = running_flush(&shared, &flushes);
        let callers: Vec<_> = (0..2)
            .map(|_| {
                let (shared, flushes) = (shared.clone(), flushes.clone());
                thread::spawn(move || {
                    shared.run(|| {
                        flushes.fetch_add(1, Ordering::SeqCst);
                        Err(Error::io(
                            "syncfs",
                            io::Error::from(io::ErrorKind::StorageFull),
                        ))
                    })
                })
            })
            .collect();
        thread::sleep(Duration::from_millis(200));
        release.send(()).unwrap();
        // One of them ran the failing flush; the other shared it and fails the same way.
        for caller in callers {
            match caller.join().unwrap() {
                Err(Error::Io { source, .. }) => {
                    assert_eq!(source.kind(), io::ErrorKind::StorageFull)
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(flushes.load(Ordering::SeqCst), 2);
        // A later caller is not covered by the failure: it flushes again.
        shared.run(|| Ok(())).unwrap();
    }
}
