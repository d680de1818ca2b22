//! The snapshotter shared across threads, against real directories and mounts: Prepare of
//! one key from 2 and 8 threads (one winner, AlreadyExists for the rest, no directory
//! left behind), Cleanup racing Prepares, Views and Removes (no successful Prepare loses
//! its directory), Walk callbacks that call back into the snapshotter (no deadlock),
//! Commit racing Remove of the parent and of the key itself, calls racing a Remove of
//! their own key (a call that took effect must not report failure), and 8 threads of
//! Prepare/Commit whose final state is exactly what a reopen recovers.
//!
//! Nothing here measures time: each race runs a bounded number of rounds, and a deadlock
//! shows as a hung test.

mod snapshotter_support;

use overlaysnap::core::{Kind, Labels};
use overlaysnap::{ErrorKind, MemoryBackend, Options, Snapshotter};
use rstest::rstest;
use snapshotter_support::*;
use std::collections::BTreeMap;
use std::fs;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::thread;

fn labelled(sync_remove: bool) -> Options {
    Options {
        sync_remove,
        upperdir_label: true,
        ..Options::default()
    }
}

/// Mounts the Active or View `key` at a fresh target, writes (Active) or reads, unmounts.
fn assert_mountable(sn: &Snapshotter, scratch: &Scratch, key: &str) {
    let mounts = sn
        .mounts(key)
        .unwrap_or_else(|e| panic!("mounts of {key}: {e}"));
    let m = Mounted::try_new(&mounts, &scratch.temp_work("m"))
        .unwrap_or_else(|e| panic!("{key} is not mountable ({mounts:?}): {e}"));
    if sn.stat(key).unwrap().kind == Kind::Active {
        fs::write(m.join("written-after-the-race"), key).unwrap();
    } else {
        fs::read_dir(m.path()).unwrap().for_each(drop);
    }
    m.unmount();
}

