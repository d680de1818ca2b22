//! The daemon's metrics, in the OpenMetrics text format (which Prometheus scrapes), served
//! over HTTP `GET /metrics` on the `metrics_address` of the configuration: a TCP
//! `host:port` or a unix socket path ([`MetricsAddress`]).
//!
//! The answer is OpenMetrics when the scrape's `Accept` asks for it (Prometheus does), and
//! otherwise the Prometheus text format 0.0.4, derived from the OpenMetrics text
//! ([`prometheus_text`]), which is what `promtool check metrics` and people read.
//!
//! Every series is prefixed `overlaysnap_`:
//!
//! | series | type | what |
//! |---|---|---|
//! | `calls_total{op,result}` | counter | calls by operation and result: `ok` or the gRPC code (`not_found`, …) |
//! | `call_duration_seconds{op}` | histogram | latency of every call, routing to answer (List: to its last block) |
//! | `usage_duration_seconds`, `cleanup_duration_seconds` | histogram | the snapshotter's Usage (a `du` of an Active layer) and Cleanup, which may take seconds |
//! | `journal_write_seconds`, `journal_sync_seconds` | histogram | the write and the `fdatasync` of each group-commit flush |
//! | `journal_batch_records` | histogram | records per flush: the group-commit batch size |
//! | `snapshots{kind}` | gauge | snapshots by kind, read from the snapshotter at scrape time |
//! | `recovery_seconds`, `recovery_records_replayed` | gauge | the start's recovery (opening the snapshotter) |
//! | `recovery_orphans`, `recovery_damaged_layers` | gauge | what opening found ([`OpenReport`]) |
//!
//! Invariant: with metrics off nothing here exists, and the only cost left on a call is the
//! branch on `Option<Arc<Metrics>>` in the service and on the journal's observer.

use crate::socket::{self, SocketFile};
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use overlaysnap::core::Kind;
use overlaysnap::journal::{Flush, Observer};
use overlaysnap::{OpenReport, Snapshotter};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};
use serde::Deserialize;
use std::convert::Infallible;
use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;
use tonic::{Code, Status};

/// The content type of the OpenMetrics answer, given to a scrape whose `Accept` names
/// `application/openmetrics-text` (as Prometheus's does).
pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// The content type of the Prometheus text format (0.0.4), given to every other scrape
/// (curl, `promtool check metrics`, which reads only this format).
pub const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Where metrics are served: the configuration's `metrics_address`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum MetricsAddress {
    /// A TCP `host:port` (the host may be a name, an IPv4 address or a bracketed IPv6 one).
    Tcp(String),
    /// A unix socket path (the value starts with `/` or `.`), made like the daemon's own.
    Unix(PathBuf),
}

impl TryFrom<String> for MetricsAddress {
    type Error = String;

    fn try_from(value: String) -> Result<Self, String> {
        if value.starts_with('/') || value.starts_with('.') {
            return Ok(MetricsAddress::Unix(PathBuf::from(value)));
        }
        let port = value
            .rsplit_once(':')
            .map(|(host, port)| (host, port.parse::<u16>()));
        match port {
            Some((host, Ok(_))) if !host.is_empty() => Ok(MetricsAddress::Tcp(value)),
            _ => Err(format!(
                "metrics_address {value:?} is neither a TCP host:port (such as \
                 \"127.0.0.1:9311\") nor a unix socket path (starting with / or .)"
            )),
        }
    }
}

impl fmt::Display for MetricsAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MetricsAddress::Tcp(a) => write!(f, "http://{a}/metrics"),
            MetricsAddress::Unix(p) => write!(f, "unix:{} /metrics", p.display()),
        }
    }
}

/// The bound metrics socket, before it serves.
#[derive(Debug)]
pub enum MetricsListener {
    /// A TCP listener.
    Tcp(tokio::net::TcpListener),
    /// A unix listener and the guard that removes its socket file.
    Unix(tokio::net::UnixListener, SocketFile),
}

impl MetricsListener {
    /// Binds `address`; the error says which address could not be bound and why.
    pub async fn bind(address: &MetricsAddress) -> Result<MetricsListener, String> {
        let refused = |e: &dyn fmt::Display| format!("metrics_address {address}: {e}");
        match address {
            MetricsAddress::Tcp(a) => tokio::net::TcpListener::bind(a)
                .await
                .map(MetricsListener::Tcp)
                .map_err(|e| refused(&e)),
            MetricsAddress::Unix(p) => {
                let (listener, file) = socket::bind(p).map_err(|e| refused(&e))?;
                listener.set_nonblocking(true).map_err(|e| refused(&e))?;
                let listener =
                    tokio::net::UnixListener::from_std(listener).map_err(|e| refused(&e))?;
                Ok(MetricsListener::Unix(listener, file))
            }
        }
    }

