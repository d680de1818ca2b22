//! Every checked-in fuzz input, replayed on stable Rust: `cargo test` guards every past
//! finding of the fuzzers without cargo-fuzz or nightly.
//!
//! The bodies of the fuzz targets live in `fuzz/src/` (crate `overlaysnap-fuzz`, outside
//! this workspace); this test includes the same files with `#[path]`, so the code that
//! fuzzes is the code that replays. For each target it runs every file of
//! `fuzz/corpus/<target>/` (hand-made seeds and what the fuzzer kept) and of
//! `fuzz/regressions/<target>/` (crashes found, kept once fixed or as open bugs), and
//! reports every failing file with its panic message, not just the first.
//!
//! `cargo test --test fuzz_corpus -- --ignored write_seeds` rewrites the hand-made seeds
//! (`fuzz/src/seeds.rs`); see `fuzz/README.md` for running the fuzzers.

#[path = "../fuzz/src/lib.rs"]
#[allow(dead_code)] // the fuzz crate's public items that only the fuzz targets use
mod bodies;

use bodies::alloc_guard::Tracking;
use overlaysnap::fs::SimFs;
use overlaysnap::journal::{segment_file, LogJournal, Store};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The records target checks that no allocation is sized by an unchecked length.
#[global_allocator]
static ALLOC: Tracking = Tracking;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

/// The files of `fuzz/corpus/<target>` and `fuzz/regressions/<target>`, sorted.
fn inputs(target: &str) -> Vec<PathBuf> {
    inputs_in(target, &["corpus", "regressions"])
}

/// The files of `fuzz/<dir>/<target>` for each of `dirs`, sorted.
fn inputs_in(target: &str, dirs: &[&str]) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(fuzz_dir().join(dir).join(target)) else {
            continue;
        };
        for entry in entries {
            let path = entry.expect("a readable directory").path();
            if path.is_file() {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "a panic without a message".to_owned())
}

/// Runs `body` on every input of `target`; fails listing every input that panicked.
fn replay(target: &str, body: fn(&[u8])) {
    let files = inputs(target);
    assert!(
        !files.is_empty(),
        "no corpus for {target} under {}",
        fuzz_dir().display()
    );
    replay_files(target, &files, body);
}

/// Runs `body` on the regression files `names` of `target`.
fn replay_regressions(target: &str, names: &[&str], body: fn(&[u8])) {
    let dir = fuzz_dir().join("regressions").join(target);
    let files: Vec<PathBuf> = names.iter().map(|n| dir.join(n)).collect();
    replay_files(target, &files, body);
}

fn replay_files(target: &str, files: &[PathBuf], body: fn(&[u8])) {
    let mut failures = Vec::new();
    for path in files {
        let bytes = std::fs::read(path).expect("a readable corpus file");
        if let Err(payload) = catch_unwind(AssertUnwindSafe(|| body(&bytes))) {
            failures.push(format!("{}: {}", path.display(), panic_message(&*payload)));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} {target} inputs fail:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n\n")
    );
}

#[test]
fn records_corpus() {
    replay("records", bodies::records);
}

/// A fixed finding of the `records` target: decoding a journal payload allocated as many
/// bytes as a length inside the payload claimed, checked only against the frame's cap (64
/// MiB for a record, 1 GiB for a checkpoint), not against the bytes that are there (an
/// 8-byte record payload allocated 60 MiB; a 27-byte checkpoint file 1023 MiB). The
/// decoder's limit now follows the payload's size (`journal/codec.rs`); the target's
/// allocation guard fails these files if that regresses.
#[test]
fn decoding_allocates_no_more_than_the_payload_justifies() {
    replay_regressions(
        "records",
        &[
            "codec-record-key-claims-60MiB",
            "log-record-key-claims-60MiB",
            "codec-checkpoint-key-claims-1023MiB",
            "checkpoint-key-claims-1023MiB",
        ],
        bodies::records,
    );
}

