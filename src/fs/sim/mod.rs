//! [`SimFs`]: an in-memory [`FileSystem`] that forgets what was not made durable, counts
//! every call, fails on cue and dies on cue: the one simulated disk of the crash tests,
//! under the journal alone (`tests/journal_crash.rs`) and under the whole snapshotter (the
//! crash-point explorer, `tests/crash_points.rs`). `tests/sim_fs.rs` checks it against the
//! host's file system and pins down what each kind of crash keeps.
//!
//! Every inode has two versions: `now`, which every call sees, and `durable`, which a
//! power loss keeps. The durability rules are those of ext4 read strictly (the module
//! documentation of [`FileSystem`]):
//! - a new inode's durable version is the one it was created with (an empty directory or
//!   file, a link with its target, its mode at creation), and becomes reachable only once
//!   a durable directory names it;
//! - [`FileHandle::sync_data`] (`fdatasync`) makes a file's current contents and length
//!   durable, and not its mode or owner;
//! - [`FileSystem::sync_dir`] (`fsync`) makes one directory's current version durable: its
//!   names (created, renamed and removed entries), mode and owner;
//! - [`FileSystem::syncfs`] makes every inode durable.
//!
//! Every fallible call of the trait, and of the [`FileHandle`]s it opens, counts as one
//! *call*, numbered from 1 over the life of the disk. [`SimFs::inject`]`(n, fault)` makes
//! call `n` fail as [`Fault`] says (a write may land in part, an `ENOSPC` or `EIO` may be
//! returned). [`SimFs::crash_after`]`(n)` lets calls up to `n` run and fails every later
//! one with `EIO`, as if the machine died right after call `n`; [`SimFs::crash`] then
//! yields the disk a reboot finds: only the durable versions reachable from the root.
//! [`SimFs::crash_tearing`] is the same but lands the first half of each file's last
//! unsynced write (a write torn by the power loss), [`SimFs::crash_keeping_names`] keeps
//! every name change, and [`SimFs::restart`] yields the disk the next process finds when
//! only the process died. There are no mounts, no other processes (no locks) and one
//! device.
//!
//! [`SimFs::new`] has no quotas (it reports the walk and refuses the quota calls);
//! [`SimFs::with_quotas`] makes a disk that reports a btrfs-like or project-like quota
//! mode, with units, limits, usage and their own durability rules (quota.rs).

mod disk;
mod file_system;
mod limits;
mod quota;

use super::QuotaMode;
#[cfg(doc)]
use super::{FileHandle, FileSystem};
use crate::sync::Mutex;
use disk::{Content, Disk, Inode, ROOT};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;

/// A simulated file system; clones share the same disk. See the module documentation.
#[derive(Debug, Clone, Default)]
pub struct SimFs {
    disk: Arc<Mutex<Disk>>,
}

/// How an injected call fails ([`SimFs::inject`]). Every fault makes the call return an
/// error; only a write lands anything, and only by [`Fault::Tear`] or [`Fault::Garble`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The call has no effect.
    Fail,
    /// A write stores only its first `keep` bytes (all of them if `keep` is larger), as a
    /// write cut short. Any other call just fails.
    Tear {
        /// How many bytes of the write land.
        keep: usize,
    },
    /// A write stores its first `keep` bytes and garbage in place of the rest, as a torn
    /// sector does: each byte of the rest differs from the byte meant (its complement), so
    /// a checksum over it always fails. Any other call just fails.
    Garble {
        /// How many bytes of the write land intact.
        keep: usize,
    },
    /// The call fails with the raw OS error `code` (`ENOSPC`, `EIO`, …) and has no effect,
    /// as a write that found the disk full or a sync that reported a writeback error.
    Errno(i32),
}

impl SimFs {
    /// A file system holding only an empty `/`, everything durable.
    pub fn new() -> SimFs {
        SimFs::default()
    }

    /// How many calls the file system has seen.
    pub fn calls(&self) -> u64 {
        self.disk.lock().calls
    }

    /// Lets calls up to number `n` (counted from 1 over the disk's life, see
    /// [`SimFs::calls`]) run and fails every later one with `EIO`: the machine dies right
    /// after call `n`.
    pub fn crash_after(&self, n: u64) {
        self.disk.lock().crash_after = Some(n);
    }

    /// Makes call number `n` (counted from 1 over the disk's life, see [`SimFs::calls`])
    /// fail with `fault`, once. Injected faults do not survive [`SimFs::restart`] or
    /// [`SimFs::crash`].
    pub fn inject(&self, n: u64, fault: Fault) {
        self.disk.lock().faults.insert(n, fault);
    }

