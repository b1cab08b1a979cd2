//! The synchronisation primitives the rings are built from, switched to
//! `loom`'s model-checked versions under `cfg(loom)`.
//!
//! Nothing outside `ring` sees this module; everything inside `ring` takes its
//! atomics, cells, `Arc`, thread handles and spin hints from here and from
//! nowhere else, so that a `loom` build checks exactly the code that ships.

#[cfg(loom)]
pub(crate) use loom::{
    cell::UnsafeCell,
    sync::atomic::{fence, AtomicBool, AtomicU64, AtomicUsize, Ordering},
    sync::Arc,
    thread,
};

#[cfg(not(loom))]
pub(crate) use std::{
    sync::atomic::{fence, AtomicBool, AtomicU64, AtomicUsize, Ordering},
    sync::Arc,
    thread,
};

/// `std`'s `UnsafeCell` behind the closure API of `loom::cell::UnsafeCell`,
/// so both builds run the same code (under `loom` every access is checked for
/// races).
#[cfg(not(loom))]
#[derive(Debug)]
pub(crate) struct UnsafeCell<T>(core::cell::UnsafeCell<T>);

#[cfg(not(loom))]
impl<T> UnsafeCell<T> {
    /// Wraps `value`.
    #[inline]
    pub(crate) fn new(value: T) -> Self {
        Self(core::cell::UnsafeCell::new(value))
    }

    /// Runs `f` with a shared pointer to the contents.
    #[inline(always)]
    pub(crate) fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
        f(self.0.get())
    }

    /// Runs `f` with a mutable pointer to the contents.
    #[inline(always)]
    pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0.get())
    }
}

/// One turn of a busy-wait loop: the CPU's spin-loop hint, or under `loom` a
/// yield, so that the model checker schedules the other threads instead of
/// running the spinner forever.
#[inline]
pub(crate) fn spin_hint() {
    #[cfg(loom)]
    loom::hint::spin_loop();
    #[cfg(not(loom))]
    core::hint::spin_loop();
}

/// The spinning phase of the adaptive wait: `crossbeam_utils::Backoff`
/// (a few exponentially growing spins, then a few `yield_now`s).
#[cfg(not(loom))]
pub(crate) struct Backoff(crossbeam_utils::Backoff);

#[cfg(not(loom))]
impl Backoff {
    #[inline]
    pub(crate) fn new() -> Self {
        Self(crossbeam_utils::Backoff::new())
    }

    /// Spins or yields once, a little longer each time.
    #[inline]
    pub(crate) fn snooze(&self) {
        self.0.snooze();
    }

    /// True once spinning has gone on long enough that parking is cheaper.
    #[inline]
    pub(crate) fn is_completed(&self) -> bool {
        self.0.is_completed()
    }
}

/// Under `loom` the spinning phase is skipped: it only delays, it cannot
/// change what the protocol does, and every extra step multiplies the
/// interleavings the model checker has to explore. Waiters go straight to the
/// sleep protocol, which is the part worth checking.
#[cfg(loom)]
pub(crate) struct Backoff;

#[cfg(loom)]
impl Backoff {
    pub(crate) fn new() -> Self {
        Self
    }

    pub(crate) fn snooze(&self) {
        loom::thread::yield_now();
    }

    pub(crate) fn is_completed(&self) -> bool {
        true
    }
}
