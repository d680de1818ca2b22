//! The daemon's life: open the snapshotter, bind the socket, serve until SIGTERM or
//! SIGINT, then stop accepting, let in-flight calls finish (at most [`GRACE`]), write a
//! checkpoint, close the snapshotter and remove the socket.
//!
//! Served on the socket: containerd's Snapshots (through a [`Published`] snapshotter whose
//! [`Hub`] feeds the admin service's Events), overlaysnapd's Admin, and the standard
//! `grpc.health.v1.Health` (SERVING until the stop begins; then Events streams end).

use crate::admin::AdminService;
use crate::api::overlaysnap::admin::v1::admin_server::AdminServer;
use crate::api::snapshots_server::SnapshotsServer;
use crate::linger::{Lingerer, LINGER};
use crate::service::SnapshotService;
use crate::socket;
use overlaysnap::service::{Hub, Published, Router};
use overlaysnap::{Options, Snapshotter};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::signal::unix::{signal, SignalKind};

/// How long in-flight calls may run on after a stop signal; with the lingering close
/// ([`LINGER`]) and the checkpoint this keeps the stop within containerd's and systemd's
/// usual 10 seconds.
pub const GRACE: Duration = Duration::from_secs(7);

/// What the daemon serves, where.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The snapshotter's root directory.
    pub root: PathBuf,
    /// The unix socket to listen on.
    pub address: PathBuf,
    /// The snapshotter name requests must carry: the name of the proxy plugin in
    /// containerd's configuration (`[proxy_plugins.NAME]`), which containerd sends as
    /// the `snapshotter` field of every request.
    pub name: String,
    /// The snapshotter's options.
    pub options: Options,
}

/// Any error that stops the daemon.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Runs the daemon until SIGTERM or SIGINT (see the module documentation). Returns an
/// error when it cannot start, or when the server fails.
pub async fn run(settings: Settings) -> Result<(), BoxError> {
    // Handlers first: a stop signal that arrives while starting is then a clean stop.
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sigint = signal(SignalKind::interrupt())?;

    let journal = settings.options.journal.name().to_owned();
    let (root, options) = (settings.root.clone(), settings.options.clone());
    let snapshotter = tokio::task::spawn_blocking(move || Snapshotter::open(root, options))
        .await?
        .map_err(|e| format!("opening snapshotter at {}: {e}", settings.root.display()))?;
    let snapshotter = Arc::new(snapshotter);

    // Logged before the socket appears, so that whoever sees the socket finds the line.
    tracing::info!(
        root = %settings.root.display(),
        socket = %settings.address.display(),
        name = %settings.name,
        journal,
        snapshots = snapshotter.open_report().snapshots,
        "overlaysnapd starting"
    );
    let (listener, socket_file) = socket::bind(&settings.address)?;
    listener.set_nonblocking(true)?;
    let listener = tokio::net::UnixListener::from_std(listener)?;
    // Served through containerd's internal service, whose events the admin service streams.
    let hub = Arc::new(Hub::new());
    let published = Published::new(snapshotter.clone(), hub.clone());
    let mut router = Router::new();
    router.register(settings.name.clone(), Arc::new(published))?;
    let service = SnapshotsServer::new(SnapshotService::new(Arc::new(router)));
    let (stopping, stop_watch) = tokio::sync::watch::channel(false);
    let admin = AdminServer::new(AdminService::new(
        snapshotter.clone(),
        hub,
        settings.name.clone(),
        stop_watch,
    ));
    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_serving::<SnapshotsServer<SnapshotService>>()
        .await;

    let lingerer = Lingerer::new();
    let incoming = lingerer.incoming(listener);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let mut server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(service)
            .add_service(admin)
            .add_service(health_service)
            .serve_with_incoming_shutdown(incoming, async {
                let _ = stopped.await;
            }),
    );

    let signal = tokio::select! {
        _ = sigterm.recv() => "SIGTERM",
        _ = sigint.recv() => "SIGINT",
        ended = &mut server => {
            ended??;
            return Err("the gRPC server stopped without a stop signal".into());
        }
    };
    tracing::info!(
        signal,
        "stopping: no new connections; finishing in-flight calls"
    );
    let _ = stopping.send(true);
    health
        .set_not_serving::<SnapshotsServer<SnapshotService>>()
        .await;
    let _ = stop.send(());
    match tokio::time::timeout(GRACE, &mut server).await {
        Ok(ended) => ended??,
        Err(_) => {
            tracing::warn!(grace = ?GRACE, "calls still in flight after the grace period; stopping anyway");
            server.abort();
        }
    }
    if tokio::time::timeout(LINGER * 2, lingerer.closed())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after lingering; closing them");
    }
    let flushed = Arc::clone(&snapshotter);
    tokio::task::spawn_blocking(move || {
        flushed.checkpoint()?;
        flushed.close()
    })
    .await?
    .map_err(|e| format!("flushing the snapshotter: {e}"))?;
    drop(socket_file);
    tracing::info!("overlaysnapd stopped");
    Ok(())
}
