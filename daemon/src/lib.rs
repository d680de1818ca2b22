//! overlaysnapd: overlaysnap served as a containerd proxy snapshotter.
//!
//! containerd reaches a proxy snapshotter over gRPC on a unix socket, with the service
//! `containerd.services.snapshots.v1.Snapshots` and, in each request, the name of the
//! proxy plugin from its configuration:
//!
//! ```toml
//! [proxy_plugins.overlaysnap]
//!   type = "snapshot"
//!   address = "/run/overlaysnap/overlaysnap.sock"
//! ```
//!
//! - [`api`]: the messages, server and client generated from containerd's protos;
//! - [`service`]: the gRPC service over the library's [`overlaysnap::service::Router`];
//! - [`convert`] and [`status`]: library types and errors as containerd's messages and
//!   gRPC codes;
//! - [`socket`], [`config`], [`daemon`] and [`linger`]: the socket, the TOML
//!   configuration, the daemon's start and stop, and the closing of connections;
//! - [`metrics`]: OpenMetrics over HTTP, when the configuration asks for them;
//! - [`systemd`]: socket activation and readiness notification;
//! - [`admin`]: overlaysnapd's own admin service (status, check, compact, events), on the
//!   same socket, for the daemon's user and root only;
//! - [`client`]: clients over the unix socket.
#![warn(missing_docs)]

pub mod admin;
pub mod api;
pub mod client;
pub mod config;
pub mod convert;
pub mod daemon;
pub mod linger;
pub mod metrics;
pub mod service;
pub mod socket;
pub mod status;
pub mod systemd;

pub use daemon::{run, Settings};
