//! Shared support for the snapshotter suites (`snapshotter_suite`, `snapshotter_concurrency`,
//! `snapshotter_crash`): scratch directories on a real disk, a mount guard over the library's
//! own mount helper, a port of continuity's `fstest` appliers and directory comparison, a
//! listing of a root for "nothing changed" checks, and a seeded xorshift generator.
#![allow(dead_code)] // each test binary uses a different part of it

use overlaysnap::core::{Info, Labels};
use overlaysnap::fs::{mount_all, unmount, unmount_all, Mount, Unmount};
use overlaysnap::snapshotter::UPPERDIR_LABEL;
use overlaysnap::{Options, Snapshotter};
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io;
use std::os::unix::fs::{lchown, symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// How many tests of this binary ran with real mounts.
static RAN: AtomicUsize = AtomicUsize::new(0);

/// Whether the test can mount (runs as root). Prints a skip line when not, and a "ran" line
/// with the count of mount tests run so far in this binary when it can.
pub fn root_or_skip(test: &str) -> bool {
    if !nix::unistd::geteuid().is_root() {
        println!("SKIPPED {test}: needs root for real overlay and bind mounts");
        return false;
    }
    let n = RAN.fetch_add(1, Ordering::Relaxed) + 1;
    println!("running {test} with real mounts ({n} mount tests so far in this binary)");
    true
}

/// A scratch directory on a real disk (`/var/tmp`, not tmpfs) with `root/` for the
/// snapshotter and `work/` for mount targets and reference trees, as containerd's suite.
///
/// Declare it before anything mounted inside it, so that mounts are undone first.
pub struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    pub fn new(test: &str) -> Scratch {
        let dir = tempfile::Builder::new()
            .prefix(&format!("overlaysnap-{test}-"))
            .tempdir_in("/var/tmp")
            .expect("create a scratch directory in /var/tmp");
        fs::create_dir(dir.path().join("work")).expect("mkdir work");
        Scratch { dir }
    }

    /// The snapshotter root (created by the snapshotter).
    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    /// `work/<name>`, created.
    pub fn work(&self, name: &str) -> PathBuf {
        let p = self.dir.path().join("work").join(name);
        fs::create_dir_all(&p).expect("mkdir in work");
        p
    }

    /// A fresh, unique directory in `work/` whose name starts with `prefix`.
    pub fn temp_work(&self, prefix: &str) -> PathBuf {
        tempfile::Builder::new()
            .prefix(prefix)
            .tempdir_in(self.dir.path().join("work"))
            .expect("temp dir in work")
            .keep()
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// Options with the given remove mode, everything else default (durable log).
pub fn options(sync_remove: bool) -> Options {
    Options {
        sync_remove,
        ..Options::default()
    }
}

/// Opens a snapshotter, panicking with the error.
pub fn open(root: &Path, options: Options) -> Snapshotter {
    Snapshotter::open(root, options).unwrap_or_else(|e| panic!("open {}: {e}", root.display()))
}

/// Labels from pairs.
pub fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// containerd's suite passes this `gc.root` label with every call.
pub fn gc_root() -> Labels {
    labels(&[("containerd.io/gc.root", "overlaysnap-suite")])
}

/// A directory with the mounts of a snapshot on it. Dropping it detaches the mounts (also
/// when a test fails); [`Mounted::unmount`] unmounts strictly, as before a Commit.
pub struct Mounted {
    target: PathBuf,
    mounted: bool,
}

impl Mounted {
    /// Mounts `mounts` at `target` (created if missing) with the library's `mount_all`.
    pub fn new(mounts: &[Mount], target: &Path) -> Mounted {
        Mounted::try_new(mounts, target)
            .unwrap_or_else(|e| panic!("mount {mounts:?} at {}: {e}", target.display()))
    }

    pub fn try_new(mounts: &[Mount], target: &Path) -> overlaysnap::Result<Mounted> {
        fs::create_dir_all(target).expect("mkdir mount target");
        mount_all(mounts, target)?;
        Ok(Mounted {
            target: target.to_path_buf(),
            mounted: true,
        })
    }

    pub fn path(&self) -> &Path {
        &self.target
    }

    pub fn join(&self, rel: &str) -> PathBuf {
        self.target.join(rel)
    }

    /// Unmounts every mount at the target, strictly (EBUSY is an error).
    pub fn unmount(mut self) {
        self.mounted = false;
        unmount_all(&self.target, Unmount::Strict)
            .unwrap_or_else(|e| panic!("unmount {}: {e}", self.target.display()));
        // unmount_all stops at EINVAL: nothing may remain mounted.
        assert!(
            !is_mount_point(&self.target),
            "{} is still a mount point",
            self.target.display()
        );
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        if self.mounted {
            if let Err(e) = unmount_all(&self.target, Unmount::Detach) {
                eprintln!("cannot detach {}: {e}", self.target.display());
            }
        }
    }
}

/// Whether `path` is a mount point (per /proc/self/mountinfo).
pub fn is_mount_point(path: &Path) -> bool {
    let info = fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    let want = path.to_string_lossy().replace(' ', "\\040");
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .any(|m| m == want)
}

/// Unmounts one mount at `target` (used where a test keeps mounting the same place).
pub fn unmount_one(target: &Path) {
    unmount(target, Unmount::Strict).expect("unmount");
}

// ---------------------------------------------------------------------------------------
// continuity's fstest appliers

/// One change to a directory tree, as continuity's `fstest` appliers.
#[derive(Debug, Clone)]
pub enum Op {
    /// `CreateFile(path, content, mode)`: write (replacing) and chmod.
    File(String, Vec<u8>, u32),
    /// `CreateDir(path, mode)`: mkdir -p and chmod.
    Dir(String, u32),
    /// `RemoveAll(path)`.
    RemoveAll(String),
    /// `Chown(path, uid, gid)` (lchown).
    Chown(String, u32, u32),
    /// `Link(old, new)`: a hard link.
    Link(String, String),
    /// `Symlink(target, link)`.
    Symlink(String, String),
    /// `Rename(old, new)`.
    Rename(String, String),
    /// `Chmod(path, mode)`.
    Chmod(String, u32),
}

pub fn file(path: &str, content: impl AsRef<[u8]>, mode: u32) -> Op {
    Op::File(path.into(), content.as_ref().to_vec(), mode)
}
pub fn dir(path: &str, mode: u32) -> Op {
    Op::Dir(path.into(), mode)
}
pub fn remove_all(path: &str) -> Op {
    Op::RemoveAll(path.into())
}
pub fn chown(path: &str, uid: u32, gid: u32) -> Op {
    Op::Chown(path.into(), uid, gid)
}
pub fn link(old: &str, new: &str) -> Op {
    Op::Link(old.into(), new.into())
}
pub fn symlink_op(target: &str, link: &str) -> Op {
    Op::Symlink(target.into(), link.into())
}
pub fn rename(old: &str, new: &str) -> Op {
    Op::Rename(old.into(), new.into())
}
pub fn chmod(path: &str, mode: u32) -> Op {
    Op::Chmod(path.into(), mode)
}

fn under(root: &Path, rel: &str) -> PathBuf {
    root.join(rel.trim_start_matches('/'))
}

/// Applies `ops` in order under `root`.
pub fn apply(root: &Path, ops: &[Op]) {
    for op in ops {
        apply_one(root, op).unwrap_or_else(|e| panic!("apply {op:?} in {}: {e}", root.display()));
    }
}

fn apply_one(root: &Path, op: &Op) -> io::Result<()> {
    match op {
        Op::File(p, content, mode) => {
            let p = under(root, p);
            fs::write(&p, content)?;
            fs::set_permissions(&p, fs::Permissions::from_mode(*mode))
        }
        Op::Dir(p, mode) => {
            let p = under(root, p);
            fs::create_dir_all(&p)?;
            fs::set_permissions(&p, fs::Permissions::from_mode(*mode))
        }
        Op::RemoveAll(p) => {
            let p = under(root, p);
            match fs::symlink_metadata(&p) {
                Ok(md) if md.is_dir() => fs::remove_dir_all(&p),
                Ok(_) => fs::remove_file(&p),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(e),
            }
        }
        Op::Chown(p, uid, gid) => lchown(under(root, p), Some(*uid), Some(*gid)),
        Op::Link(old, new) => fs::hard_link(under(root, old), under(root, new)),
        Op::Symlink(target, l) => symlink(target, under(root, l)),
        Op::Rename(old, new) => fs::rename(under(root, old), under(root, new)),
        Op::Chmod(p, mode) => {
            fs::set_permissions(under(root, p), fs::Permissions::from_mode(*mode))
        }
    }
}

/// What a tree entry is, for comparing trees as continuity's `CheckDirectoryEqual` does:
/// type, permission bits, owner, content or link target (not times, sizes of directories
/// or link counts, which overlayfs reports differently).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub content: Content,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    Dir,
    File(Vec<u8>),
    Symlink(PathBuf),
    /// Devices, fifos, sockets: the file type bits.
    Other(u32),
}

/// Every entry below `dir` (not `dir` itself), by path relative to it.
pub fn tree(dir: &Path) -> BTreeMap<String, Node> {
    let mut out = BTreeMap::new();
    let mut pending = vec![PathBuf::new()];
    while let Some(rel) = pending.pop() {
        let mut entries: Vec<_> = fs::read_dir(dir.join(&rel))
            .unwrap_or_else(|e| panic!("read_dir {}: {e}", dir.join(&rel).display()))
            .map(|e| e.expect("dir entry").file_name())
            .collect();
        entries.sort();
        for name in entries {
            let rel = rel.join(&name);
            let path = dir.join(&rel);
            let md = fs::symlink_metadata(&path).expect("lstat");
            let ft = md.file_type();
            let content = if ft.is_dir() {
                pending.push(rel.clone());
                Content::Dir
            } else if ft.is_file() {
                Content::File(fs::read(&path).expect("read file"))
            } else if ft.is_symlink() {
                Content::Symlink(fs::read_link(&path).expect("readlink"))
            } else {
                Content::Other(md.mode() & 0o170000)
            };
            out.insert(
                rel.to_string_lossy().into_owned(),
                Node {
                    mode: md.mode() & 0o7777,
                    uid: md.uid(),
                    gid: md.gid(),
                    content,
                },
            );
        }
    }
    out
}

/// Panics, naming the first difference, unless the trees at `expected` and `actual` are
/// equal (see [`Node`]).
pub fn assert_same_tree(expected: &Path, actual: &Path, context: &str) {
    let (e, a) = (tree(expected), tree(actual));
    if e == a {
        return;
    }
    let keys: BTreeSet<&String> = e.keys().chain(a.keys()).collect();
    for k in keys {
        match (e.get(k), a.get(k)) {
            (Some(x), Some(y)) if x == y => {}
            (x, y) => panic!(
                "{context}: {} and {} differ at {k:?}:\n expected {x:?}\n actual   {y:?}",
                expected.display(),
                actual.display()
            ),
        }
    }
}

// ---------------------------------------------------------------------------------------
// containerd's helpers.go

static UNIQUE: AtomicUsize = AtomicUsize::new(0);

/// A name unique in this process.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", UNIQUE.fetch_add(1, Ordering::Relaxed))
}

