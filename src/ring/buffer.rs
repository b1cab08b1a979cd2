//! The slot array both rings store their items in: allocated once, a power of
//! two long, indexed by a free-running cursor masked to the array.
//!
//! The array knows nothing of which slots hold a value; the cursors of the
//! ring that owns it do. Every method that touches a slot is `unsafe` and
//! states which cursor invariant its caller must uphold.

use core::mem::MaybeUninit;

use super::sync::UnsafeCell;

/// The cache line size the slots are laid out for (x86-64 and most ARM).
const LINE: usize = 64;

/// One slot: as large as `T` and aligned as `T` (both wrappers are
/// transparent), except under `loom`, whose cell tracks accesses.
type Slot<T> = UnsafeCell<MaybeUninit<T>>;

/// A fixed array of possibly-uninitialised slots.
pub(crate) struct Buffer<T> {
    /// The slots: `mask + 1` of them (a power of two) from `first` on; the
    /// `first` before them and any after them are padding, never touched.
    slots: Box<[Slot<T>]>,
    /// The index in `slots` of the ring's first slot: the first on a line
    /// boundary if the ring is spread, else 0.
    first: usize,
    /// The ring's length less one: `position & mask` is a cursor
    /// position's place in the ring, before [`spread`](Self::spread) moves
    /// it to its slot.
    mask: usize,
    /// How many low bits of a place swap with the bits above them, so that
    /// neighbouring places land on different cache lines: 0 (no swap), or
    /// `log2(64 / size_of::<T>())` in a ring built [`spread`](Self::with_capacity)
    /// of items at most 32 bytes long and aligned to their size (`u64`,
    /// `u32`, a `Box` or an `Arc`), at least `(64 / size)²` slots.
    ///
    /// Packed, eight `u64`s share a line, and a consumer reading item `i`
    /// holds the line its producer is writing item `i + 1` into: the line
    /// crosses between the two cores for every item. Spread, item `i + 1`
    /// is 64 bytes from item `i`, and a line is written again only
    /// `64 / size` items later (the swap of `atomic_queue`'s index
    /// remapping).
    spread: u32,
}

impl<T> Buffer<T> {
    /// Allocates `capacity` rounded up to a power of two slots, all
    /// uninitialised. This is the only allocation a ring ever makes.
    /// `spread`: lay small items out one to a line among their neighbours
    /// (see [`spread`](Self::spread)); it changes where items live, never
    /// which positions the cursors allow.
    ///
    /// # Panics
    ///
    /// If `capacity` is 0 or larger than `usize::MAX / 4` (past that, the
    /// distance between two cursors would no longer fit the arithmetic).
    pub(crate) fn with_capacity(capacity: usize, spread: bool) -> Self {
        assert!(capacity > 0, "a ring needs a capacity of at least 1");
        assert!(
            capacity <= usize::MAX / 4,
            "ring capacity {capacity} is too large"
        );
        let len = capacity.next_power_of_two();
        let spread = if spread { Self::spread_for(len) } else { 0 };
        let size = core::mem::size_of::<Slot<T>>();
        // A spread ring gets one line's worth of slots more, to start its
        // first slot on a line boundary: the swap assumes whole lines.
        let pad = if spread > 0 { LINE / size } else { 0 };
        let slots = (0..len + pad)
            .map(|_| UnsafeCell::new(MaybeUninit::uninit()))
            .collect::<Vec<_>>()
            .into_boxed_slice();
        // The slots' address is a multiple of `size` (`spread_for` asks for
        // an alignment of `size`), and so is a line: `first` is a whole
        // number of slots, less than `pad`.
        let first = if spread > 0 {
            (LINE - slots.as_ptr() as usize % LINE) % LINE / size
        } else {
            0
        };
        Self {
            slots,
            first,
            mask: len - 1,
            spread,
        }
    }

    /// The [`spread`](Self::spread) of a ring of `len` slots of `T`.
    fn spread_for(len: usize) -> u32 {
        let size = core::mem::size_of::<Slot<T>>();
        // Aligned to its size, a slot can start a line: no item straddles
        // two lines. (A power of two at most `LINE / 2` divides `LINE`.)
        let aligned = size == core::mem::align_of::<Slot<T>>();
        if size == 0 || size > LINE / 2 || !aligned {
            return 0;
        }
        let bits = (LINE / size).trailing_zeros();
        if len >> (2 * bits) == 0 {
            return 0; // too small to spread over whole blocks
        }
        bits
    }

    /// The number of slots (a power of two).
    #[inline]
    pub(crate) fn capacity(&self) -> usize {
        self.mask + 1
    }

    /// The bytes [`with_capacity`](Self::with_capacity) allocates for the
    /// slots of a packed ring (a spread one adds a line).
    pub(crate) fn reserved_bytes(capacity: usize) -> u64 {
        capacity.next_power_of_two() as u64 * core::mem::size_of::<Slot<T>>() as u64
    }

    /// The bytes this buffer's slots take.
    #[cfg(test)]
    pub(crate) fn slot_bytes(&self) -> u64 {
        core::mem::size_of_val(&*self.slots) as u64
    }

    /// The index of cursor position `position`'s slot: its place in the
    /// ring with the low `spread` bits swapped with the `spread` bits above
    /// them (a permutation of each block of `2^(2 * spread)` places).
    #[inline(always)]
    fn index(&self, position: usize) -> usize {
        let place = position & self.mask;
        let bits = self.spread;
        let field = (1 << bits) - 1;
        let block = !((1 << (2 * bits)) - 1);
        self.first + ((place & block) | ((place & field) << bits) | ((place >> bits) & field))
    }

    /// Where the slot of `position` is in memory, for the layout's tests.
    #[cfg(all(test, not(loom)))]
    pub(crate) fn slot_address(&self, position: usize) -> usize {
        self.slot(position) as *const Slot<T> as usize
    }

    /// The slot of cursor position `position`.
    #[inline(always)]
    fn slot(&self, position: usize) -> &Slot<T> {
        let index = self.index(position);
        debug_assert!(index < self.slots.len());
        // SAFETY: `index` is `first` plus a permutation of the bits of
        // `position & mask` below the ring's length (a power of two at least
        // `2^(2 * spread)`), so at most `first + mask`, and `slots` holds
        // `first + mask + 1` slots or more: always in bounds, whatever
        // `position` is.
        unsafe { self.slots.get_unchecked(index) }
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
