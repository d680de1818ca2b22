//! What commands print: human tables by default, one JSON document with `--json`.
//!
//! JSON shapes (times are RFC 3339 in UTC, see [`crate::rfc3339`]; sizes are bytes):
//! - Info: `{"name", "kind": "view"|"active"|"committed", "parent": string|null,
//!   "labels": {k: v}, "created", "updated"}`
//! - Mount: `{"type", "source", "target", "options": [..]}` (containerd's field names)
//! - Usage: `{"name", "size", "inodes"}`
//! - Tree node: `{"name", "kind", "children": [node, ..]}`

use crate::live;
use crate::rfc3339;
use crate::tree::Node;
use overlaysnap::core::{Info, Labels, Usage};
use overlaysnap::Mount;
use overlaysnap::OpenReport;
use overlaysnap_daemon::api::overlaysnap::admin::v1::StatusResponse;
use serde_json::{json, Value};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The result of a command, to print in either form.
#[derive(Debug)]
pub enum Output {
    /// `prepare`, `view`, `mounts`: the mounts of a snapshot; with a target, printed as
    /// shell `mount` commands. JSON: an array of Mounts.
    Mounts {
        /// The snapshot's mounts.
        mounts: Vec<Mount>,
        /// Where `mounts KEY TARGET` would mount them.
        target: Option<PathBuf>,
    },
    /// `commit`: the committed snapshot. Human: nothing; JSON: its Info.
    Committed(Info),
    /// `rm`: the keys removed. Human: nothing; JSON: `{"removed": [key, ..]}`.
    Removed(Vec<String>),
    /// `stat`: one Info.
    Info(Info),
    /// `ls`: Infos ordered by name. JSON: an array of Infos.
    List(Vec<Info>),
    /// `tree`: the forest. JSON: an array of tree nodes.
    Tree(Vec<Node>),
    /// `mount`: what was mounted where. Human: nothing; JSON: `{"key", "target", "mounts"}`.
    Mounted {
        /// The snapshot.
        key: String,
        /// The mount point.
        target: PathBuf,
        /// The mounts made there.
        mounts: Vec<Mount>,
    },
    /// `umount`: the mount point. Human: nothing; JSON: `{"target"}`.
    Unmounted(PathBuf),
    /// `usage KEY`: one snapshot's usage. JSON: a Usage object.
    Usage(String, Usage),
    /// `usage`: every snapshot's usage, ordered by name. JSON: an array of Usage objects.
    Usages(Vec<(String, Usage)>),
    /// `label`: the labels after the change. JSON: `{k: v}`.
    Labels(Labels),
    /// `cleanup`: how many entries were deleted. JSON: `{"removed": n}`.
    Cleaned(usize),
    /// `check`: what opening the root would find and repair, found without changing
    /// anything. JSON: see [`check_json`].
    Check {
        /// The root checked.
        root: PathBuf,
        /// The library's report.
        report: OpenReport,
    },
    /// `compact`: a checkpoint was written. JSON: `{"checkpoint": true, "snapshots": n}`.
    Compacted {
        /// Snapshots in the checkpoint.
        snapshots: usize,
    },
    /// `status` of a live daemon (`--address`; printed by [`crate::live`]).
    Status(Box<StatusResponse>),
}

impl Output {
    /// Prints the output as `--json` asks.
    pub fn write(&self, json: bool, w: &mut impl Write) -> io::Result<()> {
        if json {
            let doc = serde_json::to_string_pretty(&self.to_json()).map_err(io::Error::other)?;
            writeln!(w, "{doc}")
        } else {
            self.write_human(w)
        }
    }

    /// What is wrong, when the output reports damage (`check` only).
    pub fn damage(&self) -> Option<String> {
        let Output::Check { report, .. } = self else {
            return None;
        };
        if report.damaged.is_empty() {
            return None;
        }
        let lost: Vec<String> = report
            .damaged
            .iter()
            .map(|(name, id)| format!("{name:?} (id {id})"))
            .collect();
        Some(format!(
            "{} committed snapshot(s) lost their directory: {}",
            lost.len(),
            lost.join(", ")
        ))
    }

