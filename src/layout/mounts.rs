//! The mounts of a snapshot, built from a [`MountPlan`] as
//! containerd 2.x's overlay snapshotter builds them (`mounts()` in `overlay.go`):
//!
//! | plan | mount |
//! |---|---|
//! | no parents | `bind` of the own `fs`, `[rw, rbind]` (`ro` for View) |
//! | Active, no parents, [`Layout::with_empty_lower`] | `overlay`: the overlay options, then `workdir=…`, `upperdir=…`, `lowerdir=ROOT/empty` |
//! | View, one parent | `bind` of the parent's `fs`, `[ro, rbind]` |
//! | Active, parents | `overlay`: the overlay options, then `workdir=…`, `upperdir=…`, `lowerdir=p1:…:pn` |
//! | View, several parents | `overlay`: the overlay options, then `lowerdir=p1:…:pn` |
//!
//! The second row is not containerd's overlay snapshotter's (it bind-mounts every
//! parentless snapshot): it gives containerd 2.2's applier the `upperdir` it needs to write
//! overlay whiteouts in a parallel unpack. containerd 2.2.3's unpacker makes a mount of
//! that shape itself from the bind mount of its built-in snapshotter (`bindToOverlay`,
//! `upperdir=` without `lowerdir` or `workdir`, which the applier reads but the kernel
//! would not mount); this one also mounts.
//!
//! Parents are listed nearest first. A plan with ID mappings (from the snapshot's
//! `containerd.io/snapshot/uidmapping` and `…/gidmapping` labels) puts `uidmap=…` and then
//! `gidmap=…` before every other option of either kind of mount, as containerd 2.x's
//! overlay snapshotter does with `remap-ids`; containerd's mount code takes them out and
//! makes ID-mapped mounts of the lower layers (overlay) or of the bind mount. They are
//! written from the parsed ranges ([`crate::core::labels::IdRange`]), never copied from
//! the label. The overlay options ([`overlay_options`]) are
//! `index=off` and `userxattr` when needed, then the configured ones, in the order of
//! docs/semantics.md#mounts and containerd 1.6 (`index=off`, `userxattr`, `workdir`, `upperdir`,
//! `lowerdir`); containerd 2.x appends them after `lowerdir` instead, and neither the kernel
//! nor containerd's mount code cares. Bind mounts get none, as in containerd.
//!
//! # Many layers
//! The kernel reads at most one page of mount data (4095 bytes and a NUL on x86-64), and
//! overlayfs stacks at most 500 lower layers. containerd's mount code (1.6 and 2.x), when
//! the options reach a page less 512 bytes, makes the lowerdirs relative to their common
//! directory and mounts from there (`compactLowerdirOption`). With `ROOT/snapshots/<id>/fs`
//! lowerdirs that leaves `<id>/fs:` per layer: 128 layers always fit, but 500 layers fit
//! only while ids have at most 3 digits (500 × `123456/fs:` is 5 000 bytes). So when the
//! compacted data would not fit, the lowerdirs name short links instead,
//! `ROOT/l/<id in base 62>` (as docker's overlay2 does with `l/`), which compact to at most
//! 4 bytes a layer for ids below 238 328 and at most 7 below 56 800 235 584: 500 layers take
//! at most 2 000 or 3 500 bytes. Plain paths are kept whenever they fit, so ordinary mounts
//! look exactly like containerd's.

use super::Layout;
use crate::core::labels::{write_id_ranges, IdMap};
use crate::core::{Kind, MountPlan};
use crate::error::{Error, Result};
use crate::fs::{Mount, MountCall, OverlayFeatures};
use std::fmt::Write;

/// The options that open every overlay mount: `index=off` when `features.index` and no
/// `index` option is configured (containerd only recognises a bare `index`; any `index=…`
/// counts here), then `userxattr` when `features.userxattr` and not configured, then
/// `configured` (containerd's `mount_options`).
pub fn overlay_options(configured: &[String], features: OverlayFeatures) -> Vec<String> {
    let mut options = Vec::with_capacity(configured.len() + 2);
    let has_index = configured
        .iter()
        .any(|o| o == "index" || o.starts_with("index="));
    if features.index && !has_index {
        options.push("index=off".into());
    }
    if features.userxattr && !configured.iter().any(|o| o == "userxattr") {
        options.push("userxattr".into());
    }
    options.extend(configured.iter().cloned());
    options
}

