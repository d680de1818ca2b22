//! The daemon's life: bind the metrics address (when configured), open the snapshotter,
//! bind the socket, serve until SIGTERM or SIGINT, then stop accepting, let in-flight
//! calls finish (at most [`GRACE`]), write a checkpoint, close the snapshotter and remove
//! the sockets. Under systemd ([`systemd`]) it serves on the socket systemd passes, if
//! any, and notifies readiness and stopping.
//!
//! Served on the socket: containerd's Snapshots (through a [`Published`] snapshotter whose
//! [`Hub`] feeds the admin service's Events), overlaysnapd's Admin, and the standard
//! `grpc.health.v1.Health` (SERVING until the stop begins; then Events streams end).

use crate::admin::AdminService;
use crate::api::overlaysnap::admin::v1::admin_server::AdminServer;
use crate::api::snapshots_server::SnapshotsServer;
use crate::linger::{Lingerer, LINGER};
use crate::metrics::{JournalMetrics, Metrics, MetricsAddress, MetricsListener};
use crate::service::SnapshotService;
use crate::socket;
use crate::systemd;
use overlaysnap::service::{Hub, Published, Router};
use overlaysnap::{Options, Snapshotter};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
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
    /// Where to serve metrics; `None`: no metrics ([`crate::metrics`]).
    pub metrics: Option<MetricsAddress>,
}

/// Any error that stops the daemon.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Runs the daemon until SIGTERM or SIGINT (see the module documentation). Returns an
/// error when it cannot start, or when the server fails.
pub async fn run(settings: Settings) -> Result<(), BoxError> {
    // Handlers first: a stop signal that arrives while starting is then a clean stop.
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sigint = signal(SignalKind::interrupt())?;

    // A socket systemd passed is taken first; it queues connections during recovery.
    let inherited = systemd::inherited_listener()?;
    // Metrics: bound before recovery, so that a bad address stops the start at once.
    let metrics_listener = match &settings.metrics {
        Some(address) => Some(MetricsListener::bind(address).await?),
        None => None,
    };
    let journal_metrics = metrics_listener.as_ref().map(|_| JournalMetrics::default());

    let journal = settings.options.journal.name().to_owned();
    let (root, mut options) = (settings.root.clone(), settings.options.clone());
    if let Some(observer) = &journal_metrics {
        options.journal_observer = Some(Arc::new(observer.clone()));
    }
    let opening = Instant::now();
    let snapshotter = tokio::task::spawn_blocking(move || Snapshotter::open(root, options))
        .await?
        .map_err(|e| format!("opening snapshotter at {}: {e}", settings.root.display()))?;
    let recovery = opening.elapsed();
    let snapshotter = Arc::new(snapshotter);
    let metrics =
        journal_metrics.map(|j| Arc::new(Metrics::new(&j, recovery, Arc::clone(&snapshotter))));

    // Logged before the socket appears, so that whoever sees the socket finds the line.
    let activated = inherited.as_ref().map(|(_, path)| path.clone());
    tracing::info!(
        root = %settings.root.display(),
        socket = %activated.as_ref().unwrap_or(&settings.address).display(),
        activated = activated.is_some(),
        name = %settings.name,
        journal,
        snapshots = snapshotter.open_report().snapshots,
        quota = %snapshotter.quota_mode(),
        "overlaysnapd starting"
    );
    // An inherited socket is the socket unit's: its file stays at stop.
    let (listener, socket_file) = match inherited {
        Some((listener, _)) => (listener, None),
        None => socket::bind(&settings.address).map(|(l, file)| (l, Some(file)))?,
    };
    listener.set_nonblocking(true)?;
    let listener = tokio::net::UnixListener::from_std(listener)?;
    // Served through containerd's internal service, whose events the admin service streams.
    let hub = Arc::new(Hub::new());
    let published = Published::new(snapshotter.clone(), hub.clone());
    let mut router = Router::new();
    router.register(settings.name.clone(), Arc::new(published))?;
    let mut service = SnapshotService::new(Arc::new(router));
    if let Some(metrics) = &metrics {
        service = service.with_metrics(Arc::clone(metrics));
    }
    let service = SnapshotsServer::new(service);
    let metrics_server = metrics_listener.zip(metrics).map(|(listener, metrics)| {
        if let Some(address) = &settings.metrics {
            tracing::info!(%address, "serving metrics");
        }
        tokio::spawn(listener.serve(metrics))
    });
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

    let kinds = snapshotter.kind_counts();
    systemd::notify_ready(&format!(
        "serving {} snapshots ({} active, {} committed, {} views)",
        kinds.active + kinds.committed + kinds.view,
        kinds.active,
        kinds.committed,
        kinds.view
    ));

    let signal = tokio::select! {
        _ = sigterm.recv() => "SIGTERM",
        _ = sigint.recv() => "SIGINT",
        ended = &mut server => {
            ended??;
            return Err("the gRPC server stopped without a stop signal".into());
        }
    };
    systemd::notify_stopping();
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
    if let Some(metrics_server) = metrics_server {
        metrics_server.abort();
        let _ = metrics_server.await;
    }
    drop(socket_file);
    tracing::info!("overlaysnapd stopped");
    Ok(())
}
