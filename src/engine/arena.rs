//! A slot arena: values addressed by a `u32` index, freed slots reused
//! first. The configured capacity is one allocation made up front, so a
//! lookup is one bounds check; past it, storage grows in fixed chunks.
//! Nothing ever moves, so growing never copies the book and the steady
//! state (as many frees as takes) never allocates.

/// The index no slot has: the end of a linked list.
pub(crate) const NIL: u32 = u32::MAX;

/// 2^18 slots: a chunk of 64-byte order slots past the configured
/// capacity is 16 MiB. When the allocator asks for transparent huge pages
/// (opt-in, README.md), a mapping that large holds whole, aligned 2 MiB
/// pages (a 2 MiB one, never aligned, held none), so a big book's random
/// slot accesses miss the TLB less. Untouched pages are never resident.
const CHUNK_BITS: u32 = 18;
const CHUNK_LEN: usize = 1 << CHUNK_BITS;
const CHUNK_MASK: usize = CHUNK_LEN - 1;

pub(crate) struct Arena<T> {
    /// Slots `0..base.capacity()`, pushed into one allocation that is
    /// never reallocated (it never grows past its capacity).
    base: Vec<T>,
    /// Slots from `base.capacity()` on, in chunks of capacity `CHUNK_LEN`
    /// that are never reallocated.
    chunks: Vec<Vec<T>>,
    /// Freed slot indices, reused last-in first-out (warm in cache).
    free: Vec<u32>,
    /// Slots in use.
    live: usize,
    /// Slots ever handed out: the next fresh index.
    fresh: u32,
}

impl<T> Arena<T> {
    /// An arena with room for `capacity` slots before it allocates again.
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        Arena {
            base: Vec::with_capacity(capacity),
            chunks: Vec::with_capacity(64),
            free: Vec::with_capacity(capacity),
            live: 0,
            fresh: 0,
        }
    }

    /// Puts `value` in a slot and returns its index.
    #[inline]
    pub(crate) fn insert(&mut self, value: T) -> u32 {
        self.live += 1;
        if let Some(index) = self.free.pop() {
            *self.get_mut(index) = value;
            return index;
        }
        // No freed slot: take the next fresh one.
        let index = self.fresh;
        assert!(index != NIL, "arena exhausted its u32 index space");
        self.fresh += 1;
        if (index as usize) < self.base.capacity() {
            // Within capacity: `push` never reallocates.
            self.base.push(value);
        } else {
            self.push_past_base(value);
        }
        index
    }

    #[cold]
    fn push_past_base(&mut self, value: T) {
        let past = self.fresh as usize - 1 - self.base.capacity();
        if past >> CHUNK_BITS == self.chunks.len() {
            self.chunks.push(Vec::with_capacity(CHUNK_LEN));
        }
        self.chunks[past >> CHUNK_BITS].push(value);
    }

    /// Marks slot `index` free; its value stays until the slot is reused.
    #[inline]
    pub(crate) fn remove(&mut self, index: u32) {
        self.live -= 1;
        self.free.push(index);
    }

    #[inline]
    pub(crate) fn get(&self, index: u32) -> &T {
        let at = index as usize;
        if at < self.base.len() {
            &self.base[at]
        } else {
            self.get_past_base(at)
        }
    }

    #[inline]
    pub(crate) fn get_mut(&mut self, index: u32) -> &mut T {
        let at = index as usize;
        if at < self.base.len() {
            &mut self.base[at]
        } else {
            self.get_past_base_mut(at)
        }
    }

    /// The value in slot `index` if it was ever handed out (for hints
    /// computed from possibly stale indices).
    #[inline]
    pub(crate) fn try_get(&self, index: u32) -> Option<&T> {
        let at = index as usize;
        if at < self.base.len() {
            Some(&self.base[at])
        } else {
            self.try_get_past_base(at)
        }
    }

    #[cold]
    fn get_past_base(&self, at: usize) -> &T {
        let past = at - self.base.capacity();
        &self.chunks[past >> CHUNK_BITS][past & CHUNK_MASK]
    }

    #[cold]
    fn get_past_base_mut(&mut self, at: usize) -> &mut T {
        let past = at - self.base.capacity();
        &mut self.chunks[past >> CHUNK_BITS][past & CHUNK_MASK]
    }

    #[cold]
    fn try_get_past_base(&self, at: usize) -> Option<&T> {
        let past = at.checked_sub(self.base.capacity())?;
        self.chunks.get(past >> CHUNK_BITS)?.get(past & CHUNK_MASK)
    }

    /// Slots in use.
    pub(crate) fn len(&self) -> usize {
        self.live
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn freed_slots_are_reused_before_growing() {
        let mut arena = Arena::with_capacity(4);
        let a = arena.insert(1u64);
        let b = arena.insert(2u64);
        arena.remove(a);
        let c = arena.insert(3u64);
        assert_eq!(c, a);
        assert_eq!(*arena.get(b), 2);
        assert_eq!(*arena.get(c), 3);
        assert_eq!(arena.len(), 2);
    }

    #[test]
    fn grows_past_its_capacity_and_one_chunk_without_moving_values() {
        let mut arena = Arena::with_capacity(1000);
        let base = arena.base.as_ptr();
        let indices: Vec<u32> = (0..(1000 + CHUNK_LEN as u64 * 2 + 5))
            .map(|v| arena.insert(v))
            .collect();
        assert_eq!(arena.base.as_ptr(), base, "the base never moved");
        for (value, index) in indices.iter().enumerate() {
            assert_eq!(*arena.get(*index), value as u64);
            assert_eq!(arena.try_get(*index), Some(&(value as u64)));
        }
        *arena.get_mut(indices[1500]) = 7;
        assert_eq!(*arena.get(indices[1500]), 7);
        assert_eq!(arena.try_get(indices.len() as u32), None);
        assert_eq!(arena.try_get(NIL), None);
    }

    #[test]
    fn an_arena_of_no_capacity_grows_in_chunks() {
        let mut arena = Arena::with_capacity(0);
        let a = arena.insert(5u8);
        let b = arena.insert(6u8);
        assert_eq!((*arena.get(a), *arena.get(b)), (5, 6));
        assert_eq!(arena.try_get(2), None);
    }
}