    /// Puts a file holding `bytes` at `path`, creating the missing directories on the way,
    /// all durable at once and without counting a call: how a test plants a file or damage.
    pub fn plant(&self, path: &Path, bytes: &[u8]) {
        let mut disk = self.disk.lock();
        let mut dir = ROOT;
        let parent = path.parent().expect("a file path");
        for component in parent.components().skip(1) {
            let name = component.as_os_str().to_owned();
            dir = match disk.entries(dir).expect("a directory").get(&name) {
                Some(&ino) => ino,
                None => {
                    disk.create(dir, name.clone(), Content::Dir(BTreeMap::new()), 0o755)
                        .expect("a new name");
                    disk.sync(dir);
                    disk.entries(dir).expect("a directory")[&name]
                }
            };
        }
        let name = path.file_name().expect("a file name").to_owned();
        match disk.entries(dir).expect("a directory").get(&name) {
            Some(&ino) => disk.node_mut(ino).content = Content::File(bytes.to_vec()),
            None => disk
                .create(dir, name.clone(), Content::File(bytes.to_vec()), 0o644)
                .expect("a new name"),
        }
        let ino = disk.entries(dir).expect("a directory")[&name];
        disk.sync(ino);
        disk.sync(dir);
    }

    /// Whether some call failed because it came after the crash point.
    pub fn crashed(&self) -> bool {
        self.disk.lock().crashed
    }

    /// Starts recording a description of every later call (see [`SimFs::trace`]).
    pub fn record_trace(&self) {
        self.disk.lock().trace.get_or_insert_with(Vec::new);
    }

    /// The calls recorded since [`SimFs::record_trace`], one line each: number, call, path.
    pub fn trace(&self) -> Vec<String> {
        self.disk.lock().trace.clone().unwrap_or_default()
    }

    /// The disk the next process finds after this one died with the machine still running
    /// (SIGKILL): a new, independent file system holding everything written, durable or
    /// not (what was not durable still is not: a later [`SimFs::crash`] loses it), with a
    /// call count of 0 and no crash point.
    pub fn restart(&self) -> SimFs {
        let old = self.disk.lock();
        SimFs {
            disk: Arc::new(Mutex::new(Disk {
                inodes: old.inodes.clone(),
                next_ino: old.next_ino,
                quotas: old.quotas.clone(),
                ..Disk::default()
            })),
        }
    }

    /// The disk a reboot after a power loss finds: a new, independent file system holding
    /// the durable version of everything a durable directory still names, with a call
    /// count of 0 and no crash point. A disk whose every change was synced (by
    /// [`FileSystem::syncfs`]) comes back whole, so this is also how to copy one.
    pub fn crash(&self) -> SimFs {
        self.power_loss(false, false)
    }

    /// [`SimFs::crash`], except that the power loss tore each file's last write since its
    /// contents were last synced: the first half of the bytes it wrote (rounded down) lands
    /// on the durable contents, zero-extending them as needed, and the rest does not. A
    /// write is never torn on a file that only an unsynced name reaches (the file is lost
    /// with its name), nor after a `set_len` or a truncation of the file.
    pub fn crash_tearing(&self) -> SimFs {
        self.power_loss(false, true)
    }

    /// The disk a reboot finds after a power loss that came just after the file system
    /// wrote out every name change (directories and links as they are now) but no file
    /// data that was not synced: what a metadata-journaling file system may leave after a
    /// journal commit of its own. The other extreme from [`SimFs::crash`]: unsynced names
    /// survive, so a directory installed for a record that was lost is found.
    ///
    /// Directories and links come back whole as they are now, mode and owner included, and
    /// so do quota limits (the commit carries them).
    pub fn crash_keeping_names(&self) -> SimFs {
        self.power_loss(true, false)
    }

    /// The disk after a power loss: the durable versions reachable from the root; with
    /// `keep_names`, directories and links as they are now; with `tear`, half of each
    /// file's last unsynced write landed (see [`SimFs::crash_tearing`]).
    fn power_loss(&self, keep_names: bool, tear: bool) -> SimFs {
        let old = self.disk.lock();
        let mut disk = Disk {
            inodes: HashMap::new(),
            next_ino: old.next_ino,
            quotas: old.quotas.after_power_loss(keep_names),
            ..Disk::default()
        };
        let mut todo = vec![ROOT];
        while let Some(ino) = todo.pop() {
            if disk.inodes.contains_key(&ino) {
                continue;
            }
            let inode = &old.inodes[&ino];
            let mut node = match inode.now.content {
                Content::Dir(_) | Content::Symlink(_) if keep_names => inode.now.clone(),
                _ => inode.durable.clone(),
            };
            match (&mut node.content, &inode.unsynced_write) {
                (Content::File(data), Some((offset, written))) if tear => {
                    let landed = &written[..written.len() / 2];
                    let end = offset + landed.len();
                    data.resize(data.len().max(end), 0);
                    data[*offset..end].copy_from_slice(landed);
                }
                (Content::Dir(entries), _) => todo.extend(entries.values().copied()),
                _ => {}
            }
            disk.inodes.insert(ino, Inode::new(node));
        }
        // A qgroup lives and dies with its subvolume: the limit of one the power loss took
        // is gone too (a project's limit is not tied to any inode).
        if disk.quotas.mode == QuotaMode::Btrfs {
            let inodes = &disk.inodes;
            disk.quotas.retain_units(|unit| inodes.contains_key(&unit));
        }
        SimFs {
            disk: Arc::new(Mutex::new(disk)),
        }
    }
}
