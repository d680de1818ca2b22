//! Catches allocations sized by a length read from the input, not by the input's size.
//!
//! libFuzzer's `-malloc_limit_mb` needs a sanitizer's allocator hooks, so it does nothing
//! in the `-s none` builds this project runs on stable. Instead the harness installs
//! [`Tracking`] as the global allocator, and [`largest_allocation`] reports the largest
//! single request (alloc, zeroed alloc or realloc) made by the current thread while a
//! closure ran. Lazily zeroed pages make such an allocation nearly free in RSS, so an
//! RSS limit would not catch it either; on a smaller or busier machine it is an abort.
//!
//! Other threads (the test harness runs tests in parallel) are not counted: the counters
//! are thread-local and are only read and written from `const`-initialised cells, which
//! need no allocation and no destructor.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::OnceLock;

/// Allocation slack that any input may use, whatever its size: serde's cautious
/// pre-allocation of a sequence alone may take 1 MiB.
pub const SLACK: usize = 2 << 20;

/// How many bytes of allocation one byte of input may justify.
pub const PER_INPUT_BYTE: usize = 16;

/// The environment variable that replaces [`limit`] with a fixed number of MiB, to explore
/// past a known, still open finding (see fuzz/README.md); never set it in CI.
pub const LIMIT_OVERRIDE: &str = "OVERLAYSNAP_FUZZ_ALLOC_LIMIT_MB";

/// The largest single allocation a computation over `input_len` bytes may make:
/// [`SLACK`] plus [`PER_INPUT_BYTE`] per byte, unless [`LIMIT_OVERRIDE`] is set.
pub fn limit(input_len: usize) -> usize {
    static OVERRIDE: OnceLock<Option<usize>> = OnceLock::new();
    let fixed = OVERRIDE.get_or_init(|| {
        let mb = std::env::var(LIMIT_OVERRIDE).ok()?;
        Some(mb.trim().parse::<usize>().ok()?.saturating_mul(1 << 20))
    });
    fixed.unwrap_or_else(|| SLACK.saturating_add(input_len.saturating_mul(PER_INPUT_BYTE)))
}

thread_local! {
    static ARMED: Cell<bool> = const { Cell::new(false) };
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

/// The system allocator, recording the largest request of the current thread while armed.
pub struct Tracking;

fn record(size: usize) {
    // `try_with`: the allocator may run while the thread's locals are being torn down.
    let _ = ARMED.try_with(|armed| {
        if armed.get() {
            let _ = LARGEST.try_with(|largest| largest.set(largest.get().max(size)));
        }
    });
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged.
unsafe impl GlobalAlloc for Tracking {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        record(layout.size());
        System.alloc(layout)
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        record(layout.size());
        System.alloc_zeroed(layout)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        record(new_size);
        System.realloc(ptr, layout, new_size)
    }
}

/// Runs `f` and returns its result with the largest single allocation it made on this
/// thread. Not reentrant.
pub fn largest_allocation<R>(f: impl FnOnce() -> R) -> (R, usize) {
    /// Disarms on the way out, also when `f` panics.
    struct Armed;
    impl Drop for Armed {
        fn drop(&mut self) {
            ARMED.with(|a| a.set(false));
        }
    }
    LARGEST.with(|l| l.set(0));
    ARMED.with(|a| a.set(true));
    let armed = Armed;
    let result = f();
    drop(armed);
    (result, LARGEST.with(Cell::get))
}

/// Whether [`Tracking`] is the global allocator of this process.
pub fn installed() -> bool {
    let (_, largest) = largest_allocation(|| std::hint::black_box(vec![0u8; 4321]));
    largest >= 4321
}

/// Runs `f` on `input_len` bytes of input and panics, naming `what`, if it made an
/// allocation larger than [`limit`]`(input_len)`.
///
/// # Panics
///
/// When [`Tracking`] is not the global allocator, or on such an allocation.
pub fn bounded<R>(what: &str, input_len: usize, f: impl FnOnce() -> R) -> R {
    assert!(
        installed(),
        "alloc_guard::Tracking is not the global allocator: the allocation check would pass \
         vacuously"
    );
    let (result, largest) = largest_allocation(f);
    let limit = limit(input_len);
    assert!(
        largest <= limit,
        "{what}: one allocation of {largest} bytes for {input_len} bytes of input (limit \
         {limit}): a length read from the input sized it unchecked"
    );
    result
}
