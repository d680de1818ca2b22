//! A simulated directory that forgets what was not synced and fails on cue.
//!
//! [`SimBackend`] keeps, for every file, the contents a reader sees now ("written") apart
//! from the contents that survive a power loss ("durable"), and the same for the
//! directory's names. [`Backend::sync_data`] makes a file's written contents durable;
//! [`Backend::sync_dir`] makes the current names durable. A new file's durable contents are
//! empty.
//!
//! Every mutating call (create, write, set_len, sync_data, rename, remove, sync_dir) is an
//! *op*, numbered from 0 in call order over the life of the disk; [`SimBackend::inject`]
//! makes op `n` fail in one of the ways of [`Fault`]. [`SimBackend::crash`] then gives the
//! disk a process or a machine would find after dying there. Crash tests run the real
//! [`LogJournal`] over it ([`FaultyJournal`]), so the code that ships is the code that is
//! crash-tested.

use super::backend::Backend;
use super::log::LogJournal;
use crate::sync::Mutex;
use std::collections::{BTreeMap, HashMap};
use std::io;
use std::sync::Arc;

/// The fault-injecting journal: the real [`LogJournal`] over a [`SimBackend`].
pub type FaultyJournal = LogJournal<SimBackend>;

/// How an injected op fails. Every fault makes the op return an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The op has no effect.
    Fail,
    /// A write stores only its first `keep` bytes (all of them if `keep` is larger), as a
    /// write cut short by a crash. Any other op just fails.
    Tear {
        /// How many bytes of the write land.
        keep: usize,
    },
    /// A write stores its first `keep` bytes and garbage in place of the rest, as a torn
    /// sector does. Any other op just fails.
    Garble {
        /// How many bytes of the write land intact.
        keep: usize,
    },
}

/// What survives a crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Crash {
    /// The process dies, the kernel does not: everything written survives, synced or not.
    Process,
    /// The machine loses power: only what was synced survives.
    PowerLoss,
}

/// A simulated directory; clones share the same disk. See the module documentation.
#[derive(Debug, Clone, Default)]
pub struct SimBackend {
    disk: Arc<Mutex<Disk>>,
}

#[derive(Debug, Clone, Default)]
struct Disk {
    /// Name → inode, as a reader sees the directory now.
    names: BTreeMap<String, u64>,
    /// Name → inode, as the directory survives a power loss; changed only by `sync_dir`.
    durable_names: BTreeMap<String, u64>,
    /// Inodes by number.
    files: HashMap<u64, File>,
    next_inode: u64,
    /// Mutating ops so far.
    ops: u64,
    /// Faults still to fire, by op number.
    faults: BTreeMap<u64, Fault>,
}

#[derive(Debug, Clone, Default)]
struct File {
    written: Vec<u8>,
    /// Invariant: what `written` was at the last `sync_data` (empty before the first).
    durable: Vec<u8>,
}

fn not_found(name: &str) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, format!("no file {name:?}"))
}

impl Disk {
    /// Counts an op; its fault, if one was injected for it.
    fn op(&mut self) -> Option<Fault> {
        let n = self.ops;
        self.ops += 1;
        self.faults.remove(&n)
    }

    fn file(&mut self, name: &str) -> io::Result<&mut File> {
        let inode = *self.names.get(name).ok_or_else(|| not_found(name))?;
        Ok(self.files.get_mut(&inode).expect("every name has an inode"))
    }
}

fn injected(what: &str, name: &str) -> io::Error {
    io::Error::other(format!("injected fault: {what} {name:?}"))
}

/// Fails a non-write op if a fault was injected for it.
fn plain_op(disk: &mut Disk, what: &str, name: &str) -> io::Result<()> {
    match disk.op() {
        Some(_) => Err(injected(what, name)),
        None => Ok(()),
    }
}

impl SimBackend {
    /// An empty disk.
    pub fn new() -> SimBackend {
        SimBackend::default()
    }

    /// Makes op number `op` (counted from 0 over the disk's life) fail with `fault`.
    pub fn inject(&self, op: u64, fault: Fault) {
        self.disk.lock().faults.insert(op, fault);
    }

    /// How many mutating ops the disk has seen.
    pub fn ops(&self) -> u64 {
        self.disk.lock().ops
    }

