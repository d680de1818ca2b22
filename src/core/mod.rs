//! The pure core: snapshot state, commands, records and filters.
//!
//! Nothing in this module performs I/O, reads a clock, draws randomness or takes a lock.
//! [`State::decide`] checks a [`Command`] against the state and yields a [`Record`] (or
//! the precise error, leaving the state untouched); [`State::apply`] applies a record
//! deterministically. The effect layer persists records before applying them.

pub mod command;
pub mod filter;
pub mod info;
pub mod kind;
pub mod labels;
pub mod record;
pub mod size;
pub mod state;

pub use command::Command;
pub use filter::Filter;
pub use info::{Info, Timestamp, Usage};
pub use kind::Kind;
pub use labels::{validate_key, validate_labels, Labels, MAX_LABEL_SIZE};
pub use record::Record;
pub use size::{max_size, parse_size, MAX_SIZE_LABEL};
pub use state::{Checkpoint, KindCounts, MountPlan, Snapshot, State};
