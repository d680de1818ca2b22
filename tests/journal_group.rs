//! Group commit: concurrent writers share syncs, and every acknowledged record is present,
//! in an order the state accepts.

mod journal_support;
mod support;

use journal_support::{prepares, states};
use overlaysnap::core::{Command, State, Timestamp};
use overlaysnap::journal::{Backend, Crash, FsBackend, Journal, LogJournal, SimBackend, Ticket};
use parking_lot::Mutex;
use rstest::rstest;
use std::io;
use std::time::Duration;

#[test]
fn one_write_and_one_sync_serve_every_ticket_submitted_before() {
    let records = prepares(100);
    let disk = SimBackend::new();
    let (journal, _) = LogJournal::open(disk.clone()).unwrap();
    let tickets: Vec<Ticket> = records
        .iter()
        .map(|r| journal.submit(std::slice::from_ref(r)).unwrap())
        .collect();
    let before = disk.ops();
    journal.wait(*tickets.last().unwrap()).unwrap();
    assert_eq!(disk.ops() - before, 2, "one write and one sync");
    for ticket in tickets {
        journal.wait(ticket).unwrap();
    }
    assert_eq!(
        disk.ops() - before,
        2,
        "earlier tickets are already durable"
    );
    assert_eq!(journal.recover().unwrap().state, states(&records)[100]);
}

#[test]
fn a_ticket_from_another_journal_is_refused() {
    let records = prepares(2);
    let (one, _) = LogJournal::open(SimBackend::new()).unwrap();
    let (other, _) = LogJournal::open(SimBackend::new()).unwrap();
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
                            journal.checkpoint(&state).unwrap();
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
    let disk = SimBackend::new();
    fn run<B: Backend>(backend: impl Fn() -> B) {
        let (journal, _) = LogJournal::open(backend()).unwrap();
        let live = concurrent_writers(&journal, |_| {});
        assert_all_present(&journal.recover().unwrap().state, &live);
        drop(journal);
        assert_all_present(&LogJournal::open(backend()).unwrap().1.state, &live);
    }
    if real {
        run(|| FsBackend::open(dir.path()).unwrap());
    } else {
        run(|| disk.clone());
    }
}

/// A simulated disk whose `sync_data` takes as long as a real one's (300 µs here), so
/// that writers submit while a flush is in flight, as they do on a real disk.
#[derive(Clone)]
struct SlowSync(SimBackend);

impl Backend for SlowSync {
    fn create(&self, name: &str) -> io::Result<()> {
        self.0.create(name)
    }
    fn read(&self, name: &str) -> io::Result<Vec<u8>> {
        self.0.read(name)
    }
    fn write(&self, name: &str, offset: u64, data: &[u8]) -> io::Result<()> {
        self.0.write(name, offset, data)
    }
    fn set_len(&self, name: &str, len: u64) -> io::Result<()> {
        self.0.set_len(name, len)
    }
    fn sync_data(&self, name: &str) -> io::Result<()> {
        std::thread::sleep(Duration::from_micros(300));
        self.0.sync_data(name)
    }
    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        self.0.rename(from, to)
    }
    fn remove(&self, name: &str) -> io::Result<()> {
        self.0.remove(name)
    }
    fn list(&self) -> io::Result<Vec<String>> {
        self.0.list()
    }
    fn sync_dir(&self) -> io::Result<()> {
        self.0.sync_dir()
    }
    fn path(&self, name: &str) -> String {
        self.0.path(name)
    }
}

/// Acknowledged means durable for every writer of a group, not only its leader: the
/// moment `wait` returns, a power loss keeps the record. Writers woken by a flush return
/// without the queue lock when their ticket is durable, and a wrong early return there
/// would acknowledge a record that the next flush has yet to write.
#[test]
fn every_ticket_is_durable_when_its_wait_returns() {
    let disk = SimBackend::new();
    let (journal, _) = LogJournal::open(SlowSync(disk.clone())).unwrap();
    concurrent_writers(&journal, |key| {
        let after = LogJournal::open(disk.crash(Crash::PowerLoss)).unwrap().1;
        assert!(
            after.state.get(key).is_some(),
            "{key} was acknowledged but a power loss right after loses it"
        );
    });
}