    /// Serves `GET /metrics` from `metrics` until the task is aborted: one connection at a
    /// time per task, HTTP/1.1. Anything else is 404 (another path) or 405 (another
    /// method).
    pub async fn serve(self, metrics: Arc<Metrics>) {
        match self {
            MetricsListener::Tcp(l) => loop {
                connection(l.accept().await.map(|(s, _)| boxed(s)), &metrics);
            },
            // `_file` lives as long as the loop: the socket file goes when the task ends.
            MetricsListener::Unix(l, _file) => loop {
                connection(l.accept().await.map(|(s, _)| boxed(s)), &metrics);
            },
        }
    }
}

/// A stream a scrape arrives on.
trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin> Io for T {}

fn boxed(s: impl Io + 'static) -> TokioIo<Box<dyn Io>> {
    TokioIo::new(Box::new(s))
}

/// Serves one accepted connection on its own task; an accept error is logged and skipped.
fn connection(io: std::io::Result<TokioIo<Box<dyn Io>>>, metrics: &Arc<Metrics>) {
    let io = match io {
        Ok(io) => io,
        Err(e) => {
            tracing::warn!(error = %e, "accepting a metrics connection");
            return;
        }
    };
    let metrics = Arc::clone(metrics);
    tokio::spawn(async move {
        let service = hyper::service::service_fn(move |req| {
            let metrics = Arc::clone(&metrics);
            async move { Ok::<_, Infallible>(answer(&req, &metrics)) }
        });
        if let Err(e) = hyper::server::conn::http1::Builder::new()
            .serve_connection(io, service)
            .await
        {
            tracing::debug!(error = %e, "metrics connection ended");
        }
    });
}

/// The answer to one HTTP request.
fn answer<B>(req: &Request<B>, metrics: &Metrics) -> Response<Full<Bytes>> {
    let reply = |code: StatusCode, body: String| {
        let mut r = Response::new(Full::new(Bytes::from(body)));
        *r.status_mut() = code;
        r
    };
    if req.uri().path() != "/metrics" {
        return reply(StatusCode::NOT_FOUND, "metrics are at /metrics\n".into());
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut r = reply(StatusCode::METHOD_NOT_ALLOWED, "use GET\n".into());
        r.headers_mut().insert(
            "allow",
            hyper::header::HeaderValue::from_static("GET, HEAD"),
        );
        return r;
    }
    let openmetrics = req
        .headers()
        .get_all(hyper::header::ACCEPT)
        .iter()
        .any(|v| {
            v.to_str()
                .is_ok_and(|v| v.contains("application/openmetrics-text"))
        });
    match metrics.encode() {
        Ok(text) => {
            let (text, content_type) = if openmetrics {
                (text, OPENMETRICS)
            } else {
                (prometheus_text(&text), PROMETHEUS_TEXT)
            };
            let mut r = reply(StatusCode::OK, text);
            r.headers_mut().insert(
                hyper::header::CONTENT_TYPE,
                hyper::header::HeaderValue::from_static(content_type),
            );
            r
        }
        Err(e) => reply(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("encoding: {e}\n"),
        ),
    }
}

/// The Prometheus text format (0.0.4) of `openmetrics`, the OpenMetrics text of a
/// registry holding counters, gauges and histograms only (as [`Metrics`] does): the
/// `# UNIT` lines and the final `# EOF` go, and a counter family's `# HELP` and `# TYPE`
/// name it with the `_total` its samples carry. Sample lines are the same in both formats.
pub fn prometheus_text(openmetrics: &str) -> String {
    let counters: std::collections::HashSet<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE ")?.strip_suffix(" counter"))
        .collect();
    let mut text = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let meta = ["# HELP ", "# TYPE "]
            .into_iter()
            .find_map(|p| Some((p, line.strip_prefix(p)?)));
        match meta {
            Some((prefix, rest)) => {
                let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
                let total = if counters.contains(name) {
                    "_total"
                } else {
                    ""
                };
                text.push_str(&format!("{prefix}{name}{total} {tail}"));
            }
            None => text.push_str(line),
        }
        text.push('\n');
    }
    text
}

