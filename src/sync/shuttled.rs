//! shuttle's std-like primitives wrapped to parking_lot's signatures. A poisoned lock
//! (a thread panicked holding it) is taken as it is, as parking_lot would: the panic
//! already fails the shuttle test.

use shuttle::sync as sh;
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::PoisonError;

pub(crate) use sh::{RwLockReadGuard, RwLockWriteGuard};

/// [`parking_lot::Mutex`] over [`shuttle::sync::Mutex`].
#[derive(Default)]
pub(crate) struct Mutex<T: ?Sized>(sh::Mutex<T>);

/// The guard of [`Mutex`]. Invariant: `Some` except inside [`Condvar::wait`].
pub(crate) struct MutexGuard<'a, T: ?Sized>(Option<sh::MutexGuard<'a, T>>);

impl<T> Mutex<T> {
    #[track_caller]
    pub(crate) const fn new(value: T) -> Mutex<T> {
        Mutex(sh::Mutex::new(value))
    }

    #[allow(dead_code)] // parking_lot's API; not every build uses it
    pub(crate) fn into_inner(self) -> T {
        self.0.into_inner().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<T: ?Sized> Mutex<T> {
    pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
        MutexGuard(Some(self.0.lock().unwrap_or_else(PoisonError::into_inner)))
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for Mutex<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl<T: ?Sized> Deref for MutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.0.as_deref().expect("guard held outside Condvar::wait")
    }
}

impl<T: ?Sized> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        self.0
            .as_deref_mut()
            .expect("guard held outside Condvar::wait")
    }
}

/// [`parking_lot::Condvar`] over [`shuttle::sync::Condvar`].
#[derive(Default)]
pub(crate) struct Condvar(sh::Condvar);

impl Condvar {
    #[track_caller]
    pub(crate) const fn new() -> Condvar {
        Condvar(sh::Condvar::new())
    }

    /// Releases the guard's lock, sleeps until notified and locks it again.
    pub(crate) fn wait<T>(&self, guard: &mut MutexGuard<'_, T>) {
        let held = guard.0.take().expect("guard held outside Condvar::wait");
        guard.0 = Some(self.0.wait(held).unwrap_or_else(PoisonError::into_inner));
    }

    #[allow(dead_code)] // parking_lot's API; not every build uses it
    pub(crate) fn notify_one(&self) {
        self.0.notify_one();
    }

    pub(crate) fn notify_all(&self) {
        self.0.notify_all();
    }

    /// [`Condvar::wait`] for at most `timeout`. shuttle's own timed wait never times
    /// out, and a guard cannot be re-locked here, so this one times out at once without
    /// releasing the lock: a schedule in which the timeout elapsed before any other
    /// thread ran. Callers re-check their condition after it, as with any timed wait.
    pub(crate) fn wait_for<T>(
        &self,
        _guard: &mut MutexGuard<'_, T>,
        _timeout: std::time::Duration,
    ) {
    }
}

impl fmt::Debug for Condvar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// [`parking_lot::RwLock`] over [`shuttle::sync::RwLock`].
#[derive(Default)]
pub(crate) struct RwLock<T: ?Sized>(sh::RwLock<T>);

impl<T> RwLock<T> {
    #[track_caller]
    pub(crate) const fn new(value: T) -> RwLock<T> {
        RwLock(sh::RwLock::new(value))
    }
}

impl<T: ?Sized> RwLock<T> {
    pub(crate) fn read(&self) -> RwLockReadGuard<'_, T> {
        self.0.read().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn write(&self) -> RwLockWriteGuard<'_, T> {
        self.0.write().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLock<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}
