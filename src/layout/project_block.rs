//! Project ids for the snapshots of a root: the block of [`PROJECT_BLOCK`] ids a root
//! takes for itself on its file system (see the module documentation of `quota.rs`,
//! "Project ids").

use super::Layout;
use crate::error::{Error, Result};
use crate::fs::QuotaUnit;
use std::io;

/// The first project id overlaysnap gives out; ids below it are left to other users of
/// the file system.
pub const PROJECT_ID_BASE: u32 = 0x4000_0000;

/// How many project ids a root takes: its snapshot ids 1 to `PROJECT_BLOCK - 1` get one
/// each (id 0 marks the root's `project-block`). 48 roots fit on one file system.
pub const PROJECT_BLOCK: u32 = 1 << 26;

/// The empty directory in the root that holds the first id of the root's block of
/// project ids, so that another root on the same file system sees the block taken.
pub const PROJECT_BLOCK_DIR: &str = "project-block";

/// The first ids of the blocks, in the order roots take them.
pub(super) fn blocks() -> impl Iterator<Item = u32> {
    (0..(u32::MAX - PROJECT_ID_BASE) / PROJECT_BLOCK + 1)
        .map(|k| PROJECT_ID_BASE + k * PROJECT_BLOCK)
}

impl Layout {
    /// Takes the first block of project ids whose first id nobody uses (see the module
    /// documentation): gives `ROOT/project-block`, an empty directory, that id, and keeps
    /// it if that directory is all that is charged to it. (Not `snapshots/` itself: the
    /// kernel refuses to rename a directory into one that passes down another project.)
    /// FailedPrecondition when every block is taken.
    pub(super) fn claim_project_block(&self) -> Result<u32> {
        let marker = self.root.join(PROJECT_BLOCK_DIR);
        let context = |base: u32| format!("cannot give {} project {base}", marker.display());
        match self.fs.create_dir(&marker) {
            Err(e) if e.kind() != io::ErrorKind::AlreadyExists => {
                return Err(Error::io(format!("cannot create {}", marker.display()), e))
            }
            _ => {}
        }
        for base in blocks() {
            self.fs
                .assign_project(&marker, base)
                .map_err(|e| Error::io(context(base), e))?;
            let usage = self
                .fs
                .quota_usage(&marker, QuotaUnit::Project(base))
                .map_err(|e| Error::io(context(base), e))?;
            if usage.is_some_and(|u| u.inodes == Some(1) && u.limit.is_none()) {
                // The project id durable before `ROOT/quota` names the block, so that no
                // root claims it again after a crash.
                self.fs
                    .sync_dir(&marker)
                    .map_err(|e| Error::io(context(base), e))?;
                return Ok(base);
            }
        }
        Err(Error::FailedPrecondition(format!(
            "every block of project ids is taken on the file system of {}: at most {} roots \
             with project quotas share one",
            self.root.display(),
            blocks().count()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_tile_the_ids_from_the_base_and_fit_below_the_invalid_id() {
        let all: Vec<u32> = blocks().collect();
        assert_eq!(all.len(), 48);
        assert_eq!(all[0], PROJECT_ID_BASE);
        assert!(all.windows(2).all(|w| w[1] - w[0] == PROJECT_BLOCK));
        assert_eq!(
            u64::from(*all.last().unwrap()) + u64::from(PROJECT_BLOCK),
            1 << 32
        );
    }
}