/// The journal's flush times and batch sizes: the library's journal [`Observer`].
#[derive(Debug, Clone)]
pub struct JournalMetrics {
    write: Histogram,
    sync: Histogram,
    batch: Histogram,
}

impl Default for JournalMetrics {
    fn default() -> Self {
        JournalMetrics {
            write: Histogram::new(exponential_buckets(10e-6, 2.0, 17)),
            sync: Histogram::new(exponential_buckets(10e-6, 2.0, 17)),
            batch: Histogram::new(exponential_buckets(1.0, 2.0, 11)),
        }
    }
}

impl Observer for JournalMetrics {
    fn flushed(&self, flush: &Flush) {
        self.write.observe(flush.write.as_secs_f64());
        self.sync.observe(flush.sync.as_secs_f64());
        self.batch.observe(flush.records as f64);
    }
}

/// The labels of a call.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct CallLabels {
    op: &'static str,
    result: &'static str,
}

/// The label of an operation.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct OpLabels {
    op: &'static str,
}

/// A call latency histogram: 50 µs to about 3.3 s.
fn call_histogram() -> Histogram {
    Histogram::new(exponential_buckets(50e-6, 2.0, 17))
}

/// A histogram of slow work (Usage, Cleanup): 1 ms to about 65 s.
fn slow_histogram() -> Histogram {
    Histogram::new(exponential_buckets(1e-3, 2.0, 17))
}

/// Every metric of the daemon, and the registry that encodes them.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    calls: Family<CallLabels, Counter>,
    latency: Family<OpLabels, Histogram, fn() -> Histogram>,
    usage: Histogram,
    cleanup: Histogram,
}

impl Metrics {
    /// Every metric, with `journal` (the observer the snapshotter was opened with), what
    /// opening `snapshotter` took (`recovery`) and found, and its snapshots by kind read
    /// at each scrape.
    pub fn new(
        journal: &JournalMetrics,
        recovery: Duration,
        snapshotter: Arc<Snapshotter>,
    ) -> Metrics {
        let mut registry = Registry::with_prefix("overlaysnap");
        let calls = Family::<CallLabels, Counter>::default();
        registry.register(
            "calls",
            "Calls by operation and result (ok, or the gRPC code of the error)",
            calls.clone(),
        );
        let latency: Family<OpLabels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(call_histogram);
        registry.register_with_unit(
            "call_duration",
            "Latency of calls, from routing to the answer (List: to its last block)",
            Unit::Seconds,
            latency.clone(),
        );
        let usage = slow_histogram();
        registry.register_with_unit(
            "usage_duration",
            "Time the snapshotter's Usage took (a walk of an Active layer)",
            Unit::Seconds,
            usage.clone(),
        );
        let cleanup = slow_histogram();
        registry.register_with_unit(
            "cleanup_duration",
            "Time the snapshotter's Cleanup took",
            Unit::Seconds,
            cleanup.clone(),
        );
        registry.register_with_unit(
            "journal_write",
            "Time of the write of each journal flush",
            Unit::Seconds,
            journal.write.clone(),
        );
        registry.register_with_unit(
            "journal_sync",
            "Time of the fdatasync of each journal flush",
            Unit::Seconds,
            journal.sync.clone(),
        );
        registry.register(
            "journal_batch_records",
            "Records made durable by each journal flush (group-commit batch size)",
            journal.batch.clone(),
        );
        let report: &OpenReport = snapshotter.open_report();
        let gauge = |v: u64| {
            let g = Gauge::<i64>::default();
            g.set(i64::try_from(v).unwrap_or(i64::MAX));
            g
        };
        let seconds = Gauge::<f64, AtomicU64>::default();
        seconds.set(recovery.as_secs_f64());
        registry.register_with_unit(
            "recovery",
            "Time the start took to open the snapshotter: journal recovery and reconciliation",
            Unit::Seconds,
            seconds,
        );
        registry.register(
            "recovery_records_replayed",
            "Journal records replayed on top of the newest checkpoint at start",
            gauge(report.records_replayed),
        );
        registry.register(
            "recovery_orphans",
            "Entries of ROOT/snapshots that belonged to no snapshot at start (garbage for Cleanup)",
            gauge(report.orphans as u64),
        );
        registry.register(
            "recovery_damaged_layers",
            "Committed snapshots whose directory was missing at start",
            gauge(report.damaged.len() as u64),
        );
        registry.register_collector(Box::new(Snapshots(snapshotter)));
        Metrics {
            registry,
            calls,
            latency,
            usage,
            cleanup,
        }
    }