impl Layout {
    /// The mounts of the Active or View snapshot described by `plan` (see the module docs).
    ///
    /// When the lowerdir list needs the short links, they are created here. Refused
    /// (FailedPrecondition) for a Committed plan, and for a chain so long that even the
    /// short links do not fit in a page of mount data.
    pub fn mounts(&self, plan: &MountPlan) -> Result<Vec<Mount>> {
        // The root is valid UTF-8 (a Layout invariant), so nothing is lost here.
        let snapshots = self.snapshots_dir().to_string_lossy();
        // `prefix` then the path of `leaf` in snapshot `id`, in one allocation.
        let in_snapshot_after = |prefix: &str, id: u64, leaf: &str| {
            let mut path = String::with_capacity(prefix.len() + snapshots.len() + leaf.len() + 22);
            path.push_str(prefix);
            path.push_str(&snapshots);
            // Writing into a String cannot fail.
            let _ = write!(path, "/{id}/{leaf}");
            path
        };
        let in_snapshot = |id: u64, leaf: &str| in_snapshot_after("", id, leaf);
        if plan.parents.is_empty() {
            if let (Kind::Active, Some(empty)) = (plan.kind, &self.empty_lower) {
                let mut options = idmap_options(&plan.idmap);
                options.extend(self.overlay_options.iter().cloned());
                options.push(in_snapshot_after("workdir=", plan.id, "work"));
                options.push(in_snapshot_after("upperdir=", plan.id, "fs"));
                // The root is valid UTF-8, and so is `empty` below it.
                options.push(format!("lowerdir={}", empty.to_string_lossy()));
                return Ok(vec![Mount {
                    kind: "overlay".into(),
                    source: "overlay".into(),
                    target: String::new(),
                    options,
                }]);
            }
            let mode = if plan.kind == Kind::View { "ro" } else { "rw" };
            return Ok(vec![bind(in_snapshot(plan.id, "fs"), &plan.idmap, mode)]);
        }
        let with_work = match plan.kind {
            Kind::Committed => {
                return Err(Error::FailedPrecondition(format!(
                    "snapshot {} is committed; only active or view snapshots have mounts",
                    plan.id
                )))
            }
            Kind::View if plan.parents.len() == 1 => {
                return Ok(vec![bind(
                    in_snapshot(plan.parents[0], "fs"),
                    &plan.idmap,
                    "ro",
                )])
            }
            Kind::View => false,
            Kind::Active => true,
        };
        let overlay = |lower: &dyn Fn(&mut String, u64)| {
            let mut options = idmap_options(&plan.idmap);
            options.reserve(self.overlay_options.len() + 3);
            options.extend(self.overlay_options.iter().cloned());
            if with_work {
                options.push(in_snapshot_after("workdir=", plan.id, "work"));
                options.push(in_snapshot_after("upperdir=", plan.id, "fs"));
            }
            let mut lowerdir =
                String::with_capacity(9 + plan.parents.len() * (snapshots.len() + 16));
            lowerdir.push_str("lowerdir=");
            for (i, &id) in plan.parents.iter().enumerate() {
                if i > 0 {
                    lowerdir.push(':');
                }
                lower(&mut lowerdir, id);
            }
            options.push(lowerdir);
            Mount {
                kind: "overlay".into(),
                source: "overlay".into(),
                target: String::new(),
                options,
            }
        };
        let plain = overlay(&|out, id| {
            out.push_str(&snapshots);
            let _ = write!(out, "/{id}/fs");
        });
        if self.fits(&plain) {
            return Ok(vec![plain]);
        }
        let short = overlay(&|out, id| out.push_str(&self.link_path(id).to_string_lossy()));
        if !self.fits(&short) {
            return Err(Error::FailedPrecondition(format!(
                "the mount options of snapshot {} ({} parents) do not fit in one page of {} \
                 bytes, even with short links",
                plan.id,
                plan.parents.len(),
                self.page_size
            )));
        }
        for &id in &plan.parents {
            self.ensure_link(id)?;
        }
        Ok(vec![short])
    }

    /// Whether containerd's mount code (and [`Mount::mount`]) can pass `m` to mount(2).
    fn fits(&self, m: &Mount) -> bool {
        // The options joined by commas, as they are before any compaction: compaction only
        // shortens them, so when these fit, the call's data fits (the common case, checked
        // without building the call).
        let joined = m.options.iter().map(|o| o.len() + 1).sum::<usize>();
        joined <= self.page_size || MountCall::new(m, self.page_size).fits(self.page_size)
    }
}

fn bind(source: String, idmap: &IdMap, mode: &str) -> Mount {
    let mut options = idmap_options(idmap);
    options.extend([mode.into(), "rbind".into()]);
    Mount {
        kind: "bind".into(),
        source,
        target: String::new(),
        options,
    }
}

/// `uidmap=…` when user IDs are mapped, then `gidmap=…` when group IDs are (the order of
/// containerd 2.x's `mounts()`); nothing without mappings.
fn idmap_options(idmap: &IdMap) -> Vec<String> {
    let mut options = Vec::new();
    for (name, ranges) in [("uidmap=", &idmap.uid), ("gidmap=", &idmap.gid)] {
        if !ranges.is_empty() {
            let mut option = String::from(name);
            write_id_ranges(&mut option, ranges);
            options.push(option);
        }
    }
    options
}
