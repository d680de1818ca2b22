//! The daemon's TOML configuration: the snapshotter's [`Options`].
//!
//! ```toml
//! sync_remove = false          # delete directories at Remove instead of at Cleanup
//! upperdir_label = false       # add containerd.io/snapshot/overlay.upperdir to Infos
//! mount_options = []           # appended to every overlay mount
//! journal = "log"              # "log" (durable) or "memory" (lost at exit)
//! checkpoint_every = 100000    # records between automatic checkpoints; 0 never
//! metrics_address = "127.0.0.1:9311"  # serve GET /metrics here (host:port or a unix
//!                                     # socket path); absent: no metrics
//! remap_ids = false            # mount ID-mapping labels (uidmap=/gidmap=): only with the
//!                              # proxy plugin's capabilities = ["remap-ids", …]
//! rebase = false               # mount parentless Active snapshots as overlay above an
//!                              # empty lowerdir: with capabilities = […, "rebase"]
//! quota = "auto"               # "auto": btrfs qgroups / XFS, ext4 project quotas when the
//!                              # root's file system has them on; "off": always walk
//! default_size = "10GiB"       # hard limit of an Active snapshot without the
//!                              # containerd.io/snapshot/max-size label: bytes (an integer)
//!                              # or a string such as "512MiB"; absent or 0: no limit
//! ```
//!
//! Every key is optional and defaults to the library's [`Options::default`]; an unknown
//! key is an error, so a typo is not silently ignored.

use crate::metrics::MetricsAddress;
use overlaysnap::core::parse_size;
use overlaysnap::{Backend, LogBackend, MemoryBackend, Options, QuotaChoice};
use serde::Deserialize;
use std::path::Path;
use std::sync::Arc;

/// Where the records go, as the config file names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Journal {
    /// [`LogBackend`], the library's default.
    #[default]
    Log,
    /// [`MemoryBackend`].
    Memory,
}

impl Journal {
    /// The journal backend this name stands for.
    pub fn backend(self) -> Arc<dyn Backend> {
        match self {
            Journal::Log => Arc::new(LogBackend),
            Journal::Memory => Arc::new(MemoryBackend),
        }
    }
}

/// The `quota` key: [`QuotaChoice`] by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Quota {
    /// [`QuotaChoice::Auto`].
    #[default]
    Auto,
    /// [`QuotaChoice::Off`].
    Off,
}

/// The `default_size` key: bytes as an integer, or a size string (`"10GiB"`, see
/// [`parse_size`]), checked when the file is parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "SizeValue")]
pub struct Size(pub u64);

/// How TOML spells a size.
#[derive(Deserialize)]
#[serde(untagged)]
enum SizeValue {
    Bytes(i64),
    Text(String),
}

impl TryFrom<SizeValue> for Size {
    type Error = String;
    fn try_from(value: SizeValue) -> Result<Size, String> {
        let text = match value {
            SizeValue::Bytes(n) => n.to_string(),
            SizeValue::Text(t) => t,
        };
        parse_size("default_size", &text)
            .map(Size)
            .map_err(|e| e.to_string())
    }
}

/// The configuration file's contents. See the module documentation for the keys.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// [`Options::sync_remove`].
    pub sync_remove: bool,
    /// [`Options::upperdir_label`].
    pub upperdir_label: bool,
    /// [`Options::mount_options`].
    pub mount_options: Vec<String>,
    /// [`Options::journal`].
    pub journal: Journal,
    /// [`Options::checkpoint_every`].
    pub checkpoint_every: u64,
    /// Where to serve metrics ([`crate::metrics`]); `None`: no metrics.
    pub metrics_address: Option<MetricsAddress>,
    /// [`Options::remap_ids`].
    pub remap_ids: bool,
    /// [`Options::rebase`].
    pub rebase: bool,
    /// [`Options::quota`].
    pub quota: Quota,
    /// [`Options::default_size`].
    pub default_size: Option<Size>,
}

impl Default for Config {
    fn default() -> Self {
        let o = Options::default();
        Config {
            sync_remove: o.sync_remove,
            upperdir_label: o.upperdir_label,
            mount_options: o.mount_options,
            journal: Journal::default(),
            checkpoint_every: o.checkpoint_every,
            metrics_address: None,
            remap_ids: o.remap_ids,
            rebase: o.rebase,
            quota: Quota::default(),
            default_size: None,
        }
    }
}