/// containerd's `createSnapshot`: prepares above `parent`, applies `ops` through real
/// mounts, unmounts and commits; returns the committed name.
pub fn create_snapshot(
    sn: &Snapshotter,
    scratch: &Scratch,
    parent: Option<&str>,
    ops: &[Op],
) -> String {
    let name = unique("layer");
    let key = format!("{name}-prepare");
    let mounts = sn.prepare(&key, parent, gc_root()).expect("prepare");
    let mounted = Mounted::new(&mounts, &scratch.temp_work("prepare"));
    apply(mounted.path(), ops);
    mounted.unmount();
    sn.commit(&name, &key, gc_root()).expect("commit");
    name
}

/// containerd's `checkSnapshot`: a View of `name`, mounted, must equal `check`; the view
/// is removed again.
pub fn check_snapshot(sn: &Snapshotter, scratch: &Scratch, name: &str, check: &Path) {
    let view = format!("{name}-view");
    let mounts = sn.view(&view, Some(name), gc_root()).expect("view");
    let mounted = Mounted::new(&mounts, &scratch.temp_work("check"));
    assert_same_tree(check, mounted.path(), &format!("view of {name}"));
    mounted.unmount();
    sn.remove(&view).expect("remove view");
}

/// containerd's `checkSnapshots`: a chain of snapshots, one per applier, each checked
/// through a View against the same changes applied to one flat directory.
pub fn check_snapshots(sn: &Snapshotter, scratch: &Scratch, layers: &[Vec<Op>]) {
    let flat = scratch.temp_work("flat");
    let mut parent: Option<String> = None;
    for (i, ops) in layers.iter().enumerate() {
        let name = create_snapshot(sn, scratch, parent.as_deref(), ops);
        apply(&flat, ops);
        check_snapshot(sn, scratch, &name, &flat);
        println!("layer {} of {} checked", i + 1, layers.len());
        parent = Some(name);
    }
}

