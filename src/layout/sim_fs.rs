//! [`SimFs`]: an in-memory [`FileSystem`] that forgets what was not made durable, counts
//! every call, and dies on cue: the disk of the crash-point explorer
//! (`tests/crash_points.rs`).
//!
//! Every inode has two versions: `now`, which every call sees, and `durable`, which a
//! power loss keeps. The durability rules are those of ext4 read strictly (the module
//! documentation of [`FileSystem`]):
//! - a new inode's durable version is the one it was created with (an empty directory or
//!   file, a link with its target), and becomes reachable only once a durable directory
//!   names it;
//! - [`FileSystem::sync_data`] and [`FileSystem::sync_dir`] make one inode's current
//!   version durable: a file's contents, a directory's names (created, renamed and removed
//!   entries), with the inode's mode and owner;
//! - [`FileSystem::syncfs`] makes every inode durable.
//!
//! Every fallible call of the trait counts as one *call*, numbered from 1 over the life of
//! the disk. [`SimFs::crash_after`]`(n)` lets calls up to `n` run and fails every later one
//! with `EIO`, as if the machine died right after call `n`; [`SimFs::crash`] then yields
//! the disk a reboot finds: only the durable versions reachable from the root, and
//! [`SimFs::restart`] the disk the next process finds when only the process died. There are
//! no mounts, no other processes (no locks) and one device.

use super::fs::{FileKind, FileStat, FileSystem};
use super::probe::OverlayFeatures;
use crate::error::{Error, Result};
use crate::journal::DirLock;
use crate::sync::Mutex;
use nix::libc;
use std::collections::{BTreeMap, HashMap};
use std::ffi::OsString;
use std::io;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

/// The inode number of `/`.
const ROOT: u64 = 1;

/// Symbolic links followed in one lookup before giving up with `ELOOP`, as Linux.
const MAX_HOPS: usize = 40;

/// A simulated file system; clones share the same disk. See the module documentation.
#[derive(Debug, Clone, Default)]
pub struct SimFs {
    disk: Arc<Mutex<Disk>>,
}

#[derive(Debug, Clone)]
enum Content {
    Dir(BTreeMap<OsString, u64>),
    File(Vec<u8>),
    Symlink(PathBuf),
}

#[derive(Debug, Clone)]
struct Node {
    content: Content,
    mode: u32,
    uid: u32,
    gid: u32,
}

#[derive(Debug, Clone)]
struct Inode {
    /// What every call sees.
    now: Node,
    /// What survives a crash. Invariant: `now` at the inode's last sync, or at its creation.
    durable: Node,
}

#[derive(Debug)]
struct Disk {
    /// Every inode ever created, reachable or not; unreachable ones are dropped by a crash.
    inodes: HashMap<u64, Inode>,
    next_ino: u64,
    /// Calls so far.
    calls: u64,
    /// Calls numbered above this fail with `EIO`.
    crash_after: Option<u64>,
    /// Whether a call failed because of `crash_after`.
    crashed: bool,
    /// Descriptions of the calls so far, when recording.
    trace: Option<Vec<String>>,
}

impl Default for Disk {
    fn default() -> Disk {
        let root = Node {
            content: Content::Dir(BTreeMap::new()),
            mode: 0o755,
            uid: 0,
            gid: 0,
        };
        Disk {
            inodes: HashMap::from([(
                ROOT,
                Inode {
                    now: root.clone(),
                    durable: root,
                },
            )]),
            next_ino: ROOT + 1,
            calls: 0,
            crash_after: None,
            crashed: false,
            trace: None,
        }
    }
}

fn errno(code: i32) -> io::Error {
    io::Error::from_raw_os_error(code)
}

impl Disk {
    /// Counts a call; fails it if it comes after the crash point.
    fn call(&mut self, what: &str, path: &Path) -> io::Result<()> {
        self.calls += 1;
        if let Some(trace) = &mut self.trace {
            trace.push(format!("{} {what} {}", self.calls, path.display()));
        }
        if self.crash_after.is_some_and(|n| self.calls > n) {
            self.crashed = true;
            return Err(errno(libc::EIO));
        }
        Ok(())
    }

