//! One process per journal directory: a second open fails naming the holder's pid, and
//! the lock goes with the holder. (The test across processes is in `journal_kill.rs`.)

use overlaysnap::fs::DirLock;
use overlaysnap::journal::LogJournal;
use overlaysnap::ErrorKind;

#[test]
fn a_second_open_of_the_same_directory_fails_naming_the_pid() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let (journal, _) = LogJournal::open_dir(dir.path()).unwrap();
    let err = LogJournal::open_dir(dir.path()).expect_err("the directory is locked");
    assert_eq!(err.kind(), ErrorKind::Io);
    let message = err.to_string();
    let pid = std::process::id();
    assert!(
        message.contains(&format!("locked by process {pid} ")),
        "{message}"
    );
    assert!(
        message.contains(&dir.path().display().to_string()),
        "{message}"
    );
    drop(journal);
    LogJournal::open_dir(dir.path()).expect("the lock goes with the journal");
}

#[test]
fn the_lock_file_holds_the_pid() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let lock = DirLock::acquire(dir.path()).unwrap();
    let pid = std::fs::read_to_string(lock.path()).unwrap();
    assert_eq!(pid, format!("{}\n", std::process::id()));
    let err = DirLock::acquire(dir.path()).unwrap_err();
    assert_eq!(err.kind(), overlaysnap::ErrorKind::Io);
    assert!(err.to_string().contains("locked by process"), "{err}");
    drop(lock);
    DirLock::acquire(dir.path()).unwrap();
}

#[test]
fn a_missing_directory_is_created() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let nested = dir.path().join("a/b");
    let (_journal, recovery) = LogJournal::open_dir(&nested).unwrap();
    assert_eq!(recovery.records_replayed, 0);
    assert!(nested.join("LOCK").exists());
}
