//! Journal files and frames, byte by byte, and the rule that tells a torn tail from damage.
//!
//! # File header (12 bytes), at the start of every journal file
//! ```text
//! offset  size  field
//!      0     8  magic: b"OSNAPLOG" in a log segment, b"OSNAPCKP" in a checkpoint
//!      8     4  format version, u32 little-endian; this build writes 2 and reads 1 and 2
//! ```
//! Version 2 added one record variant, [`Record::Rebased`](crate::core::Record::Rebased)
//! (containerd 2.2's Commit with a parent); every other byte of a version 1 file means
//! the same in version 2, so a version 1 file is read as it is, and a version 1 segment
//! that holds a `Rebased` record is corrupt. A build that reads only version 1 refuses a
//! version 2 file by its header ("unknown format version 2"), before reading a record.
//! Opening a journal whose newest segment is version 1 starts a version 2 segment after
//! it rather than appending to it, so every file holds only what its version allows.
//!
//! # Frame, repeated after the header
//! ```text
//! offset  size  field
//!      0     4  len: payload length in bytes, u32 little-endian; 1 ..= the file kind's cap
//!      4     4  crc: CRC-32C (Castagnoli) of the 4 `len` bytes followed by the payload,
//!               u32 little-endian
//!      8   len  payload: one value encoded by [`codec`](super::codec)
//! ```
//! The checksum covers the length too, so a damaged length is caught even when it still
//! points inside the file. The cap is [`MAX_RECORD_FRAME`] (64 MiB) for log records and
//! [`MAX_CHECKPOINT_FRAME`] (1 GiB) for a checkpoint. A length is checked against the cap
//! and against the bytes left in the file before anything is read or allocated by it.
//!
//! A log segment is the header then one frame per [`Record`](crate::core::Record), in
//! submission order. A checkpoint file is the header then exactly one frame holding a
//! [`Checkpoint`](crate::core::Checkpoint), and nothing after it. Both are put in place
//! whole (written under a temporary name, synced, renamed), so a file under its final name
//! always starts with a complete header: a bad or short header is damage, never a torn
//! write.
//!
//! # Torn tail or damage
//! A crash can leave the end of the last segment partly written: a partial frame header, a
//! length that runs past the end of the file, or a complete-length frame whose bytes are
//! garbage or zeros (a torn sector). It can leave several such frames, when a batch of
//! frames was torn. It should not leave a valid frame after a bad one: frames are written
//! in order and a batch is synced before the next starts. Hence the rule, applied at the
//! first bad frame (partial header, zero length, length over the cap, length past the end
//! of the file, or checksum mismatch):
//! - **torn** if no valid frame starts at any later offset of the file: the tail from the
//!   bad frame on is dropped (truncated on open) and reported;
//! - **corrupt** if a valid frame starts at some later offset: data that was once followed
//!   by completed writes went bad, so acknowledged records may be lost, and opening fails
//!   with [`Error::Corrupt`](crate::Error::Corrupt) at the bad frame's offset; nothing
//!   cuts it implicitly.
//!
//! So a bad checksum on the final frame with nothing valid after it is torn, whatever its
//! cause. The rule errs towards corruption: a device that wrote back a later page of an
//! unsynced batch but not an earlier one leaves valid frames after a bad one, and opening
//! fails; the repair at the named offset then drops only records of that batch, none of
//! which was acknowledged. A frame whose checksum matches but whose payload does not decode was written
//! whole, so it is always corrupt. The search for a later valid frame spends at most
//! [`SEARCH_BUDGET`] bytes of checksumming; when it runs out the bad frame counts as
//! corrupt, never as torn.

use std::ops::Range;

