//! The commands against a running overlaysnapd (`--address SOCK`): `status`, `check`,
//! `compact` and `events` through its admin service, `ls`, `tree`, `stat` and `usage`
//! through containerd's Snapshots service. Every command but `events` yields the same
//! [`Output`] as its offline form, so tables and `--json` are the same; `events` prints
//! one line per event as it arrives (one JSON object per line with `--json`).
//!
//! The daemon's answers are turned back into the library's types here; a call the daemon
//! refuses is [`Failure::Rpc`], whose gRPC code decides the exit code.

use crate::args::{Cli, Command};
use crate::exit::Failure;
use crate::output::{check_json, human_size, Output};
use crate::rfc3339;
use crate::tree;
use overlaysnap::core::{Info, Kind, Timestamp, Usage};
use overlaysnap::journal::TornTail;
use overlaysnap::{OpenReport, QuotaMode};
use overlaysnap_daemon::api::overlaysnap::admin::v1::admin_client::AdminClient;
use overlaysnap_daemon::api::overlaysnap::admin::v1::{
    envelope, CheckRequest, CompactRequest, Envelope, EventsRequest, Report, StatusRequest,
    StatusResponse,
};
use overlaysnap_daemon::api::snapshots_client::SnapshotsClient;
use overlaysnap_daemon::api::{self, ListSnapshotsRequest, StatSnapshotRequest, UsageRequest};
use overlaysnap_daemon::client;
use serde_json::{json, Value};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use tonic::transport::Channel;

/// Runs `cli`'s command against the daemon at `address`. `events` prints as it goes and
/// returns `None`; every other command returns what to print.
pub fn run(cli: &Cli, address: &Path) -> Result<Option<Output>, Failure> {
    if !cli.command.is_live() {
        return Err(Failure::Usage(
            "this command works on a root, not with --address; the live commands are \
             status, check, compact, events, ls, tree, stat and usage"
                .into(),
        ));
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Failure::Output)?;
    runtime.block_on(run_live(cli, address))
}

async fn run_live(cli: &Cli, address: &Path) -> Result<Option<Output>, Failure> {
    let channel = client::channel(address, client::endpoint())
        .await
        .map_err(|e| Failure::Connect {
            address: address.to_owned(),
            error: source_chain(&e),
        })?;
    let mut admin = AdminClient::new(channel.clone());
    let mut snapshots = Snapshots {
        client: SnapshotsClient::new(channel),
        name: cli.snapshotter.clone(),
    };
    let output = match &cli.command {
        Command::Status => {
            let status = admin.status(StatusRequest {}).await.map_err(Failure::Rpc)?;
            Output::Status(Box::new(status.into_inner()))
        }
        Command::Check => {
            let found = admin.check(CheckRequest {}).await.map_err(Failure::Rpc)?;
            let found = found.into_inner();
            Output::Check {
                root: PathBuf::from(found.root),
                report: open_report(found.report.unwrap_or_default()),
            }
        }
        Command::Compact => {
            let done = admin
                .compact(CompactRequest {})
                .await
                .map_err(Failure::Rpc)?;
            Output::Compacted {
                snapshots: done.into_inner().snapshots as usize,
            }
        }
        Command::Events => {
            follow(&mut admin, cli.json).await?;
            return Ok(None);
        }
        Command::Ls { filters } => Output::List(snapshots.list(filters.clone()).await?),
        Command::Tree => Output::Tree(tree::forest(&snapshots.list(Vec::new()).await?)),
        Command::Stat { key } => Output::Info(snapshots.stat(key).await?),
        Command::Usage { key: Some(key) } => {
            Output::Usage(key.clone(), snapshots.usage(key).await?)
        }
        Command::Usage { key: None } => {
            let mut all = Vec::new();
            for info in snapshots.list(Vec::new()).await? {
                let usage = snapshots.usage(&info.name).await?;
                all.push((info.name, usage));
            }
            Output::Usages(all)
        }
        _ => unreachable!("is_live lists the commands handled here"),
    };
    Ok(Some(output))
}

/// The message of a transport error with its causes (tonic's own says only "transport
/// error").
fn source_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

/// containerd's Snapshots service of the daemon, for the snapshotter `name`.
struct Snapshots {
    client: SnapshotsClient<Channel>,
    name: String,
}

