//! Labels and the validation of labels, keys and names.

use crate::error::{Error, Result};
use std::collections::BTreeMap;

/// A snapshot's user labels, ordered by key.
pub type Labels = BTreeMap<String, String>;

/// The most bytes a label's key and value may hold together (containerd's `maxSize`).
pub const MAX_LABEL_SIZE: usize = 4096;

/// Checks every label: the key is not empty and key + value fit in [`MAX_LABEL_SIZE`] bytes.
///
/// The error names the offending label, as containerd's `labels.Validate` does.
pub fn validate_labels(labels: &Labels) -> Result<()> {
    for (k, v) in labels {
        if k.is_empty() {
            return Err(Error::InvalidArgument("label key must not be empty".into()));
        }
        if k.len() + v.len() > MAX_LABEL_SIZE {
            let head: String = k.chars().take(10).collect();
            return Err(Error::InvalidArgument(format!(
                "label key and value length ({} bytes) greater than maximum size ({} bytes), key: {head}",
                k.len() + v.len(),
                MAX_LABEL_SIZE
            )));
        }
    }
    Ok(())
}

/// Checks a snapshot key or name: not empty and free of control characters.
///
/// containerd accepts any bytes; overlaysnap refuses NUL and other control characters,
/// which would break a log line or a mount option, and says which byte and where.
/// `what` says which argument is checked (`key`, `name`, `parent`).
pub fn validate_key(what: &str, key: &str) -> Result<()> {
    if key.is_empty() {
        return Err(Error::InvalidArgument(format!("{what} must not be empty")));
    }
    // Printable ASCII, the usual case, needs no decoding: every control character is
    // below 0x20, 0x7f, or in U+0080..U+009F (encoded from 0xc2).
    // (A fold, not `all`: without the early exit the loop is vectorized.)
    if key
        .bytes()
        .fold(true, |printable, b| printable & (0x20..0x7f).contains(&b))
    {
        return Ok(());
    }
    if let Some((at, c)) = key.char_indices().find(|(_, c)| c.is_control()) {
        return Err(Error::InvalidArgument(format!(
            "{what} {key:?} has control character {:#04x} at byte {at}",
            c as u32
        )));
    }
    Ok(())
}