    fn node(&self, ino: u64) -> &Node {
        &self.inodes[&ino].now
    }

    fn node_mut(&mut self, ino: u64) -> &mut Node {
        &mut self
            .inodes
            .get_mut(&ino)
            .expect("every linked inode exists")
            .now
    }

    fn entries(&self, ino: u64) -> io::Result<&BTreeMap<OsString, u64>> {
        match &self.node(ino).content {
            Content::Dir(entries) => Ok(entries),
            _ => Err(errno(libc::ENOTDIR)),
        }
    }

    fn entries_mut(&mut self, ino: u64) -> io::Result<&mut BTreeMap<OsString, u64>> {
        match &mut self.node_mut(ino).content {
            Content::Dir(entries) => Ok(entries),
            _ => Err(errno(libc::ENOTDIR)),
        }
    }

    /// The chain of (name, inode) from `/` to `path`, following symbolic links on the
    /// way, and at the end too when `follow_last`.
    fn resolve(&self, path: &Path, follow_last: bool) -> io::Result<Vec<(OsString, u64)>> {
        if !path.is_absolute() {
            return Err(errno(libc::EINVAL));
        }
        let mut stack = vec![(OsString::from("/"), ROOT)];
        let mut todo = Vec::new();
        push_components(&mut todo, path);
        let mut hops = 0;
        while let Some(name) = todo.pop() {
            if name == ".." {
                if stack.len() > 1 {
                    stack.pop();
                }
                continue;
            }
            let dir = stack.last().expect("the root stays").1;
            let ino = *self.entries(dir)?.get(&name).ok_or(errno(libc::ENOENT))?;
            if let Content::Symlink(target) = &self.node(ino).content {
                if !todo.is_empty() || follow_last {
                    hops += 1;
                    if hops > MAX_HOPS {
                        return Err(errno(libc::ELOOP));
                    }
                    if target.is_absolute() {
                        stack.truncate(1);
                    }
                    push_components(&mut todo, target);
                    continue;
                }
            }
            stack.push((name, ino));
        }
        Ok(stack)
    }

    fn lookup(&self, path: &Path, follow_last: bool) -> io::Result<u64> {
        Ok(self
            .resolve(path, follow_last)?
            .last()
            .expect("never empty")
            .1)
    }

    /// The directory that holds `path`'s last component, and that component.
    fn parent(&self, path: &Path) -> io::Result<(u64, OsString)> {
        let name = path.file_name().ok_or(errno(libc::EINVAL))?;
        let dir = self.lookup(path.parent().ok_or(errno(libc::EINVAL))?, true)?;
        self.entries(dir)?;
        Ok((dir, name.to_owned()))
    }

    /// Links a new inode with `content` as `name` in directory `dir`.
    fn create(&mut self, dir: u64, name: OsString, content: Content, mode: u32) -> io::Result<()> {
        if self.entries(dir)?.contains_key(&name) {
            return Err(errno(libc::EEXIST));
        }
        let ino = self.next_ino;
        self.next_ino += 1;
        let node = Node {
            content,
            mode,
            uid: 0,
            gid: 0,
        };
        self.inodes.insert(
            ino,
            Inode {
                now: node.clone(),
                durable: node,
            },
        );
        self.entries_mut(dir)?.insert(name, ino);
        Ok(())
    }

    fn file_mut(&mut self, path: &Path) -> io::Result<&mut Vec<u8>> {
        let ino = self.lookup(path, true)?;
        match &mut self.node_mut(ino).content {
            Content::File(data) => Ok(data),
            Content::Dir(_) => Err(errno(libc::EISDIR)),
            Content::Symlink(_) => Err(errno(libc::EINVAL)),
        }
    }

