//! The slot array both rings store their items in: allocated once, a power of
//! two long, indexed by a free-running cursor masked to the array.
//!
//! The array knows nothing of which slots hold a value; the cursors of the
//! ring that owns it do. Every method that touches a slot is `unsafe` and
//! states which cursor invariant its caller must uphold.

use core::mem::MaybeUninit;

use super::sync::UnsafeCell;

/// A fixed array of possibly-uninitialised slots.
pub(crate) struct Buffer<T> {
    /// The slots. Its length is `mask + 1`, a power of two, and never changes.
    slots: Box<[UnsafeCell<MaybeUninit<T>>]>,
    /// `slots.len() - 1`: `position & mask` is the slot of a cursor position.
    mask: usize,
}

impl<T> Buffer<T> {
    /// Allocates `capacity` rounded up to a power of two slots, all
    /// uninitialised. This is the only allocation a ring ever makes.
    ///
    /// # Panics
    ///
    /// If `capacity` is 0 or larger than `usize::MAX / 4` (past that, the
    /// distance between two cursors would no longer fit the arithmetic).
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        assert!(capacity > 0, "a ring needs a capacity of at least 1");
        assert!(
            capacity <= usize::MAX / 4,
            "ring capacity {capacity} is too large"
        );
        let len = capacity.next_power_of_two();
        let slots = (0..len)
            .map(|_| UnsafeCell::new(MaybeUninit::uninit()))
            .collect::<Vec<_>>()
            .into_boxed_slice();
        Self {
            slots,
            mask: len - 1,
        }
    }

    /// The number of slots (a power of two).
    #[inline]
    pub(crate) fn capacity(&self) -> usize {
        self.mask + 1
    }

    /// The slot of cursor position `position`.
    #[inline(always)]
    fn slot(&self, position: usize) -> &UnsafeCell<MaybeUninit<T>> {
        // SAFETY: `position & mask <= mask = slots.len() - 1`: the index is
        // always in bounds, whatever `position` is.
        unsafe { self.slots.get_unchecked(position & self.mask) }
    }

    /// Moves `value` into the slot of `position`, without dropping what the
    /// slot held before (it holds nothing, or a value that was moved out or is
    /// `Copy`).
    ///
    /// # Safety
    ///
    /// The caller has exclusive access to the slot: no other thread reads or
    /// writes it until the caller publishes `position` with a `Release` store
    /// of its cursor, and every reader of the slot's previous value has
    /// released it (the caller read that reader's cursor past it with
    /// `Acquire`).
    #[inline(always)]
    pub(crate) unsafe fn write(&self, position: usize, value: T) {
        self.slot(position).with_mut(|slot| {
            // SAFETY: exclusive access, per this function's contract.
            unsafe { (*slot).write(value) };
        });
    }

    /// Moves the value out of the slot of `position`, leaving it logically
    /// uninitialised.
    ///
    /// # Safety
    ///
    /// The slot holds an initialised value published to the caller (it read
    /// the writer's cursor past `position` with `Acquire`), and the caller is
    /// the only one who will ever take it out: it advances its own cursor past
    /// `position` before anyone could read the slot again.
    #[inline(always)]
    pub(crate) unsafe fn take(&self, position: usize) -> T {
        self.slot(position).with(|slot| {
            // SAFETY: initialised and ours to take, per this function's contract.
            unsafe { (*slot).assume_init_read() }
        })
    }

    /// Runs `f` on a shared reference to the value in the slot of `position`.
    ///
    /// # Safety
    ///
    /// The slot holds an initialised value published to the caller (it read
    /// the writer's cursor past `position` with `Acquire`), and the writer
    /// will not overwrite it while `f` runs (the caller's own cursor, which
    /// the writer waits for, is still at or before `position`).
    #[inline(always)]
    pub(crate) unsafe fn with_ref<R>(&self, position: usize, f: impl FnOnce(&T) -> R) -> R {
        self.slot(position).with(|slot| {
            // SAFETY: initialised, and not written while we hold it, per this
            // function's contract.
            f(unsafe { (*slot).assume_init_ref() })
        })
    }

    /// Drops the value in the slot of `position` in place.
    ///
    /// # Safety
    ///
    /// The slot holds an initialised value that nobody will read again: only
    /// the ring's own `Drop`, which has exclusive access to the whole buffer,
    /// calls this, on the positions between the consumer's and the producer's
    /// cursors.
    pub(crate) unsafe fn drop_in_place(&self, position: usize) {
        self.slot(position).with_mut(|slot| {
            // SAFETY: initialised and never read again, per this function's
            // contract.
            unsafe { (*slot).assume_init_drop() };
        });
    }
}
