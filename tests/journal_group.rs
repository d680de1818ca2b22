//! Group commit: concurrent writers share syncs, and every acknowledged record is present,
//! in an order the state accepts.

mod journal_support;
mod support;

use journal_support::{prepares, states};
use overlaysnap::core::{Command, State, Timestamp};
use overlaysnap::fs::{
    DirLock, FileHandle, FileStat, FileSystem, OverlayFeatures, QuotaMode, QuotaUnit, QuotaUsage,
    SimFs,
};
use overlaysnap::journal::{Journal, LogJournal, Recovery, Store, Ticket};
use parking_lot::Mutex;
use rstest::rstest;
use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// The journal's directory on the simulated disk.
const DIR: &str = "/j";

/// The journal's directory on `fs`.
fn store(fs: impl FileSystem + 'static) -> Store {
    Store::open(Arc::new(fs), DIR).unwrap()
}

/// Opens the journal in `DIR` of `fs`.
fn open(fs: impl FileSystem + 'static) -> (LogJournal, Recovery) {
    LogJournal::open(store(fs)).unwrap()
}

#[test]
fn one_write_and_one_sync_serve_every_ticket_submitted_before() {
    let records = prepares(100);
    let disk = SimFs::new();
    let (journal, _) = open(disk.clone());
    let tickets: Vec<Ticket> = records
        .iter()
        .map(|r| journal.submit(std::slice::from_ref(r)).unwrap())
        .collect();
    let before = disk.calls();
    disk.record_trace();
    journal.wait(*tickets.last().unwrap()).unwrap();
    assert_eq!(disk.calls() - before, 2, "one write and one sync");
    let trace = disk.trace();
    assert!(
        trace[0].contains(" write_at /j/log-") && trace[1].contains(" sync_data /j/log-"),
        "{trace:?}"
    );
    for ticket in tickets {
        journal.wait(ticket).unwrap();
    }
    assert_eq!(
        disk.calls() - before,
        2,
        "earlier tickets are already durable"
    );
    assert_eq!(journal.recover().unwrap().state, states(&records)[100]);
}

#[test]
fn a_ticket_from_another_journal_is_refused() {
    let records = prepares(2);
    let (one, _) = open(SimFs::new());
    let (other, _) = open(SimFs::new());
    let ticket = one.submit(&records).unwrap();
    assert!(matches!(
        other.wait(ticket),
        Err(overlaysnap::Error::InvalidArgument(_))
    ));
}

const THREADS: usize = 8;
const PER_THREAD: usize = 40;

/// `THREADS` writers, each deciding and submitting under the state lock (as the
/// snapshotter does) and waiting outside it, then calling `acknowledged` with the key it
/// wrote; checkpoints from one of them now and then.
fn concurrent_writers<J: Journal>(journal: &J, acknowledged: impl Fn(&str) + Sync) -> State {
    let live = Mutex::new(State::new());
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let (live, journal, acknowledged) = (&live, journal, &acknowledged);
            s.spawn(move || {
                for i in 0..PER_THREAD {
                    let ticket = {
                        let mut state = live.lock();
                        let cmd = Command::Prepare {
                            key: format!("t{t}-{i}"),
                            parent: None,
                            labels: Default::default(),
                            now: Timestamp::new(1_700_000_000 + i as i64, t as u32),
                        };
                        let record = state.decide(&cmd).unwrap();
                        let ticket = journal.submit(std::slice::from_ref(&record)).unwrap();
                        state.apply(&record);
                        if t == 0 && i % 10 == 9 {
                            journal.checkpoint(&state.checkpoint()).unwrap();
                        }
                        ticket
                    };
                    journal.wait(ticket).unwrap();
                    acknowledged(&format!("t{t}-{i}"));
                }
            });
        }
    });
    live.into_inner()
}

/// Every thread's records are present, and each thread's ids grow in its own order.
fn assert_all_present(recovered: &State, live: &State) {
    assert_eq!(recovered, live);
    assert_eq!(recovered.len(), THREADS * PER_THREAD);
    for t in 0..THREADS {
        let ids: Vec<u64> = (0..PER_THREAD)
            .map(|i| recovered.get(&format!("t{t}-{i}")).unwrap().id)
            .collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "thread {t}: {ids:?}");
    }
}

#[rstest]
#[case::simulated_disk(false)]
#[case::real_files(true)]
fn concurrent_writers_all_land_in_a_valid_order(#[case] real: bool) {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let disk = SimFs::new();
    fn run(store: impl Fn() -> Store) {
        let (journal, _) = LogJournal::open(store()).unwrap();
        let live = concurrent_writers(&journal, |_| {});
        assert_all_present(&journal.recover().unwrap().state, &live);
        drop(journal);
        assert_all_present(&LogJournal::open(store()).unwrap().1.state, &live);
    }
    if real {
        run(|| Store::open_dir(dir.path()).unwrap());
    } else {
        run(|| self::store(disk.clone()));
    }
}

