//! The names of the journal's files: `log-<seq>` segments and `checkpoint-<seq>` files,
//! numbered with exactly 20 decimal digits (the directory layout is in `log`).

const SEGMENT_PREFIX: &str = "log-";
const CHECKPOINT_PREFIX: &str = "checkpoint-";

/// The file name of log segment `seq`.
pub fn segment_file(seq: u64) -> String {
    format!("{SEGMENT_PREFIX}{seq:020}")
}

/// The file name of checkpoint `seq`.
pub fn checkpoint_file(seq: u64) -> String {
    format!("{CHECKPOINT_PREFIX}{seq:020}")
}

/// The number of log segment `name`; `None` for other names.
pub(crate) fn parse_segment(name: &str) -> Option<u64> {
    parse_seq(name.strip_prefix(SEGMENT_PREFIX)?)
}

/// The number of checkpoint file `name`; `None` for other names.
pub(crate) fn parse_checkpoint(name: &str) -> Option<u64> {
    parse_seq(name.strip_prefix(CHECKPOINT_PREFIX)?)
}

/// A file number: exactly 20 decimal digits.
fn parse_seq(digits: &str) -> Option<u64> {
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}
