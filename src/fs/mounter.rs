//! Performing mounts: containerd's `Mount.Mount`, `mount.All` and `UnmountAll` in Rust, for
//! tests, the CLI and embedders.
//!
//! Options are split into mount(2) flags and file-system data with containerd's table
//! (`parseMountOptions`). An overlay whose options reach a page less 512 bytes has its
//! lowerdirs made relative to their common directory (containerd's
//! `compactLowerdirOption`), and mount(2) must then run with that directory as the current
//! directory. The current directory belongs to the whole process, which is multi-threaded,
//! so the call runs on a short-lived thread that first leaves the process' shared
//! file-system context with `unshare(CLONE_FS)` (as containerd 2.x does): its `chdir`
//! affects no other thread, and the thread's context dies with it. A forked child would
//! also work, but after `fork` in a multi-threaded process only async-signal-safe calls are
//! allowed, and waiting for the child races with embedders' SIGCHLD handling.

use super::mount::Mount;
use crate::error::{Error, Result};
use nix::errno::Errno;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{unshare, CloneFlags};
use nix::unistd::{chdir, sysconf, SysconfVar};
use std::io;
use std::path::{Component, Path, PathBuf};

/// How [`unmount`] and [`unmount_all`] detach a mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unmount {
    /// umount2 without flags: fails with EBUSY while the mount is in use.
    Strict,
    /// umount2 with MNT_DETACH: the mount leaves the tree now and is released when no
    /// longer in use.
    Detach,
}

/// The mount(2) call a [`Mount`] turns into, as containerd's mount code builds it.
#[derive(Debug)]
pub(crate) struct MountCall {
    /// The common directory of the lowerdirs, when they were made relative to it.
    chdir: Option<String>,
    /// Flags from options such as `ro` and `rbind`.
    flags: MsFlags,
    /// Every other option, joined with commas.
    data: String,
}

impl MountCall {
    /// The call for `m` on a system with pages of `page_size` bytes.
    pub(crate) fn new(m: &Mount, page_size: usize) -> MountCall {
        let compacted = if m.kind == "overlay" && options_size(&m.options) >= page_size - 512 {
            compact_lowerdir(&m.options)
        } else {
            None
        };
        let (chdir, options) = match compacted {
            Some((dir, options)) => (Some(dir), options),
            None => (None, m.options.clone()),
        };
        let mut flags = MsFlags::empty();
        let mut data = Vec::new();
        for option in &options {
            match FLAGS.iter().find(|(name, _, _)| name == option) {
                Some((_, true, flag)) => flags.remove(*flag),
                Some((_, false, flag)) => flags.insert(*flag),
                None => data.push(option.as_str()),
            }
        }
        MountCall {
            chdir,
            flags,
            data: data.join(","),
        }
    }

    /// Whether the kernel reads all of the data: one page, its last byte the NUL.
    pub(crate) fn fits(&self, page_size: usize) -> bool {
        self.data.len() < page_size
    }
}

/// containerd's option table: name, whether the option clears the flag, the flag.
const FLAGS: &[(&str, bool, MsFlags)] = &[
    ("async", true, MsFlags::MS_SYNCHRONOUS),
    ("atime", true, MsFlags::MS_NOATIME),
    ("bind", false, MsFlags::MS_BIND),
    ("dev", true, MsFlags::MS_NODEV),
    ("diratime", true, MsFlags::MS_NODIRATIME),
    ("dirsync", false, MsFlags::MS_DIRSYNC),
    ("exec", true, MsFlags::MS_NOEXEC),
    ("mand", false, MsFlags::MS_MANDLOCK),
    ("noatime", false, MsFlags::MS_NOATIME),
    ("nodev", false, MsFlags::MS_NODEV),
    ("nodiratime", false, MsFlags::MS_NODIRATIME),
    ("noexec", false, MsFlags::MS_NOEXEC),
    ("nomand", true, MsFlags::MS_MANDLOCK),
    ("norelatime", true, MsFlags::MS_RELATIME),
    ("nostrictatime", true, MsFlags::MS_STRICTATIME),
    ("nosuid", false, MsFlags::MS_NOSUID),
    ("rbind", false, MsFlags::MS_BIND.union(MsFlags::MS_REC)),
    ("relatime", false, MsFlags::MS_RELATIME),
    ("remount", false, MsFlags::MS_REMOUNT),
    ("ro", false, MsFlags::MS_RDONLY),
    ("rw", true, MsFlags::MS_RDONLY),
    ("strictatime", false, MsFlags::MS_STRICTATIME),
    ("suid", true, MsFlags::MS_NOSUID),
    ("sync", false, MsFlags::MS_SYNCHRONOUS),
];

/// containerd's `optionsSize`: the bytes of all options, separators not counted.
fn options_size(options: &[String]) -> usize {
    options.iter().map(String::len).sum()
}

/// containerd's `compactLowerdirOption`: the common directory of the lowerdirs and the
/// options with the lowerdirs relative to it (moved last); `None` when nothing is gained.
fn compact_lowerdir(options: &[String]) -> Option<(String, Vec<String>)> {
    const KEY: &str = "lowerdir=";
    let index = options.iter().position(|o| o.starts_with(KEY))?;
    let dirs: Vec<&str> = options[index][KEY.len()..].split(':').collect();
    if dirs.len() == 1 {
        return None;
    }
    let prefix = longest_common_prefix(&dirs);
    // Back to a directory: the common prefix of `…/12/fs` and `…/13/fs` is `…/1`.
    let common = match prefix.rfind('/') {
        None | Some(0) => return None,
        Some(i) => format!("{}/", prefix[..i].trim_end_matches('/')),
    };
    if common == "/" {
        return None;
    }
    let mut relative = Vec::with_capacity(dirs.len());
    for dir in dirs {
        if dir.len() <= common.len() {
            return None;
        }
        relative.push(&dir[common.len()..]);
    }
    let mut compacted = options.to_vec();
    compacted.remove(index);
    compacted.push(format!("{KEY}{}", relative.join(":")));
    Some((common, compacted))
}

