//! The quota suites' shared bodies: each runs on a directory `base` of a file system with
//! quotas on (a loop btrfs made by tests/quota_btrfs.rs; the XFS and ext4 of the VM rig,
//! tests/quota_project.rs) and makes its own root under it.
//!
//! Tolerances for "quota usage equals the walk's usage" (the walk counts allocated blocks
//! of `fs` and what is below it, each hard-linked inode once):
//! - btrfs: the qgroup's referenced bytes count data extents and the subvolume's own tree
//!   blocks (nodesize each, 16 KiB by default), where the walk counts data extents and
//!   the bytes of files stored inline in those tree blocks. So the two differ by at most
//!   the tree's blocks: `|quota - walk| <= nodesize * (4 + inodes / 8)` (at least 8
//!   inodes' items fit a leaf). btrfs qgroups count no inodes: Usage reports 0.
//! - projects (XFS, ext4): the project also holds the snapshot directory itself and `work`
//!   (overlayfs' `work/work` once mounted): `walk <= quota <= walk + 3 directory blocks
//!   (3 × 4 KiB)` and `walk inodes + 2 <= quota inodes <= walk inodes + 3`.

#![allow(dead_code)]

mod caps;

pub use caps::without_sys_resource;

use overlaysnap::core::MAX_SIZE_LABEL;
use overlaysnap::fs::{mount_all, unmount_all, QuotaMode, Unmount};
use overlaysnap::snapshotter::UPPERDIR_LABEL;
use overlaysnap::{ErrorKind, Labels, Options, Snapshotter, Usage};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Options for the suites: quotas auto, the upper directory in every Info (to find a
/// snapshot's directory), directories deleted at Remove.
pub fn options() -> Options {
    Options {
        upperdir_label: true,
        sync_remove: true,
        ..Options::default()
    }
}

/// The labels asking for a limit of `bytes`.
pub fn sized(bytes: &str) -> Labels {
    Labels::from([(MAX_SIZE_LABEL.to_owned(), bytes.to_owned())])
}

/// The `fs` directory of `key`, from its Info.
pub fn upper(s: &Snapshotter, key: &str) -> PathBuf {
    PathBuf::from(&s.stat(key).unwrap().labels[UPPERDIR_LABEL])
}

/// A small deterministic generator (xorshift64*), so that a seed replays a tree.
pub struct Rng(u64);

impl Rng {
    /// Seeded; 0 is replaced, since xorshift never leaves it.
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    /// The next number below `n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n.max(1)
    }
}