impl Snapshots {
    async fn list(&mut self, filters: Vec<String>) -> Result<Vec<Info>, Failure> {
        let request = ListSnapshotsRequest {
            snapshotter: self.name.clone(),
            filters,
        };
        let mut blocks = self
            .client
            .list(request)
            .await
            .map_err(Failure::Rpc)?
            .into_inner();
        let mut infos = Vec::new();
        while let Some(block) = blocks.message().await.map_err(Failure::Rpc)? {
            infos.extend(block.info.into_iter().map(info));
        }
        Ok(infos)
    }

    async fn stat(&mut self, key: &str) -> Result<Info, Failure> {
        let request = StatSnapshotRequest {
            snapshotter: self.name.clone(),
            key: key.to_owned(),
        };
        let answer = self.client.stat(request).await.map_err(Failure::Rpc)?;
        let found = answer.into_inner().info.ok_or_else(|| {
            Failure::Rpc(tonic::Status::internal(format!(
                "stat {key:?} answered no info"
            )))
        })?;
        Ok(info(found))
    }

    async fn usage(&mut self, key: &str) -> Result<Usage, Failure> {
        let request = UsageRequest {
            snapshotter: self.name.clone(),
            key: key.to_owned(),
        };
        let usage = self
            .client
            .usage(request)
            .await
            .map_err(Failure::Rpc)?
            .into_inner();
        Ok(Usage {
            size: usage.size,
            inodes: usage.inodes,
        })
    }
}

/// Prints every event the daemon streams until the stream ends: OK when the daemon
/// stops, an error (ResourceExhausted) when it dropped this subscriber.
async fn follow(admin: &mut AdminClient<Channel>, json: bool) -> Result<(), Failure> {
    let mut events = admin
        .events(EventsRequest {})
        .await
        .map_err(Failure::Rpc)?
        .into_inner();
    let mut stdout = io::stdout();
    while let Some(event) = events.message().await.map_err(Failure::Rpc)? {
        let line = if json {
            event_json(&event).to_string()
        } else {
            event_line(&event)
        };
        match writeln!(stdout, "{line}").and_then(|()| stdout.flush()) {
            // A reader that stopped (`| head`) ends the command, successfully.
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Ok(()),
            other => other.map_err(Failure::Output)?,
        }
    }
    Ok(())
}

fn timestamp(t: Option<prost_types::Timestamp>) -> Timestamp {
    let t = t.unwrap_or_default();
    Timestamp::new(t.seconds, t.nanos.max(0) as u32)
}

/// `TIME TOPIC key=K [parent=P | name=N]`.
fn event_line(e: &Envelope) -> String {
    let what = match &e.event {
        Some(envelope::Event::Prepare(p)) if p.parent.is_empty() => format!("key={}", p.key),
        Some(envelope::Event::Prepare(p)) => format!("key={} parent={}", p.key, p.parent),
        Some(envelope::Event::Commit(c)) => format!("key={} name={}", c.key, c.name),
        Some(envelope::Event::Remove(r)) => format!("key={}", r.key),
        None => String::new(),
    };
    format!(
        "{} {} {what}",
        rfc3339::precise(timestamp(e.timestamp)),
        e.topic
    )
}

/// `{"timestamp", "namespace", "topic", "event": {"key", ...}}`, the event's fields
/// named as containerd's (`snapshotter` included).
fn event_json(e: &Envelope) -> Value {
    let event = match &e.event {
        Some(envelope::Event::Prepare(p)) => {
            json!({ "key": p.key, "parent": p.parent, "snapshotter": p.snapshotter })
        }
        Some(envelope::Event::Commit(c)) => {
            json!({ "key": c.key, "name": c.name, "snapshotter": c.snapshotter })
        }
        Some(envelope::Event::Remove(r)) => json!({ "key": r.key, "snapshotter": r.snapshotter }),
        None => Value::Null,
    };
    json!({
        "timestamp": rfc3339::precise(timestamp(e.timestamp)),
        "namespace": e.namespace,
        "topic": e.topic,
        "event": event,
    })
}

/// containerd's Info as the library's.
fn info(i: api::Info) -> Info {
    let kind = match api::Kind::try_from(i.kind) {
        Ok(api::Kind::View) => Kind::View,
        Ok(api::Kind::Active) => Kind::Active,
        // Unknown kinds do not occur: the daemon sends the library's.
        _ => Kind::Committed,
    };
    Info {
        kind,
        name: i.name,
        parent: Some(i.parent).filter(|p| !p.is_empty()),
        labels: i.labels,
        created: timestamp(i.created_at),
        updated: timestamp(i.updated_at),
    }
}