/// `threads` threads Prepare one key at once, round after round (with and without a
/// parent): exactly one succeeds, the others get AlreadyExists, the winner's mounts
/// mount, and after Cleanup only live directories are left.
#[rstest]
fn prepare_of_one_key_from_many_threads(
    #[values(2, 8)] threads: usize,
    #[values(false, true)] sync_remove: bool,
) {
    if !root_or_skip("prepare_of_one_key_from_many_threads") {
        return;
    }
    let scratch = Scratch::new("same-key");
    let root = scratch.root();
    let sn = open(&root, labelled(sync_remove));
    sn.prepare("base-a", None, gc_root()).unwrap();
    sn.commit("base", "base-a", gc_root()).unwrap();
    let rounds = 12;
    for round in 0..rounds {
        let key = format!("k{round}");
        let parent = (round % 2 == 1).then_some("base");
        let barrier = Barrier::new(threads);
        let results: Vec<_> = thread::scope(|s| {
            let handles: Vec<_> = (0..threads)
                .map(|_| {
                    s.spawn(|| {
                        barrier.wait();
                        sn.prepare(&key, parent, Labels::new())
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let wins = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(wins, 1, "round {round}: {results:?}");
        for r in &results {
            if let Err(e) = r {
                assert_eq!(e.kind(), ErrorKind::AlreadyExists, "round {round}: {e}");
            }
        }
        let won = results.into_iter().find_map(Result::ok).unwrap();
        assert_eq!(won, sn.mounts(&key).unwrap());
        assert_mountable(&sn, &scratch, &key);
        // Alternate: keep the snapshot, or remove it and race for the key again.
        if round % 3 == 2 {
            sn.remove(&key).unwrap();
        }
    }
    sn.cleanup().unwrap();
    assert_entries_are(&root, ids(&sn).into_values(), "after the races and cleanup");
}

/// Cleanup runs in a loop while 4 threads Prepare, View, Commit and Remove: no
/// successful Prepare or View loses its directory (its mounts still mount afterwards),
/// and a final Cleanup leaves exactly the live directories.
#[rstest]
fn cleanup_racing_prepares(#[values(false, true)] sync_remove: bool) {
    if !root_or_skip("cleanup_racing_prepares") {
        return;
    }
    let scratch = Scratch::new("cleanup-race");
    let root = scratch.root();
    let sn = open(&root, labelled(sync_remove));
    sn.prepare("base-a", None, gc_root()).unwrap();
    sn.commit("base", "base-a", gc_root()).unwrap();
    let workers = 4;
    let per_worker = 25;
    let done = AtomicUsize::new(0);
    let cleanups = AtomicUsize::new(0);
    let created: Mutex<Vec<(String, Vec<overlaysnap::fs::Mount>)>> = Mutex::new(Vec::new());
    thread::scope(|s| {
        s.spawn(|| {
            // Bounded: stops when the workers are done, or after 100 000 rounds.
            for _ in 0..100_000 {
                if done.load(Ordering::Acquire) == workers {
                    break;
                }
                sn.cleanup().expect("cleanup");
                cleanups.fetch_add(1, Ordering::Relaxed);
            }
        });
        for w in 0..workers {
            let (sn, done, created) = (&sn, &done, &created);
            s.spawn(move || {
                for i in 0..per_worker {
                    let key = format!("w{w}-{i}");
                    let parent = (i % 2 == 0).then_some("base");
                    let mounts = if i % 3 == 0 {
                        sn.view(&key, parent, Labels::new())
                    } else {
                        sn.prepare(&key, parent, Labels::new())
                    }
                    .unwrap_or_else(|e| panic!("{key}: {e}"));
                    match i % 5 {
                        // Some go again at once: removing makes garbage for Cleanup.
                        4 => sn.remove(&key).unwrap(),
                        // Some actives are committed.
                        1 if i % 3 != 0 => {
                            sn.commit(&format!("{key}-c"), &key, Labels::new())
                                .unwrap_or_else(|e| panic!("commit {key}: {e}"));
                        }
                        _ => created.lock().unwrap().push((key, mounts)),
                    }
                }
                done.fetch_add(1, Ordering::Release);
            });
        }
    });
    println!(
        "{} cleanups ran during {} operations",
        cleanups.load(Ordering::Relaxed),
        workers * per_worker
    );
    for (key, mounts) in created.into_inner().unwrap() {
        assert_eq!(sn.mounts(&key).unwrap(), mounts, "{key}");
        assert_mountable(&sn, &scratch, &key);
    }
    sn.cleanup().unwrap();
    assert_entries_are(&root, ids(&sn).into_values(), "after the race and cleanup");
}

/// Walk callbacks call Stat, Usage, Mounts, Prepare, Update and Remove while two other
/// threads write: nothing deadlocks and every Stat agrees with the walked Info.
#[rstest]
fn walk_callbacks_call_back_in() {
    if !root_or_skip("walk_callbacks_call_back_in") {
        return;
    }
    let scratch = Scratch::new("walk-callbacks");
    let sn = open(&scratch.root(), labelled(false));
    sn.prepare("c1-a", None, gc_root()).unwrap();
    sn.commit("c1", "c1-a", gc_root()).unwrap();
    for i in 0..6 {
        sn.prepare(&format!("a{i}"), Some("c1"), gc_root()).unwrap();
        sn.view(&format!("v{i}"), Some("c1"), gc_root()).unwrap();
    }
    let stop = AtomicBool::new(false);
    thread::scope(|s| {
        for t in 0..2 {
            let (sn, stop) = (&sn, &stop);
            s.spawn(move || {
                let mut i = 0;
                while !stop.load(Ordering::Acquire) && i < 10_000 {
                    let key = format!("writer{t}-{i}");
                    sn.prepare(&key, Some("c1"), Labels::new()).unwrap();
                    sn.update(&key, labels(&[("x", "y")]), &[]).unwrap();
                    sn.remove(&key).unwrap();
                    i += 1;
                }
            });
        }
        for round in 0..5 {
            let mut seen = 0;
            sn.walk(&["name~=/^[av][0-9]/".to_string()], |info| {
                let again = sn.stat(&info.name)?;
                assert_eq!(again.kind, info.kind);
                assert_eq!(again.parent, info.parent);
                sn.usage(&info.name)?;
                sn.mounts(&info.name)?;
                let extra = format!("in-walk-{round}-{}", info.name);
                sn.prepare(&extra, Some("c1"), Labels::new())?;
                sn.update(&info.name, labels(&[("round", &round.to_string())]), &[])?;
                sn.remove(&extra)?;
                seen += 1;
                Ok(())
            })
            .unwrap();
            assert_eq!(seen, 12, "round {round}");
        }
        stop.store(true, Ordering::Release);
    });
    sn.cleanup().unwrap();
    assert_entries_are(&scratch.root(), ids(&sn).into_values(), "after walks");
}

/// Commit of a child races Remove of its parent, round after round: the parent always
/// has a child (active, then committed), so Remove always fails with FailedPrecondition,
/// the Commit always succeeds, and the committed child keeps its parent.
#[rstest]
fn commit_racing_remove_of_the_parent(#[values(false, true)] sync_remove: bool) {
    if !root_or_skip("commit_racing_remove_of_the_parent") {
        return;
    }
    let scratch = Scratch::new("commit-vs-remove-parent");
    let root = scratch.root();
    let sn = open(&root, labelled(sync_remove));
    for round in 0..25 {
        let (p, k, c) = (
            format!("p{round}"),
            format!("k{round}"),
            format!("c{round}"),
        );
        sn.prepare(&format!("{p}-a"), None, Labels::new()).unwrap();
        sn.commit(&p, &format!("{p}-a"), Labels::new()).unwrap();
        let upper = upper_of(&sn.prepare(&k, Some(&p), Labels::new()).unwrap());
        fs::write(upper.join("data"), &k).unwrap();
        let barrier = Barrier::new(2);
        let (committed, removed) = thread::scope(|s| {
            let a = s.spawn(|| {
                barrier.wait();
                sn.commit(&c, &k, Labels::new())
            });
            let b = s.spawn(|| {
                barrier.wait();
                sn.remove(&p)
            });
            (a.join().unwrap(), b.join().unwrap())
        });
        committed.unwrap_or_else(|e| panic!("round {round}: commit: {e}"));
        let err = removed.expect_err("a parent with a child was removed");
        assert_eq!(
            err.kind(),
            ErrorKind::FailedPrecondition,
            "round {round}: {err}"
        );
        assert_eq!(sn.stat(&c).unwrap().parent.as_deref(), Some(p.as_str()));
        sn.stat(&p).unwrap();
        assert_eq!(kind_of_remove(&sn, &p), Some(ErrorKind::FailedPrecondition));
        if round % 2 == 0 {
            sn.remove(&c).unwrap();
            sn.remove(&p).unwrap();
        }
    }
    let before = infos(&sn);
    drop(sn);
    let sn = open(&root, labelled(sync_remove));
    assert_eq!(infos(&sn), before);
    sn.cleanup().unwrap();
    assert_entries_are(&root, ids(&sn).into_values(), "after reopen and cleanup");
}

fn kind_of_remove(sn: &Snapshotter, key: &str) -> Option<ErrorKind> {
    sn.remove(key).err().map(|e| e.kind())
}

/// Commit of a key races Remove of the same key (the Remove starts after a delay that
/// varies by round, so each side wins some rounds): exactly one of them succeeds, and the
/// other reports NotFound (the key is gone, or was committed away), never an I/O error.
fn commit_racing_remove_of_the_same_key(
    sync_remove: bool,
    rounds: u64,
    files: usize,
    delay_step_us: u64,
) {
    let scratch = Scratch::new("commit-vs-remove-key");
    let root = scratch.root();
    let sn = open(&root, labelled(sync_remove));
    sn.prepare("base-a", None, Labels::new()).unwrap();
    sn.commit("base", "base-a", Labels::new()).unwrap();
    let mut outcomes = BTreeMap::new();
    for round in 0..rounds {
        let (k, c) = (format!("k{round}"), format!("c{round}"));
        let upper = upper_of(&sn.prepare(&k, Some("base"), Labels::new()).unwrap());
        for i in 0..files {
            fs::write(upper.join(format!("f{i}")), "x").unwrap();
        }
        let barrier = Barrier::new(2);
        let (committed, removed) = thread::scope(|s| {
            let a = s.spawn(|| {
                barrier.wait();
                sn.commit(&c, &k, Labels::new())
            });
            let b = s.spawn(|| {
                barrier.wait();
                // A delay only to spread the interleavings; nothing asserts on time.
                if delay_step_us > 0 {
                    thread::sleep(std::time::Duration::from_micros(round % 20 * delay_step_us));
                }
                sn.remove(&k)
            });
            (a.join().unwrap(), b.join().unwrap())
        });
        let outcome = match (&committed, &removed) {
            (Ok(()), Err(e)) if e.kind() == ErrorKind::NotFound => "commit won",
            (Err(e), Ok(())) if e.kind() == ErrorKind::NotFound => "remove won",
            _ => panic!(
                "round {round} ({}): commit {committed:?}, remove {removed:?}",
                if sync_remove { "sync" } else { "async" }
            ),
        };
        *outcomes.entry(outcome).or_insert(0) += 1;
        assert_eq!(sn.stat(&c).is_ok(), outcome == "commit won");
        assert_eq!(sn.stat(&k).unwrap_err().kind(), ErrorKind::NotFound);
    }
    println!("outcomes: {outcomes:?}");
    sn.cleanup().unwrap();
    assert_entries_are(&root, ids(&sn).into_values(), "after the races and cleanup");
}

#[test]
fn commit_racing_remove_of_the_same_key_async() {
    if root_or_skip("commit_racing_remove_of_the_same_key_async") {
        commit_racing_remove_of_the_same_key(false, 40, 50, 150);
    }
}

#[test]
fn commit_racing_remove_of_the_same_key_sync() {
    if root_or_skip("commit_racing_remove_of_the_same_key_sync") {
        // Big layers and no delay: the Remove lands inside the Commit's slow work (du of
        // 3 000 files, then syncfs) in most rounds.
        commit_racing_remove_of_the_same_key(true, 20, 3000, 0);
    }
}

/// Prepare of a child races Remove of its parent (which has no other child; one side
/// starts after a delay that varies by round, to spread the interleavings): either the
/// Prepare wins (the Remove then fails, FailedPrecondition) or the Remove wins (the
/// Prepare then fails, NotFound: its parent is gone), never an I/O error, and never both.
fn prepare_racing_remove_of_the_parent(sync_remove: bool) {
    let scratch = Scratch::new("prepare-vs-remove-parent");
    let root = scratch.root();
    let sn = open(&root, labelled(sync_remove));
    let mut outcomes = BTreeMap::new();
    for round in 0..40u64 {
        let (p, k) = (format!("p{round}"), format!("k{round}"));
        sn.prepare(&format!("{p}-a"), None, Labels::new()).unwrap();
        sn.commit(&p, &format!("{p}-a"), Labels::new()).unwrap();
        let barrier = Barrier::new(2);
        let (prepared, removed) = thread::scope(|s| {
            let a = s.spawn(|| {
                barrier.wait();
                // Delays only spread the interleavings; nothing asserts on time.
                if round % 2 == 0 {
                    thread::sleep(std::time::Duration::from_micros(round % 20 * 100));
                }
                sn.prepare(&k, Some(&p), Labels::new())
            });
            let b = s.spawn(|| {
                barrier.wait();
                if round % 2 == 1 {
                    thread::sleep(std::time::Duration::from_micros(round % 20 * 100));
                }
                sn.remove(&p)
            });
            (a.join().unwrap(), b.join().unwrap())
        });
        let outcome = match (&prepared, &removed) {
            (Ok(_), Err(e)) if e.kind() == ErrorKind::FailedPrecondition => "prepare won",
            (Err(e), Ok(())) if e.kind() == ErrorKind::NotFound => "remove won",
            _ => panic!(
                "round {round} ({}): prepare {prepared:?}, remove {removed:?}",
                if sync_remove { "sync" } else { "async" }
            ),
        };
        *outcomes.entry(outcome).or_insert(0) += 1;
        if outcome == "prepare won" {
            assert_mountable(&sn, &scratch, &k);
        }
    }
    println!("outcomes: {outcomes:?}");
    sn.cleanup().unwrap();
    assert_entries_are(&root, ids(&sn).into_values(), "after the races and cleanup");
}

#[test]
fn prepare_racing_remove_of_the_parent_async() {
    if root_or_skip("prepare_racing_remove_of_the_parent_async") {
        prepare_racing_remove_of_the_parent(false);
    }
}

#[test]
fn prepare_racing_remove_of_the_parent_sync() {
    if root_or_skip("prepare_racing_remove_of_the_parent_sync") {
        prepare_racing_remove_of_the_parent(true);
    }
}

/// A Prepare that took effect must report success with the mounts of the snapshot it
/// created, even when a Remove of the same key comes right after it: two threads Prepare
/// (no parent, so NotFound is never a right answer) and Update one key while a third
/// removes it, many times (memory journal and sync remove: no disk waits, tight races).
/// Every successful Prepare must have got its own upper directory (ids are never reused).
#[rstest]
fn calls_racing_a_remove_of_their_key() {
    if !root_or_skip("calls_racing_a_remove_of_their_key") {
        return;
    }
    let scratch = Scratch::new("racing-remove");
    let sn = open(
        &scratch.root(),
        Options {
            journal: Arc::new(MemoryBackend),
            sync_remove: true,
            ..Options::default()
        },
    );
    let rounds = 50_000;
    let anomalies: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let uppers: Mutex<Vec<std::path::PathBuf>> = Mutex::new(Vec::new());
    let stop = AtomicBool::new(false);
    thread::scope(|s| {
        s.spawn(|| {
            for _ in 0..20 * rounds {
                if stop.load(Ordering::Acquire) {
                    break;
                }
                let _ = sn.remove("k");
            }
        });
        let mut workers = Vec::new();
        for t in 0..2 {
            let (sn, anomalies, uppers) = (&sn, &anomalies, &uppers);
            workers.push(s.spawn(move || {
                for i in 0..rounds {
                    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        sn.prepare("k", None, labels(&[("by", &format!("{t}-{i}"))]))
                    }));
                    match r {
                        Err(panic) => anomalies.lock().unwrap().push(format!(
                            "prepare panicked: {}",
                            panic
                                .downcast_ref::<String>()
                                .cloned()
                                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                                .unwrap_or_default()
                                .replace('\n', " ")
                        )),
                        Ok(Err(e)) if e.kind() != ErrorKind::AlreadyExists => anomalies
                            .lock()
                            .unwrap()
                            .push(format!("prepare without parent failed: {e}")),
                        Ok(Err(_)) => {}
                        Ok(Ok(mounts)) => uppers.lock().unwrap().push(upper_of(&mounts)),
                    }
                    match sn.update("k", labels(&[("u", "1")]), &["labels.u".into()]) {
                        Err(e) if e.kind() != ErrorKind::NotFound => {
                            anomalies.lock().unwrap().push(format!("update: {e}"))
                        }
                        _ => {}
                    }
                }
            }));
        }
        for w in workers {
            w.join().unwrap();
        }
        stop.store(true, Ordering::Release);
    });
    let mut uppers = uppers.into_inner().unwrap();
    let succeeded = uppers.len();
    uppers.sort();
    uppers.dedup();
    println!("{succeeded} prepares succeeded");
    let mut anomalies = anomalies.into_inner().unwrap();
    if uppers.len() != succeeded {
        anomalies.push(format!(
            "{} successful prepares returned the mounts of another prepare's snapshot",
            succeeded - uppers.len()
        ));
    }
    let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
    for a in &anomalies {
        let digitless: String = a
            .chars()
            .take(90)
            .map(|c| if c.is_ascii_digit() { '#' } else { c })
            .collect();
        *kinds.entry(digitless).or_insert(0) += 1;
    }
    assert!(
        anomalies.is_empty(),
        "{} prepares that took effect reported something else: {kinds:#?}",
        anomalies.len()
    );
}

/// 8 threads Prepare, Commit, View, Update and Remove their own keys (with the shared
/// base and their own chains as parents); the final state equals what a reopen recovers,
/// the reopen finds nothing to repair, and after Cleanup the directories are exactly the
/// live ids; every layer's data is where its name says.
#[rstest]
fn eight_threads_then_reopen(#[values(false, true)] sync_remove: bool) {
    if !root_or_skip("eight_threads_then_reopen") {
        return;
    }
    let scratch = Scratch::new("eight-threads");
    let root = scratch.root();
    let sn = open(&root, labelled(sync_remove));
    sn.prepare("base-a", None, gc_root()).unwrap();
    sn.commit("base", "base-a", gc_root()).unwrap();
    thread::scope(|s| {
        for t in 0..8 {
            let sn = &sn;
            s.spawn(move || {
                let mut parent = "base".to_string();
                for i in 0..12 {
                    let key = format!("t{t}-a{i}");
                    let upper = upper_of(&sn.prepare(&key, Some(&parent), gc_root()).unwrap());
                    fs::write(upper.join(format!("t{t}-{i}")), &key).unwrap();
                    let name = format!("t{t}-c{i}");
                    sn.commit(&name, &key, labels(&[("layer", &i.to_string())]))
                        .unwrap();
                    let view = format!("t{t}-v{i}");
                    sn.view(&view, Some(&name), Labels::new()).unwrap();
                    sn.update(&name, labels(&[("seen", "yes")]), &["labels.seen".into()])
                        .unwrap();
                    if i % 2 == 1 {
                        sn.remove(&view).unwrap();
                    }
                    if i % 4 == 3 {
                        // A side branch that is dropped again.
                        sn.prepare(&format!("{key}-side"), Some(&name), Labels::new())
                            .unwrap();
                        sn.remove(&format!("{key}-side")).unwrap();
                    }
                    parent = name;
                }
            });
        }
    });
    let before = infos(&sn);
    assert_eq!(before.len(), 1 + 8 * (12 + 6));
    drop(sn);

    let sn = open(&root, labelled(sync_remove));
    let report = sn.open_report().clone();
    assert!(
        report.damaged.is_empty() && report.recreated.is_empty() && report.unissued.is_empty(),
        "{report:?}"
    );
    assert_eq!(infos(&sn), before, "the reopened state");
    sn.cleanup().unwrap();
    assert_entries_are(&root, ids(&sn).into_values(), "after reopen and cleanup");
    // The top of each chain shows all twelve layers of its thread.
    for t in 0..8 {
        let m = Mounted::new(
            &sn.mounts(&format!("t{t}-v10")).unwrap(),
            &scratch.temp_work("v"),
        );
        for i in 0..=10 {
            assert_eq!(
                fs::read_to_string(m.join(&format!("t{t}-{i}"))).unwrap(),
                format!("t{t}-a{i}")
            );
        }
        m.unmount();
    }
}