/// Magic of a log segment.
pub const LOG_MAGIC: [u8; 8] = *b"OSNAPLOG";
/// Magic of a checkpoint file.
pub const CHECKPOINT_MAGIC: [u8; 8] = *b"OSNAPCKP";
/// The format version this build writes (and the newest it reads).
pub const FORMAT_VERSION: u32 = 2;
/// The oldest format version this build reads.
pub const OLDEST_READABLE_VERSION: u32 = 1;
/// Length of the file header.
pub const HEADER_LEN: usize = 12;
/// Length of a frame's `len` and `crc` fields.
pub const FRAME_HEADER_LEN: usize = 8;
/// The largest payload of a log frame (one record).
pub const MAX_RECORD_FRAME: u32 = 64 << 20;
/// The largest payload of a checkpoint frame (the whole state).
pub const MAX_CHECKPOINT_FRAME: u32 = 1 << 30;
/// The most payload bytes the torn-tail search checksums before it gives up (and reports
/// the bad frame as corrupt).
pub const SEARCH_BUDGET: usize = 256 << 20;

/// The header of a file with `magic`.
pub fn header(magic: [u8; 8]) -> [u8; HEADER_LEN] {
    let mut h = [0; HEADER_LEN];
    h[..8].copy_from_slice(&magic);
    h[8..].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    h
}

/// A header that is not valid: the offset of the first bad byte and the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadHeader {
    /// Offset of the first bad byte: 0 for the magic, 8 for the version, the file's length
    /// for a file shorter than a header.
    pub offset: u64,
    /// What is wrong.
    pub reason: String,
}

/// Checks the header of `bytes`, a whole file that should start with `magic`, and returns
/// its format version, one of [`OLDEST_READABLE_VERSION`] ..= [`FORMAT_VERSION`].
///
/// Files are put in place only with a whole, synced header (see `backend::install`), so a
/// short or wrong header is never a torn write.
pub fn check_header(bytes: &[u8], magic: [u8; 8]) -> Result<u32, BadHeader> {
    let n = bytes.len().min(8);
    if bytes[..n] != magic[..n] {
        return Err(BadHeader {
            offset: 0,
            reason: format!(
                "bad magic {:?}, expected {:?}",
                String::from_utf8_lossy(&bytes[..n]),
                String::from_utf8_lossy(&magic)
            ),
        });
    }
    let Some(version) = bytes.get(8..HEADER_LEN) else {
        return Err(BadHeader {
            offset: bytes.len() as u64,
            reason: format!(
                "file shorter than its header: {} of {HEADER_LEN} bytes",
                bytes.len()
            ),
        });
    };
    let version = u32::from_le_bytes(version.try_into().expect("4 bytes"));
    if !(OLDEST_READABLE_VERSION..=FORMAT_VERSION).contains(&version) {
        return Err(BadHeader {
            offset: 8,
            reason: format!(
                "unknown format version {version} (this build reads \
                 {OLDEST_READABLE_VERSION} to {FORMAT_VERSION})"
            ),
        });
    }
    Ok(version)
}

/// Starts a frame at the end of `out`; encode the payload after it, then call
/// [`finish_frame`] with the returned start.
pub fn begin_frame(out: &mut Vec<u8>) -> usize {
    let start = out.len();
    out.extend_from_slice(&[0; FRAME_HEADER_LEN]);
    start
}

/// Fills in the `len` and `crc` of the frame begun at `start`, whose payload is the rest of
/// `out`. Fails, removing the frame, when the payload is empty or longer than `max`.
pub fn finish_frame(out: &mut Vec<u8>, start: usize, max: u32) -> Result<(), String> {
    let payload = out.len() - start - FRAME_HEADER_LEN;
    let len = match u32::try_from(payload) {
        Ok(len) if (1..=max).contains(&len) => len,
        _ => {
            out.truncate(start);
            return Err(format!(
                "payload of {payload} bytes does not fit a frame (1..={max})"
            ));
        }
    };
    let len_bytes = len.to_le_bytes();
    let crc = crc32c::crc32c_append(crc32c::crc32c(&len_bytes), &out[start + FRAME_HEADER_LEN..]);
    out[start..start + 4].copy_from_slice(&len_bytes);
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    Ok(())
}

/// One step of reading frames: a frame, or the end of the good frames and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item<'a> {
    /// A frame whose checksum matches.
    Frame {
        /// Offset of the frame's `len` field in the file.
        offset: u64,
        /// The payload.
        payload: &'a [u8],
    },
    /// The bytes from `offset` to the end of the file are a torn tail.
    Torn {
        /// Where the tail begins.
        offset: u64,
        /// Why the bytes there are not a frame.
        reason: String,
    },
    /// The frame at `offset` is damaged and valid data follows it.
    Corrupt {
        /// The bad frame's offset.
        offset: u64,
        /// What is wrong with it.
        reason: String,
    },
}

