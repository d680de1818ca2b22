//! The snapshotter's and the journal's locking under randomized schedules (shuttle).
//!
//! In a build with `RUSTFLAGS="--cfg shuttle"`, `src/sync.rs` puts shuttle's `Mutex`,
//! `RwLock` and `Condvar` behind the crate's locks, so shuttle decides which thread runs at
//! every lock, unlock, wait and notify: a deadlock is reported as a failure with the schedule
//! that caused it, and every scenario below is checked on thousands of interleavings.
//! File I/O is real (a fresh root per iteration, on `/dev/shm` where it exists, else under
//! `CARGO_TARGET_TMPDIR`) but not modelled: only the threads and the primitives are.
//!
//! Scenarios: Prepare of one key from three threads (one winner, AlreadyExists for the rest,
//! no directory left behind); Commit racing Removes of its parent; Cleanup racing Prepares,
//! a View and a Remove (every live snapshot keeps its directories); Stat, Usage and Mounts
//! inside a Walk callback while other threads write (no deadlock); group commit of a
//! `LogJournal` over `SimFs` (every record present, each thread's in its own order);
//! and mixed writes on a snapshotter over that log journal (the published state equals what
//! the journal recovers). After each scenario the journal's state must equal the listing the
//! snapshotter publishes.
//!
//! Run (a separate target dir, since the cfg changes every crate's build):
//! ```text
//! RUSTFLAGS="--cfg shuttle" cargo test --target-dir target/shuttle --test shuttle_snapshotter
//! ```
//! `SHUTTLE_ITERATIONS` sets the iterations per scheduler run (default 300); each scenario
//! runs two seeded random schedulers and one seeded PCT scheduler (depth 3), so the default
//! is 900 iterations per scenario. Each scenario prints the number it ran. The test ignored
//! as a bug runs with `-- --ignored`.
//!
//! Limits. Shuttle switches threads only at its own operations, so a window between an
//! unlock and a file-system call is never interleaved: for example, Cleanup listing
//! `ROOT/snapshots` just after (instead of while) holding the writer lock would pass here
//! (only real-thread races, as in `snapshotter_concurrency.rs`, can hit such windows). A
//! group-commit leader that does not wait for a busy one, and a Walk that holds the read
//! lock across its callback, are both caught within a few iterations. The library spawns a
//! thread of its own only in the mount helper (a mount whose data does not fit a page);
//! nothing here mounts, so every thread is shuttle's.

#[cfg(not(shuttle))]
#[test]
fn shuttle_scenarios_need_the_shuttle_cfg() {
    println!(
        "tests/shuttle_snapshotter.rs runs in a shuttle build only: RUSTFLAGS=\"--cfg shuttle\" \
         cargo test --target-dir target/shuttle --test shuttle_snapshotter"
    );
}

#[cfg(shuttle)]
mod scenarios {
    use overlaysnap::core::Checkpoint;
    use overlaysnap::core::{Command, Filter, Info, Kind, Labels, State, Timestamp};
    use overlaysnap::fs::SimFs;
    use overlaysnap::journal::{
        Journal, LogJournal, MemoryJournal, ReadBack, Replay, Store, Ticket,
    };
    use overlaysnap::{ErrorKind, MemoryBackend, Options, Result, Snapshotter};
    use shuttle::scheduler::{PctScheduler, RandomScheduler, Scheduler};
    use shuttle::{Config, Runner};
    use std::collections::BTreeSet;
    use std::fs;
    use std::path::Path;
    use std::sync::Arc;

    const RANDOM_SEEDS: [u64; 2] = [0x5eed_0001, 0x5eed_0002];
    const PCT_SEED: u64 = 0x5eed_0003;
    const PCT_DEPTH: usize = 3;

