//! `overlaysnapd`: serves an overlaysnap snapshotter to containerd as a proxy snapshotter.

use clap::Parser;
use overlaysnap::Options;
use overlaysnap_daemon::config::Config;
use overlaysnap_daemon::{run, Settings};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Serves an overlaysnap snapshotter to containerd over gRPC on a unix socket
/// (`[proxy_plugins.NAME] type = "snapshot"`).
#[derive(Debug, Parser)]
#[command(name = "overlaysnapd", version)]
struct Args {
    /// The snapshotter's root directory.
    #[arg(long, default_value = "/var/lib/overlaysnap")]
    root: PathBuf,
    /// The unix socket to serve on.
    #[arg(long, default_value = "/run/overlaysnap/overlaysnap.sock")]
    address: PathBuf,
    /// A TOML file with the snapshotter options (sync_remove, upperdir_label,
    /// mount_options, journal = "log" | "memory", checkpoint_every, metrics_address).
    #[arg(long)]
    config: Option<PathBuf>,
    /// The snapshotter name served: the proxy plugin's name in containerd's config.
    #[arg(long, default_value = "overlaysnap")]
    name: String,
    /// off, error, warn, info, debug (logs every call) or trace (also the gRPC stack's).
    #[arg(long, default_value = "info")]
    log_level: LevelFilter,
}

fn main() -> ExitCode {
    let args = Args::parse();
    // Our crates log at the chosen level; the gRPC stack only its warnings, unless asked
    // for everything with trace.
    let others = if args.log_level == LevelFilter::TRACE {
        LevelFilter::TRACE
    } else {
        args.log_level.min(LevelFilter::WARN)
    };
    let filter = Targets::new()
        .with_default(others)
        .with_target("overlaysnap", args.log_level)
        .with_target("overlaysnap_daemon", args.log_level)
        .with_target("overlaysnapd", args.log_level);
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(std::io::stderr().is_terminal()),
        )
        .with(filter)
        .init();
    let (options, metrics) = match &args.config {
        None => (Options::default(), None),
        Some(path) => match Config::load(path) {
            Ok(config) => (config.options(), config.metrics_address),
            Err(e) => {
                tracing::error!("{e}");
                return ExitCode::FAILURE;
            }
        },
    };
    let settings = Settings {
        root: args.root,
        address: args.address,
        name: args.name,
        options,
        metrics,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            tracing::error!("starting the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(run(settings));
    // Calls abandoned after the grace period must not hold the exit.
    runtime.shutdown_timeout(Duration::from_secs(1));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::FAILURE
        }
    }
}