    fn stat(&self, ino: u64) -> FileStat {
        let node = self.node(ino);
        let (kind, len, nlink) = match &node.content {
            Content::Dir(entries) => {
                let subdirs = entries
                    .values()
                    .filter(|&&i| matches!(self.node(i).content, Content::Dir(_)))
                    .count();
                (FileKind::Dir, 4096, 2 + subdirs as u64)
            }
            Content::File(data) => (FileKind::File, data.len() as u64, 1),
            Content::Symlink(target) => (FileKind::Symlink, target.as_os_str().len() as u64, 1),
        };
        let blocks = match kind {
            FileKind::Symlink => 0,
            _ => len.div_ceil(4096) * 8,
        };
        FileStat {
            kind,
            dev: 1,
            ino,
            nlink,
            blocks,
            len,
            uid: node.uid,
            gid: node.gid,
            mode: node.mode,
        }
    }

    fn sync(&mut self, ino: u64) {
        let inode = self
            .inodes
            .get_mut(&ino)
            .expect("every linked inode exists");
        inode.durable = inode.now.clone();
    }

    /// Empties the directory tree at `ino` in the current version (as unlinking every
    /// entry does); the durable versions stay until synced.
    fn empty_tree(&mut self, ino: u64) {
        let children = match &mut self.node_mut(ino).content {
            Content::Dir(entries) => std::mem::take(entries),
            _ => return,
        };
        for child in children.into_values() {
            self.empty_tree(child);
        }
    }
}

/// Pushes the components of `path` onto `todo` so that the first pops first.
fn push_components(todo: &mut Vec<OsString>, path: &Path) {
    for component in path.components().rev() {
        match component {
            Component::Normal(name) => todo.push(name.to_owned()),
            Component::ParentDir => todo.push("..".into()),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
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
                ..Disk::default()
            })),
        }
    }

    /// The disk a reboot after a power loss finds: a new, independent file system holding
    /// the durable version of everything a durable directory still names, with a call
    /// count of 0 and no crash point. A disk whose every change was synced (by
    /// [`FileSystem::syncfs`]) comes back whole, so this is also how to copy one.
    pub fn crash(&self) -> SimFs {
        self.power_loss(false)
    }

    /// The disk a reboot finds after a power loss that came just after the file system
    /// wrote out every name change (directories and links as they are now) but no file
    /// data that was not synced: what a metadata-journaling file system may leave after a
    /// journal commit of its own. The other extreme from [`SimFs::crash`]: unsynced names
    /// survive, so a directory installed for a record that was lost is found.
    pub fn crash_keeping_names(&self) -> SimFs {
        self.power_loss(true)
    }

    fn power_loss(&self, keep_names: bool) -> SimFs {
        let old = self.disk.lock();
        let mut disk = Disk {
            inodes: HashMap::new(),
            next_ino: old.next_ino,
            ..Disk::default()
        };
        let mut todo = vec![ROOT];
        while let Some(ino) = todo.pop() {
            if disk.inodes.contains_key(&ino) {
                continue;
            }
            let inode = &old.inodes[&ino];
            let node = match inode.now.content {
                Content::Dir(_) | Content::Symlink(_) if keep_names => inode.now.clone(),
                _ => inode.durable.clone(),
            };
            if let Content::Dir(entries) = &node.content {
                todo.extend(entries.values().copied());
            }
            disk.inodes.insert(
                ino,
                Inode {
                    now: node.clone(),
                    durable: node,
                },
            );
        }
        SimFs {
            disk: Arc::new(Mutex::new(disk)),
        }
    }
}

impl FileSystem for SimFs {
    fn create_dir(&self, path: &Path) -> io::Result<()> {
        let mut disk = self.disk.lock();
        disk.call("create_dir", path)?;
        let (dir, name) = disk.parent(path)?;
        disk.create(dir, name, Content::Dir(BTreeMap::new()), 0o755)
    }

