//! How a ring's two sides wait for each other: the wait strategies, the
//! [`Wake`] hook for threads that sleep somewhere other than `thread::park`,
//! and the sleep protocol (`Sleeper`) that makes a lost wake-up impossible.
//!
//! The protocol is Dekker's: the waiter raises its `sleeping` flag, then
//! re-checks the ring, and blocks only if the ring still gives it nothing to
//! do; the notifier first publishes (a `Release` store of its cursor), then
//! looks at the flag, and wakes the waiter only if the flag is up. A `SeqCst`
//! fence sits between the store and the load on both sides, so of the two
//! fences one comes first in the single total order of `SeqCst` operations:
//! if the waiter's comes first, the notifier sees the flag and wakes it; if the
//! notifier's comes first, the waiter's re-check sees the new cursor and does
//! not block. Under load the waiter is never asleep, the flag is never up, and
//! the notifier pays one fence and one load of a cache line nobody writes: no
//! system call.
//!
//! That fence is the price of `Adaptive`: it waits until the cursor store has
//! reached the cache line the other side polls. In `benches/ring.rs` on the
//! two-core development VM, one item at a time costs about 55 ns an item
//! under `Adaptive` against about 25 under `Spin`: a consumer that keeps up
//! reads the lines the producer writes next, and each fence waits for them
//! to come back (docs/BENCHMARKS.md). Bursts share one fence. Publishing
//! with a `SeqCst` store (`xchg`) instead of a `Release` store and a fence
//! measured the same.
//!
//! `Membarrier` moves the whole cost onto the side that sleeps: the notifier
//! pays only a compiler barrier, and the waiter, after raising its flag,
//! calls `membarrier(2)`, which runs a full barrier on every CPU that runs a
//! thread of this process, the notifier's among them (`sync::barrier`). The
//! argument above holds with that pair in place of the two fences. It wins
//! when sleeps are rare next to publishes, and loses when they are not: each
//! sleep interrupts the other CPUs (docs/BENCHMARKS.md has both).

use core::fmt;
use core::str::FromStr;

use super::sync::{barrier, fence, thread, AtomicBool, Ordering, UnsafeCell};

/// How a side of a ring waits when it cannot go on (the consumer on an empty
/// ring, the producer on a full one).
///
/// The strategy is chosen for the whole ring when it is built, because the
/// other side's cost depends on it: only under [`Adaptive`](Self::Adaptive)
/// and [`Membarrier`](Self::Membarrier) does a publisher have to check for a
/// sleeper after each publish.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum WaitStrategy {
    /// Spin briefly (`crossbeam_utils::Backoff`: a few exponentially longer
    /// spins, then a few `yield_now`s), then sleep until the other side wakes
    /// this one. An idle ring costs no CPU; a busy ring costs each publish one
    /// `SeqCst` fence and one load. The default, because the box may have two
    /// cores shared with a load generator.
    #[default]
    Adaptive,
    /// Busy-spin with the CPU's spin-loop hint and never sleep, for dedicated
    /// cores: the lowest hand-off latency, a whole core burnt while idle, and
    /// no fence on publish. Under this strategy `prepare_sleep` always
    /// answers `false`: an external sleeper has to poll.
    Spin,
    /// Wait as `Adaptive` does, with the sleep protocol's barrier made
    /// asymmetric: a publish costs a load and no fence, and each time a side
    /// goes to sleep it calls `membarrier(2)`, which interrupts every other
    /// CPU running a thread of the process. For rings whose sides publish
    /// far more often than they sleep. A ring built with it on a kernel
    /// without private expedited `membarrier` (before Linux 4.14, or a
    /// seccomp profile that forbids it) runs as `Adaptive`; its `strategy()`
    /// says which.
    Membarrier,
}