/// The daemon's report as the library's.
fn open_report(r: Report) -> OpenReport {
    OpenReport {
        snapshots: r.snapshots as usize,
        records_replayed: r.records_replayed,
        torn_tail: r.torn_tail.map(|t| TornTail {
            path: t.path,
            offset: t.offset,
            bytes_dropped: t.bytes_dropped,
            reason: t.reason,
        }),
        recreated: r.recreated,
        unissued: r.unissued,
        damaged: r.damaged.into_iter().map(|d| (d.name, d.id)).collect(),
        orphans: r.orphans as usize,
        quota: QuotaMode::from_name(&r.quota).unwrap_or_default(),
    }
}

/// `status` as JSON: `{"version", "uptime_seconds", "root", "name", "snapshots": {"active",
/// "views", "committed"}, "journal_bytes", "records_since_checkpoint", "event_subscribers",
/// "writes_refused" (null while changes are accepted), "last_recovery": <check's document>}`.
pub fn status_json(s: &StatusResponse) -> Value {
    let recovery = open_report(s.last_recovery.clone().unwrap_or_default());
    json!({
        "version": s.version,
        "uptime_seconds": s.uptime_seconds,
        "root": s.root,
        "name": s.name,
        "snapshots": { "active": s.active, "views": s.views, "committed": s.committed },
        "journal_bytes": s.journal_bytes,
        "records_since_checkpoint": s.records_since_checkpoint,
        "event_subscribers": s.event_subscribers,
        "writes_refused": (!s.writes_refused.is_empty()).then_some(&s.writes_refused),
        "last_recovery": check_json(Path::new(&s.root), &recovery),
    })
}

/// `status` for people: one `Field: value` line each.
pub fn write_status(s: &StatusResponse, w: &mut impl Write) -> io::Result<()> {
    let r = open_report(s.last_recovery.clone().unwrap_or_default());
    let torn = r.torn_tail.as_ref().map_or("none".to_owned(), |t| {
        format!(
            "{} bytes dropped at {}:{}",
            t.bytes_dropped, t.path, t.offset
        )
    });
    writeln!(w, "Version:     {}", s.version)?;
    writeln!(w, "Uptime:      {}s", s.uptime_seconds)?;
    writeln!(w, "Root:        {}", s.root)?;
    writeln!(w, "Name:        {}", s.name)?;
    writeln!(
        w,
        "Snapshots:   {} active, {} views, {} committed",
        s.active, s.views, s.committed
    )?;
    writeln!(
        w,
        "Journal:     {} ({} bytes), {} records since the last checkpoint",
        human_size(s.journal_bytes as i64),
        s.journal_bytes,
        s.records_since_checkpoint
    )?;
    writeln!(w, "Subscribers: {}", s.event_subscribers)?;
    if !s.writes_refused.is_empty() {
        writeln!(
            w,
            "Writes:      refused until restarted: {}",
            s.writes_refused
        )?;
    }
    writeln!(
        w,
        "Recovery:    {} snapshots, {} records replayed, torn tail {torn}, {} re-created, \
         {} unissued, {} damaged, {} orphans",
        r.snapshots,
        r.records_replayed,
        r.recreated.len(),
        r.unissued.len(),
        r.damaged.len(),
        r.orphans
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_whose_writes_are_refused_says_why_in_both_forms() {
        let mut s = StatusResponse::default();
        let mut human = Vec::new();
        write_status(&s, &mut human).unwrap();
        let human = String::from_utf8(human).unwrap();
        assert!(!human.contains("Writes:"), "{human}");
        assert_eq!(status_json(&s)["writes_refused"], Value::Null);

        s.writes_refused = "appending to log-0: No space left on device".into();
        let mut human = Vec::new();
        write_status(&s, &mut human).unwrap();
        let human = String::from_utf8(human).unwrap();
        assert!(
            human.contains(
                "Writes:      refused until restarted: appending to log-0: No space left on device"
            ),
            "{human}"
        );
        assert_eq!(status_json(&s)["writes_refused"], s.writes_refused);
    }
}