/// The frames of a file, in order, classified by the torn-tail rule of this module. Ends
/// after the last good frame, or after one [`Item::Torn`] or [`Item::Corrupt`].
#[derive(Debug, Clone)]
pub struct Frames<'a> {
    bytes: &'a [u8],
    pos: usize,
    max: u32,
    done: bool,
}

impl<'a> Frames<'a> {
    /// The frames of the whole file `bytes` from offset `start` (usually [`HEADER_LEN`]),
    /// each at most `max` payload bytes.
    pub fn new(bytes: &'a [u8], start: usize, max: u32) -> Frames<'a> {
        Frames {
            bytes,
            pos: start.min(bytes.len()),
            max,
            done: false,
        }
    }

    /// Whether a valid frame starts at some offset after `pos`, within [`SEARCH_BUDGET`];
    /// `None` when the budget ran out first.
    fn valid_frame_after(&self, pos: usize) -> Option<Option<usize>> {
        let mut budget = SEARCH_BUDGET;
        for q in pos + 1..self.bytes.len() {
            match frame_at(self.bytes, q, self.max) {
                Ok(_) => return Some(Some(q)),
                Err(Defect { checksummed, .. }) => {
                    budget = budget.checked_sub(checksummed)?;
                }
            }
        }
        Some(None)
    }
}

impl<'a> Iterator for Frames<'a> {
    type Item = Item<'a>;

    fn next(&mut self) -> Option<Item<'a>> {
        if self.done || self.pos == self.bytes.len() {
            return None;
        }
        let offset = self.pos as u64;
        match frame_at(self.bytes, self.pos, self.max) {
            Ok(payload) => {
                self.pos = payload.end;
                Some(Item::Frame {
                    offset,
                    payload: &self.bytes[payload],
                })
            }
            Err(Defect { reason, .. }) => {
                self.done = true;
                Some(match self.valid_frame_after(self.pos) {
                    Some(None) => Item::Torn { offset, reason },
                    Some(Some(next)) => Item::Corrupt {
                        offset,
                        reason: format!("{reason}; a valid frame follows at offset {next}"),
                    },
                    None => Item::Corrupt {
                        offset,
                        reason: format!(
                            "{reason}; no valid frame found after it within the search \
                             budget, so it cannot be shown to be a torn tail"
                        ),
                    },
                })
            }
        }
    }
}

/// Why there is no valid frame at an offset, and how many payload bytes were checksummed
/// to find out.
struct Defect {
    reason: String,
    checksummed: usize,
}

/// The payload range of the frame at `pos`, if a valid frame starts there.
fn frame_at(bytes: &[u8], pos: usize, max: u32) -> Result<Range<usize>, Defect> {
    let defect = |reason: String| Defect {
        reason,
        checksummed: 0,
    };
    let rest = bytes.len() - pos;
    if rest < FRAME_HEADER_LEN {
        return Err(defect(format!(
            "frame header cut short: {rest} of {FRAME_HEADER_LEN} bytes"
        )));
    }
    let field = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
    let (len, stored) = (field(pos), field(pos + 4));
    let room = rest - FRAME_HEADER_LEN;
    if len == 0 {
        return Err(defect("frame length is zero".into()));
    }
    if len > max {
        return Err(defect(format!("frame length {len} exceeds the cap {max}")));
    }
    if len as usize > room {
        return Err(defect(format!(
            "frame length {len} runs past the end of the file ({room} bytes left)"
        )));
    }
    let payload = pos + FRAME_HEADER_LEN..pos + FRAME_HEADER_LEN + len as usize;
    let computed = crc32c::crc32c_append(
        crc32c::crc32c(&bytes[pos..pos + 4]),
        &bytes[payload.clone()],
    );
    if computed != stored {
        return Err(Defect {
            reason: format!("checksum mismatch: stored {stored:#010x}, computed {computed:#010x}"),
            checksummed: payload.len(),
        });
    }
    Ok(payload)
}
