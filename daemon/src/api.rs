//! The gRPC types, server and client generated from containerd's protos in `proto/`
//! (`containerd.services.snapshots.v1` and `containerd.types`) and from overlaysnapd's own
//! `overlaysnap.admin.v1`, in modules named after
//! their protobuf packages.
#![allow(missing_docs)]

/// `containerd.*`
pub mod containerd {
    /// `containerd.types`: the `Mount` message.
    pub mod types {
        tonic::include_proto!("containerd.types");
    }
    /// `containerd.services.*`
    pub mod services {
        /// `containerd.services.snapshots.*`
        pub mod snapshots {
            /// `containerd.services.snapshots.v1`: the `Snapshots` service.
            pub mod v1 {
                tonic::include_proto!("containerd.services.snapshots.v1");
            }
        }
    }
}

pub use containerd::services::snapshots::v1::*;
pub use containerd::types::Mount;

/// `overlaysnap.*`
pub mod overlaysnap {
    /// `overlaysnap.admin.*`
    pub mod admin {
        /// `overlaysnap.admin.v1`: overlaysnapd's `Admin` service (status, check, compact,
        /// events), served beside containerd's on the same socket.
        pub mod v1 {
            tonic::include_proto!("overlaysnap.admin.v1");
        }
    }
}
