//! The one error type of overlaysnap, with containerd's error kinds.
//!
//! Every refusal names what was asked, about which key, and why, the way containerd's
//! messages do (`snapshot "k1" has children; cannot remove`). The gRPC layer maps
//! [`ErrorKind`] to status codes exactly as containerd's `errdefs` package does.

use std::io;

/// The containerd error kind of an [`Error`], for matching and for status-code mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The key, name or parent does not exist (`errdefs.ErrNotFound`).
    NotFound,
    /// The key or name is taken (`errdefs.ErrAlreadyExists`).
    AlreadyExists,
    /// The snapshot is in the wrong state for the operation (`errdefs.ErrFailedPrecondition`).
    FailedPrecondition,
    /// The request itself is malformed (`errdefs.ErrInvalidArgument`).
    InvalidArgument,
    /// The operation is not offered (`errdefs.ErrNotImplemented`).
    NotImplemented,
    /// Persistent data does not decode or contradicts itself.
    Corrupt,
    /// An operating-system call failed.
    Io,
}

/// An overlaysnap error: a containerd kind and a message naming the key and the reason.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// See [`ErrorKind::NotFound`].
    #[error("not found: {0}")]
    NotFound(String),
    /// See [`ErrorKind::AlreadyExists`].
    #[error("already exists: {0}")]
    AlreadyExists(String),
    /// See [`ErrorKind::FailedPrecondition`].
    #[error("failed precondition: {0}")]
    FailedPrecondition(String),
    /// See [`ErrorKind::InvalidArgument`].
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// See [`ErrorKind::NotImplemented`].
    #[error("not implemented: {0}")]
    NotImplemented(String),
    /// Persistent data at `path`, byte `offset`, is not what was written.
    #[error("corrupt: {path} at offset {offset}: {reason}")]
    Corrupt {
        /// The file (or other source) that holds the bad data.
        path: String,
        /// Byte offset of the first bad byte, or of the frame that holds it.
        offset: u64,
        /// What was wrong.
        reason: String,
    },
    /// An operating-system call failed while doing `context`.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, naming the path.
        context: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

impl Error {
    /// The containerd kind of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::NotFound(_) => ErrorKind::NotFound,
            Error::AlreadyExists(_) => ErrorKind::AlreadyExists,
            Error::FailedPrecondition(_) => ErrorKind::FailedPrecondition,
            Error::InvalidArgument(_) => ErrorKind::InvalidArgument,
            Error::NotImplemented(_) => ErrorKind::NotImplemented,
            Error::Corrupt { .. } => ErrorKind::Corrupt,
            Error::Io { .. } => ErrorKind::Io,
        }
    }

    /// Wraps an [`io::Error`] with what was being done.
    pub fn io(context: impl Into<String>, source: io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}

/// `Result` with overlaysnap's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