// ---------------------------------------------------------------------------------------
// Looking at a root from outside

/// Every Info, ordered by name.
pub fn infos(sn: &Snapshotter) -> Vec<Info> {
    let mut out = Vec::new();
    sn.walk(&[], |i| {
        out.push(i);
        Ok(())
    })
    .expect("walk");
    out
}

/// The id of every snapshot, from [`UPPERDIR_LABEL`] (`…/snapshots/<id>/fs`): the
/// snapshotter must be opened with `upperdir_label`.
pub fn ids(sn: &Snapshotter) -> BTreeMap<String, u64> {
    infos(sn)
        .into_iter()
        .map(|i| {
            let upper = i
                .labels
                .get(UPPERDIR_LABEL)
                .unwrap_or_else(|| panic!("{} has no upperdir label", i.name));
            (i.name.clone(), id_of_upper(upper))
        })
        .collect()
}

/// The id in an upper directory path `…/snapshots/<id>/fs`.
pub fn id_of_upper(upper: &str) -> u64 {
    let p = Path::new(upper);
    assert_eq!(
        p.file_name().and_then(|f| f.to_str()),
        Some("fs"),
        "{upper}"
    );
    p.parent()
        .and_then(|d| d.file_name())
        .and_then(|f| f.to_str())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no id in {upper}"))
}

