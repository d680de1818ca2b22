//! The library's types as containerd's protobuf messages: [`Info`], [`Kind`],
//! [`Timestamp`], [`Usage`] and [`Mount`]. containerd's empty parent string is the
//! library's `None`.

use crate::api;
use overlaysnap::core::{Info, Kind, Timestamp, Usage};
use overlaysnap::Mount;

impl From<Kind> for api::Kind {
    fn from(kind: Kind) -> Self {
        match kind {
            Kind::View => api::Kind::View,
            Kind::Active => api::Kind::Active,
            Kind::Committed => api::Kind::Committed,
        }
    }
}

/// A library timestamp as protobuf's `Timestamp`.
pub fn timestamp(t: Timestamp) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.seconds,
        // Invariant of Timestamp: nanos < 1e9, which fits an i32.
        nanos: t.nanos as i32,
    }
}

impl From<Info> for api::Info {
    fn from(info: Info) -> Self {
        api::Info {
            name: info.name,
            parent: info.parent.unwrap_or_default(),
            kind: api::Kind::from(info.kind).into(),
            created_at: Some(timestamp(info.created)),
            updated_at: Some(timestamp(info.updated)),
            labels: info.labels,
        }
    }
}

impl From<Mount> for api::Mount {
    fn from(m: Mount) -> Self {
        api::Mount {
            r#type: m.kind,
            source: m.source,
            target: m.target,
            options: m.options,
        }
    }
}

impl From<Usage> for api::UsageResponse {
    fn from(u: Usage) -> Self {
        api::UsageResponse {
            size: u.size,
            inodes: u.inodes,
        }
    }
}

/// containerd's parent string as the library's: empty means none.
pub fn parent(parent: &str) -> Option<&str> {
    (!parent.is_empty()).then_some(parent)
}

/// The mounts of a reply.
pub fn mounts(mounts: Vec<Mount>) -> Vec<api::Mount> {
    mounts.into_iter().map(api::Mount::from).collect()
}
