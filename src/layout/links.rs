//! Short links `ROOT/l/<id in base 62>` -> `../snapshots/<id>/fs`, for lowerdir lists that
//! do not fit in one page of mount data even when made relative to `ROOT/snapshots`.
//!
//! A link's name and target are functions of the id alone, so links hold no state: any
//! link may be deleted and re-created at any time. [`Layout::mounts`] creates the links a
//! mount needs, [`Layout::remove_dir`] deletes the link of the removed id, and Cleanup
//! deletes links of ids that are not live.

use super::Layout;
use crate::error::{Error, Result};
use std::io;
use std::path::{Path, PathBuf};

/// Digits of the link names: letters and digits only, none of which overlayfs treats
/// specially in a lowerdir list.
const DIGITS: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// The link name of snapshot `id`: the id in base 62 (3 characters up to id 238 327,
/// 5 up to 916 132 831).
pub(crate) fn link_name(mut id: u64) -> String {
    let mut digits = Vec::new();
    loop {
        digits.push(DIGITS[(id % 62) as usize]);
        id /= 62;
        if id == 0 {
            break;
        }
    }
    digits.iter().rev().map(|&d| char::from(d)).collect()
}

/// Where the link of snapshot `id` points, relative to the links directory.
fn link_target(id: u64) -> PathBuf {
    Path::new("../snapshots").join(id.to_string()).join("fs")
}

impl Layout {
    /// `ROOT/l/<id in base 62>`: the short link to snapshot `id`'s `fs`.
    pub fn link_path(&self, id: u64) -> PathBuf {
        self.links.join(link_name(id))
    }

    /// Makes sure the link of snapshot `id` exists and points at its `fs`.
    pub(crate) fn ensure_link(&self, id: u64) -> Result<()> {
        let link = self.link_path(id);
        let target = link_target(id);
        let context = || format!("cannot link {} to {}", link.display(), target.display());
        match self.fs.symlink(&target, &link) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                if self.fs.read_link(&link).is_ok_and(|t| t == target) {
                    return Ok(());
                }
                // Something else holds the name: replace it atomically.
                let claim = self.in_flight.claim(".new-");
                let fresh = self.links.join(claim.name());
                self.fs
                    .symlink(&target, &fresh)
                    .map_err(|e| Error::io(context(), e))?;
                self.fs
                    .rename(&fresh, &link)
                    .map_err(|e| Error::io(context(), e))
            }
            Err(e) => Err(Error::io(context(), e)),
        }
    }

    /// Deletes the link of snapshot `id`, if any.
    pub(crate) fn remove_link(&self, id: u64) -> Result<()> {
        let link = self.link_path(id);
        match self.fs.remove_file(&link) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                Err(Error::io(format!("cannot remove {}", link.display()), e))
            }
            _ => Ok(()),
        }
    }
}