    /// Iterations per scheduler run: `SHUTTLE_ITERATIONS`, else 300.
    fn iterations() -> usize {
        std::env::var("SHUTTLE_ITERATIONS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(300)
    }

    /// Runs `scenario` under the seeded schedulers and prints how many iterations ran.
    fn explore(name: &str, scenario: impl Fn() + Send + Sync + 'static) {
        let mut config = Config::new();
        // Debug builds of the snapshotter's calls need more than shuttle's default 60 KiB.
        config.stack_size = 1 << 20;
        let scenario = Arc::new(scenario);
        let n = iterations();
        let mut total = 0;
        for seed in RANDOM_SEEDS {
            let scheduler = RandomScheduler::new_from_seed(seed, n);
            total += run(scheduler, &config, &scenario);
        }
        let scheduler = PctScheduler::new_from_seed(PCT_SEED, PCT_DEPTH, n);
        total += run(scheduler, &config, &scenario);
        println!("{name}: {total} shuttle iterations");
    }

    fn run<S, F>(scheduler: S, config: &Config, scenario: &Arc<F>) -> usize
    where
        S: Scheduler + 'static,
        F: Fn() + Send + Sync + 'static,
    {
        let scenario = Arc::clone(scenario);
        Runner::new(scheduler, config.clone()).run(move || scenario())
    }

    /// A journal shared with the test, so that it can read the records back.
    struct Shared<J>(Arc<J>);

    impl<J: Journal> Journal for Shared<J> {
        fn submit(&self, records: &[overlaysnap::core::Record]) -> Result<Ticket> {
            self.0.submit(records)
        }
        fn wait(&self, ticket: Ticket) -> Result<()> {
            self.0.wait(ticket)
        }
        fn read_back(&self, into: &mut dyn Replay) -> Result<ReadBack> {
            self.0.read_back(into)
        }
        fn checkpoint(&self, checkpoint: &Checkpoint) -> Result<()> {
            self.0.checkpoint(checkpoint)
        }
    }

    /// A journal directory on the simulated disk `disk`.
    fn sim_store(disk: &SimFs) -> Store {
        Store::open(Arc::new(disk.clone()), "/journal").unwrap()
    }

    /// A snapshotter on a fresh root over a journal the test can read.
    struct Fixture<J> {
        sn: Snapshotter,
        journal: Arc<J>,
        _dir: tempfile::TempDir,
    }

    /// A fresh root on tmpfs when there is one: Commit's syncfs of a disk costs tens of
    /// milliseconds, which would bound the iterations more than shuttle does.
    fn fresh_root() -> tempfile::TempDir {
        let shm = Path::new("/dev/shm");
        let parent = if shm.is_dir() {
            shm
        } else {
            Path::new(env!("CARGO_TARGET_TMPDIR"))
        };
        tempfile::Builder::new()
            .prefix("overlaysnap-shuttle-")
            .tempdir_in(parent)
            .unwrap()
    }

    /// Over a memory journal, as `MemoryBackend` opens it.
    fn memory(sync_remove: bool) -> Fixture<MemoryJournal> {
        with_journal(MemoryJournal::new(), sync_remove)
    }

    /// Over the real log journal on a simulated disk (group commit inside the snapshotter).
    fn logged(sync_remove: bool) -> Fixture<LogJournal> {
        let (journal, _) = LogJournal::open(sim_store(&SimFs::new())).unwrap();
        with_journal(journal, sync_remove)
    }

    fn with_journal<J: Journal + 'static>(journal: J, sync_remove: bool) -> Fixture<J> {
        let dir = fresh_root();
        let journal = Arc::new(journal);
        let recovery = journal.recover().unwrap();
        let options = Options {
            sync_remove,
            journal: Arc::new(MemoryBackend),
            checkpoint_every: 0,
            ..Options::default()
        };
        let sn = Snapshotter::open_with_journal(
            dir.path(),
            options,
            Box::new(Shared(Arc::clone(&journal))),
            recovery,
        )
        .unwrap();
        Fixture {
            sn,
            journal,
            _dir: dir,
        }
    }

    impl<J: Journal> Fixture<J> {
        /// What the journal holds.
        fn recovered(&self) -> State {
            self.journal.recover().unwrap().state
        }

        /// The names in `ROOT/snapshots`.
        fn entries(&self) -> BTreeSet<String> {
            fs::read_dir(self.sn.root().join("snapshots"))
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect()
        }

