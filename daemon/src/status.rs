//! Library errors as gRPC statuses, as containerd's `errdefs.ToGRPC` makes them.
//!
//! | error kind | gRPC code |
//! |---|---|
//! | NotFound | NotFound |
//! | AlreadyExists | AlreadyExists |
//! | FailedPrecondition | FailedPrecondition |
//! | InvalidArgument | InvalidArgument |
//! | NotImplemented | Unimplemented |
//! | Corrupt, Io | Unknown (errdefs passes other errors through; grpc-go answers Unknown) |
//!
//! The message is worded as a containerd error wrapping its errdefs class,
//! `<reason>: not found`, so that containerd's `errdefs.FromGRPC`, which strips the class
//! suffix and wraps the rest again, shows the reason once.

use overlaysnap::Error;
use tonic::{Code, Status};

/// The status containerd would answer for `err`.
pub fn status(err: &Error) -> Status {
    let (code, reason, class) = match err {
        Error::NotFound(m) => (Code::NotFound, m, "not found"),
        Error::AlreadyExists(m) => (Code::AlreadyExists, m, "already exists"),
        Error::FailedPrecondition(m) => (Code::FailedPrecondition, m, "failed precondition"),
        Error::InvalidArgument(m) => (Code::InvalidArgument, m, "invalid argument"),
        Error::NotImplemented(m) => (Code::Unimplemented, m, "not implemented"),
        Error::Corrupt { .. } | Error::Io { .. } => return Status::unknown(err.to_string()),
    };
    Status::new(code, format!("{reason}: {class}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_map_to_containerds_codes_with_the_class_as_suffix() {
        let cases = [
            (
                Error::NotFound("snapshot \"k\" does not exist".into()),
                Code::NotFound,
                "not found",
            ),
            (
                Error::AlreadyExists("snapshot \"k\"".into()),
                Code::AlreadyExists,
                "already exists",
            ),
            (
                Error::FailedPrecondition("p".into()),
                Code::FailedPrecondition,
                "failed precondition",
            ),
            (
                Error::InvalidArgument("a".into()),
                Code::InvalidArgument,
                "invalid argument",
            ),
            (
                Error::NotImplemented("c".into()),
                Code::Unimplemented,
                "not implemented",
            ),
        ];
        for (err, code, class) in cases {
            let s = status(&err);
            assert_eq!(s.code(), code, "{err}");
            let reason = match &err {
                Error::NotFound(m)
                | Error::AlreadyExists(m)
                | Error::FailedPrecondition(m)
                | Error::InvalidArgument(m)
                | Error::NotImplemented(m) => m,
                _ => unreachable!("only message kinds in this table"),
            };
            assert_eq!(s.message(), format!("{reason}: {class}"));
        }
    }

    #[test]
    fn corruption_and_io_failures_are_unknown() {
        let corrupt = Error::Corrupt {
            path: "journal/log-0".into(),
            offset: 12,
            reason: "bad checksum".into(),
        };
        let io = Error::io("reading /x", std::io::Error::other("disk on fire"));
        for err in [corrupt, io] {
            let s = status(&err);
            assert_eq!(s.code(), Code::Unknown);
            assert_eq!(s.message(), err.to_string());
        }
    }
}
