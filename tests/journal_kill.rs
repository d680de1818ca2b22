//! Real crashes: a child process (this test binary, re-run with an environment variable)
//! appends random records to a journal on real files, checkpointing now and then, and
//! reports each record before appending it ("try") and after the append returned ("ack").
//! The parent kills it with SIGKILL at random moments, at least 50 times, and after each
//! kill reopens the journal: every acknowledged record must be there, plus at most the one
//! in flight. The first child also shows that its lock keeps the parent out, naming its pid.

mod support;

use overlaysnap::core::{Record, State, Timestamp};
use overlaysnap::journal::{codec, Journal, LogJournal};
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

const CHILD: &str = "OVERLAYSNAP_JOURNAL_KILL_CHILD";
const CHILD_SEED: &str = "OVERLAYSNAP_JOURNAL_KILL_SEED";
const TEST_NAME: &str = "acknowledged_records_survive_sigkill";

#[test]
fn acknowledged_records_survive_sigkill() {
    match std::env::var(CHILD) {
        Ok(dir) => child(Path::new(&dir)),
        Err(_) => parent(),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Appends random records until killed (or until the parent stops reading).
fn child(dir: &Path) {
    let seed: u64 = std::env::var(CHILD_SEED).unwrap().parse().unwrap();
    let (journal, recovery) = LogJournal::open_dir(dir).unwrap();
    let mut state = recovery.state;
    let mut out = std::io::stdout().lock();
    let mut say = |line: String| {
        if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
            std::process::exit(0); // the parent is gone
        }
    };
    say("\nready".into()); // libtest has printed "test <name> ... " without a newline
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &[seed.to_le_bytes(); 4].concat()),
    );
    let mut acked = 0u64;
    for i in 0..100_000 {
        let now = Timestamp::new(1_700_000_000 + i, 0);
        let cmd = support::command(now)
            .new_tree(&mut runner)
            .unwrap()
            .current();
        let Ok(record) = state.decide(&cmd) else {
            continue;
        };
        let mut bytes = Vec::new();
        codec::encode_record(&record, &mut bytes);
        say(format!("try {}", hex(&bytes)));
        journal.append(std::slice::from_ref(&record)).unwrap();
        say("ack".into());
        state.apply(&record);
        acked += 1;
        if acked % 25 == 0 {
            journal.checkpoint(&state.checkpoint()).unwrap();
        }
    }
}

/// What the parent has read from a child: the state after every acknowledged record, and
/// the record in flight, if any.
struct Reported {
    acked: State,
    acks: u64,
    in_flight: Option<Record>,
}

impl Reported {
    fn read(&mut self, line: &str) {
        if let Some(record) = line
            .strip_prefix("try ")
            .and_then(unhex)
            .and_then(|bytes| codec::decode_record(&bytes).ok())
        {
            self.in_flight = Some(record);
        } else if line == "ack" {
            let record = self.in_flight.take().expect("an ack follows a try");
            self.acked.admit(&record).unwrap();
            self.acked.apply(&record);
            self.acks += 1;
        }
    }
}

fn parent() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let kills: u32 = std::env::var("JOURNAL_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60);
    // A fresh seed each run, printed so that a failure replays with JOURNAL_KILL_SEED.
    let seed = std::env::var("JOURNAL_KILL_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    println!("seed {seed} (replay with JOURNAL_KILL_SEED={seed})");
    let mut rng = support::rng::SplitMix(seed);
    let mut state = State::new();
    let (mut total_acks, mut in_flight_kept) = (0, 0);
    for kill in 0..kills {
        let context = format!("kill {kill} (seed {seed})");
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", TEST_NAME, "--nocapture", "--test-threads=1"])
            .env(CHILD, dir.path())
            .env(CHILD_SEED, rng.next().to_string())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let ready = lines.by_ref().map_while(Result::ok).any(|l| l == "ready");
        assert!(
            ready,
            "{context}: the child died before opening: {:?}",
            child.wait()
        );
        if kill == 0 {
            let err = LogJournal::open_dir(dir.path()).expect_err("the child holds the lock");
            let holder = format!("locked by process {} ", child.id());
            assert!(err.to_string().contains(&holder), "{context}: {err}");
        }
        let mut reported = Reported {
            acked: state.clone(),
            acks: 0,
            in_flight: None,
        };
        let target = rng.below(30) as u64;
        for line in lines.by_ref().map_while(Result::ok) {
            reported.read(&line);
            if reported.acks >= target {
                break;
            }
        }
        std::thread::sleep(Duration::from_micros(rng.below(3000) as u64));
        child.kill().unwrap();
        child.wait().unwrap();
        // What the child wrote before it died was acknowledged just the same.
        for line in lines.map_while(Result::ok) {
            reported.read(&line);
        }

        let (journal, recovery) = LogJournal::open_dir(dir.path())
            .unwrap_or_else(|e| panic!("{context}: reopen failed: {e}"));
        let with_in_flight = reported.in_flight.as_ref().and_then(|r| {
            let mut s = reported.acked.clone();
            s.admit(r).ok().map(|()| {
                s.apply(r);
                s
            })
        });
        if Some(&recovery.state) == with_in_flight.as_ref() {
            in_flight_kept += 1;
        } else {
            assert_eq!(
                recovery.state, reported.acked,
                "{context}: the journal lost acknowledged records (or gained others)"
            );
        }
        total_acks += reported.acks;
        state = recovery.state;
        drop(journal);
    }
    eprintln!(
        "{kills} kills, {total_acks} acknowledged records, the record in flight kept {in_flight_kept} times"
    );
}
