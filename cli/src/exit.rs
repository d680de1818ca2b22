//! Exit codes, and the failures that lead to them.
//!
//! Every failure is printed as one line on stderr, `overlaysnap: <message>`, and ends the
//! process with the code of its kind. Scripts match on the code, people read the line.

use overlaysnap::{Error, ErrorKind};
use std::io;
use std::path::PathBuf;

/// The exit codes, as `--help` and README.md list them ([`EXIT_CODES_HELP`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Code {
    /// Success.
    Ok = 0,
    /// An operating-system error, or anything not listed below.
    Other = 1,
    /// Bad command line (clap's code): unknown command or option, malformed `K=V`.
    Usage = 2,
    /// `check` found damage: committed snapshots whose directory is gone.
    Damage = 3,
    /// The key, name, parent or root does not exist.
    NotFound = 4,
    /// The key or name is taken.
    AlreadyExists = 5,
    /// The snapshot is in the wrong state (e.g. mounts of a committed snapshot, removing a
    /// parent).
    FailedPrecondition = 6,
    /// The request is malformed (e.g. a bad filter, a label path other than `labels.<k>`).
    InvalidArgument = 7,
    /// The operation is not offered.
    NotImplemented = 8,
    /// The journal on disk does not decode or contradicts itself.
    Corrupt = 9,
    /// The root is locked by another process, such as a running overlaysnapd.
    Held = 10,
    /// With --address: the daemon refused an admin call (the caller is neither root nor
    /// the daemon's user).
    Denied = 11,
}

impl Code {
    /// The code of a library error kind.
    pub fn of_kind(kind: ErrorKind) -> Code {
        match kind {
            ErrorKind::NotFound => Code::NotFound,
            ErrorKind::AlreadyExists => Code::AlreadyExists,
            ErrorKind::FailedPrecondition => Code::FailedPrecondition,
            ErrorKind::InvalidArgument => Code::InvalidArgument,
            ErrorKind::NotImplemented => Code::NotImplemented,
            ErrorKind::Corrupt => Code::Corrupt,
            ErrorKind::Io => Code::Other,
        }
    }
}

impl From<Code> for std::process::ExitCode {
    fn from(code: Code) -> Self {
        std::process::ExitCode::from(code as u8)
    }
}

/// The exit-code table shown at the end of `--help`.
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
   0  success
   1  I/O or other error
   2  bad command line
   3  check found damage (committed snapshots whose directory is gone)
   4  not found (key, name, parent, or the root itself)
   5  already exists
   6  failed precondition (wrong kind of snapshot, snapshot has children)
   7  invalid argument (bad filter, bad key or label)
   8  not implemented
   9  corrupt journal
  10  root held by another process (e.g. a running overlaysnapd); the message names its pid
  11  --address: the daemon refused the call (admin calls need root or the daemon's user)";

/// Why a command did not succeed.
#[derive(Debug)]
pub enum Failure {
    /// The snapshotter refused or failed.
    Snapshotter(Error),
    /// `rm` failed after removing some of its keys: the error, and the keys already gone.
    Partial {
        /// The error that stopped the command.
        error: Error,
        /// The keys removed before it, in order.
        removed: Vec<String>,
    },
    /// Another process holds the root's lock; the message names its pid.
    Held(String),
    /// A command that must not create the root found none.
    MissingRoot(PathBuf),
    /// `check` found committed snapshots whose directory is gone.
    Damage(String),
    /// Writing the output failed.
    Output(io::Error),
    /// The command line asks for something it cannot do (a live command without
    /// `--address`, an offline one with it).
    Usage(String),
    /// With `--address`: the daemon's socket could not be reached.
    Connect {
        /// The socket.
        address: PathBuf,
        /// Why.
        error: String,
    },
    /// With `--address`: the daemon answered the call with an error.
    Rpc(tonic::Status),
}

impl Failure {
    /// The failure of [`overlaysnap::Snapshotter::open`]: a lock held by another process
    /// (the library reports it as an I/O error with kind `WouldBlock`) becomes
    /// [`Failure::Held`].
    pub fn from_open(error: Error) -> Failure {
        match error {
            Error::Io { context, source } if source.kind() == io::ErrorKind::WouldBlock => {
                Failure::Held(context)
            }
            other => Failure::Snapshotter(other),
        }
    }

    /// The exit code of this failure.
    pub fn code(&self) -> Code {
        match self {
            Failure::Snapshotter(e) | Failure::Partial { error: e, .. } => Code::of_kind(e.kind()),
            Failure::Held(_) => Code::Held,
            Failure::MissingRoot(_) => Code::NotFound,
            Failure::Damage(_) => Code::Damage,
            Failure::Output(_) | Failure::Connect { .. } => Code::Other,
            Failure::Usage(_) => Code::Usage,
            Failure::Rpc(status) => match status.code() {
                tonic::Code::NotFound => Code::NotFound,
                tonic::Code::AlreadyExists => Code::AlreadyExists,
                tonic::Code::FailedPrecondition => Code::FailedPrecondition,
                tonic::Code::InvalidArgument => Code::InvalidArgument,
                tonic::Code::Unimplemented => Code::NotImplemented,
                tonic::Code::PermissionDenied => Code::Denied,
                _ => Code::Other,
            },
        }
    }

    /// The message, on one line.
    pub fn message(&self) -> String {
        let message = match self {
            Failure::Snapshotter(e) => e.to_string(),
            Failure::Partial { error, removed } => {
                let removed: Vec<String> = removed.iter().map(|k| format!("{k:?}")).collect();
                format!("{error} (already removed: {})", removed.join(", "))
            }
            Failure::Held(why) => format!("{why} (is overlaysnapd running?)"),
            Failure::MissingRoot(root) => format!(
                "root {} does not exist (only prepare and view create it)",
                root.display()
            ),
            Failure::Damage(what) => format!("damage found: {what}"),
            Failure::Output(e) => format!("writing output: {e}"),
            Failure::Usage(why) => why.clone(),
            Failure::Connect { address, error } => {
                format!(
                    "connecting to overlaysnapd at {}: {error}",
                    address.display()
                )
            }
            Failure::Rpc(status) => format!("overlaysnapd: {}", status.message()),
        };
        message.replace(['\n', '\r'], " ")
    }
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        Failure::Snapshotter(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_lock_is_its_own_failure() {
        let e = Error::io(
            "/r is locked by process 42 (lock file /r/LOCK); only one process may open it",
            io::ErrorKind::WouldBlock.into(),
        );
        let f = Failure::from_open(e);
        assert_eq!(f.code(), Code::Held);
        assert!(f.message().contains("process 42"), "{}", f.message());
    }

    #[test]
    fn messages_are_one_line() {
        let f = Failure::Snapshotter(Error::InvalidArgument("a\nb".into()));
        assert_eq!(f.message(), "invalid argument: a b");
        assert_eq!(f.code(), Code::InvalidArgument);
    }
}
