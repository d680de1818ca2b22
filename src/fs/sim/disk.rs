//! The simulated disk: inodes with a current and a durable version, path resolution, and
//! the numbering of calls with their crash point and injected faults.

use super::limits::Quotas;
use super::Fault;
use crate::fs::{FileKind, FileStat};
use nix::libc;
use std::collections::{BTreeMap, HashMap};
use std::ffi::OsString;
use std::io;
use std::path::{Component, Path, PathBuf};

/// The inode number of `/`.
pub(super) const ROOT: u64 = 1;

/// Symbolic links followed in one lookup before giving up with `ELOOP`, as Linux.
pub(super) const MAX_HOPS: usize = 40;

#[derive(Debug, Clone)]
pub(super) enum Content {
    Dir(BTreeMap<OsString, u64>),
    File(Vec<u8>),
    Symlink(PathBuf),
}

#[derive(Debug, Clone)]
pub(super) struct Node {
    pub(super) content: Content,
    pub(super) mode: u32,
    pub(super) uid: u32,
    pub(super) gid: u32,
    /// The quota unit the inode is charged to (see quota.rs): in a btrfs-like disk the
    /// inode number of its subvolume, in a project-like disk its project id (with the
    /// inherit flag). Inode metadata: durable as the mode is.
    pub(super) unit: Option<u64>,
}

#[derive(Debug, Clone)]
pub(super) struct Inode {
    /// What every call sees.
    pub(super) now: Node,
    /// What survives a crash. Invariant: its content is `now`'s at the inode's last sync
    /// of any kind (or at its creation); its mode and owner are `now`'s at its last full
    /// sync ([`Disk::sync`]: fsync of a directory, syncfs) or at its creation, since
    /// `fdatasync` ([`Disk::sync_data`]) leaves them alone.
    pub(super) durable: Node,
    /// The last write to the file since its content was last made durable (offset and the
    /// bytes that landed), which a tearing power loss lands in part. Invariant: `None`
    /// after any sync, truncation or `set_len`, and for anything but a file.
    pub(super) unsynced_write: Option<(usize, Vec<u8>)>,
}

impl Inode {
    /// A new inode whose durable version is `node`.
    pub(super) fn new(node: Node) -> Inode {
        Inode {
            now: node.clone(),
            durable: node,
            unsynced_write: None,
        }
    }
}

#[derive(Debug)]
pub(super) struct Disk {
    /// Every inode ever created, reachable or not; unreachable ones are dropped by a crash.
    pub(super) inodes: HashMap<u64, Inode>,
    pub(super) next_ino: u64,
    /// Calls so far.
    pub(super) calls: u64,
    /// Calls numbered above this fail with `EIO`.
    pub(super) crash_after: Option<u64>,
    /// Whether a call failed because of `crash_after`.
    pub(super) crashed: bool,
    /// Descriptions of the calls so far, when recording.
    pub(super) trace: Option<Vec<String>>,
    /// Faults still to fire, by call number.
    pub(super) faults: BTreeMap<u64, Fault>,
    /// The quota mode it reports and its limits (see quota.rs).
    pub(super) quotas: Quotas,
}

impl Default for Disk {
    fn default() -> Disk {
        let root = Node {
            content: Content::Dir(BTreeMap::new()),
            mode: 0o755,
            uid: 0,
            gid: 0,
            unit: None,
        };
        Disk {
            inodes: HashMap::from([(ROOT, Inode::new(root))]),
            next_ino: ROOT + 1,
            calls: 0,
            crash_after: None,
            crashed: false,
            trace: None,
            faults: BTreeMap::new(),
            quotas: Quotas::default(),
        }
    }
}

pub(super) fn errno(code: i32) -> io::Error {
    io::Error::from_raw_os_error(code)
}

/// The error of a call that failed by an injected `fault`: the raw OS error of
/// [`Fault::Errno`], else an error of kind `Other` naming the call.
pub(super) fn injected(fault: Fault, what: &str, path: &Path) -> io::Error {
    match fault {
        Fault::Errno(code) => errno(code),
        _ => io::Error::other(format!(
            "injected fault ({fault:?}): {what} {}",
            path.display()
        )),
    }
}

impl Disk {
    /// Counts a call; fails it if it comes after the crash point or a fault was injected
    /// for it (any fault: only writes land in part, see [`Disk::write_call`]).
    pub(super) fn call(&mut self, what: &str, path: &Path) -> io::Result<()> {
        match self.write_call(what, path)? {
            Some(fault) => Err(injected(fault, what, path)),
            None => Ok(()),
        }
    }

    /// Counts a write; fails it if it comes after the crash point, and returns the fault
    /// injected for it, if any, for the caller to land the write in part and fail.
    pub(super) fn write_call(&mut self, what: &str, path: &Path) -> io::Result<Option<Fault>> {
        self.calls += 1;
        if let Some(trace) = &mut self.trace {
            trace.push(format!("{} {what} {}", self.calls, path.display()));
        }
        if self.crash_after.is_some_and(|n| self.calls > n) {
            self.crashed = true;
            return Err(errno(libc::EIO));
        }
        Ok(self.faults.remove(&self.calls))
    }

