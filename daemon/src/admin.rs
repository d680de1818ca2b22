//! [`AdminService`]: overlaysnapd's own `overlaysnap.admin.v1.Admin` service, served on
//! the same socket as containerd's Snapshots: Status, Check, Compact and Events.
//!
//! Invariants:
//! - Only a peer whose uid is the daemon's or root's is served; any other is refused with
//!   PermissionDenied before anything runs. The uid is the kernel's (`SO_PEERCRED` of the
//!   unix socket), so a client cannot claim another. The socket's own mode decides who
//!   may connect at all (containerd's Snapshots service has no such check).
//! - Nothing here changes snapshots: Check reads only, Compact writes a checkpoint of the
//!   state the journal already holds.
//! - An Events subscriber never slows a writer: the [`Hub`] offers each event to its
//!   bounded buffer of [`EVENTS_BUFFER`] events without waiting and drops it, with a
//!   warning, when the buffer is full. The subscriber's stream then ends with
//!   ResourceExhausted after the events it still holds. At the daemon's stop every
//!   Events stream ends (OK), so that in-flight calls can finish.

use crate::api::overlaysnap::admin::v1 as pb;
use crate::api::overlaysnap::admin::v1::admin_server::Admin;
use crate::status::status;
use futures_core::Stream;
use overlaysnap::service::{Event, Hub, Offer, Subscriber};
use overlaysnap::{OpenReport, Snapshotter};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::server::UdsConnectInfo;
use tonic::{Request, Response, Status};

/// Events one subscriber may fall behind by before it is dropped.
pub const EVENTS_BUFFER: usize = 1024;

/// The admin service of one daemon's snapshotter.
#[derive(Debug, Clone)]
pub struct AdminService {
    snapshotter: Arc<Snapshotter>,
    hub: Arc<Hub>,
    name: String,
    started: Instant,
    stop: watch::Receiver<bool>,
}

impl AdminService {
    /// Serves `snapshotter`, served to containerd as `name`, with the events of `hub`.
    /// `stop` turning true ends every Events stream.
    pub fn new(
        snapshotter: Arc<Snapshotter>,
        hub: Arc<Hub>,
        name: String,
        stop: watch::Receiver<bool>,
    ) -> Self {
        AdminService {
            snapshotter,
            hub,
            name,
            started: Instant::now(),
            stop,
        }
    }

    /// Runs `call` with the snapshotter on the blocking pool (it may read the disk).
    async fn blocking<T, F>(&self, op: &'static str, call: F) -> Result<T, Status>
    where
        T: Send + 'static,
        F: FnOnce(&Snapshotter) -> overlaysnap::Result<T> + Send + 'static,
    {
        let snapshotter = Arc::clone(&self.snapshotter);
        let result = tokio::task::spawn_blocking(move || call(&snapshotter))
            .await
            .map_err(|e| Status::internal(format!("{op} did not finish: {e}")))?;
        result.map_err(|e| {
            tracing::error!(op, "admin call failed: {e}");
            status(&e)
        })
    }
}

/// Refuses `request` unless its peer is root or runs as the daemon's uid.
pub fn authorize<T>(request: &Request<T>) -> Result<(), Status> {
    let uid = request
        .extensions()
        .get::<UdsConnectInfo>()
        .and_then(|info| info.peer_cred)
        .map(|cred| cred.uid())
        .ok_or_else(|| Status::permission_denied("the peer's credentials are unknown"))?;
    let own = nix::unistd::geteuid().as_raw();
    if uid == 0 || uid == own {
        Ok(())
    } else {
        tracing::warn!(
            uid,
            "refused an admin call from a peer that is neither root nor the daemon's user"
        );
        Err(Status::permission_denied(format!(
            "admin calls need uid 0 or {own}; the peer has uid {uid}"
        )))
    }
}

/// The library's open report as the protobuf `Report`.
pub fn report(r: &OpenReport) -> pb::Report {
    pb::Report {
        snapshots: r.snapshots as u64,
        records_replayed: r.records_replayed,
        quota: r.quota.name().to_owned(),
        torn_tail: r.torn_tail.as_ref().map(|t| pb::TornTail {
            path: t.path.clone(),
            offset: t.offset,
            bytes_dropped: t.bytes_dropped,
            reason: t.reason.clone(),
        }),
        recreated: r.recreated.clone(),
        unissued: r.unissued.clone(),
        damaged: r
            .damaged
            .iter()
            .map(|(name, id)| pb::Damaged {
                name: name.clone(),
                id: *id,
            })
            .collect(),
        orphans: r.orphans as u64,
    }
}

/// An event as containerd's envelope, stamped now. The namespace is left empty: the
/// library's events do not carry it (containerd's keys hold it as their first segment).
pub fn envelope(snapshotter: &str, event: &Event) -> pb::Envelope {
    let snapshotter = snapshotter.to_owned();
    let event = match event.clone() {
        Event::Prepare { key, parent } => pb::envelope::Event::Prepare(pb::SnapshotPrepare {
            key,
            parent: parent.unwrap_or_default(),
            snapshotter,
        }),
        Event::Commit { key, name } => pb::envelope::Event::Commit(pb::SnapshotCommit {
            key,
            name,
            snapshotter,
        }),
        Event::Remove { key } => {
            pb::envelope::Event::Remove(pb::SnapshotRemove { key, snapshotter })
        }
    };
    pb::Envelope {
        timestamp: Some(prost_types::Timestamp::from(std::time::SystemTime::now())),
        namespace: String::new(),
        topic: event_topic(&event).to_owned(),
        event: Some(event),
    }
}

fn event_topic(event: &pb::envelope::Event) -> &'static str {
    match event {
        pb::envelope::Event::Prepare(_) => "/snapshot/prepare",
        pb::envelope::Event::Commit(_) => "/snapshot/commit",
        pb::envelope::Event::Remove(_) => "/snapshot/remove",
    }
}

