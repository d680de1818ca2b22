//! overlaysnap: a containerd-compatible overlay snapshotter with a pure, model-checked core.

pub mod core;
pub mod error;

pub use error::{Error, ErrorKind, Result};
