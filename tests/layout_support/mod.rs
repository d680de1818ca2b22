//! Shared support for the layout tests: root check, layouts with fixed features, plans,
//! committed layers with files, and a mount guard.
#![allow(dead_code)] // each test binary uses a different part of it

use overlaysnap::core::{Kind, MountPlan};
use overlaysnap::fs::{mount_all, unmount_all, Mount, OverlayFeatures, Unmount};
use overlaysnap::layout::Layout;
use std::fs;
use std::path::{Path, PathBuf};

/// Whether the test runs as root; prints a skip line when not.
pub fn root_or_skip(test: &str) -> bool {
    let root = nix::unistd::geteuid().is_root();
    if !root {
        println!("skipping {test}: needs root for real mounts and chown");
    }
    root
}

/// A layout under `dir/root` with overlay features given, not probed.
pub fn layout_with(dir: &Path, options: &[&str], features: OverlayFeatures) -> Layout {
    let options: Vec<String> = options.iter().map(|o| o.to_string()).collect();
    Layout::open_with_features(dir.join("root"), &options, features).expect("open layout")
}

/// A layout under `dir/root` with the host's probed features and no configured options.
pub fn layout(dir: &Path) -> Layout {
    Layout::open(dir.join("root"), &[]).expect("open layout")
}

/// A mount plan.
pub fn plan(id: u64, kind: Kind, parents: &[u64]) -> MountPlan {
    MountPlan {
        id,
        kind,
        parents: parents.to_vec(),
        idmap: Default::default(),
    }
}

/// Creates the directory of snapshot `id` (Active, as Prepare does) and writes `files`
/// (relative path, content) into its `fs`; as a committed layer it keeps the same id.
pub fn layer(layout: &Layout, id: u64, files: &[(&str, &str)]) {
    let dir = layout.prepare_dir(Kind::Active, None).expect("prepare dir");
    for (path, content) in files {
        let path = dir.fs_path().unwrap().join(path);
        fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        fs::write(path, content).expect("write");
    }
    dir.install(id).expect("install");
}

/// A directory with mounts on it, all detached on drop (even when the test fails).
pub struct Mounted(pub PathBuf);

impl Mounted {
    /// Mounts `mounts` at a new directory `dir/name`.
    pub fn new(mounts: &[Mount], dir: &Path, name: &str) -> Mounted {
        let target = dir.join(name);
        fs::create_dir_all(&target).expect("mkdir target");
        mount_all(mounts, &target).expect("mount");
        Mounted(target)
    }

    /// `path` inside the mount.
    pub fn join(&self, path: &str) -> PathBuf {
        self.0.join(path)
    }

    /// The content of `path` inside the mount.
    pub fn read(&self, path: &str) -> String {
        fs::read_to_string(self.join(path)).expect("read")
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        unmount_all(&self.0, Unmount::Detach).expect("unmount");
    }
}
