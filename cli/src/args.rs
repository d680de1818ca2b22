//! The command line: `overlaysnap [--root DIR] [--json] <command> ...`.

use crate::exit::EXIT_CODES_HELP;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// The root used when neither `--root` nor `OVERLAYSNAP_ROOT` is given.
pub const DEFAULT_ROOT: &str = "/var/lib/overlaysnap";

/// Operate an overlaysnap root directly: prepare, commit, inspect, mount and check
/// snapshots, as `ctr snapshots` does through containerd.
///
/// The root must not be in use by a running overlaysnapd (the CLI takes the root's lock
/// for the duration of each command). Only `prepare` and `view` create a missing root.
#[derive(Debug, Parser)]
#[command(name = "overlaysnap", version, after_help = EXIT_CODES_HELP)]
pub struct Cli {
    /// The snapshotter root directory.
    #[arg(
        long,
        global = true,
        env = "OVERLAYSNAP_ROOT",
        default_value = DEFAULT_ROOT,
        value_name = "DIR"
    )]
    pub root: PathBuf,

    /// overlaysnapd's `--config` file: open the root with the options it sets (remap_ids,
    /// rebase, quota, default_size, …), as the daemon does. Without it, the library's
    /// defaults.
    #[arg(long, global = true, env = "OVERLAYSNAP_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// A running overlaysnapd's socket: run status, check, compact, events, ls, tree,
    /// stat and usage through it instead of opening the root (which then is not used).
    #[arg(long, global = true, env = "OVERLAYSNAP_ADDRESS", value_name = "SOCK")]
    pub address: Option<PathBuf>,

    /// With --address: the snapshotter name the daemon serves (its --name).
    #[arg(
        long = "name",
        id = "snapshotter",
        global = true,
        default_value = "overlaysnap",
        value_name = "NAME"
    )]
    pub snapshotter: String,

    /// Print one JSON document on stdout instead of human tables.
    #[arg(long, global = true)]
    pub json: bool,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// A label given on the command line as `K=V`.
pub type LabelArg = (String, String);

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create an active (writable) snapshot KEY above the committed PARENT; print its mounts.
    Prepare {
        /// The new snapshot's key.
        key: String,
        /// The committed parent (none: an empty base layer).
        parent: Option<String>,
        /// A label for the new snapshot (repeatable).
        #[arg(long = "label", value_name = "K=V", value_parser = parse_label)]
        labels: Vec<LabelArg>,
    },
    /// Create a read-only view KEY of the committed PARENT; print its mounts.
    View {
        /// The new view's key.
        key: String,
        /// The committed parent.
        parent: Option<String>,
        /// A label for the new view (repeatable).
        #[arg(long = "label", value_name = "K=V", value_parser = parse_label)]
        labels: Vec<LabelArg>,
    },
    /// Commit the active snapshot KEY as NAME (labels are replaced, not inherited).
    Commit {
        /// The committed snapshot's name.
        name: String,
        /// The active snapshot to commit.
        key: String,
        /// Commit above this committed snapshot (containerd 2.2's rebase): only for an
        /// active snapshot prepared without a parent, or naming its own parent.
        #[arg(long, value_name = "PARENT")]
        parent: Option<String>,
        /// A label for the committed snapshot (repeatable).
        #[arg(long = "label", value_name = "K=V", value_parser = parse_label)]
        labels: Vec<LabelArg>,
    },
    /// Remove snapshots, in order; stops at the first that cannot be removed.
    #[command(visible_alias = "remove")]
    Rm {
        /// Keys or names to remove.
        #[arg(required = true)]
        keys: Vec<String>,
        /// Delete the directories now instead of at the next cleanup.
        #[arg(long)]
        sync_remove: bool,
    },
    /// Show one snapshot's information.
    #[command(visible_alias = "info")]
    Stat {
        /// Key or name.
        key: String,
    },
    /// List snapshots, ordered by name.
    #[command(visible_alias = "list")]
    Ls {
        /// containerd filter, e.g. `kind==committed` or `labels."a/b"==x` (repeatable:
        /// a snapshot is listed when any filter matches; commas inside one filter AND).
        #[arg(long = "filter", value_name = "FILTER")]
        filters: Vec<String>,
    },
    /// Show the parent/child forest of snapshots.
    Tree,
    /// Print the mounts of an active snapshot or view; with TARGET, as `mount` commands.
    Mounts {
        /// Key of an active snapshot or view.
        key: String,
        /// Where the mounts would go: print shell `mount` commands for it.
        target: Option<PathBuf>,
    },
    /// Mount an active snapshot or view at TARGET (an existing directory).
    Mount {
        /// Key of an active snapshot or view.
        key: String,
        /// The directory to mount at.
        target: PathBuf,
    },
    /// Unmount the top mount at TARGET (not an error when nothing is mounted there).
    #[command(visible_alias = "unmount")]
    Umount {
        /// The mount point.
        target: PathBuf,
        /// Detach lazily (MNT_DETACH) instead of failing while the mount is busy.
        #[arg(long, short = 'l')]
        detach: bool,
    },
    /// Show disk usage (bytes allocated and inodes) of one snapshot or of all.
    Usage {
        /// Key or name; all snapshots when absent.
        key: Option<String>,
    },
    /// Set labels (`K=V`) or delete them (`K=`); print the resulting labels.
    Label {
        /// Key or name.
        key: String,
        /// `K=V` sets K, `K=` deletes it; none: just print the labels.
        #[arg(value_name = "K=V", value_parser = parse_label)]
        labels: Vec<LabelArg>,
    },
    /// Delete directories that belong to no snapshot; print how many were deleted.
    Cleanup,
    /// Open the root, recover and reconcile it, and report what was found.
    ///
    /// Exits with 3 when committed snapshots have lost their directory.
    Check,
    /// Write a checkpoint of the journal, so the next open replays nothing.
    Compact,
    /// With --address: the daemon's version, uptime, counts, journal and last recovery.
    Status,
    /// With --address: follow snapshot events, one line each (JSON lines with --json),
    /// until the daemon stops or drops this subscriber for falling behind.
    Events,
}

impl Command {
    /// Whether the command runs against a live daemon (with `--address`).
    pub fn is_live(&self) -> bool {
        matches!(
            self,
            Command::Status
                | Command::Check
                | Command::Compact
                | Command::Events
                | Command::Ls { .. }
                | Command::Tree
                | Command::Stat { .. }
                | Command::Usage { .. }
        )
    }
}

/// Parses `K=V` (the value may be empty; the key may not).
fn parse_label(s: &str) -> Result<LabelArg, String> {
    match s.split_once('=') {
        Some(("", _)) => Err(format!("label {s:?} has an empty key")),
        Some((k, v)) => Ok((k.to_owned(), v.to_owned())),
        None => Err(format!("label {s:?} is not K=V")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn labels_split_at_the_first_equals_sign() {
        assert_eq!(parse_label("a=b=c"), Ok(("a".into(), "b=c".into())));
        assert_eq!(parse_label("a="), Ok(("a".into(), String::new())));
        assert!(parse_label("a").is_err());
        assert!(parse_label("=b").is_err());
    }
}
