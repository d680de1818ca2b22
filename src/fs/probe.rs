//! What the host supports: `d_type` on the root's file system, overlayfs' `index` option,
//! and whether overlay mounts need `userxattr` (containerd's `overlayutils`).

use super::mount::Mount;
use super::mounter::{mount_all, unmount_all, Unmount};
use crate::error::{Error, Result};
use nix::dir::Dir;
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use nix::sys::statfs::{statfs, TMPFS_MAGIC};
use std::fs;
use std::path::Path;

/// What the host's overlayfs needs in every overlay mount.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OverlayFeatures {
    /// overlayfs knows the `index` option: mounts get `index=off` (see [`supports_index`]).
    pub index: bool,
    /// Mounts need `userxattr` (see [`needs_userxattr`]).
    pub userxattr: bool,
}

impl OverlayFeatures {
    /// Probes the host, for overlays whose layers live under `root`. A failed `userxattr`
    /// probe is logged and taken as "not needed", as containerd does.
    pub fn probe(root: &Path) -> OverlayFeatures {
        let userxattr = needs_userxattr(root).unwrap_or_else(|e| {
            tracing::warn!(error = %e,
                "cannot detect whether \"userxattr\" option needs to be used, assuming false");
            false
        });
        OverlayFeatures {
            index: supports_index(),
            userxattr,
        }
    }
}

/// Whether the file system of `dir` reports file types in directory entries (`d_type`),
/// which overlayfs needs. Looks at the entries of `dir` (other than `.` and `..`), so `dir`
/// must not be empty: InvalidArgument otherwise.
pub fn supports_d_type(dir: &Path) -> Result<bool> {
    let context = || format!("cannot read {} to check d_type", dir.display());
    let mut handle = Dir::open(dir, OFlag::O_RDONLY | OFlag::O_DIRECTORY, Mode::empty())
        .map_err(|e| Error::io(context(), e.into()))?;
    for entry in handle.iter() {
        let entry = entry.map_err(|e| Error::io(context(), e.into()))?;
        let name = entry.file_name().to_bytes();
        if name != b"." && name != b".." {
            return Ok(entry.file_type().is_some());
        }
    }
    Err(Error::InvalidArgument(format!(
        "cannot check d_type on {}: it has no entry",
        dir.display()
    )))
}

/// Whether overlayfs knows the `index` option: `/sys/module/overlay/parameters/index`
/// exists (containerd's `supportsIndex`).
pub fn supports_index() -> bool {
    Path::new("/sys/module/overlay/parameters/index").exists()
}

/// Whether overlays whose layers live under `dir` must be mounted with `userxattr`
/// (containerd's `NeedsUserXAttr`): never in the initial user namespace, never on tmpfs
/// (which refuses user xattrs), always from Linux 5.11, and before that only if a trial
/// mount with `userxattr` under `dir/userxattr-check` succeeds.
pub fn needs_userxattr(dir: &Path) -> Result<bool> {
    if !running_in_user_ns() {
        return Ok(false);
    }
    let on_tmpfs = statfs(dir).is_ok_and(|s| s.filesystem_type() == TMPFS_MAGIC);
    if on_tmpfs {
        return Ok(false);
    }
    let release = nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default();
    if release_at_least(&release, (5, 11)) {
        return Ok(true);
    }
    trial_userxattr_mount(&dir.join("userxattr-check"))
}

/// Mounts an overlay with `userxattr` in a scratch directory `check` and deletes it again.
fn trial_userxattr_mount(check: &Path) -> Result<bool> {
    let context = |what: &str| format!("cannot {what} {}", check.display());
    // A leftover of an interrupted check is of no use.
    let _ = fs::remove_dir_all(check);
    for sub in ["lower1", "lower2", "upper", "work", "merged"] {
        fs::create_dir_all(check.join(sub)).map_err(|e| Error::io(context("create"), e))?;
    }
    let at = |sub: &str| check.join(sub).to_string_lossy().into_owned();
    let trial = Mount {
        kind: "overlay".into(),
        source: "overlay".into(),
        target: String::new(),
        options: vec![
            "ro".into(),
            format!(
                "lowerdir={}:{},upperdir={},workdir={}",
                at("lower2"),
                at("lower1"),
                at("upper"),
                at("work")
            ),
            "userxattr".into(),
        ],
    };
    let merged = check.join("merged");
    let supported = match mount_all(std::slice::from_ref(&trial), &merged) {
        Ok(()) => {
            unmount_all(&merged, Unmount::Detach)?;
            true
        }
        Err(e) => {
            tracing::debug!(error = %e,
                "cannot mount overlay with \"userxattr\", probably the kernel does not support userxattr");
            false
        }
    };
    fs::remove_dir_all(check).map_err(|e| Error::io(context("remove"), e))?;
    Ok(supported)
}

/// Whether this process runs in a user namespace other than the initial one, from
/// `/proc/self/uid_map` (see [`uid_map_in_user_ns`]); false when it cannot be read.
pub fn running_in_user_ns() -> bool {
    fs::read_to_string("/proc/self/uid_map")
        .is_ok_and(|map| uid_map_in_user_ns(map.lines().next().unwrap_or("")))
}

/// Whether the first line of a `uid_map` belongs to a user namespace other than the initial
/// one, whose map is `0 0 4294967295` (user_namespaces(7)). An empty or unreadable line is
/// taken as the initial namespace, as containerd does.
pub fn uid_map_in_user_ns(first_line: &str) -> bool {
    let fields: Vec<i64> = first_line
        .split_whitespace()
        .map_while(|f| f.parse().ok())
        .collect();
    match fields[..] {
        [inside, outside, count, ..] => (inside, outside, count) != (0, 0, 4_294_967_295),
        _ => false,
    }
}

/// Whether the kernel release string `release` (`uname -r`, e.g. `6.18.4-foo`) is at
/// least `major.minor`; false when it does not start with two numbers.
pub fn release_at_least(release: &str, (major, minor): (u32, u32)) -> bool {
    let mut numbers = release
        .split(|c: char| !c.is_ascii_digit())
        .map(str::parse::<u32>);
    match (numbers.next(), numbers.next()) {
        (Some(Ok(a)), Some(Ok(b))) => (a, b) >= (major, minor),
        _ => false,
    }
}
