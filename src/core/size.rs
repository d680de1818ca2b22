//! Sizes: containerd's `containerd.io/snapshot/max-size` label and the `default_size`
//! setting, as bytes.
//!
//! A size is decimal digits, optionally followed by a unit: `K`, `M`, `G`, `T` and `KiB`,
//! `MiB`, `GiB`, `TiB` are powers of 1024; `KB`, `MB`, `GB`, `TB` powers of 1000; `B` is
//! bytes. No sign, no spaces, no fraction; at most `i64::MAX` bytes (containerd's label is a
//! decimal int64). `0` means "no limit".

use super::labels::Labels;
use crate::error::{Error, Result};

/// containerd's label asking for a hard limit on an Active snapshot's size
/// (`snapshots.LabelSnapshotMaxSize`).
pub const MAX_SIZE_LABEL: &str = "containerd.io/snapshot/max-size";

/// The units a size may end with, and their factors.
const UNITS: [(&str, u64); 13] = [
    ("B", 1),
    ("K", 1 << 10),
    ("KiB", 1 << 10),
    ("KB", 1_000),
    ("M", 1 << 20),
    ("MiB", 1 << 20),
    ("MB", 1_000_000),
    ("G", 1 << 30),
    ("GiB", 1 << 30),
    ("GB", 1_000_000_000),
    ("T", 1 << 40),
    ("TiB", 1 << 40),
    ("TB", 1_000_000_000_000),
];

/// Parses `text` as a size in bytes (see the module documentation); `what` names it in the
/// error, which is InvalidArgument.
pub fn parse_size(what: &str, text: &str) -> Result<u64> {
    let invalid = |why: &str| {
        Error::InvalidArgument(format!(
            "{what} {text:?} is not a size: {why} (bytes, or a number with K, M, G, T, KiB, \
             MiB, GiB, TiB, KB, MB, GB or TB)"
        ))
    };
    let digits_end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(digits_end);
    if digits.is_empty() {
        return Err(invalid(if text.starts_with('-') {
            "it is negative"
        } else {
            "it does not start with a digit"
        }));
    }
    let factor = match unit {
        "" => 1,
        _ => UNITS
            .iter()
            .find(|(name, _)| *name == unit)
            .map(|&(_, f)| f)
            .ok_or_else(|| invalid("unknown unit"))?,
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(factor))
        .filter(|&n| n <= i64::MAX as u64)
        .ok_or_else(|| invalid("it is too large"))
}

/// The limit the labels ask for: the parsed [`MAX_SIZE_LABEL`], `None` when absent, empty
/// (an empty label is never stored, as every label) or 0. A malformed value is
/// InvalidArgument naming the label.
pub fn max_size(labels: &Labels) -> Result<Option<u64>> {
    match labels.get(MAX_SIZE_LABEL) {
        None => Ok(None),
        Some(v) if v.is_empty() => Ok(None),
        Some(v) => Ok(Some(parse_size(&format!("label {MAX_SIZE_LABEL}"), v)?).filter(|&n| n > 0)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_and_without_units() {
        assert_eq!(parse_size("s", "0").unwrap(), 0);
        assert_eq!(parse_size("s", "4096").unwrap(), 4096);
        assert_eq!(parse_size("s", "10GiB").unwrap(), 10 << 30);
        for (text, bytes) in [
            ("3B", 3),
            ("3K", 3 * 1024),
            ("3KiB", 3 * 1024),
            ("3KB", 3_000),
            ("3M", 3 * 1024 * 1024),
            ("3MiB", 3 * 1024 * 1024),
            ("3MB", 3_000_000),
            ("3G", 3 * 1024 * 1024 * 1024),
            ("3GiB", 3 * 1024 * 1024 * 1024),
            ("3GB", 3_000_000_000),
            ("3T", 3 * 1024 * 1024 * 1024 * 1024),
            ("3TiB", 3 * 1024 * 1024 * 1024 * 1024),
            ("3TB", 3_000_000_000_000),
        ] {
            assert_eq!(parse_size("s", text).unwrap(), bytes, "{text}");
        }
        assert_eq!(
            parse_size("s", &i64::MAX.to_string()).unwrap(),
            i64::MAX as u64
        );
    }

    #[test]
    fn malformed_negative_and_huge_sizes_are_invalid_arguments() {
        for bad in [
            "",
            "-1",
            "-10GiB",
            "+5",
            " 5",
            "5 ",
            "1.5G",
            "GiB",
            "5gib",
            "5XB",
            "0x10",
            "9223372036854775808",
            "8388608TiB",
            "99999999999999999999",
        ] {
            let err = parse_size("default_size", bad).unwrap_err();
            assert!(matches!(err, Error::InvalidArgument(_)), "{bad:?}: {err}");
            assert!(err.to_string().contains("default_size"), "{err}");
        }
        assert!(parse_size("s", "-1")
            .unwrap_err()
            .to_string()
            .contains("negative"));
    }

    #[test]
    fn the_label_gives_the_limit_and_zero_means_none() {
        let mut labels = Labels::new();
        assert_eq!(max_size(&labels).unwrap(), None);
        labels.insert(MAX_SIZE_LABEL.into(), String::new());
        assert_eq!(max_size(&labels).unwrap(), None);
        labels.insert(MAX_SIZE_LABEL.into(), "0".into());
        assert_eq!(max_size(&labels).unwrap(), None);
        labels.insert(MAX_SIZE_LABEL.into(), "16777216".into());
        assert_eq!(max_size(&labels).unwrap(), Some(16 << 20));
        labels.insert(MAX_SIZE_LABEL.into(), "-1".into());
        let err = max_size(&labels).unwrap_err();
        assert!(matches!(err, Error::InvalidArgument(_)));
        assert!(err.to_string().contains(MAX_SIZE_LABEL), "{err}");
    }
}
