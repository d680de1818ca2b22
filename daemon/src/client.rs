//! Clients of the daemon's services over its unix socket, for tests, benches and tools
//! written in Rust (the `overlaysnap` CLI's `--address` mode): containerd's Snapshots
//! ([`connect`]) and overlaysnapd's Admin ([`connect_admin`]), or both over one
//! connection ([`channel`]).

use crate::api::overlaysnap::admin::v1::admin_client::AdminClient;
use crate::api::snapshots_client::SnapshotsClient;
use hyper_util::rt::TokioIo;
use std::path::Path;
use tonic::transport::{Channel, Endpoint, Uri};

/// The endpoint [`connect`] uses; the URI is a placeholder, the socket path decides.
pub fn endpoint() -> Endpoint {
    Endpoint::from_static("http://localhost")
}

/// A client of the service on the unix socket at `socket`.
pub async fn connect(socket: &Path) -> Result<SnapshotsClient<Channel>, tonic::transport::Error> {
    connect_with(socket, endpoint()).await
}

/// A client of the service on the unix socket at `socket`, over a channel configured by
/// `endpoint` (window sizes, timeouts).
pub async fn connect_with(
    socket: &Path,
    endpoint: Endpoint,
) -> Result<SnapshotsClient<Channel>, tonic::transport::Error> {
    Ok(SnapshotsClient::new(channel(socket, endpoint).await?))
}

/// A client of the admin service on the unix socket at `socket`.
pub async fn connect_admin(socket: &Path) -> Result<AdminClient<Channel>, tonic::transport::Error> {
    Ok(AdminClient::new(channel(socket, endpoint()).await?))
}

/// A connection to the unix socket at `socket`, configured by `endpoint`, on which any
/// of the daemon's services can be called (clones share it).
pub async fn channel(
    socket: &Path,
    endpoint: Endpoint,
) -> Result<Channel, tonic::transport::Error> {
    let socket = socket.to_owned();
    endpoint
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let socket = socket.clone();
            async move {
                let stream = tokio::net::UnixStream::connect(socket).await?;
                Ok::<_, std::io::Error>(TokioIo::new(stream))
            }
        }))
        .await
}