impl WaitStrategy {
    /// The name `FromStr` accepts and `Display` prints.
    pub fn as_str(self) -> &'static str {
        match self {
            WaitStrategy::Adaptive => "adaptive",
            WaitStrategy::Spin => "spin",
            WaitStrategy::Membarrier => "membarrier",
        }
    }

    /// True if a waiter may sleep, so a publisher must look for one.
    #[inline(always)]
    pub(crate) fn may_sleep(self) -> bool {
        !matches!(self, WaitStrategy::Spin)
    }

    /// The strategy a ring asked for `self` runs with: `Membarrier` where
    /// the kernel offers it, else `Adaptive`.
    pub(crate) fn effective(self) -> Self {
        match self {
            WaitStrategy::Membarrier if !barrier::register() => WaitStrategy::Adaptive,
            other => other,
        }
    }

    /// Whether a ring waiting this way lays small items out spread, one to
    /// a cache line among their neighbours (`Buffer`'s `spread`).
    ///
    /// Not under `Adaptive`. In `benches/ring.rs` (`u64` items, two-core
    /// VM, alternating builds) spreading took one item at a time from
    /// 22–27 ns to 5–11 under `Spin` and from 21–30 to 5–11 under
    /// `Membarrier`, but from 47–63 to 74–88 under `Adaptive`, whose
    /// publish waits in its fence for the stores to leave the core; why
    /// the spread lines are slower to leave, the VM (no performance
    /// counters) cannot show. Bursts of 16 and 256 cost 2.5 ns an item
    /// packed and 3.2–3.4 spread under `Spin`, and no more under the others.
    #[inline]
    pub(crate) fn spreads_items(self) -> bool {
        !matches!(self, WaitStrategy::Adaptive)
    }

    /// The notifier's half of the store-load barrier, between its publish
    /// and its look at the sleeping flags (once for all of them: a
    /// broadcast writer checks every reader after one).
    #[inline(always)]
    pub(crate) fn publish_barrier(self) {
        match self {
            WaitStrategy::Membarrier => barrier::light(),
            _ => fence(Ordering::SeqCst),
        }
    }

    /// The waiter's half, between raising its flag and re-checking the ring.
    #[inline]
    fn sleep_barrier(self) {
        match self {
            WaitStrategy::Membarrier => barrier::heavy(),
            _ => fence(Ordering::SeqCst),
        }
    }
}

impl fmt::Display for WaitStrategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of parsing a [`WaitStrategy`] from a name other than `adaptive`,
/// `spin` or `membarrier`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseWaitStrategyError {
    /// The name that was given.
    pub given: String,
}

impl fmt::Display for ParseWaitStrategyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown wait strategy {:?}: expected \"adaptive\", \"spin\" or \"membarrier\"",
            self.given
        )
    }
}

impl std::error::Error for ParseWaitStrategyError {}

impl FromStr for WaitStrategy {
    type Err = ParseWaitStrategyError;

    /// Parses `adaptive`, `spin` or `membarrier` (ASCII case ignored,
    /// surrounding spaces trimmed).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let name = s.trim();
        [
            WaitStrategy::Adaptive,
            WaitStrategy::Spin,
            WaitStrategy::Membarrier,
        ]
        .into_iter()
        .find(|strategy| name.eq_ignore_ascii_case(strategy.as_str()))
        .ok_or_else(|| ParseWaitStrategyError {
            given: s.to_owned(),
        })
    }
}

/// What a blocking `wait()` on the consuming side of a ring found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitResult {
    /// This many items (at least one) are ready to be consumed.
    Ready(usize),
    /// The producing side has closed (or was dropped) and every item it
    /// published has been consumed: the stream is over.
    Closed,
}

/// Something that can wake a thread sleeping on a ring.
///
/// The consuming side of a ring sleeps in `thread::park` by default and is
/// woken by `Thread::unpark`. A thread that sleeps elsewhere, such as a mio
/// event loop blocked in `Poll::poll`, installs its own `Wake` (for example
/// one that calls `mio::Waker::wake`) and follows the `prepare_sleep` /
/// `finish_sleep` protocol of its consumer.
///
/// `wake` is called from the producing thread, only when the sleeper has
/// announced that it is (about to be) asleep; it may be called when the
/// sleeper is already awake, and must be harmless then. It should be quick
/// and must not block: the producer may be the matching thread.
pub trait Wake: Send + Sync {
    /// Wakes the sleeper (or makes its next sleep return at once).
    fn wake(&self);
}

impl Wake for std::thread::Thread {
    fn wake(&self) {
        self.unpark();
    }
}

#[cfg(loom)]
impl Wake for loom::thread::Thread {
    fn wake(&self) {
        self.unpark();
    }
}

/// Who to wake when a side of a ring is asleep.
pub(crate) enum Waiter {
    /// Not installed yet: the side has never slept.
    None,
    /// The side's own thread, sleeping in `thread::park`.
    Thread(thread::Thread),
    /// A sleeper of the user's own (a mio loop, for instance).
    External(std::sync::Arc<dyn Wake>),
}

/// One side's half of the sleep protocol: its `sleeping` flag and whom to wake.
///
/// Only the side that owns this `Sleeper` (the waiting side) installs the
/// waiter and moves the flag; only the other side (the notifier) reads them.
pub(crate) struct Sleeper {
    /// Up while the waiting side is asleep or about to block.
    ///
    /// Written only by the waiting side: `true` with `SeqCst` in
    /// [`announce`](Self::announce) (followed by the waiter's barrier), `false`
    /// with `Relaxed` in [`retract`](Self::retract) (a stale `true` seen by
    /// the notifier costs at most one spurious wake-up, which every waiter
    /// tolerates). Read only by the notifier, with `Acquire`, after the
    /// `SeqCst` fence that follows its publish; `Acquire` makes the installed
    /// [`waiter`](Self::waiter) visible to it.
    sleeping: AtomicBool,
    /// Whom to wake. Written at most once, by the waiting side, before the
    /// first time it raises `sleeping`, and never again; read by the notifier
    /// only after it has seen `sleeping == true`, which happens after that
    /// write. So no read ever overlaps a write.
    waiter: UnsafeCell<Waiter>,
}