/// The seed of a random test: `QUOTA_SEED` when set (to replay), else the time.
pub fn seed(test: &str) -> u64 {
    let seed = std::env::var("QUOTA_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    eprintln!("{test}: seed {seed} (replay with QUOTA_SEED={seed})");
    seed
}

/// Fills `dir` with a random tree: directories, files of random sizes, sparse files with
/// holes, and hard links. Returns how many entries it made.
pub fn random_tree(dir: &Path, rng: &mut Rng, entries: u64) -> u64 {
    let mut dirs = vec![dir.to_path_buf()];
    let mut files: Vec<PathBuf> = Vec::new();
    for n in 0..entries {
        let parent = dirs[rng.below(dirs.len() as u64) as usize].clone();
        let path = parent.join(format!("e{n}"));
        match rng.below(10) {
            0 | 1 => {
                fs::create_dir(&path).unwrap();
                dirs.push(path);
            }
            2 if !files.is_empty() => {
                let target = &files[rng.below(files.len() as u64) as usize];
                fs::hard_link(target, &path).unwrap();
            }
            3 => {
                // Sparse: a block of data far out, a hole before it.
                let f = File::create(&path).unwrap();
                let at = rng.below(8 << 20);
                f.write_all_at(&vec![0xa5; 1 + rng.below(65536) as usize], at)
                    .unwrap();
                f.set_len(at + (16 << 20)).unwrap();
                files.push(path);
            }
            _ => {
                let len = match rng.below(4) {
                    0 => rng.below(3000),
                    1 => rng.below(65536),
                    _ => rng.below(1 << 20),
                };
                let byte = rng.below(255) as u8 + 1;
                fs::write(&path, vec![byte; len as usize]).unwrap();
                files.push(path);
            }
        }
    }
    entries
}

/// Writes 1 MiB blocks to `path` until a write fails, as a container would: without
/// `CAP_SYS_RESOURCE` (see [`without_sys_resource`]); returns the bytes written and the
/// error.
pub fn fill(path: &Path) -> (u64, io::Error) {
    without_sys_resource(|| fill_with_the_caps_we_have(path))
}

/// [`fill`] on this thread, with its capabilities.
pub fn fill_with_the_caps_we_have(path: &Path) -> (u64, io::Error) {
    let mut f = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(path)
        .unwrap();
    let block = vec![0x5a_u8; 1 << 20];
    let mut written = 0u64;
    loop {
        match f.write_all(&block).and_then(|()| f.sync_data()) {
            Ok(()) => written += block.len() as u64,
            Err(e) => return (written, e),
        }
        assert!(written < 1 << 30, "wrote 1 GiB without hitting a limit");
    }
}

/// Asserts that `err` is what a write past a limit fails with in `mode`: EDQUOT, but
/// ENOSPC on XFS, which reports a full project as a full file system.
pub fn assert_over_limit(err: &io::Error, mode: QuotaMode, what: &str) {
    let (errno, name) = match mode {
        QuotaMode::XfsProject => (nix::libc::ENOSPC, "ENOSPC"),
        _ => (nix::libc::EDQUOT, "EDQUOT"),
    };
    assert_eq!(
        err.raw_os_error(),
        Some(errno),
        "{what}: in {mode} expected {name}, got {err}"
    );
}

/// Commits a random tree in an Active snapshot and compares the usage from the quota with
/// the walk's (the module documentation gives the tolerances); the Active's own Usage,
/// after a syncfs, too.
pub fn usage_matches_walk(base: &Path, mode: QuotaMode, test: &str) {
    let mut rng = Rng::new(seed(test));
    for round in 0..3 {
        let root = base.join(format!("usage-{round}"));
        let s = Snapshotter::open(&root, options()).unwrap();
        assert_eq!(s.quota_mode(), mode);
        s.prepare("a", None, Labels::new()).unwrap();
        let fs_dir = upper(&s, "a");
        let count = 20 + rng.below(300);
        let entries = random_tree(&fs_dir, &mut rng, count);
        nix::unistd::syncfs(File::open(&fs_dir).unwrap()).unwrap();
        let walk = overlaysnap::layout::disk_usage(&fs_dir).unwrap();
        let active = s.usage("a").unwrap();
        s.commit("c", "a", Labels::new()).unwrap();
        let committed = s.usage("c").unwrap();
        eprintln!("round {round}: {entries} entries; walk {walk:?}, active {active:?}, committed {committed:?}");
        for usage in [active, committed] {
            within_tolerance(mode, walk, usage);
        }
    }
}

/// The tolerance of the module documentation.
fn within_tolerance(mode: QuotaMode, walk: Usage, quota: Usage) {
    let diff = (quota.size - walk.size).abs();
    match mode {
        QuotaMode::Btrfs => {
            let allowed = 16384 * (4 + walk.inodes / 8);
            assert!(
                diff <= allowed,
                "btrfs: quota {quota:?} vs walk {walk:?}: {diff} > {allowed}"
            );
            assert_eq!(quota.inodes, 0, "btrfs qgroups count no inodes");
        }
        _ => {
            assert!(
                quota.size >= walk.size && quota.size <= walk.size + 3 * 4096,
                "project: quota {quota:?} vs walk {walk:?}"
            );
            assert!(
                quota.inodes >= walk.inodes + 2 && quota.inodes <= walk.inodes + 3,
                "project: quota {quota:?} vs walk {walk:?}"
            );
        }
    }
}

/// A limit from the label stops writes with EDQUOT inside the real mount of an Active
/// snapshot, alone (a bind mount) and above a committed parent (an overlay mount), and a
/// snapshot without the label is not limited by it.
pub fn limit_is_enforced_in_mounts(base: &Path) {
    let root = base.join("limit");
    let s = Snapshotter::open(&root, options()).unwrap();
    let scratch = base.join("limit-mnt");
    for (key, parent) in [("alone", None), ("over", Some("base"))] {
        if parent.is_some() {
            s.prepare("base-a", None, Labels::new()).unwrap();
            fs::write(upper(&s, "base-a").join("lower"), "from the parent").unwrap();
            s.commit("base", "base-a", Labels::new()).unwrap();
        }
        let mounts = s.prepare(key, parent, sized("8MiB")).unwrap();
        let target = scratch.join(key);
        fs::create_dir_all(&target).unwrap();
        mount_all(&mounts, &target).unwrap();
        let (written, err) = fill(&target.join("big"));
        if parent.is_some() {
            assert_eq!(
                fs::read_to_string(target.join("lower")).unwrap(),
                "from the parent"
            );
        }
        unmount_all(&target, Unmount::Detach).unwrap();
        assert_over_limit(&err, s.quota_mode(), key);
        assert!(
            (4 << 20..=8 << 20).contains(&written),
            "{key}: {written} bytes written under an 8 MiB limit"
        );
    }
    s.prepare("free", None, Labels::new()).unwrap();
    let (written, err) = fill_limited(&upper(&s, "free").join("big"), 24 << 20);
    assert!(
        err.is_none() && written == 24 << 20,
        "no label: no limit ({err:?})"
    );
}

/// Writes `bytes` to `path` in 1 MiB blocks; the bytes written and the first error.
pub fn fill_limited(path: &Path, bytes: u64) -> (u64, Option<io::Error>) {
    let mut f = File::create(path).unwrap();
    let block = vec![1u8; 1 << 20];
    let mut written = 0;
    while written < bytes {
        if let Err(e) = f.write_all(&block) {
            return (written, Some(e));
        }
        written += block.len() as u64;
    }
    (written, f.sync_all().err())
}

/// A malformed or negative size label is InvalidArgument and changes nothing: no entry in
/// `ROOT/snapshots`, no snapshot in the state.
pub fn bad_labels_change_nothing(base: &Path) {
    let root = base.join("bad");
    let s = Snapshotter::open(&root, options()).unwrap();
    s.prepare("ok", None, sized("1GiB")).unwrap();
    let entries = || {
        let mut names: Vec<_> = fs::read_dir(root.join("snapshots"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        names
    };
    let before = entries();
    for bad in [
        "-1",
        "-8MiB",
        "ten",
        "1.5GiB",
        "99999999999999999999",
        "8 MiB",
    ] {
        let err = s.prepare("k", None, sized(bad)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{bad:?}: {err}");
        assert!(err.to_string().contains(MAX_SIZE_LABEL), "{err}");
        assert_eq!(s.stat("k").unwrap_err().kind(), ErrorKind::NotFound);
        assert_eq!(entries(), before, "{bad:?} changed ROOT/snapshots");
    }
    let mut n = 0;
    s.walk(&[], |_| {
        n += 1;
        Ok(())
    })
    .unwrap();
    assert_eq!(n, 1);
}

/// Limits and usage survive closing and reopening the root; returns the root.
pub fn restart_keeps_limit_and_usage(base: &Path) -> PathBuf {
    let root = base.join("restart");
    let (active, committed) = {
        let s = Snapshotter::open(&root, options()).unwrap();
        s.prepare("a", None, sized("16MiB")).unwrap();
        fs::write(upper(&s, "a").join("data"), vec![7u8; 3 << 20]).unwrap();
        s.prepare("c-a", None, Labels::new()).unwrap();
        fs::write(upper(&s, "c-a").join("data"), vec![9u8; 2 << 20]).unwrap();
        s.commit("c", "c-a", Labels::new()).unwrap();
        nix::unistd::syncfs(File::open(upper(&s, "a")).unwrap()).unwrap();
        (s.usage("a").unwrap(), s.usage("c").unwrap())
    };
    assert!(active.size >= 3 << 20, "{active:?}");
    let s = Snapshotter::open(&root, options()).unwrap();
    assert_eq!(s.usage("a").unwrap(), active);
    assert_eq!(s.usage("c").unwrap(), committed);
    let (written, err) = fill(&upper(&s, "a").join("more"));
    assert_over_limit(&err, s.quota_mode(), "after reopening");
    assert!(
        written <= 13 << 20,
        "{written} bytes past a 16 MiB limit holding 3 MiB"
    );
    root
}