    /// Counts one call of `op` that took `took` and ended with `err` (`None`: ok).
    pub fn call(&self, op: &'static str, took: Duration, err: Option<&Status>) {
        let result = err.map_or("ok", |s| code_label(s.code()));
        self.calls.get_or_create(&CallLabels { op, result }).inc();
        self.latency
            .get_or_create(&OpLabels { op })
            .observe(took.as_secs_f64());
    }

    /// Records one run of the snapshotter's Usage.
    pub fn usage(&self, took: Duration) {
        self.usage.observe(took.as_secs_f64());
    }

    /// Records one run of the snapshotter's Cleanup.
    pub fn cleanup(&self, took: Duration) {
        self.cleanup.observe(took.as_secs_f64());
    }

    /// Every metric in the OpenMetrics text format, ending with `# EOF`.
    pub fn encode(&self) -> Result<String, fmt::Error> {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)?;
        Ok(text)
    }
}

/// `overlaysnap_snapshots{kind}`, read from the snapshotter at each scrape.
#[derive(Debug)]
struct Snapshots(Arc<Snapshotter>);

impl Collector for Snapshots {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        let counts = self.0.kind_counts();
        let gauge = ConstGauge::new(0i64);
        let mut family = encoder.encode_descriptor(
            "snapshots",
            "Snapshots by kind, now",
            None,
            gauge.metric_type(),
        )?;
        for kind in [Kind::Active, Kind::Committed, Kind::View] {
            let labels = [("kind", kind.as_str())];
            let n = i64::try_from(counts.get(kind)).unwrap_or(i64::MAX);
            ConstGauge::new(n).encode(family.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

/// The `result` label of a failed call: its gRPC code in snake case.
fn code_label(code: Code) -> &'static str {
    match code {
        Code::Ok => "ok",
        Code::Cancelled => "cancelled",
        Code::Unknown => "unknown",
        Code::InvalidArgument => "invalid_argument",
        Code::DeadlineExceeded => "deadline_exceeded",
        Code::NotFound => "not_found",
        Code::AlreadyExists => "already_exists",
        Code::PermissionDenied => "permission_denied",
        Code::ResourceExhausted => "resource_exhausted",
        Code::FailedPrecondition => "failed_precondition",
        Code::Aborted => "aborted",
        Code::OutOfRange => "out_of_range",
        Code::Unimplemented => "unimplemented",
        Code::Internal => "internal",
        Code::Unavailable => "unavailable",
        Code::DataLoss => "data_loss",
        Code::Unauthenticated => "unauthenticated",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prometheus_text_names_counters_with_total_and_drops_units_and_eof() {
        let openmetrics = "# HELP x_calls Calls.\n# TYPE x_calls counter\n\
            x_calls_total{op=\"a\"} 1\n# HELP x_t Time.\n# TYPE x_t histogram\n\
            # UNIT x_t seconds\nx_t_count 2\n# HELP x_n Now.\n# TYPE x_n gauge\nx_n 3\n# EOF\n";
        assert_eq!(
            prometheus_text(openmetrics),
            "# HELP x_calls_total Calls.\n# TYPE x_calls_total counter\n\
             x_calls_total{op=\"a\"} 1\n# HELP x_t Time.\n# TYPE x_t histogram\n\
             x_t_count 2\n# HELP x_n Now.\n# TYPE x_n gauge\nx_n 3\n"
        );
    }

    #[test]
    fn addresses_are_tcp_host_port_or_unix_paths_and_nothing_else() {
        let parse = |s: &str| MetricsAddress::try_from(s.to_owned());
        assert_eq!(
            parse("127.0.0.1:9311"),
            Ok(MetricsAddress::Tcp("127.0.0.1:9311".into()))
        );
        assert_eq!(
            parse("[::1]:9311"),
            Ok(MetricsAddress::Tcp("[::1]:9311".into()))
        );
        assert_eq!(
            parse("/run/overlaysnap/metrics.sock"),
            Ok(MetricsAddress::Unix("/run/overlaysnap/metrics.sock".into()))
        );
        for bad in [
            "",
            "9311",
            ":9311",
            "localhost",
            "localhost:http",
            "host:70000",
        ] {
            let err = parse(bad).expect_err(bad);
            assert!(err.contains(&format!("{bad:?}")), "{err}");
        }
    }
}