        /// Once every thread is done: the published listing equals the journal's state,
        /// every live snapshot has its directories, and after Cleanup `ROOT/snapshots`
        /// holds exactly the live ones.
        fn assert_quiescent(&self) {
            let state = self.recovered();
            let listing = walk(&self.sn);
            let recorded: Vec<Info> = state
                .walk(&Filter::parse_all::<&str>(&[]).unwrap())
                .collect();
            assert_eq!(listing, recorded, "published listing vs journal");
            let live: BTreeSet<String> = state.id_map().keys().map(u64::to_string).collect();
            for (id, key) in state.id_map() {
                let dir = self.sn.root().join("snapshots").join(id.to_string());
                assert!(dir.join("fs").is_dir(), "{key} ({id}) lost its fs");
                // A committed snapshot keeps the work directory it had when Active.
                let view = state.get(key).unwrap().kind == Kind::View;
                assert_eq!(dir.join("work").is_dir(), !view, "work of {key} ({id})");
            }
            self.sn.cleanup().unwrap();
            assert_eq!(self.entries(), live, "ROOT/snapshots after Cleanup");
        }
    }

    fn walk(sn: &Snapshotter) -> Vec<Info> {
        let mut out = Vec::new();
        sn.walk(&[], |info| {
            out.push(info);
            Ok(())
        })
        .unwrap();
        out
    }

    fn none() -> Labels {
        Labels::new()
    }

    fn kind<T>(r: Result<T>) -> std::result::Result<(), ErrorKind> {
        r.map(drop).map_err(|e| e.kind())
    }

    /// Commits `name` with no parent.
    fn base<J>(fx: &Fixture<J>, name: &str) {
        let key = format!("{name}-key");
        fx.sn.prepare(&key, None, none()).unwrap();
        fx.sn.commit(name, &key, none()).unwrap();
    }