/// A tokio channel as a hub subscriber: offered events are queued without waiting.
struct Forward(mpsc::Sender<Event>);

impl Subscriber for Forward {
    fn offer(&mut self, event: &Event) -> Offer {
        match self.0.try_send(event.clone()) {
            Ok(()) => Offer::Taken,
            Err(mpsc::error::TrySendError::Full(_)) => Offer::Full,
            Err(mpsc::error::TrySendError::Closed(_)) => Offer::Gone,
        }
    }
}

/// The stream an Events call answers.
type EventStream = Pin<Box<dyn Stream<Item = Result<pb::Envelope, Status>> + Send>>;

#[tonic::async_trait]
impl Admin for AdminService {
    async fn status(
        &self,
        request: Request<pb::StatusRequest>,
    ) -> Result<Response<pb::StatusResponse>, Status> {
        authorize(&request)?;
        let s = self.blocking("status", |s| s.status()).await?;
        Ok(Response::new(pb::StatusResponse {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            uptime_seconds: self.started.elapsed().as_secs(),
            root: self.snapshotter.root().display().to_string(),
            name: self.name.clone(),
            active: s.active as u64,
            views: s.views as u64,
            committed: s.committed as u64,
            journal_bytes: s.journal_bytes,
            records_since_checkpoint: s.records_since_checkpoint,
            last_recovery: Some(report(self.snapshotter.open_report())),
            event_subscribers: self.hub.subscribers() as u64,
            writes_refused: s.writes_refused.unwrap_or_default(),
        }))
    }

    async fn check(
        &self,
        request: Request<pb::CheckRequest>,
    ) -> Result<Response<pb::CheckResponse>, Status> {
        authorize(&request)?;
        let found = self.blocking("check", |s| s.check()).await?;
        Ok(Response::new(pb::CheckResponse {
            root: self.snapshotter.root().display().to_string(),
            report: Some(report(&found)),
        }))
    }

    async fn compact(
        &self,
        request: Request<pb::CompactRequest>,
    ) -> Result<Response<pb::CompactResponse>, Status> {
        authorize(&request)?;
        let snapshots = self
            .blocking("compact", |s| {
                s.checkpoint()?;
                let status = s.status()?;
                Ok(status.active + status.views + status.committed)
            })
            .await?;
        tracing::info!(snapshots, "checkpoint written on request");
        Ok(Response::new(pb::CompactResponse {
            snapshots: snapshots as u64,
        }))
    }

    type EventsStream = EventStream;

    async fn events(
        &self,
        request: Request<pb::EventsRequest>,
    ) -> Result<Response<EventStream>, Status> {
        authorize(&request)?;
        let (tx, mut events) = mpsc::channel(EVENTS_BUFFER);
        self.hub.attach(Box::new(Forward(tx)));
        let (out, stream) = mpsc::channel(1);
        let (name, mut stop) = (self.name.clone(), self.stop.clone());
        tokio::spawn(async move {
            loop {
                let next = tokio::select! {
                    _ = stop.wait_for(|stopping| *stopping) => return,
                    _ = out.closed() => return,
                    next = events.recv() => next,
                };
                // None: the hub dropped this subscriber, whose buffer was full.
                let item = next.map(|e| envelope(&name, &e)).ok_or_else(|| {
                    Status::resource_exhausted(format!(
                        "events subscriber dropped: it fell more than {EVENTS_BUFFER} events behind"
                    ))
                });
                let last = item.is_err();
                tokio::select! {
                    _ = stop.wait_for(|stopping| *stopping) => return,
                    sent = out.send(item) => if sent.is_err() || last { return },
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(stream))))
    }
}
