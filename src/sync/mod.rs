//! The crate's lock primitives, with parking_lot's API: `lock()`, `read()` and `write()`
//! return the guard itself (no poisoning), and [`Condvar::wait`] takes `&mut` guard.
//!
//! A normal build re-exports parking_lot's types unchanged. A build with
//! `RUSTFLAGS="--cfg shuttle"` puts shuttle's primitives behind the same signatures, so that
//! `tests/shuttle_snapshotter.rs` can drive the snapshotter's and the journal's locking
//! through randomized schedules (shuttle controls every lock, unlock, wait and notify, and
//! the threads the test spawns with `shuttle::thread`). Such a build is for that test
//! alone: shuttle's primitives panic outside a shuttle execution (`shuttle::Runner::run`).
//!
//! [`Beacon`] (a wake-everyone signal) and the atomics that threads synchronise through
//! switch too. What stays `std` in both builds: `Arc` (shuttle's is `std`'s too)
//! and the atomics that order nothing and guard nothing (the `closed` flag and the
//! temp-name counter; a shuttle atomic in a `static` would also outlive the execution that
//! created it).

mod beacon;
#[cfg(shuttle)]
mod shuttled;

pub(crate) use beacon::Beacon;
#[cfg(not(shuttle))]
pub(crate) use parking_lot::{Condvar, Mutex, MutexGuard, RwLock};
#[cfg(not(shuttle))]
#[allow(unused_imports)] // for code that names a guard; none does yet
pub(crate) use parking_lot::{RwLockReadGuard, RwLockWriteGuard};
#[cfg(not(shuttle))]
pub(crate) use std::sync::atomic::{AtomicBool, AtomicU64};

#[cfg(shuttle)]
pub(crate) use self::shuttled::{Condvar, Mutex, MutexGuard, RwLock};
#[cfg(shuttle)]
#[allow(unused_imports)] // for code that names a guard; none does yet
pub(crate) use self::shuttled::{RwLockReadGuard, RwLockWriteGuard};
#[cfg(shuttle)]
pub(crate) use shuttle::sync::atomic::{AtomicBool, AtomicU64};
