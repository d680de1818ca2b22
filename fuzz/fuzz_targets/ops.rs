//! cargo-fuzz target `ops`: see `overlaysnap_fuzz::ops` (fuzz/src/ops.rs) for what it
//! feeds in and checks. Run it with `cargo fuzz run -s none ops` (fuzz/README.md).
#![no_main]

use libfuzzer_sys::fuzz_target;

/// Every allocation is measured, so that a length read from the input cannot size one.
#[global_allocator]
static ALLOC: overlaysnap_fuzz::alloc_guard::Tracking = overlaysnap_fuzz::alloc_guard::Tracking;

fuzz_target!(|data: &[u8]| overlaysnap_fuzz::ops(data));
