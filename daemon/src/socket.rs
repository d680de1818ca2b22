//! The daemon's unix socket: created `0660` in a directory made `0711` when missing; a
//! stale socket (nobody accepts on it) is replaced, a live one is refused.
//!
//! The socket is bound under a temporary name, given its mode, then renamed into place,
//! so that it never exists at its path with another mode, whatever the umask.

use std::fs::{self, DirBuilder, Permissions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

/// The mode of the socket: owner and group may connect.
pub const SOCKET_MODE: u32 = 0o660;
/// The mode of a socket directory the daemon creates: others may reach the socket only
/// through a group they are given.
pub const DIR_MODE: u32 = 0o711;

/// Why the socket could not be bound.
#[derive(Debug)]
pub enum BindError {
    /// Another process accepts connections on the socket.
    InUse(PathBuf),
    /// Something other than a socket is at the path; it is left alone.
    NotASocket(PathBuf),
    /// A system call failed while doing the named thing.
    Io(String, io::Error),
}

impl std::fmt::Display for BindError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BindError::InUse(p) => write!(
                f,
                "socket {} is in use: another process is listening on it (is overlaysnapd \
                 already running?)",
                p.display()
            ),
            BindError::NotASocket(p) => write!(
                f,
                "{} exists and is not a socket; refusing to replace it",
                p.display()
            ),
            BindError::Io(what, e) => write!(f, "{what}: {e}"),
        }
    }
}

impl std::error::Error for BindError {}

/// A bound socket file, removed from its path when dropped.
#[derive(Debug)]
pub struct SocketFile {
    path: PathBuf,
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        if let Err(e) = fs::remove_file(&self.path) {
            if e.kind() != io::ErrorKind::NotFound {
                tracing::warn!(socket = %self.path.display(), error = %e, "could not remove the socket");
            }
        }
    }
}

/// Binds the unix socket at `path` (see the module documentation): the listener, and the
/// guard that removes the socket file.
pub fn bind(path: &Path) -> Result<(UnixListener, SocketFile), BindError> {
    let io = |what: String| move |e: io::Error| BindError::Io(what, e);
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if !dir.exists() {
        DirBuilder::new()
            .recursive(true)
            .mode(DIR_MODE)
            .create(dir)
            .map_err(io(format!("creating socket directory {}", dir.display())))?;
    }
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => match UnixStream::connect(path) {
            Ok(_) => return Err(BindError::InUse(path.to_owned())),
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                tracing::info!(socket = %path.display(), "replacing a stale socket");
                fs::remove_file(path)
                    .map_err(io(format!("removing stale socket {}", path.display())))?;
            }
            Err(e) => return Err(io(format!("probing socket {}", path.display()))(e)),
        },
        Ok(_) => return Err(BindError::NotASocket(path.to_owned())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(format!("inspecting {}", path.display()))(e)),
    }
    // Short, so that it fits a socket address wherever the final path does.
    let temp = dir.join(format!(".{}.sock", std::process::id()));
    let _ = fs::remove_file(&temp);
    let listener =
        UnixListener::bind(&temp).map_err(io(format!("binding socket {}", temp.display())))?;
    let placed = fs::set_permissions(&temp, Permissions::from_mode(SOCKET_MODE))
        .map_err(io(format!("setting the mode of {}", temp.display())))
        .and_then(|()| {
            fs::rename(&temp, path).map_err(io(format!(
                "moving socket {} to {}",
                temp.display(),
                path.display()
            )))
        });
    if let Err(e) = placed {
        let _ = fs::remove_file(&temp);
        return Err(e);
    }
    Ok((
        listener,
        SocketFile {
            path: path.to_owned(),
        },
    ))
}