    /// The JSON document.
    pub fn to_json(&self) -> Value {
        match self {
            Output::Mounts { mounts, .. } => mounts_json(mounts),
            Output::Committed(info) | Output::Info(info) => info_json(info),
            Output::Removed(keys) => json!({ "removed": keys }),
            Output::List(infos) => Value::Array(infos.iter().map(info_json).collect()),
            Output::Tree(nodes) => Value::Array(nodes.iter().map(node_json).collect()),
            Output::Mounted {
                key,
                target,
                mounts,
            } => json!({
                "key": key,
                "target": target,
                "mounts": mounts_json(mounts),
            }),
            Output::Unmounted(target) => json!({ "target": target }),
            Output::Usage(name, usage) => usage_json(name, usage),
            Output::Usages(all) => {
                Value::Array(all.iter().map(|(n, u)| usage_json(n, u)).collect())
            }
            Output::Labels(labels) => json!(labels),
            Output::Cleaned(n) => json!({ "removed": n }),
            Output::Check { root, report } => check_json(root, report),
            Output::Compacted { snapshots } => {
                json!({ "checkpoint": true, "snapshots": snapshots })
            }
            Output::Status(status) => live::status_json(status),
        }
    }

    fn write_human(&self, w: &mut impl Write) -> io::Result<()> {
        match self {
            Output::Mounts {
                mounts,
                target: Some(target),
            } => {
                for m in mounts {
                    writeln!(w, "{}", mount_command(m, target))?;
                }
                Ok(())
            }
            Output::Mounts {
                mounts,
                target: None,
            } => {
                let mut table = Table::new(["TYPE", "SOURCE", "OPTIONS"]);
                for m in mounts {
                    table.row([m.kind.clone(), m.source.clone(), m.options.join(",")]);
                }
                table.write(w)
            }
            Output::Committed(_)
            | Output::Removed(_)
            | Output::Mounted { .. }
            | Output::Unmounted(_) => Ok(()),
            Output::Info(info) => write_info(info, w),
            Output::List(infos) => {
                let mut table = Table::new(["NAME", "KIND", "PARENT", "CREATED"]);
                for i in infos {
                    table.row([
                        i.name.clone(),
                        i.kind.to_string(),
                        i.parent.clone().unwrap_or_default(),
                        rfc3339::seconds(i.created),
                    ]);
                }
                table.write(w)
            }
            Output::Tree(nodes) => nodes.iter().try_for_each(|n| write_node(n, 0, w)),
            Output::Usage(name, usage) => usage_table(std::slice::from_ref(&(name, *usage)), w),
            Output::Usages(all) => {
                let rows: Vec<(&String, Usage)> = all.iter().map(|(n, u)| (n, *u)).collect();
                usage_table(&rows, w)
            }
            Output::Labels(labels) => labels.iter().try_for_each(|(k, v)| writeln!(w, "{k}={v}")),
            Output::Cleaned(n) => writeln!(w, "removed {n} entries"),
            Output::Check { root, report } => write_check(root, report, w),
            Output::Compacted { snapshots } => {
                writeln!(w, "checkpoint written: {snapshots} snapshots")
            }
            Output::Status(status) => live::write_status(status, w),
        }
    }
}

fn info_json(info: &Info) -> Value {
    json!({
        "name": info.name,
        "kind": info.kind.as_str(),
        "parent": info.parent,
        "labels": info.labels,
        "created": rfc3339::precise(info.created),
        "updated": rfc3339::precise(info.updated),
    })
}

fn mounts_json(mounts: &[Mount]) -> Value {
    Value::Array(
        mounts
            .iter()
            .map(|m| {
                json!({
                    "type": m.kind,
                    "source": m.source,
                    "target": m.target,
                    "options": m.options,
                })
            })
            .collect(),
    )
}

