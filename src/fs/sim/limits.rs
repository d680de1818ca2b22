//! The quota mode of a simulated disk and its hard limits, current and durable (the rules
//! are in the module documentation of quota.rs).

use crate::fs::QuotaMode;
use std::collections::BTreeMap;

/// The quota mode of a disk and its hard limits by unit, each in a current and a durable
/// version. Invariant: `durable` is `now` as of the last commit (syncfs, a directory
/// fsync) or the disk's last power loss, less the units a power loss took.
#[derive(Debug, Clone, Default)]
pub(super) struct Quotas {
    /// What [`FileSystem::quota_mode`](crate::fs::FileSystem) reports.
    pub(super) mode: QuotaMode,
    /// The current limits, by unit.
    pub(super) now: BTreeMap<u64, u64>,
    /// What a power loss keeps.
    durable: BTreeMap<u64, u64>,
}

impl Quotas {
    /// A transaction or journal commit: every limit is durable.
    pub(super) fn commit(&mut self) {
        self.durable = self.now.clone();
    }

    /// What a power loss keeps: the durable limits, or with `committed` (a power loss
    /// right after a commit of the file system's own, `SimFs::crash_keeping_names`) the
    /// current ones.
    pub(super) fn after_power_loss(&self, committed: bool) -> Quotas {
        let kept = if committed { &self.now } else { &self.durable };
        Quotas {
            mode: self.mode,
            now: kept.clone(),
            durable: kept.clone(),
        }
    }

    /// Forgets the limits of the units `keep` says no to, current and durable.
    pub(super) fn retain_units(&mut self, keep: impl Fn(u64) -> bool) {
        self.now.retain(|&unit, _| keep(unit));
        self.durable.retain(|&unit, _| keep(unit));
    }

    /// The current limit of every unit that has one (for tests: see
    /// `SimFs::quota_limits`).
    pub(super) fn limits(&self) -> BTreeMap<u64, u64> {
        self.now.clone()
    }
}