/// A fixed finding of the `records` target: `State::from_checkpoint` accepted `next_id: 0`
/// (ids start at 1), so the next Prepare got id 0 and the next checkpoint no longer
/// opened. Such a checkpoint is now corruption.
#[test]
fn a_checkpoint_with_next_id_zero_does_not_break_the_journal() {
    replay_regressions("records", &["checkpoint-next-id-zero"], bodies::records);
}

/// Open bug (crafted next to the `records` target's finds): `State::admit` accepts a
/// Created record with id `u64::MAX` (any id at or above the counter), and `State::apply`
/// computes `id + 1`: a panic with overflow checks on; without them the counter stays
/// below a live id, and the first checkpoint after it holds an id at or above its own
/// `next_id`, which `from_checkpoint` refuses: the journal no longer opens.
#[test]
fn a_record_with_the_largest_id_does_not_break_the_journal() {
    replay_regressions("records", &["log-created-id-u64-max"], bodies::records);
}

#[test]
fn filters_corpus() {
    replay("filters", bodies::filters);
}

#[test]
fn ops_corpus() {
    replay("ops", bodies::ops);
}

/// The `ops` seeds decode, through `arbitrary`, into exactly the scenarios they encode.
#[test]
fn ops_seeds_decode_to_their_scenarios() {
    use arbitrary::{Arbitrary, Unstructured};
    use bodies::ops::{Scenario, Step};
    let steps = bodies::seeds::all()
        .into_iter()
        .filter(|s| s.target == "ops")
        .map(|s| {
            let decoded = Scenario::arbitrary_take_rest(Unstructured::new(&s.bytes))
                .unwrap_or_else(|e| panic!("seed {} does not decode: {e}", s.name));
            assert_eq!(
                bodies::seeds::encode_scenario(&decoded),
                s.bytes,
                "seed {} re-encodes differently",
                s.name
            );
            decoded.steps
        })
        .collect::<Vec<Vec<Step>>>();
    assert!(steps.len() > 10 && steps.iter().all(|s| !s.is_empty()));
}

/// A log segment on the real file system opens exactly as on the simulated disk: the same
/// state, or the same error. (The corpus only: the regressions include open bugs.)
#[test]
fn records_corpus_on_a_real_directory() {
    for path in inputs_in("records", &["corpus"]) {
        let bytes = std::fs::read(&path).expect("a readable corpus file");
        let sim = SimFs::new();
        sim.plant(&Path::new("/j").join(segment_file(0)), &bytes);
        let simulated = Store::open(Arc::new(sim), "/j")
            .and_then(LogJournal::open)
            .map(|(_, r)| r.state);
        let dir = tempfile::tempdir().expect("a temporary directory");
        std::fs::write(dir.path().join(segment_file(0)), &bytes).expect("writable");
        let real = LogJournal::open_dir(dir.path()).map(|(_, r)| r.state);
        match (simulated, real) {
            (Ok(a), Ok(b)) => assert_eq!(a, b, "{}", path.display()),
            (Err(a), Err(b)) => assert_eq!(
                a.to_string().replace("/j/", ""),
                b.to_string()
                    .replace(&format!("{}/", dir.path().display()), ""),
                "{}",
                path.display()
            ),
            (a, b) => panic!(
                "{}: the simulated disk gives {:?}, the real one {:?}",
                path.display(),
                a.map(|_| "a state"),
                b.map(|_| "a state")
            ),
        }
    }
}

/// Rewrites the hand-made seeds into `fuzz/corpus/<target>/seed-<name>`.
#[test]
#[ignore = "writes files: run it after changing fuzz/src/seeds.rs"]
fn write_seeds() {
    for seed in bodies::seeds::all() {
        let dir = fuzz_dir().join("corpus").join(seed.target);
        std::fs::create_dir_all(&dir).expect("a writable fuzz/corpus");
        std::fs::write(dir.join(format!("seed-{}", seed.name)), &seed.bytes)
            .expect("a writable fuzz/corpus");
    }
}