/// The names in `ROOT/snapshots`.
pub fn snapshot_entries(root: &Path) -> BTreeSet<String> {
    fs::read_dir(root.join("snapshots"))
        .expect("read ROOT/snapshots")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect()
}

/// Asserts that `ROOT/snapshots` holds exactly the directories of `ids`.
pub fn assert_entries_are(root: &Path, ids: impl IntoIterator<Item = u64>, context: &str) {
    let want: BTreeSet<String> = ids.into_iter().map(|i| i.to_string()).collect();
    assert_eq!(snapshot_entries(root), want, "{context}: ROOT/snapshots");
}

/// The upper directory of an Active snapshot from its mounts: the bind source without
/// parents, `upperdir=` with them.
pub fn upper_of(mounts: &[Mount]) -> PathBuf {
    let m = &mounts[0];
    if m.kind == "bind" {
        return PathBuf::from(&m.source);
    }
    m.options
        .iter()
        .find_map(|o| o.strip_prefix("upperdir="))
        .map(PathBuf::from)
        .unwrap_or_else(|| panic!("no upperdir in {m:?}"))
}

/// A listing of everything under `root`: path → type, mode, owner, size, inode, mtime and
/// ctime (not atime), so that any write, create, delete, rename, chmod or chown shows.
pub fn listing(root: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(d) = pending.pop() {
        for e in fs::read_dir(&d).expect("read_dir") {
            let p = e.expect("entry").path();
            let md = fs::symlink_metadata(&p).expect("lstat");
            if md.is_dir() {
                pending.push(p.clone());
            }
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            out.insert(
                rel,
                format!(
                    "mode={:o} uid={} gid={} size={} ino={} mtime={}.{} ctime={}.{}",
                    md.mode(),
                    md.uid(),
                    md.gid(),
                    md.size(),
                    md.ino(),
                    md.mtime(),
                    md.mtime_nsec(),
                    md.ctime(),
                    md.ctime_nsec()
                ),
            );
        }
    }
    let md = fs::metadata(root).expect("stat root");
    out.insert(
        ".".into(),
        format!("mtime={}.{}", md.mtime(), md.mtime_nsec()),
    );
    out
}

/// Panics naming the differences between two listings.
pub fn assert_same_listing(
    before: &BTreeMap<String, String>,
    after: &BTreeMap<String, String>,
    context: &str,
) {
    if before == after {
        return;
    }
    let mut diffs = Vec::new();
    let keys: BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    for k in keys {
        if before.get(k) != after.get(k) {
            diffs.push(format!("  {k}: {:?} -> {:?}", before.get(k), after.get(k)));
        }
    }
    panic!("{context}: the disk changed:\n{}", diffs.join("\n"));
}

// ---------------------------------------------------------------------------------------
// Randomness without a dependency

/// xorshift64*: small, seeded, good enough to pick operations.
#[derive(Debug, Clone)]
pub struct XorShift(u64);

impl XorShift {
    pub fn new(seed: u64) -> XorShift {
        XorShift(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// True with probability `percent`/100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        if items.is_empty() {
            None
        } else {
            Some(&items[self.below(items.len() as u64) as usize])
        }
    }
}

/// A seed from `var` when set (to replay a failure), otherwise from the clock; printed.
pub fn seed(var: &str) -> u64 {
    let seed = std::env::var(var)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
        });
    println!("seed {seed} (replay with {var}={seed})");
    seed
}