/// A simulated disk whose `sync_data` takes as long as a real one's (300 µs here), so
/// that writers submit while a flush is in flight, as they do on a real disk.
#[derive(Debug, Clone)]
struct SlowSync(SimFs);

/// A file of [`SlowSync`].
#[derive(Debug)]
struct SlowFile(Box<dyn FileHandle>);

impl FileHandle for SlowFile {
    fn write_at(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.0.write_at(offset, data)
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }
    fn sync_data(&self) -> io::Result<()> {
        std::thread::sleep(Duration::from_micros(300));
        self.0.sync_data()
    }
}

impl FileSystem for SlowSync {
    fn create_dir(&self, path: &Path) -> io::Result<()> {
        self.0.create_dir(path)
    }
    fn create_dir_all(&self, path: &Path, mode: u32) -> io::Result<()> {
        self.0.create_dir_all(path, mode)
    }
    fn canonicalize(&self, path: &Path) -> io::Result<PathBuf> {
        self.0.canonicalize(path)
    }
    fn set_mode(&self, path: &Path, mode: u32) -> io::Result<()> {
        self.0.set_mode(path, mode)
    }
    fn lchown(&self, path: &Path, uid: u32, gid: u32) -> io::Result<()> {
        self.0.lchown(path, uid, gid)
    }
    fn metadata(&self, path: &Path) -> io::Result<FileStat> {
        self.0.metadata(path)
    }
    fn symlink_metadata(&self, path: &Path) -> io::Result<FileStat> {
        self.0.symlink_metadata(path)
    }
    fn read_dir(&self, path: &Path) -> io::Result<Vec<OsString>> {
        self.0.read_dir(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.0.rename(from, to)
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.0.remove_file(path)
    }
    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        self.0.remove_dir_all(path)
    }
    fn symlink(&self, target: &Path, link: &Path) -> io::Result<()> {
        self.0.symlink(target, link)
    }
    fn read_link(&self, path: &Path) -> io::Result<PathBuf> {
        self.0.read_link(path)
    }
    fn create_file(&self, path: &Path) -> io::Result<Box<dyn FileHandle>> {
        Ok(Box::new(SlowFile(self.0.create_file(path)?)))
    }
    fn open_file(&self, path: &Path) -> io::Result<Box<dyn FileHandle>> {
        Ok(Box::new(SlowFile(self.0.open_file(path)?)))
    }
    fn read_file(&self, path: &Path) -> io::Result<Vec<u8>> {
        self.0.read_file(path)
    }
    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        self.0.sync_dir(path)
    }
    fn syncfs(&self, path: &Path) -> io::Result<()> {
        self.0.syncfs(path)
    }
    fn mount_points(&self) -> overlaysnap::Result<Vec<PathBuf>> {
        self.0.mount_points()
    }
    fn supports_d_type(&self, dir: &Path) -> overlaysnap::Result<bool> {
        self.0.supports_d_type(dir)
    }
    fn overlay_features(&self, root: &Path) -> OverlayFeatures {
        self.0.overlay_features(root)
    }
    fn lock(&self, dir: &Path) -> overlaysnap::Result<Option<DirLock>> {
        self.0.lock(dir)
    }
    fn quota_mode(&self, root: &Path) -> io::Result<QuotaMode> {
        self.0.quota_mode(root)
    }
    fn create_quota_dir(&self, path: &Path, mode: QuotaMode, limit: Option<u64>) -> io::Result<()> {
        self.0.create_quota_dir(path, mode, limit)
    }
    fn assign_project(&self, dir: &Path, id: u32) -> io::Result<()> {
        self.0.assign_project(dir, id)
    }
    fn set_quota_limit(&self, dir: &Path, unit: QuotaUnit, limit: Option<u64>) -> io::Result<()> {
        self.0.set_quota_limit(dir, unit, limit)
    }
    fn quota_usage(&self, dir: &Path, unit: QuotaUnit) -> io::Result<Option<QuotaUsage>> {
        self.0.quota_usage(dir, unit)
    }
    fn limited_projects(&self, dir: &Path, from: u32) -> io::Result<Vec<u32>> {
        self.0.limited_projects(dir, from)
    }
}

/// Acknowledged means durable for every writer of a group, not only its leader: the
/// moment `wait` returns, a power loss keeps the record. Writers woken by a flush return
/// without the queue lock when their ticket is durable, and a wrong early return there
/// would acknowledge a record that the next flush has yet to write.
#[test]
fn every_ticket_is_durable_when_its_wait_returns() {
    let disk = SimFs::new();
    let (journal, _) = open(SlowSync(disk.clone()));
    concurrent_writers(&journal, |key| {
        let after = open(disk.crash()).1;
        assert!(
            after.state.get(key).is_some(),
            "{key} was acknowledged but a power loss right after loses it"
        );
    });
}