    /// The disk as whoever comes after a crash of kind `how` finds it: a new, independent
    /// disk with no faults and an op count of 0.
    pub fn crash(&self, how: Crash) -> SimBackend {
        let mut disk = self.disk.lock().clone();
        disk.faults.clear();
        disk.ops = 0;
        if how == Crash::PowerLoss {
            disk.names = disk.durable_names.clone();
            let live: Vec<u64> = disk.names.values().copied().collect();
            disk.files.retain(|inode, _| live.contains(inode));
            for f in disk.files.values_mut() {
                f.written = f.durable.clone();
            }
        }
        SimBackend {
            disk: Arc::new(Mutex::new(disk)),
        }
    }

    /// Replaces (or creates) `name` with `bytes`, durably and without counting an op: how
    /// a test plants damage.
    pub fn set_contents(&self, name: &str, bytes: &[u8]) {
        let mut disk = self.disk.lock();
        let inode = match disk.names.get(name) {
            Some(&inode) => inode,
            None => {
                disk.next_inode += 1;
                disk.next_inode
            }
        };
        disk.names.insert(name.to_owned(), inode);
        disk.durable_names.insert(name.to_owned(), inode);
        disk.files.insert(
            inode,
            File {
                written: bytes.to_vec(),
                durable: bytes.to_vec(),
            },
        );
    }
}

impl Backend for SimBackend {
    fn create(&self, name: &str) -> io::Result<()> {
        let mut disk = self.disk.lock();
        plain_op(&mut disk, "create", name)?;
        match disk.names.get(name) {
            Some(&inode) => disk.files.get_mut(&inode).expect("inode").written.clear(),
            None => {
                disk.next_inode += 1;
                let inode = disk.next_inode;
                disk.files.insert(inode, File::default());
                disk.names.insert(name.to_owned(), inode);
            }
        }
        Ok(())
    }

    fn read(&self, name: &str) -> io::Result<Vec<u8>> {
        Ok(self.disk.lock().file(name)?.written.clone())
    }

    fn write(&self, name: &str, offset: u64, data: &[u8]) -> io::Result<()> {
        let mut disk = self.disk.lock();
        let fault = disk.op();
        let file = disk.file(name)?;
        let landed: Vec<u8> = match fault {
            None => data.to_vec(),
            Some(Fault::Fail) => Vec::new(),
            Some(Fault::Tear { keep }) => data[..keep.min(data.len())].to_vec(),
            Some(Fault::Garble { keep }) => {
                let keep = keep.min(data.len());
                let garbage = (keep..data.len()).map(|i| (i as u8).wrapping_mul(167) ^ 0x5a);
                data[..keep].iter().copied().chain(garbage).collect()
            }
        };
        let start = offset as usize;
        let end = start + landed.len();
        if file.written.len() < end {
            file.written.resize(end, 0);
        }
        file.written[start..end].copy_from_slice(&landed);
        match fault {
            None => Ok(()),
            Some(_) => Err(injected("write", name)),
        }
    }

    fn set_len(&self, name: &str, len: u64) -> io::Result<()> {
        let mut disk = self.disk.lock();
        plain_op(&mut disk, "set_len", name)?;
        disk.file(name)?.written.resize(len as usize, 0);
        Ok(())
    }

    fn sync_data(&self, name: &str) -> io::Result<()> {
        let mut disk = self.disk.lock();
        plain_op(&mut disk, "sync_data", name)?;
        let file = disk.file(name)?;
        file.durable = file.written.clone();
        Ok(())
    }

    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        let mut disk = self.disk.lock();
        plain_op(&mut disk, "rename", from)?;
        let inode = disk.names.remove(from).ok_or_else(|| not_found(from))?;
        disk.names.insert(to.to_owned(), inode);
        Ok(())
    }

    fn remove(&self, name: &str) -> io::Result<()> {
        let mut disk = self.disk.lock();
        plain_op(&mut disk, "remove", name)?;
        disk.names.remove(name).ok_or_else(|| not_found(name))?;
        Ok(())
    }

    fn list(&self) -> io::Result<Vec<String>> {
        Ok(self.disk.lock().names.keys().cloned().collect())
    }

    fn sync_dir(&self) -> io::Result<()> {
        let mut disk = self.disk.lock();
        plain_op(&mut disk, "sync_dir", "")?;
        disk.durable_names = disk.names.clone();
        Ok(())
    }

    fn path(&self, name: &str) -> String {
        format!("sim:{name}")
    }
}
