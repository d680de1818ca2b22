//! `ROOT/empty`: the lower layer of the overlay mount of an Active snapshot without a
//! parent, when the layout mounts those as overlay ([`Layout::with_empty_lower`], the
//! snapshotter's `rebase` option).
//!
//! Invariant: while a layout has it, `ROOT/empty` is a directory (0755 when created here)
//! that held no entry when the layout was opened. Nothing of overlaysnap writes into it,
//! and overlayfs never writes into a lower layer; an entry put there by hand would show in
//! every parentless Active mount made until the next open, which then refuses the root
//! rather than delete what someone put there. Cleanup and `check` look only inside
//! `ROOT/snapshots` and `ROOT/l`, so it is never garbage.

use super::Layout;
use crate::error::{Error, Result};
use crate::fs::FileKind;
use std::io;
use std::path::PathBuf;

impl Layout {
    /// This layout, mounting every Active snapshot without a parent as `overlay` above the
    /// empty `ROOT/empty` (see [`Layout::mounts`]), which is created here (0755) when
    /// missing.
    ///
    /// Refused (FailedPrecondition) when `ROOT/empty` is not a directory or not empty: it
    /// would show through those mounts. Nothing is changed then.
    pub fn with_empty_lower(mut self) -> Result<Layout> {
        let path = self.empty_lower_path();
        match self.fs.create_dir(&path) {
            Ok(()) => self.set_mode(&path, 0o755)?,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(Error::io(format!("cannot create {}", path.display()), e)),
        }
        let context = || format!("cannot examine {}", path.display());
        let stat = self
            .fs
            .symlink_metadata(&path)
            .map_err(|e| Error::io(context(), e))?;
        if stat.kind != FileKind::Dir {
            return Err(Error::FailedPrecondition(format!(
                "{} must be an empty directory (the lower layer of parentless Active \
                 snapshots), but it is a {}; remove it",
                path.display(),
                format!("{:?}", stat.kind).to_lowercase()
            )));
        }
        let names = self
            .fs
            .read_dir(&path)
            .map_err(|e| Error::io(context(), e))?;
        if let Some(name) = names.iter().min() {
            return Err(Error::FailedPrecondition(format!(
                "{} must stay empty (it is the lower layer of parentless Active snapshots), \
                 but holds {} entries, e.g. {:?}; remove them",
                path.display(),
                names.len(),
                name
            )));
        }
        self.empty_lower = Some(path);
        Ok(self)
    }

    /// `ROOT/empty`, whether or not this layout uses it.
    pub fn empty_lower_path(&self) -> PathBuf {
        self.root.join("empty")
    }
}
