//! [`Backend`]: how a snapshotter opens the journal of its root. The choice is open: the
//! snapshotter's options hold any implementation, and an embedder may bring its own.

use super::{Journal, LogJournal, MemoryJournal, Observer, Recovery, Store};
use crate::error::{Error, Result};
use crate::fs::FileSystem;
use std::fmt::Debug;
use std::path::Path;
use std::sync::Arc;

/// A kind of journal, as a snapshotter opens it at `ROOT/journal`.
pub trait Backend: Send + Sync + Debug {
    /// A short name for logs and status ("log", "memory").
    fn name(&self) -> &str;

    /// Opens the journal kept in directory `dir` of `fs` and reads it back. A journal that
    /// flushes to storage tells `observer`, when given, of every flush (see [`Observer`]);
    /// one that keeps records in memory has no flushes to tell of.
    fn open(
        &self,
        fs: Arc<dyn FileSystem>,
        dir: &Path,
        observer: Option<Arc<dyn Observer>>,
    ) -> Result<(Box<dyn Journal>, Recovery)>;
}

/// The durable journal: a [`LogJournal`] in the directory (the default).
#[derive(Debug, Clone, Copy, Default)]
pub struct LogBackend;

impl Backend for LogBackend {
    fn name(&self) -> &str {
        "log"
    }

    fn open(
        &self,
        fs: Arc<dyn FileSystem>,
        dir: &Path,
        observer: Option<Arc<dyn Observer>>,
    ) -> Result<(Box<dyn Journal>, Recovery)> {
        let (mut journal, recovery) = LogJournal::open(Store::open(fs, dir)?)?;
        if let Some(observer) = observer {
            journal.observe(observer);
        }
        Ok((Box::new(journal), recovery))
    }
}

/// Records kept in memory only: the state is lost when the process ends. For embedding and
/// tests. Refuses a root whose directory holds a log journal, whose snapshots it would hide.
#[derive(Debug, Clone, Copy, Default)]
pub struct MemoryBackend;

impl Backend for MemoryBackend {
    fn name(&self) -> &str {
        "memory"
    }

    /// The memory journal never flushes: `observer` is never called.
    fn open(
        &self,
        fs: Arc<dyn FileSystem>,
        dir: &Path,
        _observer: Option<Arc<dyn Observer>>,
    ) -> Result<(Box<dyn Journal>, Recovery)> {
        if fs.metadata(dir).is_ok() {
            return Err(Error::FailedPrecondition(format!(
                "{} holds a log journal: opening its root with the memory journal would \
                 discard its snapshots; open it with the log journal",
                dir.display()
            )));
        }
        let journal = MemoryJournal::new();
        let recovery = journal.recover()?;
        Ok((Box::new(journal), recovery))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::RealFs;

    /// The names operators see (the daemon's startup log, its `journal = "…"` config key)
    /// are the backends' own, and a memory journal refuses a root that holds a log one.
    #[test]
    fn backends_are_named_as_configured_and_memory_spares_a_log() {
        assert_eq!(LogBackend.name(), "log");
        assert_eq!(MemoryBackend.name(), "memory");
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("journal");
        drop(LogBackend.open(Arc::new(RealFs), &dir, None).unwrap());
        match MemoryBackend.open(Arc::new(RealFs), &dir, None) {
            Err(err) => assert_eq!(err.kind(), crate::ErrorKind::FailedPrecondition),
            Ok(_) => panic!("a memory journal opened over a log journal's directory"),
        }
    }
}
