//! The simulated disk checked: [`SimFs`] against the host's file system ([`RealFs`] under
//! a temporary directory) on the same random operation sequences without a crash (same
//! outcomes, same tree), and what each kind of crash keeps and loses.
//!
//! The differential test prints its seed; `SIM_FS_SEED=<seed>` replays it. It needs the
//! usual umask 022 (the modes of new files and directories depend on it), and asserts it.

use overlaysnap::fs::{Fault, FileHandle, FileKind, FileSystem, RealFs, SimFs};
use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

/// What a tree holds at one relative path: kind, permission bits, and the contents of a
/// file or the target of a link.
type Tree = BTreeMap<String, (FileKind, u32, Vec<u8>)>;

/// Everything under `base` on `fs` (not `base` itself), by path relative to it.
fn tree(fs: &dyn FileSystem, base: &Path) -> Tree {
    let mut out = Tree::new();
    let mut todo = vec![base.to_path_buf()];
    while let Some(dir) = todo.pop() {
        for name in fs.read_dir(&dir).expect("list a directory of the tree") {
            let path = dir.join(name);
            let md = fs.symlink_metadata(&path).expect("stat an entry");
            let body = match md.kind {
                FileKind::Dir => {
                    todo.push(path.clone());
                    Vec::new()
                }
                FileKind::File => fs.read_file(&path).expect("read a file"),
                FileKind::Symlink => fs
                    .read_link(&path)
                    .expect("read a link")
                    .into_os_string()
                    .into_encoded_bytes(),
                FileKind::Other => panic!("{} is neither file, directory nor link", path.display()),
            };
            let rel = path.strip_prefix(base).expect("under base");
            out.insert(rel.display().to_string(), (md.kind, md.mode, body));
        }
    }
    out
}

/// Whether the process' umask is 022: a directory created with mode 0777 in a temporary
/// directory shows what the umask leaves.
fn umask_is_022() -> bool {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let probe = dir.path().join("probe");
        std::fs::DirBuilder::new()
            .mode(0o777)
            .create(&probe)
            .expect("create the probe");
        std::fs::metadata(&probe)
            .expect("stat the probe")
            .permissions()
            .mode()
            & 0o777
            == 0o755
    }
}

/// Linux's `EIO` and `ENOSPC`, the errors the tests inject.
const EIO: i32 = 5;
const ENOSPC: i32 = 28;

/// A seeded xorshift64* generator.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as usize % n
    }

    fn pick<T: Copy>(&mut self, from: &[T]) -> T {
        from[self.below(from.len())]
    }
}

/// The relative paths the operations use: few, so that they collide.
const PATHS: [&str; 9] = ["a", "b", "c", "a/b", "a/c", "b/a", "a/b/c", "c/a", "a/a/a"];
/// Targets of symbolic links, relative to the link (never leaving the tree's base).
const TARGETS: [&str; 5] = ["a", "b", "a/b", "c/d", "missing"];
const MODES: [u32; 4] = [0o700, 0o755, 0o644, 0o711];

