//! How a [`Snapshotter`](super::Snapshotter) behaves: [`Options`], the journal it writes
//! to ([`JournalChoice`]) and containerd's upper-directory label ([`UPPERDIR_LABEL`]).

/// containerd's label that carries the upper directory when [`Options::upperdir_label`] is
/// set (`WithUpperdirLabel`).
pub const UPPERDIR_LABEL: &str = "containerd.io/snapshot/overlay.upperdir";

/// Where the records go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum JournalChoice {
    /// An append-only log under `ROOT/journal` (durable; the default).
    #[default]
    Log,
    /// Records kept in memory only: the state is lost when the process ends. For embedding
    /// and tests.
    Memory,
}

/// How a [`Snapshotter`](super::Snapshotter) behaves; `Options::default()` is containerd's
/// default overlay snapshotter with a durable log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Delete a removed snapshot's directory at once (containerd's sync remove). When false
    /// (containerd's default, async remove) directories go at the next
    /// [`Snapshotter::cleanup`](super::Snapshotter::cleanup).
    pub sync_remove: bool,
    /// Add [`UPPERDIR_LABEL`] with the upper directory to every Info returned.
    pub upperdir_label: bool,
    /// Options appended to every overlay mount (containerd's `mount_options`).
    pub mount_options: Vec<String>,
    /// Where the records go.
    pub journal: JournalChoice,
    /// Take a checkpoint after this many records, so recovery replays at most about this
    /// many; 0 never checkpoints automatically.
    pub checkpoint_every: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            sync_remove: false,
            upperdir_label: false,
            mount_options: Vec::new(),
            journal: JournalChoice::Log,
            checkpoint_every: 100_000,
        }
    }
}