/// The longest common prefix of `strs`, cut at a character boundary.
fn longest_common_prefix<'a>(strs: &[&'a str]) -> &'a str {
    let (Some(min), Some(max)) = (strs.iter().min(), strs.iter().max()) else {
        return "";
    };
    let mut n = min
        .bytes()
        .zip(max.bytes())
        .take_while(|(a, b)| a == b)
        .count();
    while !min.is_char_boundary(n) {
        n -= 1;
    }
    &min[..n]
}

/// The page size: how much mount data the kernel reads.
pub(crate) fn page_size() -> usize {
    match sysconf(SysconfVar::PAGE_SIZE) {
        Ok(Some(n)) => usize::try_from(n).unwrap_or(4096),
        _ => 4096,
    }
}

impl Mount {
    /// Mounts this at `root` joined with [`Mount::target`] (containerd's `Mount.Mount`).
    ///
    /// `target` must stay inside `root` (no `..`); symbolic links in it are followed.
    /// Read-only bind mounts are bound then remounted read-only, as containerd does.
    pub fn mount(&self, root: &Path) -> Result<()> {
        let target = self.target_in(root)?;
        let page_size = page_size();
        let call = MountCall::new(self, page_size);
        if !call.fits(page_size) {
            return Err(Error::InvalidArgument(format!(
                "mount options is too long: {} bytes of data for {} at {}, more than a page",
                call.data.len(),
                self.kind,
                target.display()
            )));
        }
        let context =
            |what: &str| format!("failed to {what} {} at {}", self.kind, target.display());
        if !call.flags.contains(MsFlags::MS_REMOUNT) || !call.data.is_empty() {
            let data = (!call.data.is_empty()).then_some(call.data.as_str());
            let source = self.source.as_str();
            let kind = self.kind.as_str();
            let result = match &call.chdir {
                None => mount(Some(source), &target, Some(kind), call.flags, data),
                Some(dir) => std::thread::scope(|scope| {
                    let mounting = scope.spawn(|| {
                        unshare(CloneFlags::CLONE_FS)?;
                        chdir(dir.as_str())?;
                        mount(Some(source), &target, Some(kind), call.flags, data)
                    });
                    mounting
                        .join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
                }),
            };
            result.map_err(|e| Error::io(context("mount"), e.into()))?;
        }
        let read_only_bind = MsFlags::MS_BIND | MsFlags::MS_RDONLY;
        if call.flags.contains(read_only_bind) {
            let flags = call.flags | MsFlags::MS_REMOUNT;
            mount(None::<&str>, &target, None::<&str>, flags, None::<&str>)
                .map_err(|e| Error::io(context("remount read-only"), e.into()))?;
        }
        Ok(())
    }

    /// `root` joined with the target, absolute (the mount may run from another directory).
    fn target_in(&self, root: &Path) -> Result<PathBuf> {
        let mut target = std::path::absolute(root)
            .map_err(|e| Error::io(format!("cannot resolve {}", root.display()), e))?;
        for component in Path::new(&self.target).components() {
            match component {
                Component::Normal(part) => target.push(part),
                Component::RootDir | Component::CurDir => {}
                Component::ParentDir | Component::Prefix(_) => {
                    return Err(Error::InvalidArgument(format!(
                        "mount target {:?} leaves the root {}",
                        self.target,
                        root.display()
                    )))
                }
            }
        }
        Ok(target)
    }
}

/// Mounts every mount at `root` in order (containerd's `mount.All`); when one fails, those
/// already mounted are detached again and the error is returned.
pub fn mount_all(mounts: &[Mount], root: &Path) -> Result<()> {
    for (done, m) in mounts.iter().enumerate() {
        if let Err(e) = m.mount(root) {
            for undo in mounts[..done].iter().rev() {
                if let Ok(target) = undo.target_in(root) {
                    if let Err(u) = unmount(&target, Unmount::Detach) {
                        tracing::warn!(target = %target.display(), error = %u,
                            "failed to undo a mount after a later mount failed");
                    }
                }
            }
            return Err(e);
        }
    }
    Ok(())
}

/// Unmounts the top mount at `target`; a `target` that is not a mount point is not an
/// error (containerd's `Unmount`).
pub fn unmount(target: &Path, mode: Unmount) -> Result<()> {
    unmount_once(target, mode).map(drop)
}

/// Unmounts every mount stacked at `target`; a `target` that does not exist or is not a
/// mount point is not an error (containerd's `UnmountAll`).
pub fn unmount_all(target: &Path, mode: Unmount) -> Result<()> {
    if !target.exists() {
        return Ok(());
    }
    while unmount_once(target, mode)? {}
    Ok(())
}

/// One umount2; whether something was unmounted.
fn unmount_once(target: &Path, mode: Unmount) -> Result<bool> {
    let flags = match mode {
        Unmount::Strict => MntFlags::empty(),
        Unmount::Detach => MntFlags::MNT_DETACH,
    };
    match umount2(target, flags) {
        Ok(()) => Ok(true),
        Err(Errno::EINVAL) => Ok(false),
        Err(e) => Err(Error::io(
            format!("failed to unmount {}", target.display()),
            io::Error::from(e),
        )),
    }
}