    pub(super) fn node(&self, ino: u64) -> &Node {
        &self.inodes[&ino].now
    }

    pub(super) fn node_mut(&mut self, ino: u64) -> &mut Node {
        &mut self
            .inodes
            .get_mut(&ino)
            .expect("every linked inode exists")
            .now
    }

    pub(super) fn entries(&self, ino: u64) -> io::Result<&BTreeMap<OsString, u64>> {
        match &self.node(ino).content {
            Content::Dir(entries) => Ok(entries),
            _ => Err(errno(libc::ENOTDIR)),
        }
    }

    pub(super) fn entries_mut(&mut self, ino: u64) -> io::Result<&mut BTreeMap<OsString, u64>> {
        match &mut self.node_mut(ino).content {
            Content::Dir(entries) => Ok(entries),
            _ => Err(errno(libc::ENOTDIR)),
        }
    }

    /// The chain of (name, inode) from `/` to `path`, following symbolic links on the
    /// way, and at the end too when `follow_last`.
    pub(super) fn resolve(
        &self,
        path: &Path,
        follow_last: bool,
    ) -> io::Result<Vec<(OsString, u64)>> {
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

    pub(super) fn lookup(&self, path: &Path, follow_last: bool) -> io::Result<u64> {
        Ok(self
            .resolve(path, follow_last)?
            .last()
            .expect("never empty")
            .1)
    }

    /// The directory that holds `path`'s last component, and that component.
    pub(super) fn parent(&self, path: &Path) -> io::Result<(u64, OsString)> {
        let name = path.file_name().ok_or(errno(libc::EINVAL))?;
        let dir = self.lookup(path.parent().ok_or(errno(libc::EINVAL))?, true)?;
        self.entries(dir)?;
        Ok((dir, name.to_owned()))
    }

    /// Links a new inode with `content` as `name` in directory `dir`.
    pub(super) fn create(
        &mut self,
        dir: u64,
        name: OsString,
        content: Content,
        mode: u32,
    ) -> io::Result<()> {
        if self.entries(dir)?.contains_key(&name) {
            return Err(errno(libc::EEXIST));
        }
        let ino = self.next_ino;
        self.next_ino += 1;
        // A new inode joins the unit of its directory (subvolume, or inherited project).
        let node = Node {
            content,
            mode,
            uid: 0,
            gid: 0,
            unit: self.node(dir).unit,
        };
        self.inodes.insert(ino, Inode::new(node));
        self.entries_mut(dir)?.insert(name, ino);
        Ok(())
    }

    /// Creates directory `path` with `mode` and its missing ancestors, as Rust's
    /// `fs::create_dir_all` does with `mkdir(2)`: an existing directory (through links too)
    /// is fine, any other failure of the last `mkdir` is the answer.
    ///
    /// Rust's version also accepts a final `mkdir` that fails once the ancestors exist, if
    /// `path` is a directory by then: another process made it meanwhile. Under the disk's
    /// lock nothing does, so that `mkdir` is the answer as it is.
    pub(super) fn create_dir_all(&mut self, path: &Path, mode: u32) -> io::Result<()> {
        match self.mkdir(path, mode) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(_)
                if self
                    .lookup(path, true)
                    .is_ok_and(|ino| self.entries(ino).is_ok()) =>
            {
                return Ok(())
            }
            Err(e) => return Err(e),
        }
        self.create_dir_all(path.parent().ok_or(errno(libc::ENOENT))?, mode)?;
        self.mkdir(path, mode)
    }

    /// `mkdir(2)`.
    fn mkdir(&mut self, path: &Path, mode: u32) -> io::Result<()> {
        let (dir, name) = self.parent(path)?;
        self.create(dir, name, Content::Dir(BTreeMap::new()), mode)
    }

    pub(super) fn file_mut(&mut self, path: &Path) -> io::Result<&mut Vec<u8>> {
        let ino = self.lookup(path, true)?;
        match &mut self.node_mut(ino).content {
            Content::File(data) => Ok(data),
            Content::Dir(_) => Err(errno(libc::EISDIR)),
            Content::Symlink(_) => Err(errno(libc::EINVAL)),
        }
    }

    pub(super) fn stat(&self, ino: u64) -> FileStat {
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

    /// `fsync(2)`: makes the whole current version of `ino` durable, mode and owner too.
    pub(super) fn sync(&mut self, ino: u64) {
        let inode = self
            .inodes
            .get_mut(&ino)
            .expect("every linked inode exists");
        inode.durable = inode.now.clone();
        inode.unsynced_write = None;
    }

    /// `fdatasync(2)`: makes the current contents (and so the length) of `ino` durable,
    /// not its mode or owner.
    pub(super) fn sync_data(&mut self, ino: u64) {
        let inode = self
            .inodes
            .get_mut(&ino)
            .expect("every linked inode exists");
        inode.durable.content = inode.now.content.clone();
        inode.unsynced_write = None;
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