fn usage_json(name: &str, usage: &Usage) -> Value {
    json!({ "name": name, "size": usage.size, "inodes": usage.inodes })
}

fn node_json(node: &Node) -> Value {
    json!({
        "name": node.name,
        "kind": node.kind.as_str(),
        "children": node.children.iter().map(node_json).collect::<Vec<_>>(),
    })
}

/// `{"root", "snapshots", "records_replayed", "torn_tail": null | {"path", "offset",
/// "bytes_dropped", "reason"}, "recreated": [id], "unissued": [id], "orphans",
/// "damaged": [{"name", "id"}], "ok": bool}`; `ok` is false exactly when `damaged` is not
/// empty.
pub fn check_json(root: &Path, report: &OpenReport) -> Value {
    let torn_tail = report.torn_tail.as_ref().map(|t| {
        json!({
            "path": t.path,
            "offset": t.offset,
            "bytes_dropped": t.bytes_dropped,
            "reason": t.reason,
        })
    });
    let damaged: Vec<Value> = report
        .damaged
        .iter()
        .map(|(name, id)| json!({ "name": name, "id": id }))
        .collect();
    json!({
        "root": root,
        "snapshots": report.snapshots,
        "records_replayed": report.records_replayed,
        "torn_tail": torn_tail,
        "recreated": report.recreated,
        "unissued": report.unissued,
        "orphans": report.orphans,
        "damaged": damaged,
        "quota": report.quota.name(),
        "ok": report.damaged.is_empty(),
    })
}

fn write_info(info: &Info, w: &mut impl Write) -> io::Result<()> {
    writeln!(w, "Name:     {}", info.name)?;
    writeln!(w, "Kind:     {}", info.kind)?;
    writeln!(w, "Parent:   {}", info.parent.as_deref().unwrap_or(""))?;
    writeln!(w, "Created:  {}", rfc3339::precise(info.created))?;
    writeln!(w, "Updated:  {}", rfc3339::precise(info.updated))?;
    writeln!(w, "Labels:")?;
    for (k, v) in &info.labels {
        writeln!(w, "  {k}={v}")?;
    }
    Ok(())
}

/// Like `ctr snapshots tree`: a root as ` name`, a child two spaces deeper as `\_ name`.
fn write_node(node: &Node, level: usize, w: &mut impl Write) -> io::Result<()> {
    let prefix = if level == 0 {
        String::new()
    } else {
        format!("{}\\_", "  ".repeat(level))
    };
    writeln!(w, "{prefix} {}", node.name)?;
    node.children
        .iter()
        .try_for_each(|c| write_node(c, level + 1, w))
}

fn usage_table(rows: &[(&String, Usage)], w: &mut impl Write) -> io::Result<()> {
    let mut table = Table::new(["NAME", "SIZE", "INODES"]);
    for (name, usage) in rows {
        table.row([
            (*name).clone(),
            human_size(usage.size),
            usage.inodes.to_string(),
        ]);
    }
    table.write(w)
}

fn write_check(root: &Path, report: &OpenReport, w: &mut impl Write) -> io::Result<()> {
    let ids = |ids: &[u64]| -> String {
        if ids.is_empty() {
            return "none".into();
        }
        let list: Vec<String> = ids.iter().map(u64::to_string).collect();
        format!("{} (ids {})", ids.len(), list.join(", "))
    };
    let torn = match &report.torn_tail {
        None => "none".to_owned(),
        Some(t) => format!(
            "{} from offset {}, {} bytes: {}",
            t.path, t.offset, t.bytes_dropped, t.reason
        ),
    };
    let damaged = if report.damaged.is_empty() {
        "none".to_owned()
    } else {
        let list: Vec<String> = report
            .damaged
            .iter()
            .map(|(name, id)| format!("{name:?} (id {id})"))
            .collect();
        format!("{}: {}", list.len(), list.join(", "))
    };
    let mut table = Table::new(["root", &root.display().to_string()]);
    table.row(["snapshots".into(), report.snapshots.to_string()]);
    table.row([
        "records replayed".into(),
        report.records_replayed.to_string(),
    ]);
    table.row(["torn tail (next open truncates)".into(), torn]);
    table.row([
        "missing dirs (next open re-creates)".into(),
        ids(&report.recreated),
    ]);
    table.row([
        "unissued dirs (next open deletes)".into(),
        ids(&report.unissued),
    ]);
    table.row(["orphans".into(), report.orphans.to_string()]);
    table.row(["damaged".into(), damaged]);
    table.row(["quota mode".into(), report.quota.name().to_owned()]);
    table.write(w)
}