impl Sleeper {
    pub(crate) fn new() -> Self {
        Self {
            sleeping: AtomicBool::new(false),
            waiter: UnsafeCell::new(Waiter::None),
        }
    }

    /// Installs whom to wake.
    ///
    /// # Safety
    ///
    /// Called only by the waiting side (the unique owner of this half of the
    /// ring), and only while no waiter is installed yet, that is before this
    /// side has ever called [`announce`](Self::announce): until then no
    /// notifier has seen `sleeping == true`, so none reads the slot.
    pub(crate) unsafe fn install(&self, waiter: Waiter) {
        self.waiter.with_mut(|slot| {
            // SAFETY: no notifier reads the slot before the first `announce`,
            // which the caller has not made yet (this function's contract).
            unsafe { *slot = waiter };
        });
    }

    /// Raises the flag: from here on, every publish of the other side wakes
    /// this side. The caller must re-check the ring afterwards and block only
    /// if there is still nothing to do, then [`retract`](Self::retract).
    #[inline]
    pub(crate) fn announce(&self, strategy: WaitStrategy) {
        self.sleeping.store(true, Ordering::SeqCst);
        // Orders the store before the caller's re-check of the ring (a plain
        // `SeqCst` store could be reordered after a later `Acquire` load).
        strategy.sleep_barrier();
    }

    /// Lowers the flag after waking (or after deciding not to sleep).
    #[inline]
    pub(crate) fn retract(&self) {
        self.sleeping.store(false, Ordering::Relaxed);
    }

    /// The notifier's half: after a `Release` publish, the strategy's
    /// barrier, then wake the waiting side if its flag is up.
    #[inline]
    pub(crate) fn notify(&self, strategy: WaitStrategy) {
        strategy.publish_barrier();
        self.notify_after_barrier();
    }

    /// [`notify`](Self::notify) for a caller that has already issued the
    /// notifier's barrier ([`WaitStrategy::publish_barrier`]) after its
    /// publish.
    #[inline]
    pub(crate) fn notify_after_barrier(&self) {
        if self.sleeping.load(Ordering::Acquire) {
            self.waiter.with(|waiter| {
                // SAFETY: we saw `sleeping == true` with `Acquire`, so the
                // waiter's one and only write of the slot (made before its
                // first `announce`) happened before this read, and the slot
                // is never written again.
                unsafe { (*waiter).wake() }
            });
        }
    }
}

impl Waiter {
    fn wake(&self) {
        match self {
            Waiter::None => {}
            Waiter::Thread(thread) => thread.unpark(),
            Waiter::External(wake) => wake.wake(),
        }
    }
}

/// The waiting side's record of which waiter it installed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Installed {
    /// None yet.
    Nothing,
    /// Its own thread handle, captured at the first blocking wait.
    OwnThread,
    /// A [`Wake`] given with `set_waker`.
    External,
}

impl Installed {
    /// Installs the current thread as the waiter if nothing is installed yet.
    ///
    /// # Safety
    ///
    /// `self` is the waiting side's record for `sleeper`, kept by its unique
    /// owner, who calls this through `&mut`.
    pub(crate) unsafe fn ensure_thread(&mut self, sleeper: &Sleeper) {
        if *self == Installed::Nothing {
            // SAFETY: nothing installed yet means this side has never
            // announced; we are its unique owner (this function's contract).
            unsafe { sleeper.install(Waiter::Thread(thread::current())) };
            *self = Installed::OwnThread;
        }
    }

    /// Installs an external waker.
    ///
    /// # Safety
    ///
    /// As for [`ensure_thread`](Self::ensure_thread).
    ///
    /// # Panics
    ///
    /// If a waiter is already installed (by an earlier `set_waker`, or by a
    /// blocking wait that captured the thread).
    pub(crate) unsafe fn external(&mut self, sleeper: &Sleeper, wake: std::sync::Arc<dyn Wake>) {
        assert!(
            *self == Installed::Nothing,
            "set_waker must be called once, before the first wait or prepare_sleep"
        );
        // SAFETY: nothing installed yet means this side has never announced;
        // we are its unique owner (this function's contract).
        unsafe { sleeper.install(Waiter::External(wake)) };
        *self = Installed::External;
    }
}

/// Parks the current thread (the shim's `park`: `loom`'s under `cfg(loom)`).
#[inline]
pub(crate) fn park() {
    thread::park();
}
