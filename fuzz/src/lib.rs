//! The bodies of overlaysnap's fuzz targets, as plain functions over bytes.
//!
//! Each cargo-fuzz target in `fuzz_targets/` is one line that calls a function here, and
//! the main crate's `tests/fuzz_corpus.rs` includes this very file (with `#[path]`) to
//! replay every checked-in corpus and regression file on stable Rust, so `cargo test`
//! guards every past finding without cargo-fuzz or a nightly toolchain. Hence these files
//! use only what the main crate's dev-dependencies have: `overlaysnap`,
//! `overlaysnap-model` and `arbitrary`.
//!
//! - [`records()`]: bytes as journal payloads, log segments and checkpoint files: decoding
//!   and opening yield a value or an error, never a panic, and never an allocation out of
//!   proportion to the input (see [`alloc_guard`]).
//! - [`filters()`]: text as filter strings: the core's parser and matcher agree with the
//!   reference model's on acceptance and on which snapshots match.
//! - [`ops()`]: bytes as a [`ops::Scenario`] of commands, restarts, crashes and injected
//!   I/O faults: the core over the fault-injecting journal agrees with the model, and every
//!   recovery yields the model after a prefix that holds every acknowledged command.
//!
//! Every body panics on a finding (that is how libFuzzer sees it) with a message that says
//! which rule broke.
//!
//! A harness that calls [`records()`] must install [`alloc_guard::Tracking`] as its global
//! allocator; [`records()`] panics if it is missing rather than pass vacuously.

pub mod alloc_guard;
pub mod filters;
pub mod ops;
pub mod records;
pub mod seeds;

pub use filters::filters;
pub use ops::ops;
pub use records::records;