/// One operation of a sequence, on relative paths.
#[derive(Debug, Clone)]
enum Op {
    CreateDir(&'static str),
    CreateDirAll(&'static str, u32),
    SetMode(&'static str, u32),
    Rename(&'static str, &'static str),
    RemoveFile(&'static str),
    RemoveDirAll(&'static str),
    Symlink(&'static str, &'static str),
    ReadLink(&'static str),
    /// create_file, then write_at(offset, bytes), then set_len when given.
    Write(&'static str, u64, Vec<u8>, Option<u64>),
    /// open_file, then write_at(offset, bytes).
    Overwrite(&'static str, u64, Vec<u8>),
    ReadFile(&'static str),
    Metadata(&'static str),
    SymlinkMetadata(&'static str),
    ReadDir(&'static str),
    Canonicalize(&'static str),
}

fn random_op(rng: &mut Rng) -> Op {
    let p = rng.pick(&PATHS);
    let bytes = |rng: &mut Rng| -> Vec<u8> { (0..rng.below(9)).map(|i| b'a' + i as u8).collect() };
    match rng.below(15) {
        0 => Op::CreateDir(p),
        1 => Op::CreateDirAll(p, rng.pick(&[0o755, 0o700, 0o777])),
        2 => Op::SetMode(p, rng.pick(&MODES)),
        3 => Op::Rename(p, rng.pick(&PATHS)),
        4 => Op::RemoveFile(p),
        5 => Op::RemoveDirAll(p),
        6 => Op::Symlink(rng.pick(&TARGETS), p),
        7 => Op::ReadLink(p),
        8 => {
            let offset = rng.pick(&[0, 3, 10]);
            let data = bytes(rng);
            let len = (rng.below(3) == 0).then(|| rng.pick(&[0, 2, 12]));
            Op::Write(p, offset, data, len)
        }
        9 => Op::Overwrite(p, rng.pick(&[0, 2, 7]), bytes(rng)),
        10 => Op::ReadFile(p),
        11 => Op::Metadata(p),
        12 => Op::SymlinkMetadata(p),
        13 => Op::ReadDir(p),
        _ => Op::Canonicalize(p),
    }
}

/// What an operation answered, comparable across file systems: the error as its raw
/// errno (or its kind when it has none), or what it read, relative to the base.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Ok(String),
    Err(Result<i32, io::ErrorKind>),
}

fn outcome<T>(result: io::Result<T>, show: impl FnOnce(T) -> String) -> Outcome {
    match result {
        Ok(v) => Outcome::Ok(show(v)),
        Err(e) => Outcome::Err(e.raw_os_error().ok_or(e.kind())),
    }
}

/// Runs `op` on `fs` with relative paths under `base` (canonical).
fn apply(fs: &dyn FileSystem, base: &Path, op: &Op) -> Outcome {
    let at = |p: &str| base.join(p);
    let unit = |(): ()| String::new();
    let stat = |md: overlaysnap::fs::FileStat| {
        // Directory sizes and link counts depend on the host's file system; owners on who
        // runs the test.
        let (len, nlink) = match md.kind {
            FileKind::Dir => (0, 0),
            _ => (md.len, md.nlink),
        };
        format!("{:?} {:o} len {len} nlink {nlink}", md.kind, md.mode)
    };
    match op {
        Op::CreateDir(p) => outcome(fs.create_dir(&at(p)), unit),
        Op::CreateDirAll(p, mode) => outcome(fs.create_dir_all(&at(p), *mode), unit),
        Op::SetMode(p, mode) => outcome(fs.set_mode(&at(p), *mode), unit),
        Op::Rename(from, to) => outcome(fs.rename(&at(from), &at(to)), unit),
        Op::RemoveFile(p) => outcome(fs.remove_file(&at(p)), unit),
        Op::RemoveDirAll(p) => outcome(fs.remove_dir_all(&at(p)), unit),
        Op::Symlink(target, p) => outcome(fs.symlink(Path::new(target), &at(p)), unit),
        Op::ReadLink(p) => outcome(fs.read_link(&at(p)), |t| t.display().to_string()),
        Op::Write(p, offset, data, len) => outcome(
            fs.create_file(&at(p)).and_then(|file| {
                file.write_at(*offset, data)?;
                len.map_or(Ok(()), |len| file.set_len(len))
            }),
            unit,
        ),
        Op::Overwrite(p, offset, data) => outcome(
            fs.open_file(&at(p))
                .and_then(|file| file.write_at(*offset, data)),
            unit,
        ),
        Op::ReadFile(p) => outcome(fs.read_file(&at(p)), |b| {
            String::from_utf8_lossy(&b).into_owned()
        }),
        Op::Metadata(p) => outcome(fs.metadata(&at(p)), stat),
        Op::SymlinkMetadata(p) => outcome(fs.symlink_metadata(&at(p)), stat),
        Op::ReadDir(p) => outcome(fs.read_dir(&at(p)), |mut names| {
            names.sort();
            format!("{names:?}")
        }),
        Op::Canonicalize(p) => outcome(fs.canonicalize(&at(p)), |c| {
            c.strip_prefix(base)
                .map(|r| r.display().to_string())
                .unwrap_or_else(|_| format!("outside the base: {}", c.display()))
        }),
    }
}

/// How many sequences, and how long each.
const SEQUENCES: usize = 300;
const LENGTH: usize = 40;

#[test]
fn sim_fs_answers_and_ends_as_the_host_file_system() {
    assert!(umask_is_022(), "the differential test needs umask 022");
    let seed = std::env::var("SIM_FS_SEED")
        .ok()
        .map(|s| s.parse::<u64>().expect("SIM_FS_SEED is a u64"))
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("after the epoch")
                .as_nanos() as u64
                | 1
        });
    eprintln!("sim_fs differential seed: {seed} (replay with SIM_FS_SEED={seed})");
    let mut rng = Rng(seed);
    let mut compared = 0;
    for sequence in 0..SEQUENCES {
        let host = tempfile::tempdir().expect("a temporary directory");
        let real_base = host.path().canonicalize().expect("canonical tempdir");
        let sim = SimFs::new();
        let sim_base = PathBuf::from("/base");
        sim.create_dir(&sim_base).expect("the simulated base");
        let mut done = Vec::new();
        for _ in 0..LENGTH {
            let op = random_op(&mut rng);
            let real = apply(&RealFs, &real_base, &op);
            let simulated = apply(&sim, &sim_base, &op);
            done.push(op);
            assert_eq!(
                simulated, real,
                "seed {seed}, sequence {sequence}: SimFs (left) and the host (right) differ \
                 after {done:?}"
            );
            compared += 1;
        }
        assert_eq!(
            tree(&sim, &sim_base),
            tree(&RealFs, &real_base),
            "seed {seed}, sequence {sequence}: the trees of SimFs (left) and the host \
             (right) differ after {done:?}"
        );
    }
    eprintln!("compared {compared} calls and {SEQUENCES} trees");
}

// What each kind of crash keeps, on a disk whose directory `/d` is durably named.

/// A disk with the durable directory `/d`.
fn disk() -> SimFs {
    let fs = SimFs::new();
    fs.create_dir(Path::new("/d")).unwrap();
    fs.sync_dir(Path::new("/")).unwrap();
    fs
}

/// `path`'s contents on `fs`, or the error kind.
fn contents(fs: &SimFs, path: &str) -> Result<Vec<u8>, io::ErrorKind> {
    fs.read_file(Path::new(path)).map_err(|e| e.kind())
}

/// Creates `path` holding `bytes`, unsynced; returns its handle.
fn write(fs: &SimFs, path: &str, bytes: &[u8]) -> Box<dyn FileHandle> {
    let file = fs.create_file(Path::new(path)).unwrap();
    file.write_at(0, bytes).unwrap();
    file
}

#[test]
fn a_power_loss_loses_an_unsynced_name_even_of_a_synced_file() {
    let fs = disk();
    write(&fs, "/d/f", b"data").sync_data().unwrap();
    assert_eq!(contents(&fs.crash(), "/d/f"), Err(io::ErrorKind::NotFound));
    assert_eq!(
        contents(&fs.crash_tearing(), "/d/f"),
        Err(io::ErrorKind::NotFound)
    );
    // The names kept, the synced data with it.
    assert_eq!(
        contents(&fs.crash_keeping_names(), "/d/f"),
        Ok(b"data".to_vec())
    );
    assert_eq!(contents(&fs.restart(), "/d/f"), Ok(b"data".to_vec()));
    fs.sync_dir(Path::new("/d")).unwrap();
    assert_eq!(contents(&fs.crash(), "/d/f"), Ok(b"data".to_vec()));
}

#[test]
fn a_power_loss_loses_unsynced_data_under_a_durable_name() {
    let fs = disk();
    let file = write(&fs, "/d/f", b"old");
    file.sync_data().unwrap();
    fs.sync_dir(Path::new("/d")).unwrap();
    file.write_at(3, b"new").unwrap();
    assert_eq!(contents(&fs.crash(), "/d/f"), Ok(b"old".to_vec()));
    assert_eq!(
        contents(&fs.crash_keeping_names(), "/d/f"),
        Ok(b"old".to_vec())
    );
    assert_eq!(contents(&fs.restart(), "/d/f"), Ok(b"oldnew".to_vec()));
    // A process kill keeps the unsynced data, but it is still not durable.
    assert_eq!(contents(&fs.restart().crash(), "/d/f"), Ok(b"old".to_vec()));
    file.sync_data().unwrap();
    assert_eq!(contents(&fs.crash(), "/d/f"), Ok(b"oldnew".to_vec()));
}

#[test]
fn a_power_loss_undoes_an_unsynced_rename_and_removal() {
    let fs = disk();
    write(&fs, "/d/f", b"x").sync_data().unwrap();
    fs.sync_dir(Path::new("/d")).unwrap();
    fs.rename(Path::new("/d/f"), Path::new("/d/g")).unwrap();
    let crashed = fs.crash();
    assert_eq!(contents(&crashed, "/d/f"), Ok(b"x".to_vec()));
    assert_eq!(contents(&crashed, "/d/g"), Err(io::ErrorKind::NotFound));
    let kept = fs.crash_keeping_names();
    assert_eq!(contents(&kept, "/d/f"), Err(io::ErrorKind::NotFound));
    assert_eq!(contents(&kept, "/d/g"), Ok(b"x".to_vec()));
    fs.remove_file(Path::new("/d/g")).unwrap();
    assert_eq!(contents(&fs.crash(), "/d/f"), Ok(b"x".to_vec()));
    assert_eq!(
        contents(&fs.restart(), "/d/f"),
        Err(io::ErrorKind::NotFound)
    );
}

#[test]
fn a_tearing_power_loss_lands_half_of_the_last_unsynced_write() {
    let fs = disk();
    let file = write(&fs, "/d/f", b"abc");
    file.sync_data().unwrap();
    fs.sync_dir(Path::new("/d")).unwrap();
    file.write_at(3, b"defghi").unwrap();
    assert_eq!(
        contents(&fs.crash_tearing(), "/d/f"),
        Ok(b"abcdef".to_vec())
    );
    assert_eq!(contents(&fs.crash(), "/d/f"), Ok(b"abc".to_vec()));
    // Only the last write tears; an earlier unsynced one is lost (zeros in its place).
    file.write_at(9, b"jk").unwrap();
    assert_eq!(
        contents(&fs.crash_tearing(), "/d/f"),
        Ok(b"abc\0\0\0\0\0\0j".to_vec())
    );
    // After a set_len nothing tears.
    file.set_len(9).unwrap();
    assert_eq!(contents(&fs.crash_tearing(), "/d/f"), Ok(b"abc".to_vec()));
    // After a sync everything is durable and nothing tears.
    file.write_at(9, b"jk").unwrap();
    file.sync_data().unwrap();
    assert_eq!(
        contents(&fs.crash_tearing(), "/d/f"),
        Ok(b"abcdefghijk".to_vec())
    );
}

#[test]
fn sync_data_leaves_mode_and_owner_to_a_full_sync() {
    let fs = disk();
    let file = write(&fs, "/d/f", b"x");
    fs.sync_dir(Path::new("/d")).unwrap();
    fs.set_mode(Path::new("/d/f"), 0o600).unwrap();
    fs.lchown(Path::new("/d/f"), 7, 8).unwrap();
    file.sync_data().unwrap();
    let md = |fs: &SimFs| fs.metadata(Path::new("/d/f")).unwrap();
    let crashed = md(&fs.crash());
    assert_eq!(
        (crashed.mode, crashed.uid, crashed.gid, crashed.len),
        (0o644, 0, 0, 1)
    );
    fs.syncfs(Path::new("/")).unwrap();
    let crashed = md(&fs.crash());
    assert_eq!((crashed.mode, crashed.uid, crashed.gid), (0o600, 7, 8));
}

#[test]
fn sync_dir_makes_a_directory_mode_and_owner_durable() {
    let fs = disk();
    fs.set_mode(Path::new("/d"), 0o700).unwrap();
    fs.lchown(Path::new("/d"), 5, 6).unwrap();
    let md = |fs: &SimFs| fs.metadata(Path::new("/d")).unwrap();
    assert_eq!((md(&fs.crash()).mode, md(&fs.crash()).uid), (0o755, 0));
    fs.sync_dir(Path::new("/d")).unwrap();
    let crashed = md(&fs.crash());
    assert_eq!((crashed.mode, crashed.uid, crashed.gid), (0o700, 5, 6));
}

#[test]
fn an_errno_fault_fails_with_that_errno_and_no_effect() {
    let fs = disk();
    let file = write(&fs, "/d/f", b"abc");
    fs.sync_dir(Path::new("/d")).unwrap();
    fs.inject(fs.calls() + 1, Fault::Errno(ENOSPC));
    let e = file.write_at(3, b"def").unwrap_err();
    assert_eq!(e.raw_os_error(), Some(ENOSPC));
    assert_eq!(contents(&fs, "/d/f"), Ok(b"abc".to_vec()));
    fs.inject(fs.calls() + 1, Fault::Errno(EIO));
    assert_eq!(file.sync_data().unwrap_err().raw_os_error(), Some(EIO));
    assert_eq!(contents(&fs.crash(), "/d/f"), Ok(Vec::new()));
    fs.inject(fs.calls() + 1, Fault::Errno(ENOSPC));
    let e = fs.create_dir(Path::new("/d/e")).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(ENOSPC));
    assert_eq!(
        fs.metadata(Path::new("/d/e")).unwrap_err().kind(),
        io::ErrorKind::NotFound
    );
    // Each fault fires once.
    file.sync_data().unwrap();
    assert_eq!(contents(&fs.crash(), "/d/f"), Ok(b"abc".to_vec()));
}

// Resolution and probes, next to the host's answers where the host has them.

/// Runs `steps` on a fresh temporary directory of the host and on a fresh simulated disk
/// (under `/base`), asserts that they answer the same, and returns the answers.
fn on_both(steps: impl Fn(&dyn FileSystem, &Path) -> Vec<Outcome>) -> Vec<Outcome> {
    let host = tempfile::tempdir().expect("a temporary directory");
    let real_base = host.path().canonicalize().expect("canonical tempdir");
    let sim = SimFs::new();
    sim.create_dir(Path::new("/base"))
        .expect("the simulated base");
    let answers = steps(&sim, Path::new("/base"));
    assert_eq!(
        answers,
        steps(&RealFs, &real_base),
        "SimFs (left) and the host (right) differ"
    );
    answers
}

/// A name that lives as long as the test binary, for [`Op`]'s paths.
fn leak(name: String) -> &'static str {
    Box::leak(name.into_boxed_str())
}

#[test]
fn dot_dot_and_chains_of_forty_links_resolve_as_on_the_host() {
    const ELOOP: i32 = 40;
    let answers = on_both(|fs, base| {
        let mut ops = vec![
            Op::CreateDirAll("a/b", 0o755),
            Op::CreateDir("c"),
            Op::Metadata("a/b/../../c"),
            Op::Metadata("a/../c"),
            Op::Write("a/b/../f", 0, b"x".to_vec(), None),
            Op::ReadFile("a/f"),
            Op::Canonicalize("a/b/.."),
            // A chain of 40 links to a file resolves, one of 41 is a loop (ELOOP).
            Op::Symlink("a/f", "l0"),
        ];
        for i in 1..=40 {
            ops.push(Op::Symlink(
                leak(format!("l{}", i - 1)),
                leak(format!("l{i}")),
            ));
        }
        ops.extend([Op::ReadFile("l39"), Op::ReadFile("l40")]);
        // Creating through a chain of 40 links to a missing name creates it.
        ops.push(Op::Symlink("g", "m0"));
        for i in 1..=40 {
            ops.push(Op::Symlink(
                leak(format!("m{}", i - 1)),
                leak(format!("m{i}")),
            ));
        }
        ops.extend([
            Op::Write("m40", 0, b"no".to_vec(), None),
            Op::Write("m39", 0, b"yes".to_vec(), None),
            Op::ReadFile("g"),
        ]);
        let mut out: Vec<Outcome> = ops.iter().map(|op| apply(fs, base, op)).collect();
        // `/..` is `/`.
        let up = Path::new("/..").join(base.strip_prefix("/").expect("absolute"));
        out.push(outcome(fs.metadata(&up.join("c")), |md| {
            format!("{:?}", md.kind)
        }));
        out
    });
    let ok = |s: &str| Outcome::Ok(s.to_owned());
    let looped = Outcome::Err(Ok(ELOOP));
    assert_eq!(
        answers[2..4],
        [ok("Dir 755 len 0 nlink 0"), ok("Dir 755 len 0 nlink 0")]
    );
    assert_eq!(answers[48..50], [ok("x"), looped.clone()], "l39, l40");
    let n = answers.len();
    assert_eq!(answers[n - 4..], [looped, ok(""), ok("yes"), ok("Dir")]);
}

#[test]
fn a_crash_point_lets_its_own_call_run_and_fails_every_later_one() {
    let fs = disk();
    assert!(!fs.crashed(), "no call failed yet");
    fs.crash_after(fs.calls() + 1);
    fs.create_dir(Path::new("/d/a")).unwrap();
    assert!(!fs.crashed(), "the call at the crash point ran");
    let e = fs.create_dir(Path::new("/d/b")).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(EIO));
    assert!(fs.crashed());
    let after = fs.restart();
    assert!(after.metadata(Path::new("/d/a")).is_ok());
    assert_eq!(
        after.metadata(Path::new("/d/b")).unwrap_err().kind(),
        io::ErrorKind::NotFound
    );
}

#[test]
fn the_probes_are_calls_that_faults_reach() {
    use overlaysnap::Error;
    let fs = disk();
    assert_eq!(
        fs.mount_points().unwrap(),
        Vec::<PathBuf>::new(),
        "no mounts"
    );
    assert!(fs.supports_d_type(Path::new("/d")).unwrap());
    fs.inject(fs.calls() + 1, Fault::Errno(EIO));
    let e = fs.mount_points().unwrap_err();
    assert!(matches!(e, Error::Io { .. }), "{e:?}");
    fs.inject(fs.calls() + 1, Fault::Errno(EIO));
    let e = fs.supports_d_type(Path::new("/d")).unwrap_err();
    assert!(matches!(e, Error::Io { .. }), "{e:?}");
}

#[test]
fn a_directory_links_its_subdirectories_and_a_link_takes_no_blocks() {
    // As ext4 and tmpfs count: 2 + one per subdirectory; 512-byte blocks of 4 KiB
    // allocations; a short link lives in its inode.
    let fs = disk();
    let md = |p: &str| fs.symlink_metadata(Path::new(p)).unwrap();
    assert_eq!(md("/d").nlink, 2);
    fs.create_dir(Path::new("/d/a")).unwrap();
    fs.create_dir(Path::new("/d/b")).unwrap();
    write(&fs, "/d/f", &[1; 5000]);
    assert_eq!(md("/d").nlink, 4);
    assert_eq!((md("/d/f").nlink, md("/d/f").blocks), (1, 16));
    fs.symlink(Path::new("f"), Path::new("/d/l")).unwrap();
    assert_eq!((md("/d/l").len, md("/d/l").blocks), (1, 0));
}

#[test]
fn a_garbled_write_changes_every_byte_after_those_it_keeps() {
    let fs = disk();
    let file = write(&fs, "/d/f", b"");
    let data: Vec<u8> = (0..=255).collect();
    fs.inject(fs.calls() + 1, Fault::Garble { keep: 3 });
    file.write_at(0, &data).unwrap_err();
    let landed = fs.read_file(Path::new("/d/f")).unwrap();
    assert_eq!(landed.len(), data.len());
    assert_eq!(landed[..3], data[..3]);
    for (i, (got, meant)) in landed.iter().zip(&data).enumerate().skip(3) {
        assert_ne!(got, meant, "byte {i} landed intact");
    }
}
