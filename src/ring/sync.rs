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

/// The asymmetric store-load barrier of [`WaitStrategy::Membarrier`]
/// (`wait.rs` says why): a publisher's half costs nothing at run time, and a
/// sleeper's half is the `membarrier(2)` system call, which makes every
/// running thread of the process execute a full barrier before it returns.
/// The Linux kernel's own pairing of `membarrier` with compiler barriers in
/// user space (`man 2 membarrier`) is what makes the pair as strong as a
/// `SeqCst` fence on both sides.
///
/// Under `loom` both halves are `SeqCst` fences: the model checks the sleep
/// protocol's logic as it stands with symmetric fences, which is what the
/// pair stands for; it cannot model the system call itself.
///
/// [`WaitStrategy::Membarrier`]: super::WaitStrategy::Membarrier
#[cfg(not(loom))]
pub(crate) mod barrier {
    use std::sync::atomic::{compiler_fence, Ordering};
    use std::sync::OnceLock;

    use rustix::thread::{membarrier, membarrier_query, MembarrierCommand};

    static REGISTERED: OnceLock<bool> = OnceLock::new();

    /// Registers the process for private expedited barriers, once; true if
    /// the kernel offers them (Linux 4.14 and later, unless a seccomp
    /// profile forbids the call). Every ring that uses the pair calls this
    /// when it is built, so the registration happens before any `heavy`.
    pub(crate) fn register() -> bool {
        *REGISTERED.get_or_init(|| {
            membarrier_query().contains_command(MembarrierCommand::PrivateExpedited)
                && membarrier(MembarrierCommand::RegisterPrivateExpedited).is_ok()
        })
    }

    /// The publisher's half: only keeps the compiler from moving the
    /// sleeping-flag load above the publishing store. The CPU may still
    /// hold the store in its store buffer; `heavy` drains it.
    #[inline(always)]
    pub(crate) fn light() {
        compiler_fence(Ordering::SeqCst);
    }

    /// The sleeper's half: a full barrier on every CPU that runs a thread of
    /// this process (an interrupt to each), so whatever a publisher stored
    /// before its `light` is visible once this returns, or the publisher
    /// sees the flag stored before this.
    ///
    /// # Panics
    ///
    /// If the kernel refuses the barrier after `register` succeeded, which
    /// it documents as impossible: carrying on would allow a lost wake-up.
    pub(crate) fn heavy() {
        membarrier(MembarrierCommand::PrivateExpedited)
            .expect("membarrier(PRIVATE_EXPEDITED) after a successful registration");
    }
}

#[cfg(loom)]
pub(crate) mod barrier {
    use loom::sync::atomic::{fence, Ordering};

    pub(crate) fn register() -> bool {
        true
    }

    pub(crate) fn light() {
        fence(Ordering::SeqCst);
    }

    pub(crate) fn heavy() {
        fence(Ordering::SeqCst);
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