/// `mount -t TYPE SOURCE TARGET -o OPTIONS`, quoted for a POSIX shell, as
/// `ctr snapshots mounts` prints it.
fn mount_command(m: &Mount, target: &Path) -> String {
    let mut target = target.to_path_buf();
    let inner = m.target.trim_start_matches('/');
    if !inner.is_empty() {
        target.push(inner);
    }
    let mut line = format!(
        "mount -t {} {} {}",
        shell_quote(&m.kind),
        shell_quote(&m.source),
        shell_quote(&target.display().to_string())
    );
    if !m.options.is_empty() {
        line.push_str(" -o ");
        line.push_str(&shell_quote(&m.options.join(",")));
    }
    line
}

/// `s` as one word of a POSIX shell: as is when it holds only safe characters, else in
/// single quotes.
fn shell_quote(s: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "_-./=:,@%+".contains(c);
    if !s.is_empty() && s.chars().all(safe) {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// Bytes in binary units with one decimal: `512 B`, `4.0 KiB`, `1.5 MiB`.
pub fn human_size(bytes: i64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// Columns padded to their widest cell, two spaces apart, no trailing blanks.
struct Table {
    rows: Vec<Vec<String>>,
}

impl Table {
    fn new<const N: usize>(header: [&str; N]) -> Table {
        Table {
            rows: vec![header.iter().map(|s| (*s).to_owned()).collect()],
        }
    }

    fn row<const N: usize>(&mut self, cells: [String; N]) {
        self.rows.push(cells.into());
    }

    fn write(&self, w: &mut impl Write) -> io::Result<()> {
        let columns = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let widths: Vec<usize> = (0..columns)
            .map(|c| {
                self.rows
                    .iter()
                    .filter_map(|r| r.get(c))
                    .map(|s| s.chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        for row in &self.rows {
            let mut line = String::new();
            for (c, cell) in row.iter().enumerate() {
                if c + 1 < row.len() {
                    let pad = widths[c] - cell.chars().count() + 2;
                    line.push_str(cell);
                    line.extend(std::iter::repeat_n(' ', pad));
                } else {
                    line.push_str(cell);
                }
            }
            writeln!(w, "{}", line.trim_end())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_human() {
        assert_eq!(human_size(0), "0 B");
        assert_eq!(human_size(1023), "1023 B");
        assert_eq!(human_size(4096), "4.0 KiB");
        assert_eq!(human_size(1536 * 1024), "1.5 MiB");
    }

    #[test]
    fn mount_commands_are_shell_words() {
        let m = Mount {
            kind: "overlay".into(),
            source: "overlay".into(),
            target: String::new(),
            options: vec!["workdir=/r/1/work".into(), "lowerdir=/r/a b".into()],
        };
        assert_eq!(
            mount_command(&m, Path::new("/mnt/x")),
            "mount -t overlay overlay /mnt/x -o 'workdir=/r/1/work,lowerdir=/r/a b'"
        );
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }

    #[test]
    fn tables_align_columns() {
        let mut t = Table::new(["A", "BB"]);
        t.row(["long".into(), "x".into()]);
        t.row(["s".into(), String::new()]);
        let mut out = Vec::new();
        t.write(&mut out).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "A     BB\nlong  x\ns\n");
    }
}
