//! Carrying out each command against the library; printing is [`crate::output`]'s job.

use crate::args::{Cli, Command, LabelArg};
use crate::exit::Failure;
use crate::output::Output;
use crate::tree;
use overlaysnap::core::{Info, Labels};
use overlaysnap::fs::{mount_all, unmount, Unmount};
use overlaysnap::{Options, Snapshotter};
use overlaysnap_daemon::config::Config;
use std::path::Path;

/// Runs the command `cli` names and returns what to print.
pub fn run(cli: &Cli) -> Result<Output, Failure> {
    let root = cli.root.as_path();
    let options = options_of(cli)?;
    match &cli.command {
        Command::Prepare {
            key,
            parent,
            labels,
        } => {
            let s = open(root, Create::Yes, options.clone())?;
            let mounts = s.prepare(key, non_empty(parent), labels_of(labels))?;
            Ok(Output::Mounts {
                mounts,
                target: None,
            })
        }
        Command::View {
            key,
            parent,
            labels,
        } => {
            let s = open(root, Create::Yes, options.clone())?;
            let mounts = s.view(key, non_empty(parent), labels_of(labels))?;
            Ok(Output::Mounts {
                mounts,
                target: None,
            })
        }
        Command::Commit {
            name,
            key,
            parent,
            labels,
        } => {
            let s = open_existing(root, &options)?;
            s.commit_with_parent(name, key, parent.as_deref(), labels_of(labels))?;
            Ok(Output::Committed(s.stat(name)?))
        }
        Command::Rm { keys, sync_remove } => {
            let options = Options {
                sync_remove: *sync_remove || options.sync_remove,
                ..options.clone()
            };
            let s = open(root, Create::No, options)?;
            for (done, key) in keys.iter().enumerate() {
                if let Err(error) = s.remove(key) {
                    return Err(match done {
                        0 => Failure::Snapshotter(error),
                        _ => Failure::Partial {
                            error,
                            removed: keys[..done].to_vec(),
                        },
                    });
                }
            }
            Ok(Output::Removed(keys.clone()))
        }
        Command::Stat { key } => Ok(Output::Info(open_existing(root, &options)?.stat(key)?)),
        Command::Ls { filters } => Ok(Output::List(list(
            &open_existing(root, &options)?,
            filters,
        )?)),
        Command::Tree => Ok(Output::Tree(tree::forest(&list(
            &open_existing(root, &options)?,
            &[],
        )?))),
        Command::Mounts { key, target } => Ok(Output::Mounts {
            mounts: open_existing(root, &options)?.mounts(key)?,
            target: target.clone(),
        }),
        Command::Mount { key, target } => {
            let mounts = open_existing(root, &options)?.mounts(key)?;
            mount_all(&mounts, target)?;
            Ok(Output::Mounted {
                key: key.clone(),
                target: target.clone(),
                mounts,
            })
        }
        Command::Umount { target, detach } => {
            let mode = if *detach {
                Unmount::Detach
            } else {
                Unmount::Strict
            };
            unmount(target, mode)?;
            Ok(Output::Unmounted(target.clone()))
        }
        Command::Usage { key: Some(key) } => {
            let usage = open_existing(root, &options)?.usage(key)?;
            Ok(Output::Usage(key.clone(), usage))
        }
        Command::Usage { key: None } => {
            let s = open_existing(root, &options)?;
            let mut all = Vec::new();
            for info in list(&s, &[])? {
                let usage = s.usage(&info.name)?;
                all.push((info.name, usage));
            }
            Ok(Output::Usages(all))
        }
        Command::Label { key, labels } => {
            let s = open_existing(root, &options)?;
            if labels.is_empty() {
                return Ok(Output::Labels(s.stat(key)?.labels));
            }
            // `labels.<k>` paths: a value sets the label, an empty value deletes it.
            let paths: Vec<String> = labels.iter().map(|(k, _)| format!("labels.{k}")).collect();
            let info = s.update(key, labels_of(labels), &paths)?;
            Ok(Output::Labels(info.labels))
        }
        Command::Cleanup => Ok(Output::Cleaned(open_existing(root, &options)?.cleanup()?)),
        Command::Check => {
            let report = Snapshotter::inspect(root).map_err(Failure::from_open)?;
            Ok(Output::Check {
                root: root.canonicalize().unwrap_or_else(|_| root.to_path_buf()),
                report,
            })
        }
        Command::Compact => {
            let s = open_existing(root, &options)?;
            s.checkpoint()?;
            Ok(Output::Compacted {
                snapshots: s.open_report().snapshots,
            })
        }
        Command::Status | Command::Events => Err(Failure::Usage(
            "status and events need a running overlaysnapd: give --address SOCK".into(),
        )),
    }
}

/// Whether a command may create a missing root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Create {
    Yes,
    No,
}

/// Opens the snapshotter at `root`, refusing a missing root unless `create` allows it.
fn open(root: &Path, create: Create, options: Options) -> Result<Snapshotter, Failure> {
    if create == Create::No && !root.exists() {
        return Err(Failure::MissingRoot(root.to_path_buf()));
    }
    Snapshotter::open(root, options).map_err(Failure::from_open)
}

/// Opens an existing root with `options`.
fn open_existing(root: &Path, options: &Options) -> Result<Snapshotter, Failure> {
    open(root, Create::No, options.clone())
}

/// The options the daemon's `--config` file asks for, so that the CLI mounts, measures
/// and limits as overlaysnapd does on the same root; the library's defaults without one.
fn options_of(cli: &Cli) -> Result<Options, Failure> {
    match &cli.config {
        Some(path) => Ok(Config::load(path).map_err(Failure::Usage)?.options()),
        None => Ok(Options::default()),
    }
}

/// Every snapshot `filters` select (all when none), ordered by name.
fn list(s: &Snapshotter, filters: &[String]) -> Result<Vec<Info>, Failure> {
    let mut infos = Vec::new();
    s.walk(filters, |info| {
        infos.push(info);
        Ok(())
    })?;
    Ok(infos)
}

/// A parent given as an empty string means none, as in `ctr`.
fn non_empty(parent: &Option<String>) -> Option<&str> {
    parent.as_deref().filter(|p| !p.is_empty())
}

fn labels_of(args: &[LabelArg]) -> Labels {
    args.iter().cloned().collect()
}