    /// Three threads Prepare one key (two above a parent): exactly one wins, the others get
    /// AlreadyExists, and no directory of a loser is left behind, before or after Cleanup.
    #[test]
    fn prepare_of_one_key_has_one_winner() {
        explore("prepare_of_one_key_has_one_winner", || {
            let fx = memory(false);
            base(&fx, "base");
            let results: Vec<_> = shuttle::thread::scope(|s| {
                let handles: Vec<_> = (0..3)
                    .map(|t| {
                        let sn = &fx.sn;
                        s.spawn(move || kind(sn.prepare("k", (t > 0).then_some("base"), none())))
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).collect()
            });
            assert_eq!(
                results.iter().filter(|r| r.is_ok()).count(),
                1,
                "{results:?}"
            );
            assert!(
                results
                    .iter()
                    .all(|r| matches!(r, Ok(()) | Err(ErrorKind::AlreadyExists))),
                "{results:?}"
            );
            let live: BTreeSet<String> =
                fx.recovered().id_map().keys().map(u64::to_string).collect();
            assert_eq!(fx.entries(), live, "a loser left a directory");
            fx.assert_quiescent();
        });
    }

    /// A refusal must not reveal a record that readers cannot see yet: a thread that got
    /// AlreadyExists for `k` (and nobody removes `k`) must then find `k` with Stat.
    ///
    /// Fails: `execute` decides against the writer's state, which holds records submitted
    /// but not yet published (nor, with a log journal, durable), and returns a refusal at
    /// once, without waiting for the records it was decided against. A Stat right after it
    /// reads `visible` and can still answer NotFound; after a crash in that window the
    /// record can be lost, though a caller was told it exists.
    #[test]
    fn already_exists_is_seen_by_a_stat_after_it() {
        fn scenario<J: Journal>(fx: Fixture<J>) {
            shuttle::thread::scope(|s| {
                for _ in 0..2 {
                    s.spawn(|| {
                        if let Err(e) = fx.sn.prepare("k", None, none()) {
                            assert_eq!(e.kind(), ErrorKind::AlreadyExists);
                            assert_eq!(
                                kind(fx.sn.stat("k")),
                                Ok(()),
                                "Prepare said AlreadyExists, then Stat did not find the key"
                            );
                        }
                    });
                }
            });
        }
        explore("already_exists_is_seen_by_a_stat_after_it (memory)", || {
            scenario(memory(false))
        });
        explore("already_exists_is_seen_by_a_stat_after_it (log)", || {
            scenario(logged(false))
        });
    }

    /// Commit of `c` (above `base`) races Removes of its parent and of the committed name:
    /// `base` can go only after `C` has gone, `C` only after the commit, and a Walk never
    /// sees `c` and `C` together, nor a child without its parent.
    #[test]
    fn commit_races_remove_of_its_parent() {
        explore("commit_races_remove_of_its_parent", || {
            let fx = memory(true);
            base(&fx, "base");
            fx.sn.prepare("c", Some("base"), none()).unwrap();
            let (commit, removes, listings) = shuttle::thread::scope(|s| {
                let commit = s.spawn(|| kind(fx.sn.commit("C", "c", none())));
                let removes = s.spawn(|| {
                    [
                        kind(fx.sn.remove("base")),
                        kind(fx.sn.remove("C")),
                        kind(fx.sn.remove("base")),
                    ]
                });
                let listings = s.spawn(|| [walk(&fx.sn), walk(&fx.sn)]);
                (
                    commit.join().unwrap(),
                    removes.join().unwrap(),
                    listings.join().unwrap(),
                )
            });
            assert_eq!(commit, Ok(()));
            assert_eq!(removes[0], Err(ErrorKind::FailedPrecondition));
            match removes[1] {
                Ok(()) => assert_eq!(removes[2], Ok(())),
                Err(ErrorKind::NotFound) => {
                    assert_eq!(removes[2], Err(ErrorKind::FailedPrecondition))
                }
                other => panic!("Remove of C: {other:?}"),
            }
            for listing in listings {
                let names: BTreeSet<&str> = listing.iter().map(|i| i.name.as_str()).collect();
                assert!(!(names.contains("c") && names.contains("C")), "{names:?}");
                for info in &listing {
                    if let Some(p) = &info.parent {
                        assert!(names.contains(p.as_str()), "{} without {p}", info.name);
                    }
                }
            }
            let names: Vec<String> = walk(&fx.sn).into_iter().map(|i| i.name).collect();
            let expected: &[&str] = if removes[2].is_ok() {
                &[]
            } else {
                &["C", "base"]
            };
            assert_eq!(names, expected);
            fx.assert_quiescent();
        });
    }

    /// Cleanup (twice) races Prepares, a View and a Prepare+Remove, with garbage of a dead
    /// process and of an earlier Remove lying around: every snapshot that exists afterwards
    /// has its directories, and Cleanup then leaves exactly the live ones.
    #[test]
    fn cleanup_spares_operations_in_flight() {
        explore("cleanup_spares_operations_in_flight", || {
            let fx = memory(false);
            base(&fx, "base");
            fx.sn.prepare("old", None, none()).unwrap();
            fx.sn.remove("old").unwrap();
            let snapshots = fx.sn.root().join("snapshots");
            fs::create_dir_all(snapshots.join("new-stale/fs")).unwrap();
            fs::create_dir_all(snapshots.join("rm-stale/fs")).unwrap();
            shuttle::thread::scope(|s| {
                s.spawn(|| {
                    fx.sn.prepare("k", None, none()).unwrap();
                    fx.sn.prepare("k2", Some("base"), none()).unwrap();
                });
                s.spawn(|| {
                    fx.sn.view("v", Some("base"), none()).unwrap();
                    fx.sn.prepare("x", None, none()).unwrap();
                    fx.sn.remove("x").unwrap();
                });
                s.spawn(|| {
                    fx.sn.cleanup().unwrap();
                    fx.sn.cleanup().unwrap();
                });
            });
            let names: Vec<String> = walk(&fx.sn).into_iter().map(|i| i.name).collect();
            assert_eq!(names, ["base", "k", "k2", "v"]);
            fx.assert_quiescent();
        });
    }

    /// A Walk callback calls Stat, Usage and Mounts (and Update) while other threads
    /// Prepare, Commit, Remove and Update: no deadlock, and every answer is one the
    /// listing's snapshot can have had since (found, or gone).
    #[test]
    fn calls_inside_walk_while_others_write() {
        explore("calls_inside_walk_while_others_write", || {
            let fx = memory(true);
            base(&fx, "base");
            fx.sn.prepare("a", Some("base"), none()).unwrap();
            shuttle::thread::scope(|s| {
                s.spawn(|| {
                    let mut seen = Vec::new();
                    fx.sn
                        .walk(&[], |info| {
                            let name = info.name.as_str();
                            let gone = |r: std::result::Result<(), ErrorKind>| {
                                matches!(r, Ok(()) | Err(ErrorKind::NotFound))
                            };
                            assert!(gone(kind(fx.sn.stat(name))), "stat {name}");
                            assert!(gone(kind(fx.sn.usage(name))), "usage {name}");
                            let mounts = kind(fx.sn.mounts(name));
                            assert!(
                                gone(mounts) || mounts == Err(ErrorKind::FailedPrecondition),
                                "mounts {name}: {mounts:?}"
                            );
                            let labels: Labels = [("w".into(), "1".into())].into();
                            let fields = ["labels.w".to_owned()];
                            assert!(gone(kind(fx.sn.update(name, labels, &fields))));
                            seen.push(info.name);
                            Ok(())
                        })
                        .unwrap();
                    assert!(seen.windows(2).all(|w| w[0] < w[1]), "{seen:?}");
                });
                s.spawn(|| {
                    fx.sn.prepare("b", Some("base"), none()).unwrap();
                    fx.sn.commit("B", "b", none()).unwrap();
                    fx.sn.remove("a").unwrap();
                });
                s.spawn(|| {
                    let labels: Labels = [("l".into(), "v".into())].into();
                    fx.sn
                        .update("base", labels, &["labels.l".to_owned()])
                        .unwrap();
                    fx.sn
                        .walk(&["kind==active".to_owned()], |_| Ok(()))
                        .unwrap();
                });
            });
            fx.assert_quiescent();
        });
    }

    const WRITERS: usize = 3;
    const PER_WRITER: usize = 2;

    /// Group commit: writers decide and submit under a state lock (as the snapshotter
    /// does) and wait outside it, one of them checkpointing: every record is present after
    /// recovery and after a reopen, each writer's ids in its own order.
    #[test]
    fn group_commit_keeps_every_record_in_order() {
        explore("group_commit_keeps_every_record_in_order", || {
            let disk = SimFs::new();
            let (journal, _) = LogJournal::open(sim_store(&disk)).unwrap();
            let live = shuttle::sync::Mutex::new(State::new());
            shuttle::thread::scope(|s| {
                for t in 0..WRITERS {
                    let (live, journal) = (&live, &journal);
                    s.spawn(move || {
                        for i in 0..PER_WRITER {
                            let ticket = {
                                let mut state = live.lock().unwrap();
                                let cmd = Command::Prepare {
                                    key: format!("t{t}-{i}"),
                                    parent: None,
                                    labels: none(),
                                    now: Timestamp::new(1_700_000_000, 0),
                                };
                                let record = state.decide(&cmd).unwrap();
                                let ticket = journal.submit(std::slice::from_ref(&record)).unwrap();
                                state.apply(&record);
                                if t == 0 && i == 0 {
                                    journal.checkpoint(&state.checkpoint()).unwrap();
                                }
                                ticket
                            };
                            journal.wait(ticket).unwrap();
                        }
                    });
                }
            });
            let live = live.into_inner().unwrap();
            assert_eq!(live.len(), WRITERS * PER_WRITER);
            for t in 0..WRITERS {
                let ids: Vec<u64> = (0..PER_WRITER)
                    .map(|i| live.get(&format!("t{t}-{i}")).unwrap().id)
                    .collect();
                assert!(ids.windows(2).all(|w| w[0] < w[1]), "writer {t}: {ids:?}");
            }
            assert_eq!(journal.recover().unwrap().state, live);
            drop(journal);
            assert_eq!(LogJournal::open(sim_store(&disk)).unwrap().1.state, live);
        });
    }

    /// Mixed writes on a snapshotter over the log journal (group commit, the three locks
    /// and publication together): afterwards the published state is what the journal
    /// recovers.
    #[test]
    fn writes_over_the_log_journal_publish_what_is_durable() {
        explore(
            "writes_over_the_log_journal_publish_what_is_durable",
            || {
                let fx = logged(false);
                base(&fx, "base");
                shuttle::thread::scope(|s| {
                    s.spawn(|| {
                        fx.sn.prepare("a", Some("base"), none()).unwrap();
                        fx.sn.commit("A", "a", none()).unwrap();
                    });
                    s.spawn(|| {
                        fx.sn.prepare("b", None, none()).unwrap();
                        fx.sn.remove("b").unwrap();
                    });
                    s.spawn(|| {
                        let r = kind(fx.sn.prepare("c", Some("A"), none()));
                        assert!(matches!(r, Ok(()) | Err(ErrorKind::NotFound)), "{r:?}");
                        let labels: Labels = [("l".into(), "v".into())].into();
                        fx.sn.update("base", labels, &[]).unwrap();
                    });
                });
                fx.assert_quiescent();
            },
        );
    }
}