    fn create_dir_all(&self, path: &Path, mode: u32) -> io::Result<()> {
        let mut disk = self.disk.lock();
        disk.call("create_dir_all", path)?;
        let mut prefix = PathBuf::from("/");
        for component in path.components() {
            prefix.push(component);
            match disk.lookup(&prefix, true) {
                Ok(ino) => {
                    disk.entries(ino)?;
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    let (dir, name) = disk.parent(&prefix)?;
                    disk.create(dir, name, Content::Dir(BTreeMap::new()), mode & !0o022)?;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn canonicalize(&self, path: &Path) -> io::Result<PathBuf> {
        let mut disk = self.disk.lock();
        disk.call("canonicalize", path)?;
        Ok(disk
            .resolve(path, true)?
            .into_iter()
            .map(|(name, _)| name)
            .collect())
    }

    fn set_mode(&self, path: &Path, mode: u32) -> io::Result<()> {
        let mut disk = self.disk.lock();
        disk.call("set_mode", path)?;
        let ino = disk.lookup(path, true)?;
        disk.node_mut(ino).mode = mode & 0o7777;
        Ok(())
    }

    fn lchown(&self, path: &Path, uid: u32, gid: u32) -> io::Result<()> {
        let mut disk = self.disk.lock();
        disk.call("lchown", path)?;
        let ino = disk.lookup(path, false)?;
        let node = disk.node_mut(ino);
        (node.uid, node.gid) = (uid, gid);
        Ok(())
    }

    fn metadata(&self, path: &Path) -> io::Result<FileStat> {
        let mut disk = self.disk.lock();
        disk.call("metadata", path)?;
        let ino = disk.lookup(path, true)?;
        Ok(disk.stat(ino))
    }

    fn symlink_metadata(&self, path: &Path) -> io::Result<FileStat> {
        let mut disk = self.disk.lock();
        disk.call("symlink_metadata", path)?;
        let ino = disk.lookup(path, false)?;
        Ok(disk.stat(ino))
    }

    fn read_dir(&self, path: &Path) -> io::Result<Vec<OsString>> {
        let mut disk = self.disk.lock();
        disk.call("read_dir", path)?;
        let ino = disk.lookup(path, true)?;
        Ok(disk.entries(ino)?.keys().cloned().collect())
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut disk = self.disk.lock();
        disk.call("rename", from)?;
        let (from_dir, from_name) = disk.parent(from)?;
        let ino = *disk
            .entries(from_dir)?
            .get(&from_name)
            .ok_or(errno(libc::ENOENT))?;
        let (to_dir, to_name) = disk.parent(to)?;
        let moving_dir = matches!(disk.node(ino).content, Content::Dir(_));
        if let Some(&existing) = disk.entries(to_dir)?.get(&to_name) {
            if existing == ino {
                return Ok(());
            }
            match (&disk.node(existing).content, moving_dir) {
                (Content::Dir(entries), true) if !entries.is_empty() => {
                    return Err(errno(libc::ENOTEMPTY))
                }
                (Content::Dir(_), true) => {}
                (Content::Dir(_), false) => return Err(errno(libc::EISDIR)),
                (_, true) => return Err(errno(libc::ENOTDIR)),
                (_, false) => {}
            }
        }
        disk.entries_mut(from_dir)?.remove(&from_name);
        disk.entries_mut(to_dir)?.insert(to_name, ino);
        Ok(())
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let mut disk = self.disk.lock();
        disk.call("remove_file", path)?;
        let (dir, name) = disk.parent(path)?;
        let ino = *disk.entries(dir)?.get(&name).ok_or(errno(libc::ENOENT))?;
        if matches!(disk.node(ino).content, Content::Dir(_)) {
            return Err(errno(libc::EISDIR));
        }
        disk.entries_mut(dir)?.remove(&name);
        Ok(())
    }

    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        let mut disk = self.disk.lock();
        disk.call("remove_dir_all", path)?;
        let (dir, name) = disk.parent(path)?;
        let ino = *disk.entries(dir)?.get(&name).ok_or(errno(libc::ENOENT))?;
        match disk.node(ino).content {
            Content::File(_) => return Err(errno(libc::ENOTDIR)),
            Content::Dir(_) => disk.empty_tree(ino),
            Content::Symlink(_) => {}
        }
        disk.entries_mut(dir)?.remove(&name);
        Ok(())
    }

    fn symlink(&self, target: &Path, link: &Path) -> io::Result<()> {
        let mut disk = self.disk.lock();
        disk.call("symlink", link)?;
        let (dir, name) = disk.parent(link)?;
        disk.create(dir, name, Content::Symlink(target.to_owned()), 0o777)
    }

    fn read_link(&self, path: &Path) -> io::Result<PathBuf> {
        let mut disk = self.disk.lock();
        disk.call("read_link", path)?;
        let ino = disk.lookup(path, false)?;
        match &disk.node(ino).content {
            Content::Symlink(target) => Ok(target.clone()),
            _ => Err(errno(libc::EINVAL)),
        }
    }

    fn create_file(&self, path: &Path) -> io::Result<()> {
        let mut disk = self.disk.lock();
        disk.call("create_file", path)?;
        match disk.file_mut(path) {
            Ok(data) => {
                data.clear();
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let (dir, name) = disk.parent(path)?;
                disk.create(dir, name, Content::File(Vec::new()), 0o644)
            }
            Err(e) => Err(e),
        }
    }

    fn read_file(&self, path: &Path) -> io::Result<Vec<u8>> {
        let mut disk = self.disk.lock();
        disk.call("read_file", path)?;
        disk.file_mut(path).map(|data| data.clone())
    }

    fn write_at(&self, path: &Path, offset: u64, data: &[u8]) -> io::Result<()> {
        let mut disk = self.disk.lock();
        disk.call("write_at", path)?;
        let file = disk.file_mut(path)?;
        let start = usize::try_from(offset).map_err(|_| errno(libc::EFBIG))?;
        let end = start + data.len();
        if file.len() < end {
            file.resize(end, 0);
        }
        file[start..end].copy_from_slice(data);
        Ok(())
    }

    fn set_len(&self, path: &Path, len: u64) -> io::Result<()> {
        let mut disk = self.disk.lock();
        disk.call("set_len", path)?;
        let len = usize::try_from(len).map_err(|_| errno(libc::EFBIG))?;
        disk.file_mut(path)?.resize(len, 0);
        Ok(())
    }

    fn sync_data(&self, path: &Path) -> io::Result<()> {
        let mut disk = self.disk.lock();
        disk.call("sync_data", path)?;
        disk.file_mut(path)?;
        let ino = disk.lookup(path, true)?;
        disk.sync(ino);
        Ok(())
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        let mut disk = self.disk.lock();
        disk.call("sync_dir", path)?;
        let ino = disk.lookup(path, true)?;
        disk.sync(ino);
        Ok(())
    }

    fn syncfs(&self, path: &Path) -> io::Result<()> {
        let mut disk = self.disk.lock();
        disk.call("syncfs", path)?;
        disk.lookup(path, true)?;
        for inode in disk.inodes.values_mut() {
            inode.durable = inode.now.clone();
        }
        Ok(())
    }

    fn mount_points(&self) -> Result<Vec<PathBuf>> {
        let mut disk = self.disk.lock();
        disk.call("mount_points", Path::new("/"))
            .map_err(|e| Error::io("cannot list the mount points", e))?;
        Ok(Vec::new())
    }

    fn supports_d_type(&self, dir: &Path) -> Result<bool> {
        let mut disk = self.disk.lock();
        disk.call("supports_d_type", dir)
            .map_err(|e| Error::io(format!("cannot read {} to check d_type", dir.display()), e))?;
        Ok(true)
    }

    fn overlay_features(&self, _root: &Path) -> OverlayFeatures {
        OverlayFeatures::default()
    }

    fn lock(&self, dir: &Path) -> Result<Option<DirLock>> {
        let mut disk = self.disk.lock();
        disk.call("lock", dir)
            .map_err(|e| Error::io(format!("locking {}", dir.display()), e))?;
        disk.lookup(dir, true)
            .map_err(|e| Error::io(format!("locking {}", dir.display()), e))?;
        Ok(None)
    }
}