impl Config {
    /// Parses a configuration from TOML text; the error names the bad key or value.
    pub fn parse(text: &str) -> Result<Config, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    /// Reads and parses the configuration file at `path`.
    pub fn load(path: &Path) -> Result<Config, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("reading config {}: {e}", path.display()))?;
        Config::parse(&text).map_err(|e| format!("config {}: {e}", path.display()))
    }

    /// The snapshotter options this configuration asks for.
    pub fn options(&self) -> Options {
        Options {
            sync_remove: self.sync_remove,
            upperdir_label: self.upperdir_label,
            mount_options: self.mount_options.clone(),
            journal: self.journal.backend(),
            checkpoint_every: self.checkpoint_every,
            journal_observer: None,
            remap_ids: self.remap_ids,
            rebase: self.rebase,
            quota: match self.quota {
                Quota::Auto => QuotaChoice::Auto,
                Quota::Off => QuotaChoice::Off,
            },
            default_size: self.default_size.map(|Size(n)| n),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What options say, the journal by its name (backends are not comparable).
    #[allow(clippy::type_complexity)]
    fn fields(
        o: &Options,
    ) -> (
        bool,
        bool,
        Vec<String>,
        String,
        u64,
        bool,
        bool,
        QuotaChoice,
        Option<u64>,
    ) {
        (
            o.sync_remove,
            o.upperdir_label,
            o.mount_options.clone(),
            o.journal.name().to_owned(),
            o.checkpoint_every,
            o.remap_ids,
            o.rebase,
            o.quota,
            o.default_size,
        )
    }

    #[test]
    fn an_empty_file_is_the_library_default() {
        let parsed = Config::parse("").unwrap().options();
        assert_eq!(fields(&parsed), fields(&Options::default()));
    }

    #[test]
    fn every_key_reaches_the_options() {
        let config = Config::parse(
            "sync_remove = true\nupperdir_label = true\nmount_options = [\"volatile\"]\n\
             journal = \"memory\"\ncheckpoint_every = 7\nremap_ids = true\n\
             rebase = true\nquota = \"off\"\ndefault_size = \"10GiB\"\n",
        )
        .unwrap();
        let expected = Options {
            sync_remove: true,
            upperdir_label: true,
            mount_options: vec!["volatile".into()],
            journal: Arc::new(MemoryBackend),
            checkpoint_every: 7,
            journal_observer: None,
            remap_ids: true,
            rebase: true,
            quota: QuotaChoice::Off,
            default_size: Some(10 << 30),
        };
        assert_eq!(fields(&config.options()), fields(&expected));
    }

    #[test]
    fn the_metrics_address_is_parsed_and_a_bad_one_refused_with_the_key() {
        assert_eq!(Config::parse("").unwrap().metrics_address, None);
        let config = Config::parse("metrics_address = \"127.0.0.1:9311\"").unwrap();
        assert_eq!(
            config.metrics_address,
            Some(MetricsAddress::Tcp("127.0.0.1:9311".into()))
        );
        let config = Config::parse("metrics_address = \"/run/m.sock\"").unwrap();
        assert_eq!(
            config.metrics_address,
            Some(MetricsAddress::Unix("/run/m.sock".into()))
        );
        let err = Config::parse("metrics_address = \"9311\"").unwrap_err();
        assert!(
            err.contains("metrics_address") && err.contains("host:port"),
            "{err}"
        );
    }

    #[test]
    fn default_size_is_bytes_or_a_size_string_and_a_bad_one_is_refused_with_the_key() {
        let size = |text: &str| Config::parse(text).map(|c| c.options().default_size);
        assert_eq!(size("").unwrap(), None);
        assert_eq!(size("default_size = 8388608").unwrap(), Some(8 << 20));
        assert_eq!(size("default_size = \"512MiB\"").unwrap(), Some(512 << 20));
        for bad in ["-1", "\"-5G\"", "\"ten\"", "\"1.5G\"", "1.5"] {
            let err = size(&format!("default_size = {bad}")).unwrap_err();
            assert!(err.contains("default_size"), "{bad}: {err}");
        }
        let err = Config::parse("quota = \"maybe\"").unwrap_err();
        assert!(err.contains("maybe"), "{err}");
    }

    #[test]
    fn unknown_keys_and_journals_are_refused_by_name() {
        let err = Config::parse("sync_remov = true").unwrap_err();
        assert!(err.contains("sync_remov"), "{err}");
        let err = Config::parse("journal = \"bolt\"").unwrap_err();
        assert!(err.contains("bolt"), "{err}");
    }
}
